package batch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vggish-go/vggish/internal/regfile"
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
	// joined with the path found under it. It is "-" for standard input.
	Path string
	// Rel is the file's path relative to the root of all inputs, slash-separated. It names the
	// file's outputs under an output directory and decides its shard.
	Rel string
	// Stdin marks the audio on standard input (Options.Stdin), from the argument "-".
	Stdin bool
	// Err, if set, is why the input cannot be read (a listed file that does not exist, a folder that
	// cannot be read, anything but a regular file): Run reports it as the input's failure, without
	// opening anything.
	Err error
}

// StdinArg is the argument that stands for standard input.
const StdinArg = "-"

// Expand turns arguments, and entries read from lists, into the sorted list of audio files they name,
// each once:
//
//   - a file is taken as is, whatever its extension, if it is a regular file (a named pipe would
//     block, a device or a socket never end);
//   - a directory is walked recursively for files with one of AudioExtensions, skipping names that
//     start with "." (hidden files, macOS "._" resource forks, the temp files of a run);
//   - anything else is a filepath.Glob pattern (for patterns the shell did not expand, such as
//     quoted ones); its matches are taken as files or directories as above. "**" is not recursive
//     in filepath.Glob, so a pattern holding it is refused: pass the directory instead;
//   - the argument "-" (StdinArg) is standard input, once; in a list, "-" is a file of that name.
//
// An argument that does not exist, matches nothing, or is not a regular file or a folder is an error:
// it was typed, and is best fixed before any work. What a list names, and what a walk finds, are data:
// one that is missing, unreadable or not a regular file is an Input with Err set, which fails alone.
//
// Files are de-duplicated by absolute path (symbolic links are not resolved). The root that Rel is
// relative to is the deepest folder holding every directory argument and the folder of every file
// argument: a single directory argument is its own root. A missing listed file counts as a file
// there, so that the other files' Rel, and so their outputs' names, do not depend on it.
//
// Cancelling ctx stops a long walk.
func Expand(ctx context.Context, args, listed []string) ([]Input, error) {
	e := expansion{ctx: ctx, seen: map[string]bool{}}
	stdin := false
	for _, arg := range args {
		if arg == StdinArg {
			if stdin {
				return nil, errors.New("input - (standard input) given twice")
			}
			stdin = true
			e.inputs, e.abs = append(e.inputs, Input{Path: StdinArg, Rel: StdinArg, Stdin: true}), append(e.abs, "")
			continue
		}
		if err := e.arg(arg, false); err != nil {
			return nil, err
		}
	}
	for _, entry := range listed {
		if err := e.arg(entry, true); err != nil {
			return nil, err
		}
	}
	if len(e.inputs) == 0 {
		return nil, fmt.Errorf("no audio files in %s (extensions: %s)", strings.Join(append(args, listed...), " "), strings.Join(AudioExtensions, " "))
	}
	root := ""
	for i, r := range e.roots {
		if i == 0 {
			root = r
		} else {
			root = commonDir(root, r)
		}
	}
	for i, in := range e.inputs {
		if in.Stdin {
			continue
		}
		rel, err := filepath.Rel(root, e.abs[i])
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", in.Path, err)
		}
		e.inputs[i].Rel = filepath.ToSlash(rel)
	}
	slices.SortFunc(e.inputs, func(a, b Input) int { return strings.Compare(a.Rel, b.Rel) })
	return e.inputs, nil
}

// expansion is Expand's state.
type expansion struct {
	ctx    context.Context
	inputs []Input
	abs    []string // each input's absolute path ("" for standard input)
	seen   map[string]bool
	roots  []string
}

// add appends the file (or the failure) at path once.
func (e *expansion) add(path string, err error) error {
	abs, aerr := filepath.Abs(path)
	if aerr != nil {
		return fmt.Errorf("input %s: %w", path, aerr)
	}
	if !e.seen[abs] {
		e.seen[abs] = true
		e.inputs, e.abs = append(e.inputs, Input{Path: filepath.Clean(path), Err: err}), append(e.abs, abs)
	}
	return nil
}

// arg expands an argument, or a listed entry whose own problems are its failure, not an error.
func (e *expansion) arg(arg string, listed bool) error {
	fail := func(path string, err error) error {
		if !listed {
			return err
		}
		if abs, aerr := filepath.Abs(path); aerr == nil {
			e.roots = append(e.roots, filepath.Dir(abs))
		}
		return e.add(path, err)
	}
	paths, err := matches(arg)
	if err != nil {
		return fail(arg, err)
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err == nil && !info.IsDir() {
			err = regfile.Check(info)
		}
		if err != nil {
			if err := fail(p, inputErr(p, err)); err != nil {
				return err
			}
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("input %s: %w", p, err)
		}
		if !info.IsDir() {
			e.roots = append(e.roots, filepath.Dir(abs))
			if err := e.add(p, nil); err != nil {
				return err
			}
			continue
		}
		e.roots = append(e.roots, abs)
		if err := e.walk(p); err != nil {
			return err
		}
	}
	return nil
}

// matches returns arg itself when it exists (or is a broken link), else its glob matches.
func matches(arg string) ([]string, error) {
	_, err := os.Lstat(arg)
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

// walk adds the audio files under dir, in lexical order; a folder that cannot be read, and a file
// that is not a regular one, are failures of their own.
func (e *expansion) walk(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if cerr := e.ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			// A folder that cannot be read: WalkDir goes on with the rest.
			return e.add(path, inputErr(path, err))
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
		if !d.Type().IsRegular() {
			info, err := os.Stat(path) // what a link leads to
			switch {
			case err == nil && info.IsDir(): // links are not followed: skip one that leads to a folder
				return nil
			case err == nil:
				err = regfile.Check(info)
			}
			if err != nil {
				return e.add(path, inputErr(path, err))
			}
		}
		return e.add(path, nil)
	})
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
