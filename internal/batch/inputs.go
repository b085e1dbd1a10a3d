package batch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// AudioExtensions are the file name extensions a directory walk picks up (compared in lower case).
// Files named directly, by a glob or in a list are taken whatever their extension.
var AudioExtensions = []string{
	".aac", ".ac3", ".aif", ".aifc", ".aiff", ".amr", ".au", ".caf", ".flac", ".m4a", ".m4b", ".mka",
	".mp3", ".mp4", ".oga", ".ogg", ".opus", ".wav", ".wave", ".webm", ".wma", ".wv",
}

// Input is one audio file of a batch.
type Input struct {
	// Path names the file as its argument did: the argument itself, a glob match, or the argument
	// joined with the path found under it.
	Path string
	// Rel is the file's path relative to the root of all inputs, slash-separated. It names the
	// file's outputs under an output directory and decides its shard.
	Rel string
}

// Expand turns arguments into the sorted list of audio files they name, each once:
//
//   - a file is taken as is, whatever its extension;
//   - a directory is walked recursively for files with one of AudioExtensions, skipping names that
//     start with "." (hidden files, macOS "._" resource forks, the temp files of a run);
//   - anything else is a filepath.Glob pattern (for patterns the shell did not expand, such as
//     quoted ones); its matches are taken as files or directories as above. "**" is not recursive
//     in filepath.Glob, so a pattern holding it is refused: pass the directory instead.
//
// Files are de-duplicated by absolute path (symbolic links are not resolved). The root that Rel is
// relative to is the deepest folder holding every directory argument and the folder of every file
// argument: a single directory argument is its own root.
//
// A missing file, a pattern without matches, or no audio file at all is an error.
func Expand(args []string) ([]Input, error) {
	type file struct{ path, abs string }
	var (
		files []file
		seen  = map[string]bool{}
		roots []string
	)
	add := func(path string) error {
		abs, err := filepath.Abs(path)
		if err != nil {
			return fmt.Errorf("input %s: %w", path, err)
		}
		if !seen[abs] {
			seen[abs] = true
			files = append(files, file{filepath.Clean(path), abs})
		}
		return nil
	}
	for _, arg := range args {
		paths, err := matches(arg)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			info, err := os.Stat(p)
			if err != nil {
				return nil, inputErr(p, err)
			}
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, fmt.Errorf("input %s: %w", p, err)
			}
			if !info.IsDir() {
				roots = append(roots, filepath.Dir(abs))
				if err := add(p); err != nil {
					return nil, err
				}
				continue
			}
			roots = append(roots, abs)
			found, err := walk(p)
			if err != nil {
				return nil, err
			}
			for _, f := range found {
				if err := add(f); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no audio files in %s (extensions: %s)", strings.Join(args, " "), strings.Join(AudioExtensions, " "))
	}
	root := roots[0]
	for _, r := range roots[1:] {
		root = commonDir(root, r)
	}
	inputs := make([]Input, len(files))
	for i, f := range files {
		rel, err := filepath.Rel(root, f.abs)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", f.path, err)
		}
		inputs[i] = Input{Path: f.path, Rel: filepath.ToSlash(rel)}
	}
	slices.SortFunc(inputs, func(a, b Input) int { return strings.Compare(a.Rel, b.Rel) })
	return inputs, nil
}

// matches returns arg itself when it exists, else its glob matches.
func matches(arg string) ([]string, error) {
	_, err := os.Stat(arg)
	if err == nil {
		return []string{arg}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.ContainsAny(arg, `*?[\`) {
		return nil, inputErr(arg, err)
	}
	if strings.Contains(arg, "**") {
		return nil, fmt.Errorf("input %q: ** is not supported in patterns (filepath.Glob semantics): name the directory, which is searched recursively", arg)
	}
	m, err := filepath.Glob(arg)
	if err != nil {
		return nil, fmt.Errorf("input pattern %q: %w", arg, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("input %q: no such file, and no file matches it as a pattern", arg)
	}
	return m, nil
}

// walk lists the audio files under dir, in lexical order.
func walk(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return inputErr(path, err)
		}
		if path != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !slices.Contains(AudioExtensions, strings.ToLower(filepath.Ext(path))) {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 { // links are not followed: skip one that leads to a folder
			if info, err := os.Stat(path); err == nil && info.IsDir() {
				return nil
			}
		}
		out = append(out, path)
		return nil
	})
	return out, err
}

// inputErr names the input once: a *fs.PathError's own message repeats the path after the operation.
func inputErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("input %s: %w", path, err)
}

// commonDir is the deepest folder holding both absolute, clean folders a and b.
func commonDir(a, b string) string {
	for !within(b, a) {
		parent := filepath.Dir(a)
		if parent == a {
			return a
		}
		a = parent
	}
	return a
}

// within reports whether path is dir or lies under it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
