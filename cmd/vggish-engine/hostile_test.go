package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/reftest"
)

// hostileWAV is a WAV file from raw fmt fields, consistent or not, and raw chunks after it.
func hostileWAV(tag, channels uint16, rate uint32, bits uint16, chunks ...[]byte) []byte {
	le := binary.LittleEndian
	align := uint16(uint32(channels) * uint32((bits+7)/8))
	f := le.AppendUint16(nil, tag)
	f = le.AppendUint16(f, channels)
	f = le.AppendUint32(f, rate)
	f = le.AppendUint32(f, rate*uint32(align))
	f = le.AppendUint16(f, align)
	f = le.AppendUint16(f, bits)
	body := append([]byte("WAVE"), riffChunk("fmt ", uint32(len(f)), f)...)
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(append([]byte("RIFF"), le.AppendUint32(nil, uint32(len(body)))...), body...)
}

// riffChunk is a chunk declaring size bytes, whatever body holds.
func riffChunk(id string, size uint32, body []byte) []byte {
	b := append(append([]byte(id), binary.LittleEndian.AppendUint32(nil, size)...), body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func dataChunk(body []byte) []byte { return riffChunk("data", uint32(len(body)), body) }

// float64s is seconds of a 440 Hz tone at rate Hz, amplitude 0.1 but peak from 2.0 s to 2.1 s, as
// little-endian float64 samples.
func float64s(seconds float64, rate int, peak float64) []byte {
	var b []byte
	for i := range int(seconds * float64(rate)) {
		t := float64(i) / float64(rate)
		a := 0.1
		if t >= 2 && t < 2.1 {
			a = peak
		}
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a*math.Sin(2*math.Pi*440*t)))
	}
	return b
}

// hostileCases are crafted audio files (issue 12): name, bytes, and the reason each must fail with (""
// for files that must embed, with finite values).
func hostileCases() []struct {
	name string
	file []byte
	err  string
} {
	pcm16 := func(rate uint32, chunks ...[]byte) []byte { return hostileWAV(1, 1, rate, 16, chunks...) }
	kb := make([]byte, 1000)
	nanFloat32 := binary.LittleEndian.AppendUint32(make([]byte, 12), math.Float32bits(float32(math.NaN())))
	var infStereo []byte // frames (0, 1), (0, +Inf)
	for _, v := range []float64{0, 1, 0, math.Inf(1)} {
		infStereo = binary.LittleEndian.AppendUint64(infStereo, math.Float64bits(v))
	}
	au7 := []byte(".snd")
	for _, v := range []uint32{24, 1 << 20, 3, 7, 1} { // Sun .au header: 16-bit PCM at 7 Hz, through ffmpeg
		au7 = binary.BigEndian.AppendUint32(au7, v)
	}
	au7 = append(au7, make([]byte, 1<<20)...)
	return []struct {
		name string
		file []byte
		err  string
	}{
		// Already refused before issue 12: kept so that they stay so.
		{"truncated-data", pcm16(16000, riffChunk("data", 2000, kb)), "truncated WAV: the data chunk declares 2000 bytes, 1000 are present"},
		{"zero-channels", hostileWAV(1, 0, 16000, 16, dataChunk(kb)), "invalid channel count 0"},
		{"65535-channels", hostileWAV(1, 65535, 16000, 16, dataChunk(kb)), "block align 65534, want 131070"},
		{"4GB-data", pcm16(16000, riffChunk("data", 0xFFFFFF00, kb)), "the data chunk declares 4294967040 bytes, 1000 are present"},
		{"fmt-after-data", append([]byte("RIFF\x00\x00\x00\x00WAVE"), dataChunk(kb)...), "data chunk before the fmt chunk"},
		{"nan-samples", hostileWAV(3, 1, 16000, 32, dataChunk(nanFloat32)), "sample 3 is NaN"},
		{"inf-samples", hostileWAV(3, 2, 16000, 64, dataChunk(infStereo)), "sample 1 is +Inf"},
		{"unknown-tag", hostileWAV(0x1234, 1, 16000, 16, dataChunk(kb)), "ffmpeg could not decode it"},
		// Issue 12: rates out of range (a panic in the resampler, or hours of work from a small file).
		{"800MHz", pcm16(800_000_000, dataChunk(kb)), "sample rate 800000000 Hz is out of range: audio is sampled at 1000 Hz to 1000000 Hz"},
		{"4GHz", pcm16(math.MaxUint32, dataChunk(kb)), "sample rate 4294967295 Hz is out of range"},
		{"3Hz", pcm16(3, dataChunk(make([]byte, 64<<10))), "sample rate 3 Hz is out of range"},
		{"au-7Hz", au7, "sample rate 7 Hz is out of range"},
		// Issue 12: finite samples that overflow the spectrum (on every libtorch: see preprocess's
		// TestOverflowingSamplesFail).
		{"overflow", hostileWAV(3, 1, 16000, 64, dataChunk(float64s(3, 16000, 1e307))),
			"example 2 (at 1.92 s): log-mel value NaN: the samples overflow the spectrum (largest magnitude 1e+307"},
		// Within the bounds: these embed.
		{"1kHz", hostileWAV(3, 1, 1000, 64, dataChunk(float64s(3, 1000, 0.5))), ""},
		{"loud-1e150", hostileWAV(3, 1, 16000, 64, dataChunk(float64s(3, 16000, 1e150))), ""},
	}
}

func finiteNPY(t *testing.T, path string) int {
	t.Helper()
	data, shape, err := npyfile.Read(path)
	require.NoError(t, err)
	for i, v := range data {
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "%s: value %d is %v", path, i, v)
	}
	return shape[0]
}

// Every crafted file fails with an error naming it and the reason, without a panic, a hang or an
// output, through `vggish logmel` and a batch `vggish embed`; the files within bounds give finite
// values. Each run is timed: none may take more than a few seconds.
func TestHostileInputs(t *testing.T) {
	w := golden.Weights(t)
	cases := hostileCases()
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	require.NoError(t, os.Mkdir(in, 0o755))
	for _, c := range cases {
		require.NoError(t, os.WriteFile(filepath.Join(in, c.name+".wav"), c.file, 0o644))
	}

	for _, c := range cases {
		path, out := filepath.Join(in, c.name+".wav"), filepath.Join(dir, c.name+".logmel.npy")
		start := time.Now()
		code, _, stderr := runArgs("logmel", "--output", out, path)
		assert.Less(t, time.Since(start), 20*time.Second, c.name)
		if c.err == "" {
			require.Equal(t, 0, code, "%s: %s", c.name, stderr)
			assert.Positive(t, finiteNPY(t, out), c.name)
			continue
		}
		assert.Equal(t, 1, code, c.name)
		assert.Contains(t, stderr, path+": ", c.name)
		assert.Contains(t, stderr, c.err, c.name)
		assert.NoFileExists(t, out, c.name)
	}

	out := filepath.Join(dir, "out")
	start := time.Now()
	code, _, stderr := runArgs("embed", "--weights", w, "--device", "cpu", "--out-dir", out, in)
	t.Logf("embed of %d crafted files: %s", len(cases), time.Since(start))
	assert.Equal(t, 1, code)
	assert.NotContains(t, stderr, "panic")
	failures, kinds := map[string]string{}, map[string]batch.Kind{}
	f, err := os.Open(filepath.Join(out, "vggish-errors.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var line batch.Failure
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		failures[line.Path], kinds[line.Path] = line.Error, line.Kind
	}
	for _, c := range cases {
		path, npy := filepath.Join(in, c.name+".wav"), filepath.Join(out, c.name+".npy")
		if c.err == "" {
			assert.NotContains(t, failures, path)
			assert.Positive(t, finiteNPY(t, npy), c.name)
			continue
		}
		assert.Contains(t, failures[path], path+": ", c.name)
		assert.Contains(t, failures[path], c.err, c.name)
		// A rate out of range is audio not decoded here; samples that overflow the spectrum are
		// refused by the preprocessing; the rest is not valid audio.
		kind := batch.KindFormat
		switch {
		case strings.Contains(c.err, "sample rate"):
			kind = batch.KindUnsupported
		case c.name == "overflow":
			kind = batch.KindModel
		}
		assert.Equal(t, kind, kinds[path], c.name)
		assert.NoFileExists(t, npy, c.name)
	}
}

// torchZip writes a zip-format torch.save file holding pickle as its data.pkl and storage "0".
func torchZip(t *testing.T, path string, pickle []byte) {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for name, data := range map[string][]byte{"archive/data.pkl": pickle, "archive/data/0": make([]byte, 64)} {
		w, err := z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, z.Close())
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

// Crafted weights and PCA files are refused when loaded, naming the file and the reason: a pickle that
// calls os.system (which must not run), a storage claiming a terabyte, a pickle of repeated MARK
// opcodes (which made gigabytes of stacks), NaN values.
func TestHostileWeights(t *testing.T) {
	reftest.Require(t)
	dir := t.TempDir()
	wav := reftest.Corpus(t, 1, 16000, 1, 1.5)[0]
	marker := filepath.Join(dir, "pwned")
	system, terabyte, marks := filepath.Join(dir, "system.pth"), filepath.Join(dir, "terabyte.pth"), filepath.Join(dir, "marks.pth")
	nanPCA, nanNPZ := filepath.Join(dir, "nan-pca.pth"), filepath.Join(dir, "nan-pca.npz")
	script := `
import collections, io, os, pickle, sys, zipfile
import numpy as np, torch
from torch._utils import _rebuild_tensor_v2
system, terabyte, nan_pca, nan_npz, marker = sys.argv[1:]

class Storage: pass
class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        return ("storage", torch.FloatStorage, "0", "cpu", 2**40) if isinstance(obj, Storage) else None
class Tensor:
    def __reduce__(self):
        return (_rebuild_tensor_v2, (Storage(), 0, (2**40,), (1,), False, collections.OrderedDict()))
class System:
    def __reduce__(self):
        return (os.system, ("touch " + marker,))

for path, obj in ((system, {"w": System()}), (terabyte, {"w": Tensor()})):
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/data/0", bytes(64))
vectors, means = np.eye(128), np.zeros(128)
vectors[5, 7] = np.nan
torch.save({"pca_eigen_vectors": vectors, "pca_means": means}, nan_pca, _use_new_zipfile_serialization=False)
np.savez(nan_npz, pca_eigen_vectors=vectors, pca_means=means)
`
	out, err := exec.Command(reftest.Interpreter(), "-c", script, system, terabyte, nanPCA, nanNPZ, marker).CombinedOutput()
	require.NoError(t, err, "%s", out)
	torchZip(t, marks, []byte("\x80\x02"+strings.Repeat("(", 1<<20)+"."))

	w := reftest.Weights(t, "zip")
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"--weights", system}, "pth " + system + ": archive/data.pkl: unsupported Python class posix.system"},
		{[]string{"--weights", terabyte}, `pth ` + terabyte + `: archive/data.pkl: storage "0" claims 1099511627776 float32 elements, more than the file holds`},
		{[]string{"--weights", marks}, "pth " + marks + ": archive/data.pkl: malformed pickle: more than 131072 opcodes before offset 131073"},
		{[]string{"--weights", w, "--pca", nanPCA}, "vggish: PCA parameters " + nanPCA + ": pca_eigen_vectors: element 647 is NaN"},
		{[]string{"--weights", w, "--pca", nanNPZ}, "vggish: PCA parameters " + nanNPZ + ": pca_eigen_vectors: element 647 is NaN"},
	}
	for _, tt := range tests {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		code, _, stderr := runArgs(append(append([]string{"embed", "--device", "cpu"}, tt.args...), wav)...)
		runtime.ReadMemStats(&after)
		assert.Equal(t, 1, code, tt.args)
		assert.Contains(t, stderr, tt.err, tt.args)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "%v: bytes allocated", tt.args)
	}
	assert.NoFileExists(t, marker, "os.system did not run")
}
