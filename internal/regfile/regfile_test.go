package regfile_test

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/regfile"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.wav")
	require.NoError(t, os.WriteFile(file, []byte("RIFF"), 0o644))
	link := filepath.Join(dir, "link.wav")
	require.NoError(t, os.Symlink(file, link))
	fifo := filepath.Join(dir, "fifo.wav")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	sock := filepath.Join(dir, "s.wav")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()

	tests := []struct {
		name, path, err string
	}{
		{"regular file", file, ""},
		{"link to a regular file", link, ""},
		{"named pipe without a writer", fifo, "not a regular file: it is a named pipe"},
		{"socket", sock, "not a regular file: it is a socket"},
		{"character device", "/dev/zero", "not a regular file: it is a character device"},
		{"folder", dir, "not a regular file: it is a folder"},
		{"missing", filepath.Join(dir, "missing"), "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var f *os.File
			var err error
			go func() {
				defer close(done)
				f, err = regfile.Open(tt.path)
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("Open(%s) blocks", tt.path)
			}
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				assert.ErrorContains(t, err, tt.path)
				return
			}
			require.NoError(t, err)
			defer f.Close()
			b := make([]byte, 8)
			n, err := f.Read(b)
			require.NoError(t, err)
			assert.Equal(t, "RIFF", string(b[:n]))
		})
	}
}
