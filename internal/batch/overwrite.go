package batch

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vggish-go/vggish/internal/atomicfile"
)

// ownOutput reports whether in lies under the output folder outDir (absolute) and is named like a file
// that runs write there: an output of any format, a run record, a failure list or a temporary file.
func ownOutput(in Input, outDir string) bool {
	if in.Stdin {
		return false
	}
	name := filepath.Base(in.Path)
	ext := strings.ToLower(filepath.Ext(name))
	named := atomicfile.TempStem(name) != "" || (strings.HasPrefix(name, "vggish-run") && ext == ".json") || isLockName(name)
	for _, f := range Formats {
		named = named || ext == "."+string(f)
	}
	return named && within(absPath(in.Path), outDir)
}

// outputExts lists the extensions of the Formats: ".npy, .jsonl, .csv".
func outputExts() string {
	exts := make([]string, len(Formats))
	for i, f := range Formats {
		exts[i] = "." + string(f)
	}
	return strings.Join(exts, ", ")
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

const stdoutName = "standard output"

// fileID identifies a file whatever the name it is reached by: a symbolic or a hard link.
type fileID struct{ dev, ino uint64 }

func idOf(info fs.FileInfo) (fileID, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), st.Ino}, true
}

// checkOverwrite refuses a run that would write over one of its inputs or ReadOnly files (see
// CheckOverwrite).
func (p *plan) checkOverwrite() error {
	o := p.o
	var outs []string
	var stdout io.Writer
	switch {
	case o.Stdout != nil:
		stdout = o.Stdout
	case o.Output != "":
		outs = targets(o.Output, o.Format, o.Pool)
	case o.OutDir != "":
		outs = []string{filepath.Join(o.OutDir, RecordName(o.Shard)), filepath.Join(o.OutDir, ErrorsName(o.Shard))}
		for _, in := range p.selected {
			outs = append(outs, p.targets(in)...)
		}
	}
	return CheckOverwrite(outs, stdout, p.all, o.Stdin, o.ReadOnly)
}

// CheckOverwrite refuses to write over what a command reads: it is the one check of every command
// that writes files. It returns an error naming both when one of outputs exists and is the same file
// (by its name, a symbolic or a hard link) as one of the inputs, however they were found (named, by a
// folder, a glob or a list), or as one of readOnly (weights, lists, statistics); or when stdout (nil
// for none) is a file that is one of them, through a redirection. An input from standard input is
// compared through stdin. Outputs that do not exist yet cannot be inputs, and the inputs are only
// looked at when some output exists.
func CheckOverwrite(outputs []string, stdout io.Writer, inputs []Input, stdin io.Reader, readOnly []string) error {
	type output struct {
		name string
		id   fileID
	}
	var outs []output
	add := func(name string, info fs.FileInfo, err error) {
		if err == nil {
			if id, ok := idOf(info); ok {
				outs = append(outs, output{name, id})
			}
		}
	}
	if f, ok := stdout.(*os.File); ok { // a pipe or a terminal cannot be an input; a file can
		info, err := f.Stat()
		add(stdoutName, info, err)
	}
	for _, t := range outputs {
		if t != "" && t != StdinArg {
			info, err := os.Stat(t)
			add(t, info, err)
		}
	}
	if len(outs) == 0 {
		return nil
	}
	written := map[fileID]string{}
	for _, out := range outs {
		written[out.id] = out.name
	}
	check := func(path string, info fs.FileInfo, err error) error {
		if err != nil {
			return nil // a missing input fails alone; it cannot be overwritten
		}
		id, ok := idOf(info)
		if out, hit := written[id]; ok && hit {
			switch {
			case out == stdoutName:
				return fmt.Errorf("standard output is the input %s: refusing to write over an input", path)
			case absPath(out) != absPath(path):
				return fmt.Errorf("output %s is the input %s (the same file through a link): refusing to write over an input", out, path)
			}
			return fmt.Errorf("output %s is the input %s: refusing to write over an input", out, path)
		}
		return nil
	}
	for _, in := range inputs {
		var info fs.FileInfo
		var err error
		if in.Stdin {
			f, ok := stdin.(*os.File)
			if !ok {
				continue
			}
			info, err = f.Stat()
		} else {
			info, err = os.Stat(in.Path)
		}
		if err := check(in.Path, info, err); err != nil {
			return err
		}
	}
	for _, path := range readOnly {
		if path == "" {
			continue
		}
		info, err := os.Stat(path)
		if err := check(path, info, err); err != nil {
			return err
		}
	}
	return nil
}
