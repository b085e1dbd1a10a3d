package batch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vggish-go/vggish/internal/regfile"
	"github.com/vggish-go/vggish/internal/spec"
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
	// Rel is the input's key, slash-separated: it names the input's outputs under an output folder,
	// its entry in a run record's Parquet parts, and decides its shard. It depends on how the input
	// was named, never on the other inputs (see Expand), so a rerun with more, fewer or other inputs
	// finds the outputs of those done. It is "-" for standard input.
	Rel string
	// Stdin marks the audio on standard input (Options.Stdin), from the argument "-".
	Stdin bool
	// Err, if set, is why the input cannot be read (a listed file that does not exist, a folder that
	// cannot be read, anything but a regular file): Run reports it as the input's failure, without
	// opening anything.
	Err error
}

// StdinArg is the argument that stands for standard input.
const StdinArg = spec.StdinArg

// Expand turns arguments, and entries read from lists, into the sorted list of audio files they name,
// each once:
//
//   - a file is taken as is, whatever its extension, if it is a regular file (a named pipe would
//     block, a device or a socket never end);
//   - a directory is walked recursively for files with one of AudioExtensions, skipping names that
//     start with "." (hidden files, macOS "._" resource forks, the temp files of a run). Symbolic
//     links to folders are followed once every argument's own folders have been walked, each
//     folder searched once: a link to a folder searched already (a loop, a second name for a
//     folder), and a folder searched already inside one followed, is skipped, and warn is told;
//   - anything else is a filepath.Glob pattern (for patterns the shell did not expand, such as
//     quoted ones); its matches are taken as files or directories as above. "**" is not recursive
//     in filepath.Glob, so a pattern holding it is refused: pass the directory instead;
//   - the argument "-" (StdinArg) is standard input, once; in a list, "-" is a file of that name.
//
// An argument that does not exist, matches nothing, or is not a regular file or a folder is an error:
// it was typed, and is best fixed before any work. What a list names, and what a walk finds, are data:
// one that is missing, unreadable or not a regular file is an Input with Err set, which fails alone.
//
// Each input's key (Input.Rel) is fixed by how it was named: a file found in a folder is keyed by its
// path under that folder ("corpus/a/b.wav" found in the argument "corpus" is "a/b.wav"); a file
// named directly, by an argument, a glob or a list, by its path as named, cleaned, less a leading
// "/" and leading ".." elements ("./x.wav" is "x.wav", "/data/x.wav" is "data/x.wav"). Files are
// de-duplicated by absolute path (symbolic links are not resolved); a file reached several ways is
// keyed, whatever the order of the arguments, as found in a folder rather than as named, in the
// outermost folder, else by its shortest key. Two files may share a key (x.wav in two folder
// arguments): Run refuses those under an output folder.
//
// Cancelling ctx stops a long walk. warn may be nil.
func Expand(ctx context.Context, args, listed []string, warn func(string)) ([]Input, error) {
	if warn == nil {
		warn = func(string) {}
	}
	e := expansion{ctx: ctx, warn: warn, seen: map[string]int{}, searched: map[fileID]string{}}
	stdin := false
	for _, arg := range args {
		if arg == StdinArg {
			if stdin {
				return nil, errors.New("input - (standard input) given twice")
			}
			stdin = true
			e.inputs, e.found = append(e.inputs, Input{Path: StdinArg, Rel: StdinArg, Stdin: true}), append(e.found, foundAs{})
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
	// The links last: a folder that an argument names, or that is found where it lies, is keyed there.
	for len(e.links) > 0 {
		l := e.links[0]
		e.links = e.links[1:]
		if id, ok := dirID(l.path); ok {
			if prev, done := e.searched[id]; done {
				e.warn(fmt.Sprintf("%s: not following the link, it leads to %s, searched already", l.path, prev))
				continue
			}
		}
		if err := e.walk(l.path, l.base, l.how); err != nil {
			return nil, err
		}
	}
	if len(e.inputs) == 0 {
		return nil, fmt.Errorf("no audio files in %s (extensions: %s)", strings.Join(append(args, listed...), " "), strings.Join(AudioExtensions, " "))
	}
	slices.SortFunc(e.inputs, func(a, b Input) int { return cmp.Or(strings.Compare(a.Rel, b.Rel), strings.Compare(a.Path, b.Path)) })
	return e.inputs, nil
}

// expansion is Expand's state.
type expansion struct {
	ctx      context.Context
	warn     func(string)
	inputs   []Input
	found    []foundAs      // how each input was found
	seen     map[string]int // absolute path -> index in inputs
	searched map[fileID]string
	links    []link // links to folders, to follow once the arguments are walked
}

// foundAs is how an input was reached: named directly, or found under the folder root.
type foundAs struct {
	root string // the folder argument, absolute; "" when named directly
}

// better reports whether an input reached as a with key ka is keyed so rather than as b with kb.
func better(a foundAs, ka string, b foundAs, kb string) bool {
	switch {
	case (a.root != "") != (b.root != ""):
		return a.root != ""
	case len(a.root) != len(b.root):
		return len(a.root) < len(b.root) // the outer folder
	case a.root != b.root:
		return a.root < b.root
	case len(ka) != len(kb):
		return len(ka) < len(kb)
	}
	return ka < kb
}

// link is a symbolic link to a folder, found in a walk of the folder argument base.
type link struct {
	path, base string
	how        foundAs
}

// dirID is the identity of the folder at path (a link is followed).
func dirID(path string) (fileID, bool) {
	info, err := os.Stat(path)
	if err != nil {
		return fileID{}, false
	}
	return idOf(info)
}

// add adds the file (or the failure) at path, keyed key, once.
func (e *expansion) add(path, key string, how foundAs, err error) error {
	abs, aerr := filepath.Abs(path)
	if aerr != nil {
		return fmt.Errorf("input %s: %w", path, aerr)
	}
	in := Input{Path: filepath.Clean(path), Rel: key, Err: err}
	if i, ok := e.seen[abs]; ok {
		if better(how, key, e.found[i], e.inputs[i].Rel) {
			e.inputs[i], e.found[i] = in, how
		}
		return nil
	}
	e.seen[abs] = len(e.inputs)
	e.inputs, e.found = append(e.inputs, in), append(e.found, how)
	return nil
}

// namedKey is the key of a file named directly: its path as named, cleaned, slash-separated, less a
// leading "/" and leading ".." elements, so that it names a file under an output folder.
func namedKey(path string) string {
	k := strings.TrimLeft(filepath.ToSlash(filepath.Clean(path)), "/")
	for k == ".." || strings.HasPrefix(k, "../") {
		k = strings.TrimPrefix(strings.TrimPrefix(k, ".."), "/")
	}
	return k
}

// arg expands an argument, or a listed entry whose own problems are its failure, not an error.
func (e *expansion) arg(arg string, listed bool) error {
	fail := func(path string, err error) error {
		if !listed {
			return err
		}
		return e.add(path, namedKey(path), foundAs{}, err)
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
		if !info.IsDir() {
			if err := e.add(p, namedKey(p), foundAs{}, nil); err != nil {
				return err
			}
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("input %s: %w", p, err)
		}
		if err := e.walk(p, p, foundAs{root: abs}); err != nil {
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

// walk adds the audio files under dir, in lexical order, keyed by their path under base (the
// folder argument, as named; dir itself, or a folder it holds when dir is a link found there). A
// folder that cannot be read, and a file that is not a regular one, are failures of their own; links
// to folders are kept for later (e.links).
func (e *expansion) walk(dir, base string, how foundAs) error {
	key := func(path string) string {
		rel, err := filepath.Rel(base, path)
		if err != nil {
			rel = path
		}
		return filepath.ToSlash(rel)
	}
	viaLink := dir != base // a folder a link leads to: its folders searched already are skipped
	start := dir
	if !strings.HasSuffix(start, string(filepath.Separator)) {
		start += string(filepath.Separator) // WalkDir follows a link it starts at only so
	}
	return filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if cerr := e.ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			// A folder that cannot be read: WalkDir goes on with the rest.
			return e.add(path, key(path), how, inputErr(path, err))
		}
		if path != start && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if id, ok := dirID(path); ok {
				prev, done := e.searched[id]
				if done && viaLink && path != start {
					e.warn(fmt.Sprintf("%s: not searching it again, it is %s", path, prev))
					return filepath.SkipDir
				}
				if !done {
					e.searched[id] = filepath.Clean(path)
				}
			}
			return nil
		}
		var info fs.FileInfo
		if !d.Type().IsRegular() {
			info, err = os.Stat(path) // what a link leads to
			if err == nil && info.IsDir() {
				e.links = append(e.links, link{path: path, base: base, how: how})
				return nil
			}
		}
		if !slices.Contains(AudioExtensions, strings.ToLower(filepath.Ext(path))) {
			return nil
		}
		if err == nil && info != nil {
			err = regfile.Check(info)
		}
		if err != nil {
			return e.add(path, key(path), how, inputErr(path, err))
		}
		return e.add(path, key(path), how, nil)
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

// within reports whether path is dir or lies under it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
