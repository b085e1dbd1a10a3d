package main

// The edges of the command line, tried on the built binary as a careless or hostile user would: outputs
// never written over inputs, inputs that would block refused, child processes that end with the run,
// long names, flags checked before any work, pipes both ways, help and version.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/cli"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/torch"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// sharedBinary builds vggish and its engine once per test binary, without vggish-decoder: its runs
// test the decoders' fallback, the engine started again.
func sharedBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = build(reftest.WorkDir(t), false) })
	require.NoError(t, binErr)
	return binPath
}

// result is how a run of the binary ended.
type result struct {
	code           int // -1 when killed by a signal
	stdout, stderr string
}

// hangLimit is far more than any run here needs: a run still going then has hung.
const hangLimit = 2 * time.Minute

// runVggish runs the binary with stdin (nil: none) and extra environment, and fails the test if it hangs.
func runVggish(t *testing.T, stdin io.Reader, env []string, args ...string) result {
	t.Helper()
	return runVggishIn(t, "", stdin, env, args...)
}

// runVggishIn is runVggish in the folder dir ("": the test's).
func runVggishIn(t *testing.T, dir string, stdin io.Reader, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, sharedBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "vggish %s hung", strings.Join(args, " "))
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return r
}

// fixture is the audio and weights the tests share.
type fixture struct {
	weights string
	wav     string // 3 s, 16 kHz mono
	flac    string // the same, as FLAC
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	wav := reftest.Corpus(t, 1, 16000, 1, 3)[0]
	flac := filepath.Join(t.TempDir(), "tone.flac")
	out, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-i", wav, flac).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return fixture{weights: reftest.Weights(t, "zip"), wav: wav, flac: flac}
}

func copyFile(t *testing.T, src, dst string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	require.NoError(t, os.WriteFile(dst, b, 0o644))
	return dst
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

// Case 1: no output is ever written over an input, whatever the route; the run is refused up front.
func TestNeverWritesOverInputs(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name string
		// setup returns the arguments, the input that must survive, the file standard output
		// appends to (or ""), and what the error names.
		setup func(dir string) (args []string, input, stdout string, names []string)
	}{
		{"--output is the input", func(dir string) ([]string, string, string, []string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "song.wav"))
			return []string{"embed", "--weights", fx.weights, "--format", "npy", "--output", in, in}, in, "", []string{"output " + in + " is the input " + in}
		}},
		{"--output is a hard link to the input", func(dir string) ([]string, string, string, []string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "song.wav"))
			link := filepath.Join(dir, "song.npy")
			require.NoError(t, os.Link(in, link))
			return []string{"embed", "--weights", fx.weights, "--output", link, in}, in, "", []string{"output " + link + " is the input " + in}
		}},
		{"--output is a symbolic link to the input", func(dir string) ([]string, string, string, []string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "song.wav"))
			link := filepath.Join(dir, "song.npy")
			require.NoError(t, os.Symlink("song.wav", link))
			return []string{"embed", "--weights", fx.weights, "--output", link, in}, in, "", []string{"output " + link + " is the input " + in}
		}},
		{"an output under --out-dir is a link to an input", func(dir string) ([]string, string, string, []string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "in", "song.wav"))
			out := filepath.Join(dir, "out")
			target := filepath.Join(out, strings.TrimSuffix(in, ".wav")+".npy") // a file named directly is keyed by its path
			require.NoError(t, os.MkdirAll(filepath.Dir(target), 0o755))
			require.NoError(t, os.Link(in, target))
			return []string{"embed", "--weights", fx.weights, "--out-dir", out, in}, in, "", []string{target, in}
		}},
		{"the run record is a link to an input", func(dir string) ([]string, string, string, []string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "song.wav"))
			out := filepath.Join(dir, "out")
			require.NoError(t, os.MkdirAll(out, 0o755))
			require.NoError(t, os.Symlink(in, filepath.Join(out, "vggish-run.json")))
			return []string{"embed", "--weights", fx.weights, "--out-dir", out, in}, in, "", []string{filepath.Join(out, "vggish-run.json"), in}
		}},
		{"--output is the weights", func(dir string) ([]string, string, string, []string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "song.wav"))
			w := filepath.Join(dir, "w.pth")
			require.NoError(t, os.Link(fx.weights, w)) // a link: even a wrongly written output would leave fx.weights whole
			return []string{"embed", "--weights", w, "--format", "npy", "--output", w, in}, w, "", []string{"output " + w + " is the input " + w}
		}},
		{"--output is the --files-from list", func(dir string) ([]string, string, string, []string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "song.wav"))
			list := filepath.Join(dir, "list.txt")
			require.NoError(t, os.WriteFile(list, []byte(in+"\n"), 0o644))
			return []string{"embed", "--weights", fx.weights, "--format", "jsonl", "--output", list, "--files-from", list}, list, "", []string{"output " + list + " is the input " + list}
		}},
		{"standard output is appended to the input", func(dir string) ([]string, string, string, []string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "song.wav"))
			return []string{"embed", "--weights", fx.weights, "--output", "-", in}, in, in, []string{"standard output is the input " + in}
		}},
		{"logmel: --output is the input", func(dir string) ([]string, string, string, []string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "song.wav"))
			return []string{"logmel", "--output", in, in}, in, "", []string{"output " + in + " is the input " + in}
		}},
		{"logmel: --output is a link to the input", func(dir string) ([]string, string, string, []string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "song.wav"))
			link := filepath.Join(dir, "song.npy")
			require.NoError(t, os.Link(in, link))
			return []string{"logmel", "--output", link, in}, in, "", []string{"output " + link + " is the input " + in}
		}},
		{"logmel: standard output is appended to the input", func(dir string) ([]string, string, string, []string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "song.wav"))
			return []string{"logmel", "--output", "-", in}, in, in, []string{"standard output is the input " + in}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, input, stdoutFile, names := tt.setup(t.TempDir())
			before := sum(t, input)
			cmd := exec.Command(sharedBinary(t), args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if stdoutFile != "" {
				f, err := os.OpenFile(stdoutFile, os.O_WRONLY|os.O_APPEND, 0)
				require.NoError(t, err)
				defer f.Close()
				cmd.Stdout = f
			}
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			assert.Equal(t, 2, exit.ExitCode())
			last := lastLine(stderr.String())
			assert.Contains(t, last, "refusing to write over an input")
			for _, n := range names {
				assert.Contains(t, last, n)
			}
			assert.Equal(t, before, sum(t, input), "the input is untouched")
		})
	}
}

// Case 1, continued: a rerun over a tree that holds its own outputs does not embed them.
func TestOwnOutputsAreNotInputs(t *testing.T) {
	fx := newFixture(t)
	dir := t.TempDir()
	copyFile(t, fx.wav, filepath.Join(dir, "a.wav"))
	copyFile(t, fx.flac, filepath.Join(dir, "b.flac"))
	args := []string{"embed", "--weights", fx.weights, "--out-dir", dir, "--pool", "mean", "*"} // a.wav is written to a.npy
	r := runVggishIn(t, dir, nil, nil, args...)
	require.Equal(t, 0, r.code, r.stderr)
	for _, f := range []string{"a.npy", "a.mean.npy", "b.npy", "vggish-run.json"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	r = runVggishIn(t, dir, nil, nil, args...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "ignoring 7 inputs under "+dir+" named like the outputs of a run") // with the locks
	assert.Contains(t, r.stderr, "2 files: 0 embedded (0 clips, 0.0 clips/s), 2 skipped")
}

// Case 2: anything but a regular file is refused before it is opened, as an input, as weights, in a
// list or in a folder; a list may come through a named pipe.
func TestIrregularFilesNeverHang(t *testing.T) {
	fx := newFixture(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.wav")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	sock := filepath.Join(dir, "sock.wav")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	tree := filepath.Join(dir, "tree")
	good := copyFile(t, fx.wav, filepath.Join(tree, "good.wav"))
	require.NoError(t, syscall.Mkfifo(filepath.Join(tree, "stuck.wav"), 0o644))
	missing := filepath.Join(dir, "missing.wav")
	list := filepath.Join(dir, "list.txt")
	require.NoError(t, os.WriteFile(list, []byte(strings.Join([]string{fifo, "/dev/zero", sock, missing, good}, "\n")), 0o644))

	tests := []struct {
		name     string
		args     []string
		code     int
		want     string
		failures map[string]string // path -> error, in vggish-errors.jsonl
	}{
		{"a named pipe as input", []string{fifo}, 2, "input " + fifo + ": not a regular file: it is a named pipe", nil},
		{"a device as input", []string{"/dev/zero"}, 2, "input /dev/zero: not a regular file: it is a character device", nil},
		{"a socket as input", []string{sock}, 2, "input " + sock + ": not a regular file: it is a socket", nil},
		{"a named pipe as --weights", []string{"--weights", fifo, good}, 2, "--weights " + fifo + ": not a regular file: it is a named pipe", nil},
		{"a device as --weights", []string{"--weights", "/dev/zero", good}, 2, "--weights /dev/zero: not a regular file: it is a character device", nil},
		{"a named pipe as --pca", []string{"--pca", fifo, good}, 2, "--pca " + fifo + ": not a regular file: it is a named pipe", nil},
		{"a device as --files-from", []string{"--files-from", "/dev/urandom"}, 2, "--files-from /dev/urandom: not a regular file: it is a character device", nil},
		{"a named pipe in a folder", []string{tree}, 1, "1 of 2 files failed", map[string]string{
			filepath.Join(tree, "stuck.wav"): "not a regular file: it is a named pipe"}},
		{"irregular and missing files in a list", []string{"--files-from", list}, 1, "4 of 5 files failed", map[string]string{
			fifo: "not a regular file: it is a named pipe", "/dev/zero": "not a regular file: it is a character device",
			sock: "not a regular file: it is a socket", missing: "no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"embed", "--weights", fx.weights, "--out-dir", out}, tt.args...)
			r := runVggish(t, nil, nil, args...)
			assert.Equal(t, tt.code, r.code, r.stderr)
			assert.Contains(t, lastLine(r.stderr), tt.want)
			if tt.failures == nil {
				assert.NoDirExists(t, out, "refused before any work")
				return
			}
			got := map[string]string{}
			for _, f := range readFailures(t, out) {
				got[f.Path] = f.Error
			}
			require.Len(t, got, len(tt.failures))
			for p, e := range tt.failures {
				assert.Contains(t, got[p], e, p)
			}
			goodOut := filepath.Join(out, "good.npy")
			if tt.args[0] == "--files-from" { // a listed file is keyed by its path as named
				goodOut = filepath.Join(out, strings.TrimSuffix(good, ".wav")+".npy")
			}
			assert.FileExists(t, goodOut, "the good file is embedded")
		})
	}

	t.Run("a list through a named pipe", func(t *testing.T) {
		pipe := filepath.Join(t.TempDir(), "list")
		require.NoError(t, syscall.Mkfifo(pipe, 0o644))
		go func() {
			f, err := os.OpenFile(pipe, os.O_WRONLY, 0)
			if err == nil {
				f.WriteString(good + "\n")
				f.Close()
			}
		}()
		r := runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--files-from", pipe)
		assert.Equal(t, 0, r.code, r.stderr)
		assert.True(t, strings.HasPrefix(r.stdout, good+" ["), r.stdout)
	})
}

func readFailures(t *testing.T, dir string) []batch.Failure {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "vggish-errors.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var out []batch.Failure
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fail batch.Failure
		require.NoError(t, json.Unmarshal(sc.Bytes(), &fail))
		out = append(out, fail)
	}
	return out
}

// children lists the processes whose parent is pid, by name.
func children(pid int) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after its last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		fields := strings.Fields(s[i+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out[child] = s[strings.IndexByte(s, '(')+1 : i]
		}
	}
	return out
}

// alive reports whether pid runs (a zombie has ended: only its exit status waits to be collected).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

// started is a run of the binary in the background, watched for its decoders: its children, decoding
// workers (the binary itself, see decode/libav) or ffmpeg processes (standard input, -tags nolibav).
type started struct {
	cmd      *exec.Cmd
	stderr   bytes.Buffer
	done     chan struct{}
	mu       sync.Mutex
	decoders map[int]bool
	err      error
}

// start starts the binary.
func start(t *testing.T, stdin io.Reader, stdout io.Writer, args ...string) *started {
	t.Helper()
	s := &started{cmd: exec.Command(sharedBinary(t), args...), done: make(chan struct{}), decoders: map[int]bool{}}
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = stdin, stdout, &s.stderr
	require.NoError(t, s.cmd.Start())
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	go func() {
		for {
			select {
			case <-s.done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for pid, name := range children(s.cmd.Process.Pid) {
				if name == "ffmpeg" || name == decoderName || name == cli.EngineName {
					s.mu.Lock()
					s.decoders[pid] = true
					s.mu.Unlock()
				}
			}
		}
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	return s
}

// seen is the number of decoder processes the run has started so far.
func (s *started) seen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.decoders)
}

// waitDecoder waits until the run has a decoder child.
func (s *started) waitDecoder(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(hangLimit)
	for time.Now().Before(deadline) {
		if s.seen() > 0 {
			return
		}
		select {
		case <-s.done:
			t.Fatalf("the run ended before starting a decoder: %v\n%s", s.err, s.stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatal("no decoder started")
}

// wait waits for the run to end, within limit, and returns how.
func (s *started) wait(t *testing.T, limit time.Duration) (exitCode int, signaled syscall.Signal) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(limit):
		t.Fatalf("the run did not end within %v:\n%s", limit, s.stderr.String())
	}
	ws := s.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return -1, ws.Signal()
	}
	return ws.ExitStatus(), 0
}

// assertNoDecoderLeft checks that every decoder the run started has ended, within a second.
func (s *started) assertNoDecoderLeft(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	deadline := time.Now().Add(time.Second)
	for pid := range s.decoders {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		assert.False(t, alive(pid), "decoder %d outlived the run", pid)
	}
}

// longFLAC is 10 minutes of tone in FLAC: its decoder decodes it far faster than the network embeds it,
// so it stays alive, blocked on its pipe, while the run goes on.
func longFLAC(t *testing.T) string {
	t.Helper()
	path := filepath.Join(reftest.WorkDir(t), "long.flac")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	out, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=300:duration=600:sample_rate=16000", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return path
}

// Case 2, continued: the decoders end with the run, whatever ends it: a signal it handles, one it cannot
// (SIGKILL, or SIGPIPE, which Go raises on a write to a closed standard output), or an error of the
// run (standard output full).
func TestDecodersEndWithTheRun(t *testing.T) {
	fx := newFixture(t)
	long := longFLAC(t)
	dir := t.TempDir()
	first := copyFile(t, fx.wav, filepath.Join(dir, "a.wav"))
	second := copyFile(t, long, filepath.Join(dir, "b.flac"))
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			s := start(t, nil, io.Discard, "embed", "--weights", fx.weights, "--out-dir", t.TempDir(), long)
			s.waitDecoder(t)
			signalled := time.Now()
			require.NoError(t, s.cmd.Process.Signal(sig))
			code, signaled := s.wait(t, 10*time.Second)
			t.Logf("ended %v after the signal", time.Since(signalled).Round(time.Millisecond))
			if sig == syscall.SIGKILL {
				assert.Equal(t, syscall.SIGKILL, signaled)
			} else {
				assert.Equal(t, 1, code, "ends cleanly: %s", s.stderr.String())
				assert.Contains(t, s.stderr.String(), "interrupted")
			}
			s.assertNoDecoderLeft(t)
		})
	}
	// The first input's result is written while the second is decoded.
	t.Run("standard output closed", func(t *testing.T) {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		r.Close()
		s := start(t, nil, w, "embed", "--weights", fx.weights, "--workers", "2", first, second)
		w.Close()
		_, signaled := s.wait(t, hangLimit)
		assert.Equal(t, syscall.SIGPIPE, signaled, s.stderr.String())
		t.Logf("decoder processes seen: %d", s.seen())
		s.assertNoDecoderLeft(t)
	})
	t.Run("standard output full", func(t *testing.T) {
		full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		require.NoError(t, err)
		defer full.Close()
		s := start(t, nil, full, "embed", "--weights", fx.weights, "--workers", "2", first, second)
		code, _ := s.wait(t, hangLimit)
		assert.Equal(t, 1, code, s.stderr.String())
		assert.Contains(t, s.stderr.String(), "writing results: write /dev/stdout: no space left on device")
		t.Logf("decoder processes seen: %d", s.seen())
		s.assertNoDecoderLeft(t)
	})
}

// Issue 27: a decoding worker that dies on a file (here killed while it has the file open, as a crash
// ends it) fails that file alone: the run embeds every other file, and its decoders end with it.
func TestDecoderCrashFailsItsFileAlone(t *testing.T) {
	if !decoderWorkers {
		t.Skip("built with -tags nolibav: ffmpeg processes decode, one per file")
	}
	fx := newFixture(t)
	dir := t.TempDir()
	long := copyFile(t, longFLAC(t), filepath.Join(dir, "a-long.flac"))
	for i := range 3 {
		copyFile(t, fx.flac, filepath.Join(dir, fmt.Sprintf("b%d.flac", i)))
	}
	out := t.TempDir()
	s := start(t, nil, io.Discard, "embed", "--weights", fx.weights, "--workers", "1", "--out-dir", out, dir)
	victim := 0
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for pid := range s.decoders {
			if holdsOpen(pid, long) {
				victim = pid
				return true
			}
		}
		return false
	}, hangLimit, 5*time.Millisecond, "no decoder opened %s", long)
	require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))
	code, _ := s.wait(t, hangLimit)
	assert.Equal(t, 1, code, s.stderr.String())
	failures := readFailures(t, out)
	require.Len(t, failures, 1, s.stderr.String())
	assert.Equal(t, long, failures[0].Path)
	assert.Contains(t, failures[0].Error, long+": the decoder crashed on it (signal: killed)")
	assert.Equal(t, batch.KindFormat, failures[0].Kind)
	for i := range 3 {
		assert.Positive(t, finiteNPY(t, filepath.Join(out, fmt.Sprintf("b%d.npy", i))))
	}
	s.assertNoDecoderLeft(t)
}

// holdsOpen reports whether process pid has the file at path open.
func holdsOpen(pid int, path string) bool {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && target == path {
			return true
		}
	}
	return false
}

// Case 2, continued: SIGTERM and SIGINT end the run promptly in every phase: at start-up, while
// walking and loading the weights, while decoding and embedding, and while waiting on a stalled pipe
// (standard input, a list), where nothing can interrupt a read.
func TestSignalsInEveryPhase(t *testing.T) {
	fx := newFixture(t)
	long := longFLAC(t)
	dir := t.TempDir()
	copyFile(t, long, filepath.Join(dir, "long.flac"))
	for i := range 20 {
		copyFile(t, fx.wav, filepath.Join(dir, "sub", fmt.Sprintf("%02d.wav", i)))
	}
	// Start-up (libtorch's libraries load for a second or so), walking, loading the weights, embedding.
	for i, delay := range []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 5 * time.Second} {
		sig := []syscall.Signal{syscall.SIGTERM, syscall.SIGINT}[i%2]
		t.Run(fmt.Sprintf("%v after %v", sig, delay), func(t *testing.T) {
			out := t.TempDir()
			s := start(t, nil, io.Discard, "embed", "--weights", fx.weights, "--out-dir", out, dir)
			time.Sleep(delay)
			signalled := time.Now()
			require.NoError(t, s.cmd.Process.Signal(sig))
			code, signaled := s.wait(t, 10*time.Second)
			t.Logf("exit %d, signal %v, %v after the signal: %s", code, signaled, time.Since(signalled).Round(time.Millisecond), lastLine(s.stderr.String()))
			// Before the handler is installed the signal's default action ends the process.
			assert.True(t, code == 1 || signaled == sig, "exit %d, signal %v: %s", code, signaled, s.stderr.String())
			s.assertNoDecoderLeft(t)
			assertNoTemps(t, out)
		})
	}

	// A stall is reached once the weights are loaded (standard input is read after), or once Go's
	// runtime has started (after libtorch's libraries load: a second or so, more on a loaded machine).
	weightsLoaded := func(s *started) bool { return rssMB(s.cmd.Process.Pid) > 300 }
	stalls := []struct {
		name    string
		args    []string
		stdin   []byte // written, then the pipe is left open
		reached func(*started) bool
		want    string
	}{
		{"audio on a silent standard input", []string{"-"}, nil, weightsLoaded, "interrupted after 0 of 1 files"},
		{"WAV on standard input that stops coming", []string{"-"}, wavHeader(16000, 1), weightsLoaded, "interrupted after 0 of 1 files"},
		{"other audio on standard input that stops coming (ffmpeg waits)", []string{"-"}, []byte("ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb"), weightsLoaded, "interrupted after 0 of 1 files"},
		{"a list on a silent standard input", []string{"--files-from", "-"}, nil, goStarted, "interrupted while reading -"},
	}
	for _, tt := range stalls {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			require.NoError(t, err)
			defer w.Close()
			s := start(t, r, io.Discard, append([]string{"embed", "--weights", fx.weights}, tt.args...)...)
			r.Close()
			_, err = w.Write(tt.stdin)
			require.NoError(t, err)
			s.waitFor(t, tt.reached)
			time.Sleep(3 * time.Second)
			require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
			code, _ := s.wait(t, 5*time.Second)
			assert.Equal(t, 1, code, s.stderr.String())
			assert.Contains(t, s.stderr.String(), tt.want)
			s.assertNoDecoderLeft(t)
		})
	}
	t.Run("a list in a named pipe nobody writes", func(t *testing.T) {
		pipe := filepath.Join(t.TempDir(), "list")
		require.NoError(t, syscall.Mkfifo(pipe, 0o644))
		s := start(t, nil, io.Discard, "embed", "--weights", fx.weights, "--files-from", pipe)
		s.waitFor(t, goStarted)
		time.Sleep(3 * time.Second)
		require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
		code, _ := s.wait(t, 5*time.Second)
		assert.Equal(t, 1, code, s.stderr.String())
		assert.Contains(t, s.stderr.String(), "interrupted while reading "+pipe)
	})
}

// goStarted reports whether Go's runtime runs in s: it catches SIGURG (its preemption signal) from its
// start, before main, which libtorch's libraries, loaded before, do not. The signal handlers main
// installs follow within milliseconds.
func goStarted(s *started) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if hex, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			caught, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && caught&(1<<(syscall.SIGURG-1)) != 0
		}
	}
	return false
}

// rssMB is the resident memory of a process, in MB (0 if unknown).
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// waitFor waits until reached says so.
func (s *started) waitFor(t *testing.T, reached func(*started) bool) {
	t.Helper()
	deadline := time.Now().Add(hangLimit)
	for !reached(s) {
		select {
		case <-s.done:
			t.Fatalf("the run ended early: %v\n%s", s.err, s.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "never reached")
	}
}

// wavHeader is a 16-bit PCM WAV header whose data runs to the end of the stream (ffmpeg's placeholder
// size, as a program writing to a pipe leaves it).
func wavHeader(rate, channels int) []byte {
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(0xFFFFFFFF))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1))
	le(uint16(channels))
	le(uint32(rate))
	le(uint32(rate * channels * 2))
	le(uint16(channels * 2))
	le(uint16(16))
	b.WriteString("data")
	le(uint32(0xFFFFFFFF))
	return b.Bytes()
}

// Case 3: input names up to the 255-byte limit of file names embed; the temporary names beside
// their outputs never outgrow it.
func TestLongInputNames(t *testing.T) {
	fx := newFixture(t)
	in := t.TempDir()
	var names []string
	for _, n := range []int{241, 248, 255} {
		name := strings.Repeat("n", n-len(".wav")) + ".wav"
		copyFile(t, fx.wav, filepath.Join(in, name))
		names = append(names, name)
	}
	out := t.TempDir()
	r := runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--out-dir", out, in)
	require.Equal(t, 0, r.code, r.stderr)
	for _, name := range names {
		assert.FileExists(t, filepath.Join(out, strings.TrimSuffix(name, ".wav")+".npy"))
	}
	single := filepath.Join(out, strings.Repeat("s", 251)+".npy")
	r = runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--output", single, filepath.Join(in, names[2]))
	require.Equal(t, 0, r.code, r.stderr)
	assert.FileExists(t, single)
	assertNoTemps(t, out)
}

// Case 4: every flag is checked before any work, with its range in the error and exit status 2.
func TestFlagsCheckedUpFront(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--batch", "0"}, nil, "--batch 0: want 1 to 4096 clips"},
		{[]string{"--batch", "-1"}, nil, "--batch -1: want 1 to 4096 clips"},
		{[]string{"--batch", "100000000"}, nil, "--batch 100000000: want 1 to 4096 clips"},
		{[]string{"--batch", "x"}, nil, `invalid value "x" for flag -batch`},
		{[]string{"--workers", "0"}, nil, "--workers 0: want 1 to 1024"},
		{[]string{"--workers", "-5"}, nil, "--workers -5: want 1 to 1024"},
		{[]string{"--workers", "100000"}, nil, "--workers 100000: want 1 to 1024"},
		{[]string{"--threads", "0"}, []string{"GOMAXPROCS=2"}, "--threads 0: want 1 to 16 (8× the 2 usable CPUs, from GOMAXPROCS=2)"},
		{[]string{"--threads", "-1"}, []string{"GOMAXPROCS=2"}, "--threads -1: want 1 to 16"},
		{[]string{"--threads", "1000"}, []string{"GOMAXPROCS=2"}, "--threads 1000: want 1 to 16"},
		{[]string{"--num-shards", "0"}, nil, "--num-shards 0: want at least 1"},
		{[]string{"--num-shards", "-3"}, nil, "--num-shards -3: want at least 1"},
		{[]string{"--shard", "3/2"}, nil, "want 0 <= index < count, got index 3 of 2"},
		{[]string{"--shard", "-1/2"}, nil, "want 0 <= index < count, got index -1 of 2"},
		{[]string{"--shard", "1/0"}, nil, "want 0 <= index < count, got index 1 of 0"},
		{[]string{"--num-shards", "4"}, []string{"JOB_COMPLETION_INDEX=x"}, `JOB_COMPLETION_INDEX="x": not a number`},
		{[]string{"--hop", "0"}, nil, "--hop 0: want 0.01 to 10000 seconds (rounded to 10 ms)"},
		{[]string{"--hop", "-1"}, nil, "--hop -1: want 0.01 to 10000 seconds"},
		{[]string{"--hop", "0.004"}, nil, "--hop 0.004: want 0.01 to 10000 seconds"},
		{[]string{"--hop", "100000"}, nil, "--hop 100000: want 0.01 to 10000 seconds"},
		{[]string{"--hop", "NaN"}, nil, "--hop NaN: want 0.01 to 10000 seconds"},
		{[]string{"--hop", "Inf"}, nil, "--hop +Inf: want 0.01 to 10000 seconds"},
		{[]string{"--device", "gpu"}, nil, `device "gpu": want auto, cpu, cuda or cuda:N`},
		{[]string{"--device", "cuda:-1"}, nil, `device "cuda:-1": want cuda:N with N a device index`},
		{[]string{"--variant", "vgg"}, nil, `--variant "vgg": want towhee or torchvggish`},
		{[]string{"--framework", "tensorflow"}, nil, `--framework "tensorflow": want pytorch`},
		{[]string{"--postprocess", "whiten"}, nil, `--postprocess "whiten": want none, pca or pca-quantize`},
		{[]string{"--format", "avro"}, nil, `format "avro": want npy, npz, jsonl, csv or parquet`},
		{[]string{"--pool", "median"}, nil, `pool "median": want mean or max`},
		{[]string{"--no-such-flag"}, nil, "flag provided but not defined: -no-such-flag"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append(tt.env, tt.args...), " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"embed", "--weights", fx.weights, "--out-dir", out, fx.wav}, tt.args...)
			r := runVggish(t, nil, tt.env, args...)
			assert.Equal(t, 2, r.code, r.stderr)
			assert.Contains(t, r.stderr, "usage: vggish embed")
			assert.Equal(t, "vggish embed: ", lastLine(r.stderr)[:min(14, len(lastLine(r.stderr)))])
			assert.Contains(t, lastLine(r.stderr), tt.want)
			assert.NoDirExists(t, out, "nothing done")
		})
	}

	t.Run("a hop longer than a clip is legitimate", func(t *testing.T) {
		r := runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--hop", "10", "--format", "jsonl", fx.wav)
		require.Equal(t, 0, r.code, r.stderr)
		var rec struct{ Starts []float64 }
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rec))
		assert.Equal(t, []float64{0}, rec.Starts, "3 s of audio: one clip")
	})
	t.Run("threads above the usable CPUs: a warning", func(t *testing.T) {
		r := runVggish(t, nil, []string{"GOMAXPROCS=1"}, "embed", "--weights", fx.weights, "--threads", "2", fx.wav)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stderr, "warning: --threads 2 is more than the 1 usable CPUs (GOMAXPROCS=1)")
	})
}

// Case 5: a missing or unreadable entry of a list fails alone (exit status 1); a missing path typed on
// the command line stops the run before any work (exit status 2).
func TestMissingInputs(t *testing.T) {
	fx := newFixture(t)
	dir := t.TempDir()
	good := copyFile(t, fx.wav, filepath.Join(dir, "good.wav"))
	corrupt := filepath.Join(dir, "corrupt.wav")
	require.NoError(t, os.WriteFile(corrupt, []byte("RIFF...."), 0o644))
	missing := filepath.Join(dir, "missing.wav")
	list := filepath.Join(dir, "list.txt")
	require.NoError(t, os.WriteFile(list, []byte(strings.Join([]string{good, missing, corrupt}, "\n")), 0o644))

	out := filepath.Join(t.TempDir(), "out")
	r := runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--out-dir", out, "--files-from", list)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "vggish embed: 2 of 3 files failed")
	assert.FileExists(t, filepath.Join(out, strings.TrimSuffix(good, ".wav")+".npy"), "keyed by its path as listed")
	failures := readFailures(t, out)
	require.Len(t, failures, 2)
	assert.Equal(t, []string{corrupt, missing}, []string{failures[0].Path, failures[1].Path})
	assert.Equal(t, "input "+missing+": no such file or directory", failures[1].Error)

	out = filepath.Join(t.TempDir(), "out")
	r = runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--out-dir", out, good, missing)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Equal(t, "vggish embed: input "+missing+": no such file or directory", lastLine(r.stderr))
	assert.NoDirExists(t, out)
}

// Case 6: - reads audio from standard input (WAV natively, anything else through ffmpeg) and --output
// - writes the result to standard output: the same numbers as from and to files.
func TestPipes(t *testing.T) {
	fx := newFixture(t)
	file := runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--format", "jsonl", fx.wav, fx.flac)
	require.Equal(t, 0, file.code, file.stderr)
	lines := strings.Split(strings.TrimSpace(file.stdout), "\n")
	require.Len(t, lines, 2)
	embeddings := func(jsonl string) [][]float32 {
		var rec struct{ Embeddings [][]float32 }
		require.NoError(t, json.Unmarshal([]byte(jsonl), &rec))
		return rec.Embeddings
	}
	byPath := map[string][][]float32{}
	for _, l := range lines {
		var rec struct{ Path string }
		require.NoError(t, json.Unmarshal([]byte(l), &rec))
		byPath[rec.Path] = embeddings(l)
	}
	streamed, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-i", fx.wav, "-f", "wav", "-").Output()
	require.NoError(t, err)
	require.Equal(t, uint32(0xFFFFFFFF), binary.LittleEndian.Uint32(streamed[4:]), "ffmpeg leaves the sizes open on a pipe")

	for _, tt := range []struct {
		name, source string
		stdin        func() io.Reader
	}{
		{"WAV file on stdin", fx.wav, func() io.Reader { f, _ := os.Open(fx.wav); return f }},
		{"WAV streamed by ffmpeg", fx.wav, func() io.Reader { return bytes.NewReader(streamed) }},
		{"FLAC through ffmpeg", fx.flac, func() io.Reader { f, _ := os.Open(fx.flac); return f }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runVggish(t, tt.stdin(), nil, "embed", "--weights", fx.weights, "--format", "jsonl", "-")
			require.Equal(t, 0, r.code, r.stderr)
			assert.True(t, strings.HasPrefix(r.stdout, `{"path":"-",`), r.stdout)
			assert.Equal(t, byPath[tt.source], embeddings(r.stdout))
		})
	}

	t.Run("--output - as .npy, equal to the file", func(t *testing.T) {
		npy := filepath.Join(t.TempDir(), "x.npy")
		r := runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--output", npy, fx.wav)
		require.Equal(t, 0, r.code, r.stderr)
		r = runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--output", "-", fx.wav)
		require.Equal(t, 0, r.code, r.stderr)
		b, err := os.ReadFile(npy)
		require.NoError(t, err)
		assert.Equal(t, b, []byte(r.stdout))
		f, _ := os.Open(fx.flac)
		defer f.Close()
		r = runVggish(t, f, nil, "embed", "--weights", fx.weights, "--output", "-", "--format", "csv", "-")
		require.Equal(t, 0, r.code, r.stderr)
		assert.True(t, strings.HasPrefix(r.stdout, "path,start,v0,"), r.stdout)
	})

	t.Run("logmel both ways", func(t *testing.T) {
		npy := filepath.Join(t.TempDir(), "x.npy")
		r := runVggish(t, nil, nil, "logmel", "--output", npy, fx.flac)
		require.Equal(t, 0, r.code, r.stderr)
		f, _ := os.Open(fx.flac)
		defer f.Close()
		r = runVggish(t, f, nil, "logmel", "--output", "-", "-")
		require.Equal(t, 0, r.code, r.stderr)
		b, err := os.ReadFile(npy)
		require.NoError(t, err)
		assert.Equal(t, b, []byte(r.stdout))
	})

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"standard input into an output folder", []string{"--out-dir", t.TempDir(), "-"}, "standard input has no name to write under an output folder"},
		{"audio and the list both on standard input", []string{"--files-from", "-", "-"}, "audio (-) and --files-from - cannot both come from standard input"},
		{"standard input twice", []string{"-", "-"}, "input - (standard input) given twice"},
		{".npy of many inputs on standard output", []string{"--output", "-", fx.wav, fx.flac}, "npy on standard output holds one input's array, not 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runVggish(t, strings.NewReader(""), nil, append([]string{"embed", "--weights", fx.weights}, tt.args...)...)
			assert.Equal(t, 2, r.code, r.stderr)
			assert.Contains(t, lastLine(r.stderr), tt.want)
		})
	}
}

// Case 6, continued: audio on standard input is read as it comes, not held: 20 minutes (38 MB of
// 16-bit samples) streamed through a pipe take no more memory than the same file read by name.
func TestStdinStreams(t *testing.T) {
	fx := newFixture(t)
	const minutes = 20
	wav := filepath.Join(t.TempDir(), "long.wav")
	var b bytes.Buffer
	b.Write(wavHeader(16000, 1))
	for i := range minutes * 60 * 16000 {
		binary.Write(&b, binary.LittleEndian, int16(8000*math.Sin(2*math.Pi*440*float64(i)/16000)))
	}
	data := b.Bytes()
	binary.LittleEndian.PutUint32(data[4:], uint32(len(data)-8)) // a file has its sizes filled in
	binary.LittleEndian.PutUint32(data[40:], uint32(len(data)-44))
	require.NoError(t, os.WriteFile(wav, data, 0o644))

	run := func(name string, stdin io.Reader, input string) (float64, string) {
		cmd := exec.Command(sharedBinary(t), "embed", "--weights", fx.weights, "--hop", "10", "--format", "jsonl", input)
		cmd.Stdin = stdin
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		require.NoError(t, cmd.Run(), stderr.String())
		var rec struct{ Embeddings [][]float32 }
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &rec))
		require.Len(t, rec.Embeddings, minutes*6)
		rss := float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
		t.Logf("%d minutes %s, a clip every 10 s: %v, peak RSS %.0f MB", minutes, name, time.Since(start).Round(time.Millisecond), rss)
		embeddings, _ := json.Marshal(rec.Embeddings)
		return rss, string(embeddings)
	}
	fileRSS, fromFile := run("from the file", nil, wav)
	pr, pw := io.Pipe()
	go func() {
		for rest := data; len(rest) > 0; rest = rest[min(len(rest), 1<<16):] {
			if _, err := pw.Write(rest[:min(len(rest), 1<<16)]); err != nil {
				return
			}
		}
		pw.Close()
	}()
	pipeRSS, fromPipe := run("through a pipe", pr, "-")
	assert.Equal(t, fromFile, fromPipe, "the same numbers")
	assert.Less(t, pipeRSS, fileRSS+24, "peak RSS (MB) through the pipe against the file")
}

// Case 7: version, help, and usage on the right stream with the right status.
func TestVersionAndHelp(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		r := runVggish(t, nil, nil, args...)
		require.Equal(t, 0, r.code, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 5, r.stdout)
		assert.Regexp(t, `^vggish-go \S+`, lines[0])
		assert.Regexp(t, `^commit    \S+`, lines[1])
		assert.Equal(t, "libtorch  "+torch.Version(), lines[2])
		assert.Equal(t, "gotch     "+torch.GotchVersion, lines[3])
		assert.Empty(t, r.stderr)
	}

	top := runVggish(t, nil, nil, "help")
	require.Equal(t, 0, top.code)
	assert.True(t, strings.HasPrefix(top.stdout, "usage: vggish COMMAND"), top.stdout)
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		r := runVggish(t, nil, nil, args...)
		assert.Equal(t, result{0, top.stdout, ""}, r, args)
	}
	for _, name := range []string{"embed", "logmel", "fad", "selftest", "weights", "info", "version"} {
		t.Run(name, func(t *testing.T) {
			help := runVggish(t, nil, nil, "help", name)
			assert.Equal(t, 0, help.code)
			assert.True(t, strings.HasPrefix(help.stdout, "usage: vggish "+name), help.stdout)
			assert.Empty(t, help.stderr)
			for _, flag := range []string{"-h", "--help"} {
				assert.Equal(t, help, runVggish(t, nil, nil, name, flag), flag)
			}
		})
	}
	for _, tt := range []struct {
		args  []string
		usage string
		want  string
	}{
		{nil, "usage: vggish COMMAND", ""},
		{[]string{"nosuch"}, "usage: vggish COMMAND", `vggish: unknown command "nosuch"`},
		{[]string{"help", "nosuch"}, "usage: vggish COMMAND", `vggish: unknown command "nosuch"`},
		{[]string{"help", "embed", "logmel"}, "usage: vggish COMMAND", "vggish help: want one command"},
		{[]string{"embed", "--nosuch"}, "usage: vggish embed", "vggish embed: flag provided but not defined: -nosuch"},
		{[]string{"logmel"}, "usage: vggish logmel", "vggish logmel: want --output FILE and one INPUT"},
		{[]string{"weights"}, "usage: vggish weights", "vggish weights: want a subcommand"},
		{[]string{"weights", "fetch"}, "usage: vggish weights", `vggish weights: unknown subcommand "fetch"`},
		{[]string{"info", "extra"}, "usage: vggish info", "vggish info: info takes no arguments"},
		{[]string{"version", "extra"}, "usage: vggish version", "vggish version: version takes no arguments"},
	} {
		t.Run(strings.Join(append([]string{"misuse"}, tt.args...), " "), func(t *testing.T) {
			r := runVggish(t, nil, nil, tt.args...)
			assert.Equal(t, 2, r.code)
			assert.Empty(t, r.stdout)
			assert.True(t, strings.HasPrefix(r.stderr, tt.usage), r.stderr)
			if tt.want != "" {
				assert.Equal(t, tt.want, lastLine(r.stderr)[:min(len(tt.want), len(lastLine(r.stderr)))])
			}
		})
	}
}

// The decoding workers run vggish-decoder where it is an executable file beside vggish-engine, else the
// engine itself.
func TestDecoderCommand(t *testing.T) {
	if !decoderWorkers {
		t.Skip("built with -tags nolibav: no decoding workers")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, cli.EngineName)
	decoder := filepath.Join(dir, decoderName)
	assert.Equal(t, exe, decoderCommand(exe), "none beside it")
	require.NoError(t, os.Mkdir(decoder, 0o755))
	assert.Equal(t, exe, decoderCommand(exe), "a folder")
	require.NoError(t, os.Remove(decoder))
	require.NoError(t, os.WriteFile(decoder, nil, 0o644))
	assert.Equal(t, exe, decoderCommand(exe), "not executable")
	require.NoError(t, os.Chmod(decoder, 0o755))
	assert.Equal(t, decoder, decoderCommand(exe))
}
