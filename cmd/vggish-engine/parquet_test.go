package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/batch/batchtest"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/reftest"
)

// The acceptance run, as a corpus job runs it: the corpus of TestEmbedBatch (200 files,
// three corrupt) embedded into Parquet parts by four shard processes at once (--shard I/4), one of
// them killed (SIGKILL) once it has committed a part, then rerun. Read back with hyparquet, the
// parts hold every clip of every good file exactly once, equal bit for bit to the .npy outputs of
// the same files (and the pooled vectors to the .mean.npy ones); the records list which files each
// part holds; nothing temporary is left; and no shard process takes more memory than a whole .npy
// run.
func TestEmbedParquet(t *testing.T) {
	bin := buildBinary(t)
	c := batchtest.Make(t, filepath.Join(t.TempDir(), "corpus"), corpusSize(t))
	w := reftest.Weights(t, "zip")
	common := []string{"embed", "--weights", w, "--device", "cpu", "--batch", "16", "--pool", "mean", c.Root}

	npyOut := filepath.Join(t.TempDir(), "npy")
	cmd := exec.Command(bin, append(common, "--out-dir", npyOut)...)
	out, err := cmd.CombinedOutput()
	require.Equal(t, 1, cmd.ProcessState.ExitCode(), "the corrupt files fail: %s", out)
	npyRSS := maxRSS(cmd)

	pq := filepath.Join(t.TempDir(), "parquet")
	shardArgs := func(i int) []string {
		return append(common, "--format", "parquet", "--part-size", "16KiB", "--out-dir", pq, "--shard", fmt.Sprintf("%d/4", i))
	}
	const killed = 1
	var wg sync.WaitGroup
	rss := make([]float64, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(bin, shardArgs(i)...)
			if i != killed {
				out, err := cmd.CombinedOutput()
				assert.True(t, err == nil || cmd.ProcessState.ExitCode() == 1, "shard %d: %v\n%s", i, err, out)
				rss[i] = maxRSS(cmd)
				return
			}
			if !assert.NoError(t, cmd.Start()) {
				return
			}
			deadline := time.Now().Add(5 * time.Minute)
			for len(parts(t, pq, i)) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			assert.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			_ = cmd.Wait()
		}()
	}
	wg.Wait()
	rec := shardRecord(t, pq, killed)
	require.NotEmpty(t, rec.Parts, "killed after committing a part")
	require.Nil(t, rec.Finished, "killed before the end")
	done := 0
	for _, p := range rec.Parts {
		done += len(p.Inputs)
	}
	t.Logf("shard %d killed with %d parts (%d files) committed", killed, len(rec.Parts), done)

	cmd = exec.Command(bin, shardArgs(killed)...)
	out, err = cmd.CombinedOutput()
	assert.True(t, err == nil || cmd.ProcessState.ExitCode() == 1, "rerun: %v\n%s", err, out)
	assert.Contains(t, string(out), fmt.Sprintf("skipping %d of", done))
	rss[killed] = maxRSS(cmd)
	t.Logf("peak RSS: %.0f MB for the whole .npy run, %.0f MB for the shards writing Parquet", npyRSS, rss)
	for i, r := range rss {
		assert.Less(t, r, npyRSS+64, "shard %d", i)
	}

	// Every clip exactly once, equal to the .npy outputs.
	files, err := filepath.Glob(filepath.Join(pq, "*.parquet"))
	require.NoError(t, err)
	type key struct {
		rel  string
		clip int
	}
	clips := map[key][]float32{}
	pooled := map[string][]float32{}
	for _, f := range batchtest.ReadParquet(t, files...) {
		for _, row := range f.Rows {
			rel, err := filepath.Rel(c.Root, row.String(t, "path"))
			require.NoError(t, err)
			rel = filepath.ToSlash(rel)
			if strings.HasPrefix(f.Name, "mean.") {
				require.NotContains(t, pooled, rel, "%s pooled twice", rel)
				pooled[rel] = row.Float32s(t, "mean")
				continue
			}
			k := key{rel, row.Int(t, "clip")}
			require.NotContains(t, clips, k, "clip %v twice", k)
			clips[k] = row.Float32s(t, "embedding")
			assert.InDelta(t, 0.96*float64(k.clip), row.Float(t, "start"), 1e-9)
		}
	}
	held := map[string]bool{}
	for i := range 4 {
		rec := shardRecord(t, pq, i)
		require.NotNil(t, rec.Finished)
		for _, p := range rec.Parts {
			for _, rel := range p.Inputs {
				require.False(t, held[rel], "%s in two parts", rel)
				held[rel] = true
			}
		}
		assert.ElementsMatch(t, recordedParts(rec), parts(t, pq, i), "shard %d: the record lists its parts", i)
	}
	n := 0
	for _, rel := range c.Good {
		assert.True(t, held[rel], "a part holds %s", rel)
		stem := filepath.Join(npyOut, filepath.FromSlash(strings.TrimSuffix(rel, path.Ext(rel))))
		want, shape, err := npyfile.Read(stem + ".npy")
		require.NoError(t, err)
		for i := range shape[0] {
			got, ok := clips[key{rel, i}]
			require.True(t, ok, "%s clip %d", rel, i)
			require.True(t, slices.Equal(want[i*128:(i+1)*128], got), "%s clip %d differs from its .npy", rel, i)
			n++
		}
		mean, _, err := npyfile.Read(stem + ".mean.npy")
		require.NoError(t, err)
		if len(mean) == 0 {
			mean = nil // an empty .mean.npy; a null in Parquet
		}
		assert.Equal(t, mean, pooled[rel], rel)
	}
	assert.Len(t, clips, n, "no clip of another file")
	assert.Len(t, pooled, len(c.Good))
	for _, rel := range c.Corrupt {
		assert.False(t, held[rel], rel)
	}
	t.Logf("%d clips of %d files in %d part files, all equal to the .npy outputs", n, len(c.Good), len(files))
	assertNoTemps(t, pq)
}

// maxRSS is a finished command's peak resident set size in MB.
func maxRSS(cmd *exec.Cmd) float64 {
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return float64(ru.Maxrss) / 1024
	}
	return 0
}

func shardRecord(t *testing.T, dir string, i int) batch.Record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, batch.RecordName(batch.Shard{Index: i, Count: 4})))
	require.NoError(t, err)
	var rec batch.Record
	require.NoError(t, json.Unmarshal(b, &rec))
	return rec
}

// parts lists the clips parts of shard i/4 in dir.
func parts(t *testing.T, dir string, i int) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("clips.%d-of-4.*.parquet", i)))
	require.NoError(t, err)
	for j := range m {
		m[j] = filepath.Base(m[j])
	}
	return m
}

func recordedParts(rec batch.Record) []string {
	var names []string
	for _, p := range rec.Parts {
		names = append(names, p.File)
	}
	return names
}
