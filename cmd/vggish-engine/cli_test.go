package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"codeberg.org/sbinet/npyio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/vggish"
	"github.com/vggish-go/vggish/weights"
)

// runArgs runs a command in-process and returns its exit code, stdout and stderr.
func runArgs(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, stdio{In: strings.NewReader(""), Out: &stdout, Err: &stderr})
	return code, stdout.String(), stderr.String()
}

func TestReadList(t *testing.T) {
	p := filepath.Join(t.TempDir(), "list.txt")
	require.NoError(t, os.WriteFile(p, []byte("a.wav\r\n\n  \nsub dir/b c.mp3\n/abs/*.flac"), 0o644))
	got, err := readList(p, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"a.wav", "sub dir/b c.mp3", "/abs/*.flac"}, got)
	got, err = readList("-", strings.NewReader("x.wav\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"x.wav"}, got)
	_, err = readList(filepath.Join(t.TempDir(), "missing"), nil)
	assert.ErrorContains(t, err, "--files-from")
}

func TestPostprocessMode(t *testing.T) {
	tests := []struct {
		name, pca string
		quantize  bool
		want      vggish.Postprocess
		err       string
	}{
		{"", "", false, vggish.NoPostprocess, ""},
		{"", "p.pth", false, vggish.PCAQuantize, ""},
		{"", "", true, vggish.PCAQuantize, ""},
		{"pca", "p.pth", false, vggish.PCA, ""},
		{"pca", "", false, vggish.PCA, ""},
		{"pca-quantize", "", true, vggish.PCAQuantize, ""},
		{"pca", "", true, 0, "needs --postprocess pca-quantize"},
		{"none", "p.pth", false, 0, "would not be used"},
		{"whiten", "", false, 0, `--postprocess "whiten"`},
	}
	for _, tt := range tests {
		got, err := postprocessMode(tt.name, tt.pca, tt.quantize)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, "%+v", tt)
			continue
		}
		require.NoError(t, err, "%+v", tt)
		assert.Equal(t, tt.want, got, "%+v", tt)
	}
}

// lastLine is the last line of s, without its newline.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// Usage errors are reported before the model loads (these would take seconds otherwise).
func TestEmbedUsageErrors(t *testing.T) {
	dir := t.TempDir()
	wavs := reftest.Corpus(t, 2, 16000, 1, 1.0)
	wav := wavs[0]
	list := filepath.Join(dir, "list.txt")
	require.NoError(t, os.WriteFile(list, []byte(wav+"\n"+wav+"\n"), 0o644))
	empty := filepath.Join(dir, "empty.txt")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	noWeights := filepath.Join(dir, "none.pth")
	weights := filepath.Join(dir, "w.pth") // never loaded: every case fails before
	require.NoError(t, os.WriteFile(weights, nil, 0o644))
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"embed"}, "no inputs"},
		{[]string{"embed", "--weights", weights, filepath.Join(dir, "missing.wav")}, "missing.wav: no such file or directory"},
		{[]string{"embed", "--output", "a.npy", "--out-dir", dir, wav}, "not both"},
		{[]string{"embed", "--weights", weights, "--out-dir", dir, "--format", "show", wav}, "show prints on standard output"},
		{[]string{"embed", "--weights", weights, "--format", "npy", wav, wavs[1]}, "npy on standard output holds one input's array, not 2"},
		{[]string{"embed", "--weights", weights, "--output", filepath.Join(dir, "x.avro"), wav}, `format "avro"`},
		{[]string{"embed", "--weights", weights, "--output", filepath.Join(dir, "x.parquet"), wav}, "parquet writes parts holding many inputs: it needs an output folder"},
		{[]string{"embed", "--weights", weights, "--format", "parquet", "--out-dir", dir, "--part-size", "big", wav}, "--part-size big: want a size such as 256MiB"},
		{[]string{"embed", "--weights", weights, "--format", "parquet", "--out-dir", dir, "--part-time", "-1s", wav}, "--part-time -1s: want a positive duration"},
		{[]string{"embed", "--weights", weights, "--output", filepath.Join(dir, "x.npy"), wav, wavs[1]}, "an output file takes one input, not"},
		{[]string{"embed", "--weights", weights, "--quantize", "--postprocess", "none", wav}, "needs --postprocess pca-quantize"},
		{[]string{"embed", "--weights", weights, "--shard", "4/4", wav}, "index 4 of 4"},
		{[]string{"embed", "--weights", weights, "--files-from", list, "--pool", "median", "--out-dir", dir}, `pool "median"`},
		{[]string{"embed", "--weights", weights, "--framework", "tensorflow", wav}, `--framework "tensorflow": want pytorch`},
		{[]string{"embed", "--weights", noWeights, wav}, "--weights " + noWeights + ": no such file or directory"},
		{[]string{"embed", "--weights", weights, "--files-from", empty}, "--files-from " + empty + " lists no files"},
		{[]string{"embed", "--weights", weights, "--files-from", "-"}, "--files-from -: standard input lists no files"},
	}
	for _, tt := range tests {
		code, _, stderr := runArgs(tt.args...)
		assert.Equal(t, 2, code, tt.args)
		assert.Contains(t, stderr, "usage: vggish embed", tt.args)
		assert.True(t, strings.HasPrefix(lastLine(stderr), "vggish embed: "), "the error comes last: %s", tt.args)
		assert.Contains(t, lastLine(stderr), tt.want, tt.args)
	}
}

// The show() lines, the output formats and the quantised uint8 output, with seeded weights.
func TestEmbedOutputs(t *testing.T) {
	w := golden.Weights(t)
	wavs := reftest.Corpus(t, 2, 22050, 1, 3.0)
	dir := t.TempDir()
	ctx := context.Background()

	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: w, Device: "cpu"})
	require.NoError(t, err)
	var want []*vggish.Embeddings
	for _, p := range wavs {
		e, err := m.EmbedFile(ctx, p)
		require.NoError(t, err)
		want = append(want, e)
	}
	m.Close()

	// Without an output: Towhee's show() line per file, in order.
	code, stdout, stderr := runArgs("embed", "--weights", w, wavs[1], wavs[0])
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, wavs[0]+" "+want[0].String()+"\n"+wavs[1]+" "+want[1].String()+"\n", stdout)
	assert.Regexp(t, `^\S+ \[-?[\d.e-]+, -?[\d.e-]+, \.\.\.\] shape=\(3, 128\)\n`, stdout)
	t.Logf("show: %s", strings.SplitN(stdout, "\n", 2)[0])

	// --output: the format follows the extension.
	out := filepath.Join(dir, "one.npy")
	code, _, stderr = runArgs("embed", "--weights", w, "--output", out, "--pool", "mean", wavs[0])
	require.Equal(t, 0, code, stderr)
	data, shape, err := npyfile.Read(out)
	require.NoError(t, err)
	assert.Equal(t, []int{3, 128}, shape)
	assert.Equal(t, want[0].Data, data)
	mean, _, err := npyfile.Read(filepath.Join(dir, "one.mean.npy"))
	require.NoError(t, err)
	assert.Equal(t, want[0].Mean(), mean)

	out = filepath.Join(dir, "one.jsonl")
	code, _, stderr = runArgs("embed", "--weights", w, "--output", out, wavs[0])
	require.Equal(t, 0, code, stderr)
	var rec struct {
		Path       string
		Embeddings [][]float32
	}
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rec))
	assert.Equal(t, wavs[0], rec.Path)
	assert.Equal(t, want[0].Row(2), rec.Embeddings[2])

	// --pca with --quantize: torchvggish's uint8 embeddings; the same values as float32 without it.
	pca := golden.Path("pca.npz")
	q := filepath.Join(dir, "q.npy")
	code, _, stderr = runArgs("embed", "--weights", w, "--pca", pca, "--quantize", "--output", q, wavs[0])
	require.Equal(t, 0, code, stderr)
	f, err := os.Open(q)
	require.NoError(t, err)
	defer f.Close()
	r, err := npyio.NewReader(f)
	require.NoError(t, err)
	assert.Contains(t, r.Header.Descr.Type, "u1", "uint8")
	var got []uint8
	require.NoError(t, r.Read(&got))
	asFloat := filepath.Join(dir, "qf.npy")
	code, _, stderr = runArgs("embed", "--weights", w, "--pca", pca, "--output", asFloat, wavs[0])
	require.Equal(t, 0, code, stderr)
	values, _, err := npyfile.Read(asFloat)
	require.NoError(t, err)
	require.Len(t, got, len(values))
	for i, v := range values {
		require.Equal(t, v, float32(got[i]), "value %d", i)
	}
}

func TestLogmel(t *testing.T) {
	wav := reftest.Corpus(t, 1, 44100, 2, 2.5)[0]
	out := filepath.Join(t.TempDir(), "x.npy")
	code, stdout, stderr := runArgs("logmel", wav, "--output", out, "--hop", "0.5")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, out+" shape=(4, 96, 64)\n", stdout)
	want, _, err := preprocess.File(context.Background(), wav, preprocess.Options{Hop: 0.5})
	require.NoError(t, err)
	got, shape, err := npyfile.Read(out)
	require.NoError(t, err)
	assert.Equal(t, []int{4, 96, 64}, shape)
	assert.Equal(t, want.Data, got)

	short := reftest.Corpus(t, 1, 16000, 1, 0.5)[0]
	code, stdout, stderr = runArgs("logmel", "--output", out, short)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "no examples in 0.5 s")
	assert.Equal(t, out+" shape=(0, 96, 64)\n", stdout)

	code, _, stderr = runArgs("logmel", short)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "want --output FILE and one INPUT")
}

// logmelPeakHeap runs logmel on a file of the given minutes and returns the largest live Go heap seen
// while it ran, in MB.
func logmelPeakHeap(t *testing.T, minutes int) float64 {
	wav := reftest.Corpus(t, 1, 16000, 1, float64(60*minutes))[0]
	out := filepath.Join(t.TempDir(), "long.npy")
	runtime.GC() // the live heap as of the last GC: drop what making the file left
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	peak := 0.0
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			metrics.Read(sample)
			peak = max(peak, float64(sample[0].Value.Uint64())/(1<<20))
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	code, stdout, stderr := runArgs("logmel", "--output", out, wav)
	close(done)
	<-stopped
	require.Equal(t, 0, code, stderr)
	examples := 1 + (60*minutes*16000-preprocess.ExampleSamples)/(preprocess.ExampleFrames*preprocess.FrameHop)
	assert.Equal(t, fmt.Sprintf("%s shape=(%d, 96, 64)\n", out, examples), stdout)
	want, _, err := preprocess.File(context.Background(), wav, preprocess.Options{})
	require.NoError(t, err)
	got, _, err := npyfile.Read(out)
	require.NoError(t, err)
	assert.Equal(t, want.Data, got)
	return peak
}

// logmel writes its examples to the file as they are computed: the Go heap does not grow with the
// length of the audio (12 minutes of audio make 18 MB of examples).
func TestLogmelStreams(t *testing.T) {
	short, long := logmelPeakHeap(t, 2), logmelPeakHeap(t, 12)
	t.Logf("peak live Go heap: %.1f MB for 2 minutes of audio, %.1f MB for 12", short, long)
	assert.Less(t, long-short, 16.0, "heap growth with the length (MB); holding the examples grows it by about 50")
}

func TestWeightsCommand(t *testing.T) {
	cache := t.TempDir()
	code, stdout, stderr := runArgs("weights", "path", "--cache-dir", cache)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, filepath.Join(cache, weights.Model.Name)+"\n"+filepath.Join(cache, weights.PCA.Name)+"\n", stdout)
	code, stdout, _ = runArgs("weights", "path", "pca", "--cache-dir", cache)
	require.Equal(t, 0, code)
	assert.Equal(t, filepath.Join(cache, weights.PCA.Name)+"\n", stdout)

	// verify: a file is checked against the sha256 prefix in its name.
	content := []byte("not really weights")
	sum := fmt.Sprintf("%x", sha256.Sum256(content))
	good := filepath.Join(t.TempDir(), "w-"+sum[:8]+".pth")
	bad := filepath.Join(t.TempDir(), "w-00000000.pth")
	for _, p := range []string{good, bad} {
		require.NoError(t, os.WriteFile(p, content, 0o644))
	}
	code, stdout, stderr = runArgs("weights", "verify", good, bad)
	assert.Equal(t, 1, code)
	assert.Equal(t, "ok "+good+"\n", stdout)
	assert.Contains(t, stderr, "sha256 mismatch")
	code, _, stderr = runArgs("weights", "verify", "--cache-dir", cache)
	assert.Equal(t, 1, code, "nothing cached")
	assert.Contains(t, stderr, weights.Model.Name)

	// download from --base-url: a mirror serving the wrong bytes is refused, and nothing is cached.
	var requested []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requested = append(requested, r.URL.Path)
		w.Write(content)
	}))
	defer srv.Close()
	code, _, stderr = runArgs("weights", "download", "model", "--base-url", srv.URL+"/mirror", "--cache-dir", cache)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "sha256 mismatch")
	assert.Equal(t, []string{"/mirror/" + weights.Model.Name}, requested)
	assert.NoFileExists(t, filepath.Join(cache, weights.Model.Name))

	// embed downloads the published weights when --weights is not given (vggish.New does): a failed
	// download names the flag that does without it, once.
	t.Setenv(weights.EnvBaseURL, srv.URL+"/mirror")
	t.Setenv(weights.EnvCache, cache)
	audio := filepath.Join(t.TempDir(), "a.wav")
	require.NoError(t, os.WriteFile(audio, []byte("RIFF"), 0o644))
	code, _, stderr = runArgs("embed", audio)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "sha256 mismatch")
	assert.Equal(t, 1, strings.Count(stderr, "--weights FILE"), stderr)

	code, _, stderr = runArgs("weights", "fetch")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `unknown subcommand "fetch"`)
	code, _, stderr = runArgs("weights", "download", "tokenizer", "--cache-dir", cache)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `unknown weight file "tokenizer"`)
}
