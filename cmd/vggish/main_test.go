package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/cli"
)

// The front door links nothing that loads libtorch or ffmpeg's libraries: neither a package (go list)
// nor a shared library (the built program's DT_NEEDED).
func TestLinksNoLibtorch(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/vggish-go/vggish/internal/cli")
	for _, dep := range deps {
		for _, bad := range []string{"github.com/sugarme/gotch", "github.com/vggish-go/vggish/torch", "github.com/vggish-go/vggish/decode/libav"} {
			assert.False(t, dep == bad || strings.HasPrefix(dep, bad+"/"), "vggish imports %s", dep)
		}
	}

	f, err := elf.Open(build(t, ""))
	require.NoError(t, err)
	defer f.Close()
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	for _, lib := range libs {
		for _, bad := range []string{"libtorch", "libc10", "libav", "libsw", "openblas", "libgomp"} {
			assert.NotContains(t, lib, bad, "vggish needs %s", lib)
		}
	}
}

// build builds the front door into a temporary folder with engine, a shell script, beside it as
// vggish-engine ("": none), and returns its path.
func build(t *testing.T, engine string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "vggish")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	if engine != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, cli.EngineName), []byte("#!/bin/sh\n"+engine), 0o755))
	}
	return bin
}

type result struct {
	code           int
	stdout, stderr string
	pid            int
}

func run(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), pid: cmd.Process.Pid}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return r
}

// A loud engine: any command that reaches it exits 99 saying so.
const loudEngine = `echo "engine started: $$ $*" >&2; exit 99` + "\n"

// Help, version, weights and every mistake in a command line are answered by the front door alone,
// with the usage on the right stream and the right status; the engine is never started.
func TestAnsweredWithoutEngine(t *testing.T) {
	bin := build(t, loudEngine)
	cache := t.TempDir()
	missing := filepath.Join(t.TempDir(), "missing.pth")
	tests := []struct {
		args         []string
		code         int
		stdout, last string // a prefix of standard output, and of standard error's last line
	}{
		{nil, 2, "", "Run 'vggish help COMMAND'"},
		{[]string{"help"}, 0, "usage: vggish COMMAND", ""},
		{[]string{"--help"}, 0, "usage: vggish COMMAND", ""},
		{[]string{"-h"}, 0, "usage: vggish COMMAND", ""},
		{[]string{"help", "embed"}, 0, "usage: vggish embed", ""},
		{[]string{"help", "help"}, 0, "usage: vggish help", ""},
		{[]string{"help", "-h"}, 0, "usage: vggish help", ""},
		{[]string{"embed", "-h"}, 0, "usage: vggish embed", ""},
		{[]string{"serve", "--help"}, 0, "usage: vggish serve", ""},
		{[]string{"fad", "-h"}, 0, "usage: vggish fad", ""},
		{[]string{"logmel", "-h"}, 0, "usage: vggish logmel", ""},
		{[]string{"selftest", "-h"}, 0, "usage: vggish selftest", ""},
		{[]string{"info", "-h"}, 0, "usage: vggish info", ""},
		{[]string{"weights", "-h"}, 0, "usage: vggish weights", ""},
		{[]string{"version"}, 0, "vggish-go ", ""},
		{[]string{"--version"}, 0, "vggish-go ", ""},
		{[]string{"weights", "path", "model", "--cache-dir", cache}, 0, filepath.Join(cache, "vggish-10086976.pth"), ""},
		{[]string{"nosuch"}, 2, "", `vggish: unknown command "nosuch"`},
		{[]string{"help", "nosuch"}, 2, "", `vggish: unknown command "nosuch"`},
		{[]string{"embed", "--bogus", "a.wav"}, 2, "", "vggish embed: flag provided but not defined: -bogus"},
		{[]string{"embed", "--batch", "0", "a.wav"}, 2, "", "vggish embed: --batch 0: want 1 to 4096 clips"},
		{[]string{"embed", "--batch=x", "a.wav"}, 2, "", `vggish embed: invalid value "x" for flag -batch`},
		{[]string{"embed", "--hop", "0", "a.wav"}, 2, "", "vggish embed: --hop 0: want 0.01 to 10000 seconds"},
		{[]string{"embed", "--tail", "loop", "a.wav"}, 2, "", `vggish embed: invalid value "loop" for flag -tail: tail policy "loop": want drop, pad or repeat`},
		{[]string{"embed", "--channels", "both", "a.wav"}, 2, "", `vggish embed: invalid value "both" for flag -channels: channels "both": want mix or each`},
		{[]string{"embed", "--precision", "fp8", "a.wav"}, 2, "", `vggish embed: --precision "fp8"`},
		{[]string{"embed", "--weights", missing, "a.wav"}, 2, "", "vggish embed: --weights " + missing},
		{[]string{"embed"}, 2, "", "vggish embed: no inputs"},
		{[]string{"embed", "--output", "", "a.wav"}, 2, "", "vggish embed: --output is empty"},
		{[]string{"embed", "--out-dir", "", "a.wav"}, 2, "", "vggish embed: --out-dir is empty"},
		{[]string{"fad", "a"}, 2, "", "vggish fad: one set"},
		{[]string{"fad", "missing.npz", "b"}, 2, "", "vggish fad: statistics missing.npz: no such file or directory"},
		{[]string{"fad", "-", "b"}, 2, "", "vggish fad: set -: fad reads no standard input"},
		{[]string{"logmel", "a.wav"}, 2, "", "vggish logmel: want --output FILE and one INPUT"},
		{[]string{"serve", "extra"}, 2, "", "vggish serve: serve takes no arguments"},
		{[]string{"serve", "--max-concurrent", "0"}, 2, "", "vggish serve: --max-concurrent 0: want at least 1"},
		{[]string{"selftest", "--weights", missing}, 2, "", "vggish selftest: --weights " + missing},
		{[]string{"info", "extra"}, 2, "", "vggish info: info takes no arguments"},
		{[]string{"weights"}, 2, "", "vggish weights: want a subcommand"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := run(t, bin, nil, tt.args...)
			assert.NotContains(t, r.stderr, "engine started")
			assert.Equal(t, tt.code, r.code, r.stderr)
			assert.True(t, strings.HasPrefix(r.stdout, tt.stdout), r.stdout)
			if tt.code == 2 {
				assert.Empty(t, r.stdout)
				assert.True(t, strings.HasPrefix(r.stderr, "usage: vggish"), r.stderr)
			}
			if tt.last != "" {
				lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
				assert.True(t, strings.HasPrefix(lines[len(lines)-1], tt.last), r.stderr)
			}
		})
	}
}

// A command line that passes the checks goes to the engine, which replaces the front door: the same
// process (no child left between), arguments, environment and exit status.
func TestHandsOffToEngine(t *testing.T) {
	bin := build(t, `echo "engine: $$ $* $VGGISH_HANDOFF" >&2; exit 7`+"\n")
	for _, args := range [][]string{
		{"embed", "a.wav", "--hop", "0.5", "--tail", "pad"},
		{"fad", "a", "b"},
		{"logmel", "--output", "o.npy", "main_test.go"},
		{"serve", "--listen", "127.0.0.1:0"},
		{"selftest"},
		{"info"},
	} {
		r := run(t, bin, []string{"VGGISH_HANDOFF=env"}, args...)
		assert.Equal(t, 7, r.code, args)
		assert.Equal(t, "engine: "+strconv.Itoa(r.pid)+" "+strings.Join(args, " ")+" env\n", r.stderr, args)
	}

	// Through a link from elsewhere, the engine is the one beside the file linked to.
	link := filepath.Join(t.TempDir(), "vggish")
	require.NoError(t, os.Symlink(bin, link))
	assert.Equal(t, 7, run(t, link, nil, "info").code)
}

// Without the engine, the commands that need it fail saying where it was looked for and how to build
// it; version says libtorch's version is unknown, and the rest still works.
func TestNoEngine(t *testing.T) {
	bin := build(t, "")
	engine := filepath.Join(filepath.Dir(bin), cli.EngineName)
	r := run(t, bin, nil, "embed", "a.wav")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "vggish embed: "+engine+" not found: this command runs libtorch in vggish-engine, which belongs beside vggish (make build puts bin/vggish-engine there; or go build -o "+engine+" ./cmd/vggish-engine)\n", r.stderr)

	r = run(t, bin, nil, "version")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "\nlibtorch  unknown ("+engine+" not found: vggish runs libtorch in it, beside vggish)\ngotch     v0.9.1\n")

	// An engine without the section (a script here) leaves the version unknown, saying why.
	require.NoError(t, os.WriteFile(engine, []byte("#!/bin/sh\nexit 99\n"), 0o755))
	r = run(t, bin, nil, "version")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "\nlibtorch  unknown (")
}
