package batch

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio/npz"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/batch/batchtest"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/vggish"
)

// perChannel embeds like fake, as three channels (Options.Channels Each): channel c is fake's rows
// plus c.
type perChannel struct{}

func (perChannel) EmbedFile(_ context.Context, path string) (*vggish.Embeddings, error) {
	return channelEmbeddings(path), nil
}

func channelEmbeddings(path string) *vggish.Embeddings {
	one := fakeEmbeddings(path)
	e := &vggish.Embeddings{Channels: 3, SampleRate: one.SampleRate, Duration: one.Duration}
	for c := range 3 {
		for _, v := range one.Data {
			e.Data = append(e.Data, v+float32(c))
		}
		e.Starts = append(e.Starts, one.Starts...)
	}
	return e
}

// The streams of Each in every format: an axis in NPY and NPZ, a record per channel in JSONL, a
// channel column in CSV, a line per channel in Show.
func TestRunChannels(t *testing.T) {
	_, inputs := corpus(t, "sub/ee.wav") // 2 rows per channel
	in := inputs[0]
	want := channelEmbeddings(in.Path)
	run := func(t *testing.T, format Format, pool Pool) string {
		out := t.TempDir()
		_, err := Run(context.Background(), perChannel{}, inputs, Options{OutDir: out, Format: format, Pool: pool})
		require.NoError(t, err)
		return filepath.Join(out, "sub", "ee."+string(format))
	}
	t.Run("npy", func(t *testing.T) {
		main := run(t, NPY, Mean)
		data, shape := readNPY(t, main)
		assert.Equal(t, []int{3, 2, 128}, shape)
		assert.Equal(t, want.Data, data)
		data, shape = readNPY(t, strings.TrimSuffix(main, ".npy")+".mean.npy")
		assert.Equal(t, []int{3, 128}, shape)
		assert.Equal(t, append(append(want.Channel(0).Mean(), want.Channel(1).Mean()...), want.Channel(2).Mean()...), data)
	})
	t.Run("npz", func(t *testing.T) {
		r, err := npz.Open(run(t, NPZ, Max))
		require.NoError(t, err)
		defer r.Close()
		assert.ElementsMatch(t, []string{"embedding.npy", "timestamps.npy", "max.npy"}, r.Keys())
		var emb []float32
		require.NoError(t, r.Read("embedding.npy", &emb))
		assert.Equal(t, []int{3, 2, 128}, r.Header("embedding.npy").Descr.Shape)
		assert.Equal(t, want.Data, emb)
		var ts []float64
		require.NoError(t, r.Read("timestamps.npy", &ts))
		assert.Equal(t, []float64{0, 0.96}, ts)
		assert.Equal(t, []int{3, 128}, r.Header("max.npy").Descr.Shape)
	})
	t.Run("jsonl", func(t *testing.T) {
		b, err := os.ReadFile(run(t, JSONL, NoPool))
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		require.Len(t, lines, 3)
		for c, line := range lines {
			var rec jsonRecord
			require.NoError(t, json.Unmarshal([]byte(line), &rec))
			require.NotNil(t, rec.Channel)
			assert.Equal(t, c, *rec.Channel)
			assert.Equal(t, 3, rec.Channels)
			assert.Equal(t, [2]int{2, 128}, rec.Shape)
			assert.Equal(t, [][]float32{want.Channel(c).Row(0), want.Channel(c).Row(1)}, rec.Embeddings)
		}
	})
	t.Run("csv", func(t *testing.T) {
		f, err := os.Open(run(t, CSV, Mean))
		require.NoError(t, err)
		defer f.Close()
		rows, err := csv.NewReader(f).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 1+3*3) // header, then per channel 2 clips and the mean
		assert.Equal(t, []string{"path", "channel", "start", "v0"}, rows[0][:4])
		assert.Equal(t, []string{in.Path, "1", "0.96"}, rows[5][:3])
		assert.Equal(t, []string{in.Path, "2", "mean"}, rows[9][:3])
	})
	t.Run("parquet", func(t *testing.T) {
		out := t.TempDir()
		_, err := Run(context.Background(), perChannel{}, inputs, Options{OutDir: out, Format: Parquet, Pool: Mean, Record: testRecord()})
		require.NoError(t, err)
		parts := batchtest.ReadParquet(t, filepath.Join(out, "clips.00000.parquet"), filepath.Join(out, "mean.00000.parquet"))
		require.Len(t, parts, 2)
		clips, pooled := parts[0].Rows, parts[1].Rows
		require.Len(t, clips, 3*2, "2 clips a channel")
		for i, row := range clips {
			c, clip := i/2, i%2
			assert.Equal(t, in.Path, row.String(t, "path"))
			assert.Equal(t, []int{c, clip}, []int{row.Int(t, "channel"), row.Int(t, "clip")}, "clips counted within their channel")
			assert.Equal(t, want.Channel(c).Starts[clip], row.Float(t, "start"))
			assert.Equal(t, want.Channel(c).Row(clip), row.Float32s(t, "embedding"))
		}
		require.Len(t, pooled, 3, "a pool per channel")
		for c, row := range pooled {
			assert.Equal(t, []int{c, 2}, []int{row.Int(t, "channel"), row.Int(t, "clips")})
			assert.Equal(t, want.Channel(c).Mean(), row.Float32s(t, "mean"))
		}

		// Mixed audio: the channel is null.
		out = t.TempDir()
		_, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Format: Parquet, Record: testRecord()})
		require.NoError(t, err)
		row := batchtest.ReadParquet(t, filepath.Join(out, "clips.00000.parquet"))[0].Rows[0]
		assert.Equal(t, "null", string(row["channel"]))
	})
	t.Run("show", func(t *testing.T) {
		var out bytes.Buffer
		_, err := Run(context.Background(), perChannel{}, inputs, Options{Stdout: &out})
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		require.Len(t, lines, 3)
		assert.True(t, strings.HasPrefix(lines[2], in.Path+" channel 2 ["), lines[2])
		assert.True(t, strings.HasSuffix(lines[2], "shape=(2, 128)"), lines[2])
	})
}

// numpy reads an NPZ output as OpenL3's: np.load(f)["embedding"], np.load(f)["timestamps"], the
// quantised embeddings as uint8, a file without clips as empty arrays.
func TestNPZReadByNumpy(t *testing.T) {
	reftest.Require(t)
	_, inputs := corpus(t, names[:len(names)-1]...)
	out := t.TempDir()
	_, err := Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Format: NPZ, Pool: Mean, Uint8: true})
	require.NoError(t, err)
	script := `import json,sys,numpy as np
out = {}
for p in sys.argv[1:]:
    with np.load(p) as z:
        out[p] = {k: [list(z[k].shape), str(z[k].dtype), z[k].astype("float64").ravel().tolist()] for k in z.files}
print(json.dumps(out))`
	var paths []string
	for _, in := range inputs {
		paths = append(paths, filepath.Join(out, strings.TrimSuffix(in.Rel, filepath.Ext(in.Rel))+".npz"))
	}
	b, err := exec.Command(reftest.Interpreter(), append([]string{"-c", script}, paths...)...).Output()
	require.NoError(t, err)
	var got map[string]map[string][3]any
	require.NoError(t, json.Unmarshal(b, &got))
	for i, in := range inputs {
		want := fakeEmbeddings(in.Path)
		z := got[paths[i]]
		require.Len(t, z, 3, in.Rel)
		assert.Equal(t, []any{float64(want.Rows()), 128.0}, z["embedding"][0], in.Rel)
		assert.Equal(t, "uint8", z["embedding"][1], in.Rel)
		assert.Equal(t, []any{float64(want.Rows())}, z["timestamps"][0], in.Rel)
		assert.Equal(t, "float64", z["timestamps"][1], in.Rel)
		assert.Len(t, z["embedding"][2], len(want.Data), in.Rel)
		for j, v := range z["embedding"][2].([]any) {
			require.Equal(t, float64(want.Data[j]), v, in.Rel)
		}
		starts := make([]any, len(want.Starts))
		for j, s := range want.Starts {
			starts[j] = s
		}
		assert.Equal(t, starts, z["timestamps"][2], in.Rel)
		assert.Equal(t, "float32", z["mean"][1], in.Rel)
	}
}

// Each receives every file's embeddings in input order, whatever order they complete in, and its
// error stops the run.
func TestRunEach(t *testing.T) {
	_, inputs := corpus(t, names[:len(names)-1]...)
	var got []string
	_, err := Run(context.Background(), &fake{jitter: true}, inputs, Options{Workers: 4, Each: func(in Input, e *vggish.Embeddings) error {
		got = append(got, in.Path)
		assert.Equal(t, fakeEmbeddings(in.Path).Data, e.Data)
		return nil
	}})
	require.NoError(t, err)
	var want []string
	for _, in := range inputs {
		want = append(want, in.Path)
	}
	assert.Equal(t, want, got)

	_, err = Run(context.Background(), &fake{}, inputs, Options{Each: func(Input, *vggish.Embeddings) error { return errors.New("full") }})
	assert.ErrorContains(t, err, "full")
	_, err = Run(context.Background(), &fake{}, inputs, Options{Stdout: &bytes.Buffer{}, Each: func(Input, *vggish.Embeddings) error { return nil }})
	assert.ErrorContains(t, err, "exactly one of")
}
