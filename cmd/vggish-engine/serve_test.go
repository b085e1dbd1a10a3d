package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/internal/reftest"
)

// vggish serve answers /v1/embed with vggish embed's .npy, byte for byte, and exits 0 on SIGTERM.
func TestServeCommand(t *testing.T) {
	w := golden.Weights(t)
	dir := t.TempDir()
	audio := filepath.Join(dir, "tone.flac")
	out, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=500:duration=3:sample_rate=32000", audio).CombinedOutput()
	require.NoError(t, err, "%s", out)
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("tok3n\n"), 0o600))
	code, want, stderr := runArgs("embed", "--weights", w, "--device", "cpu", "--output", "-", audio)
	require.Equal(t, 0, code, stderr)

	pr, pw := io.Pipe()
	exited := make(chan int, 1)
	go func() {
		exited <- run([]string{"serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--weights", w, "--device", "cpu",
			"--auth-token-file", token}, stdio{In: strings.NewReader(""), Out: io.Discard, Err: pw})
		pw.Close()
	}()
	logs := bufio.NewScanner(pr)
	var addr string
	for addr == "" && logs.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(logs.Bytes(), &rec), "logs are JSON lines: %s", logs.Text())
		if rec["msg"] == "serving" {
			addr = rec["http"].(string)
		}
	}
	require.NotEmpty(t, addr, "the server says where it listens")
	go io.Copy(io.Discard, pr)

	body, err := os.ReadFile(audio)
	require.NoError(t, err)
	req, err := http.NewRequest("POST", "http://"+addr+"/v1/embed", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Accept", "application/x-npy")
	req.Header.Set("Authorization", "Bearer tok3n")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", got)
	assert.Equal(t, []byte(want), got, "the server's .npy is vggish embed's")

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case code := <-exited:
		assert.Equal(t, 0, code)
	case <-time.After(time.Minute):
		t.Fatal("vggish serve did not exit on SIGTERM")
	}
}

func TestServeFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"extra"}, `serve takes no arguments, not ["extra"]`},
		{[]string{"--tls-cert", "x.pem"}, "give --tls-cert and --tls-key together"},
		{[]string{"--max-request-bytes", "lots"}, "--max-request-bytes lots: want a size from 1KiB to 2GiB"},
		{[]string{"--max-concurrent", "0"}, "--max-concurrent 0: want at least 1"},
		{[]string{"--max-queue-delay", "-1ms"}, "--max-queue-delay -1ms: want 0 (no wait) to 10s"},
		{[]string{"--max-queue-delay", "1m"}, "--max-queue-delay 1m0s: want 0 (no wait) to 10s"},
		{[]string{"--drain-timeout", "0s"}, "want positive durations"},
		{[]string{"--variant", "x"}, `--variant "x": want towhee or torchvggish`},
		{[]string{"--auth-token-file", "/nonexistent/token"}, "--auth-token-file /nonexistent/token"},
	} {
		code, _, stderr := runArgs(append([]string{"serve"}, c.args...)...)
		assert.Equal(t, 2, code, "%v: %s", c.args, stderr)
		assert.Contains(t, stderr, c.want, "%v", c.args)
	}
	code, stdout, _ := runArgs("help", "serve")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "--max-queue-clips")
}

// examples/k8s-serve.yaml probes the protocol's health endpoints and passes flags that parse.
func TestServeKubernetesExample(t *testing.T) {
	f, err := os.Open(filepath.Join(reftest.Root(), "examples", "k8s-serve.yaml"))
	require.NoError(t, err)
	defer f.Close()
	type probe struct {
		HTTPGet struct{ Path, Port string } `yaml:"httpGet"`
	}
	var dep struct {
		Kind string
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Image          string
						Args           []string
						Ports          []struct{ Name string }
						LivenessProbe  probe `yaml:"livenessProbe"`
						ReadinessProbe probe `yaml:"readinessProbe"`
					}
				}
			}
		}
	}
	var svc struct{ Kind string }
	dec := yaml.NewDecoder(f)
	require.NoError(t, dec.Decode(&dep))
	require.NoError(t, dec.Decode(&svc))
	assert.Equal(t, "Deployment", dep.Kind)
	assert.Equal(t, "Service", svc.Kind)
	c := dep.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "/v2/health/live", c.LivenessProbe.HTTPGet.Path)
	assert.Equal(t, "/v2/health/ready", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, "serve", c.Args[0])
	// The flags parse: the run gets as far as the weights, missing here (on the CPU pods' device: this
	// machine has no GPU).
	args := slices.Clone(c.Args)
	i := slices.Index(args, "--device=cuda")
	require.GreaterOrEqual(t, i, 0, "the example runs on CUDA")
	args[i] = "--device=cpu"
	code, _, stderr := runArgs(args...)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--weights /weights/vggish-10086976.pth")
}
