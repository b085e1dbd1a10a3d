package atomicfile_test

import (
	"bufio"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/vggish-go/vggish/internal/atomicfile"
	"github.com/vggish-go/vggish/internal/regfile"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.npy")
	require.NoError(t, atomicfile.Write(path, []byte("one"), 0o644))
	require.NoError(t, atomicfile.Write(path, []byte("two"), 0o644))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")
	assert.Error(t, atomicfile.Write(filepath.Join(dir, "missing", "b"), nil, 0o644))
}

// Names up to the 255-byte limit of file names are written: the temporary name never outgrows them.
func TestWriteLongNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		strings.Repeat("a", 84) + ".npy",
		strings.Repeat("b", 241) + ".npy",
		strings.Repeat("c", 251) + ".npy",
		strings.Repeat("é", 125) + ".npy", // 254 bytes of two-byte runes
	} {
		path := filepath.Join(dir, name)
		require.NoError(t, atomicfile.Write(path, []byte(name), 0o644), "%d bytes", len(name))
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, name, string(b))
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 4, "no temporary file left")
}

func TestStem(t *testing.T) {
	for n := 1; n <= 255; n++ {
		for _, name := range []string{strings.Repeat("x", n), strings.Repeat("ü", n/2) + strings.Repeat("x", n%2)} {
			stem := atomicfile.Stem(name)
			longest := "." + stem + "." + fmt.Sprint(uint32(math.MaxUint32)) + ".tmp"
			assert.LessOrEqual(t, len(longest), max(100, len(name)), "%d bytes", len(name))
			assert.True(t, utf8.ValidString(stem), "%q", stem)
			assert.Equal(t, stem, atomicfile.TempStem(longest))
			if len(name) <= 84 {
				assert.Equal(t, name, stem)
			}
		}
	}
	a, b := strings.Repeat("a", 200)+"1.npy", strings.Repeat("a", 200)+"2.npy"
	assert.NotEqual(t, atomicfile.Stem(a), atomicfile.Stem(b), "long names differing in their cut part")
}

func TestTempStem(t *testing.T) {
	for name, want := range map[string]string{
		".a.npy.123.tmp":         "a.npy",
		".a.b.jsonl.9.tmp":       "a.b.jsonl",
		"a.npy.123.tmp":          "",
		".a.npy":                 "",
		".x.tmp":                 "",
		".vggish-run.json.1.tmp": "vggish-run.json",
	} {
		assert.Equal(t, want, atomicfile.TempStem(name), name)
	}
}

// Both ways of writing, unnamed and named (where O_TMPFILE is refused), commit and abort alike; only a
// named file is seen in the folder while it is written.
func TestCreateCommitAbort(t *testing.T) {
	for _, c := range []struct {
		name    string
		named   bool
		writing int // entries in the folder while the first file is written
	}{
		{"unnamed", false, 0},
		{"named", true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.named {
				atomicfile.Named(t)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "a.npy")
			f, err := atomicfile.Create(path, 0o640)
			require.NoError(t, err)
			_, err = f.WriteString("streamed")
			require.NoError(t, err)
			assert.NoFileExists(t, path, "not before Commit")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, c.writing)
			require.NoError(t, f.Commit())
			f.Abort() // after Commit: nothing to do
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, "streamed", string(b))
			fi, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())

			g, err := atomicfile.Create(path, 0o644)
			require.NoError(t, err)
			_, err = g.WriteString("half")
			require.NoError(t, err)
			g.Abort()
			b, err = os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, "streamed", string(b), "an aborted write leaves the old file")
			entries, err = os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, 1, "no temporary file left")
		})
	}
}

// envKilledWriter makes the test binary a writer that waits, before Commit, to be killed.
const envKilledWriter = "ATOMICFILE_KILLED_WRITER"

// A writer killed before Commit leaves nothing in the folder where the file system takes O_TMPFILE:
// no temporary file for a later run to find and remove (which --output has no lock to do safely).
func TestKilledWriterLeavesNothing(t *testing.T) {
	if path := os.Getenv(envKilledWriter); path != "" {
		f, err := atomicfile.Create(path, 0o644)
		if err == nil {
			_, err = f.WriteString("never committed")
		}
		fmt.Println("written", err)
		time.Sleep(time.Minute) // until killed
		return
	}
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR, 0o600)
	if err != nil {
		t.Skipf("%s takes no O_TMPFILE (%v): writers fall back on named temporary files", dir, err)
	}
	unix.Close(fd)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriterLeavesNothing$")
	cmd.Env = append(os.Environ(), envKilledWriter+"="+filepath.Join(dir, "x.npy"))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "written <nil>\n", line)
	require.NoError(t, cmd.Process.Kill())
	assert.Error(t, cmd.Wait(), "killed")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

// RemoveTemps removes what killed writers of a path left, long names included, and nothing else.
func TestRemoveTemps(t *testing.T) {
	atomicfile.Named(t) // unnamed files leave nothing to remove
	for _, name := range []string{"w.pth", strings.Repeat("n", 240) + ".pth"} {
		dir := t.TempDir()
		path := filepath.Join(dir, name)
		left, err := atomicfile.Create(path, 0o644) // never committed: a killed writer's
		require.NoError(t, err)
		left.Close()
		other, err := atomicfile.Create(filepath.Join(dir, "other.pth"), 0o644)
		require.NoError(t, err)
		defer other.Abort()
		keep := []string{name, "." + name, name + ".tmp"}
		for _, k := range keep {
			require.NoError(t, os.WriteFile(filepath.Join(dir, k), nil, 0o644))
		}

		atomicfile.RemoveTemps(path)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		assert.NoFileExists(t, left.Name())
		assert.ElementsMatch(t, append(keep, filepath.Base(other.Name())), names)
	}
}

// Only a regular file is replaced: a socket, a named pipe or a folder at the path is refused and left
// as it was; a symbolic link is followed, its target replaced and the link kept.
func TestWriteReplacesOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.npy")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	folder := filepath.Join(dir, "folder.npy")
	require.NoError(t, os.Mkdir(folder, 0o755))
	target := filepath.Join(dir, "target.npy")
	require.NoError(t, os.WriteFile(target, []byte("old"), 0o644))
	link := filepath.Join(dir, "link.npy")
	require.NoError(t, os.Symlink("target.npy", link))
	sock := filepath.Join(dir, "sock.npy")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	for _, c := range []struct {
		name, path string
		err        string
		mode       fs.FileMode // of what is at path afterwards
	}{
		{"a socket", sock, "it is a socket", fs.ModeSocket}, // as a device would be, without risking one
		{"a named pipe", fifo, "it is a named pipe", fs.ModeNamedPipe},
		{"a folder", folder, "it is a folder", fs.ModeDir},
		{"a symbolic link", link, "", fs.ModeSymlink},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := atomicfile.Write(c.path, []byte("new"), 0o644)
			if c.err != "" {
				require.ErrorIs(t, err, regfile.ErrNotRegular)
				assert.ErrorContains(t, err, c.err)
			} else {
				require.NoError(t, err)
			}
			fi, err := os.Lstat(c.path)
			require.NoError(t, err)
			assert.Equal(t, c.mode, fi.Mode().Type())
		})
	}
	b, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "new", string(b), "the link's target is written")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 5, "no temporary file left")
}
