package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// userMain is a library user's program, as the README writes it.
const userMain = `package main

import (
	"context"
	"fmt"
	"log"

	"github.com/vggish-go/vggish/vggish"
)

func main() {
	ctx := context.Background()
	m, err := vggish.New(ctx, vggish.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	e, err := m.EmbedFile(ctx, "dog.wav")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e)
}
`

// A fresh module of a library user's, made as the README says (go mod init, a replace to a local
// clone, go mod tidy, the adapter's go.work), builds; its go.mod lists only the library's dependencies,
// not the command line's; and without the go.work its build stops on the guard's message naming the
// adapter. The adapted gotch is this clone's (from its go.work), so nothing of gotch's C++ is rebuilt:
// the go.work is the one writeWorkspace writes for a user's module pointed at that copy.
func TestUserModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module: skipped with -short")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Skip("this clone is not adapted (no go.work)")
	}
	m := regexp.MustCompile(`(?m)^replace ` + regexp.QuoteMeta(gotchPath) + ` (\S+) => (\S+)$`).FindSubmatch(work)
	require.NotNil(t, m, "go.work replaces gotch")
	adapted := string(m[2])
	if !filepath.IsAbs(adapted) {
		adapted = filepath.Join(root, adapted)
	}

	dir := t.TempDir()
	run := func(env []string, args ...string) string {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s: %s", strings.Join(args, " "), out)
		return string(out)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(userMain), 0o644))
	run(nil, "mod", "init", "example.com/user")
	run(nil, "mod", "edit", "-require=github.com/vggish-go/vggish@v0.0.0", "-replace=github.com/vggish-go/vggish="+root)
	run([]string{"GOWORK=off", "GOFLAGS=-mod=mod"}, "mod", "tidy")
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	require.NoError(t, err)
	for _, cli := range []string{"parquet-go", "mpb", "yaml", "humanize", "x/term"} {
		assert.NotContains(t, string(gomod), cli, "the command line's dependencies stay out of a library user's go.mod")
	}
	t.Logf("a library user's go.mod after go mod tidy:\n%s", gomod)

	gover := strings.TrimPrefix(strings.Fields(run(nil, "env", "GOVERSION"))[0], "go")
	require.NoError(t, writeWorkspace(module{Root: dir, GoVersion: gover, GotchVersion: string(m[1])}, adapted))
	run(nil, "build", "-o", filepath.Join(dir, "user"), ".")

	// Without the go.work: the guard's message within seconds, while gotch's C++ would take minutes to
	// fail. The build is stopped once the message is seen.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", os.DevNull, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.StderrPipe()
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, cmd.Start())
	var seen []string
	found := false
	for sc := bufio.NewScanner(out); sc.Scan(); {
		seen = append(seen, sc.Text())
		if strings.Contains(sc.Text(), "undefined: gotch."+adaptedMarker) {
			found = true
			break
		}
	}
	elapsed := time.Since(start)
	cancel()
	cmd.Wait()
	require.True(t, found, "the unadapted build names the adapter; it printed:\n%s", strings.Join(seen, "\n"))
	t.Logf("unadapted build: the guard's message after %.1f s:\n%s", elapsed.Seconds(), strings.Join(seen, "\n"))
}
