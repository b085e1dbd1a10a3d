package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/vggish-go/vggish/internal/batch/batchtest"
	"github.com/vggish-go/vggish/vggish"
)

// clipKey names a clip across parts.
type clipKey struct {
	path string
	clip int
}

// parquetOut is what an output folder's parts hold, read back with hyparquet.
type parquetOut struct {
	clips   map[clipKey]batchtest.ParquetRow
	pooled  map[string]batchtest.ParquetRow
	parts   []batchtest.ParquetFile
	records map[string]Record
}

// readParts reads every part in dir, failing the test if a clip or a pooled row appears twice, and
// the run records.
func readParts(t *testing.T, dir string) parquetOut {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	require.NoError(t, err)
	out := parquetOut{clips: map[clipKey]batchtest.ParquetRow{}, pooled: map[string]batchtest.ParquetRow{}, records: map[string]Record{}}
	if len(files) > 0 {
		out.parts = batchtest.ReadParquet(t, files...)
	}
	for _, f := range out.parts {
		for _, row := range f.Rows {
			path := row.String(t, "path")
			if strings.HasPrefix(f.Name, clipsKind+".") {
				k := clipKey{path, row.Int(t, "clip")}
				if _, ok := out.clips[k]; ok {
					t.Fatalf("clip %v twice", k)
				}
				out.clips[k] = row
			} else {
				if _, ok := out.pooled[path]; ok {
					t.Fatalf("%s pooled twice", path)
				}
				out.pooled[path] = row
			}
		}
	}
	recs, err := readRecords(dir)
	require.NoError(t, err)
	for _, r := range recs {
		out.records[r.name] = r.rec
	}
	return out
}

// checkParts checks that the parts hold every good input of inputs exactly once, with the fake's
// values bit for bit, and that the records list each part's inputs.
func checkParts(t *testing.T, out parquetOut, inputs []Input, pool Pool, asUint8 bool) {
	t.Helper()
	listed := map[string]string{}
	for name, rec := range out.records {
		for _, p := range rec.Parts {
			for _, in := range p.Inputs {
				if prev, ok := listed[in]; ok {
					t.Fatalf("%s in two parts: %s and %s", in, prev, name+": "+p.File)
				}
				listed[in] = name + ": " + p.File
			}
		}
	}
	clips := 0
	for _, in := range inputs {
		if strings.Contains(in.Path, "bad") {
			assert.NotContains(t, listed, in.Rel)
			continue
		}
		assert.Contains(t, listed, in.Rel, "a part holds %s", in.Rel)
		want := fakeEmbeddings(in.Path)
		for i := range want.Rows() {
			row, ok := out.clips[clipKey{in.Path, i}]
			if !assert.True(t, ok, "%s clip %d", in.Path, i) {
				continue
			}
			clips++
			assert.Equal(t, want.Starts[i], row.Float(t, "start"))
			if asUint8 {
				q, err := want.Uint8()
				require.NoError(t, err)
				got := row.Ints(t, "embedding")
				require.Len(t, got, vggish.EmbeddingSize)
				for j, v := range q[i*vggish.EmbeddingSize : (i+1)*vggish.EmbeddingSize] {
					require.Equal(t, int(v), got[j])
				}
			} else {
				assert.Equal(t, want.Row(i), row.Float32s(t, "embedding"))
			}
		}
		if pool != NoPool {
			row, ok := out.pooled[in.Path]
			if assert.True(t, ok, "%s pooled", in.Path) {
				assert.Equal(t, want.Rows(), row.Int(t, "clips"))
				assert.Equal(t, pool.of(want), row.Float32s(t, string(pool)), "null for no clips")
			}
		}
	}
	assert.Len(t, out.clips, clips, "no other clips")
}

func TestParquet(t *testing.T) {
	_, inputs := corpus(t, names...)
	for _, tt := range []struct {
		pool  Pool
		uint8 bool
	}{{NoPool, false}, {Mean, false}, {Max, true}} {
		t.Run(fmt.Sprintf("pool=%s-uint8=%v", tt.pool, tt.uint8), func(t *testing.T) {
			out := t.TempDir()
			sum, err := Run(context.Background(), &fake{jitter: true}, inputs, Options{OutDir: out, Format: Parquet, Pool: tt.pool, Uint8: tt.uint8, Workers: 3, Record: testRecord()})
			require.NoError(t, err)
			assert.Equal(t, []int{7, 1}, []int{sum.Embedded, len(sum.Failures)})
			got := readParts(t, out)
			checkParts(t, got, inputs, tt.pool, tt.uint8)
			want := []string{"clips.00000.parquet"}
			if tt.pool != NoPool {
				want = append(want, string(tt.pool)+".00000.parquet")
			}
			var names []string
			for _, p := range got.parts {
				names = append(names, p.Name)
				var s Settings
				require.NoError(t, json.Unmarshal([]byte(p.Metadata[settingsKey]), &s), "settings in the metadata")
				assert.Equal(t, got.records["vggish-run.json"].Settings, s)
			}
			assert.ElementsMatch(t, want, names)
			assert.Equal(t, map[bool]string{false: "float32", true: "uint8"}[tt.uint8], got.records["vggish-run.json"].Settings.DType)
			assert.Empty(t, tempFiles(t, out))

			// A rerun finds everything done but the failure.
			f := &fake{}
			sum, err = Run(context.Background(), f, inputs, Options{OutDir: out, Format: Parquet, Pool: tt.pool, Uint8: tt.uint8, Record: testRecord()})
			require.NoError(t, err)
			assert.Equal(t, int32(1), f.calls.Load())
			assert.Equal(t, 7, sum.Skipped)
			checkParts(t, readParts(t, out), inputs, tt.pool, tt.uint8)

			// A run in another format would rewrite the record without the parts.
			_, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Format: NPY, Uint8: tt.uint8, Record: testRecord()})
			assert.ErrorContains(t, err, "holds Parquet parts listed in vggish-run.json: write format npy to another folder")
		})
	}
}

// Small parts: many of them, each listed with its inputs, every clip in exactly one.
func TestParquetPartSize(t *testing.T) {
	var rels []string
	for i := range 40 {
		rels = append(rels, fmt.Sprintf("d%d/%s", i%3, names[i%len(names)]))
	}
	_, inputs := corpus(t, rels...)
	out := t.TempDir()
	_, err := Run(context.Background(), &fake{jitter: true}, inputs, Options{OutDir: out, Format: Parquet, Pool: Mean, Workers: 4, Record: testRecord(), PartSize: 2000})
	require.NoError(t, err)
	got := readParts(t, out)
	checkParts(t, got, inputs, Mean, false)
	rec := got.records["vggish-run.json"]
	assert.Greater(t, len(rec.Parts), 5)
	pathOf := map[string]string{}
	for _, in := range inputs {
		pathOf[in.Rel] = in.Path
	}
	for _, p := range rec.Parts {
		assert.LessOrEqual(t, p.Clips, 7, "2000 bytes are 4 clips: a part ends at the input that passes them")
		var paths []string
		for _, f := range got.parts {
			if f.Name == p.Pooled {
				for _, row := range f.Rows {
					paths = append(paths, row.String(t, "path"))
				}
			}
		}
		var want []string
		for _, rel := range p.Inputs {
			want = append(want, pathOf[rel])
		}
		assert.ElementsMatch(t, want, paths, "%s lists the inputs its pooled file holds", p.File)
	}
}

// What a killed run leaves, and a rerun mends: the temporary files of the part in progress, and a
// part the record lists but whose files were not all renamed. Inputs of complete parts are skipped;
// every clip ends up in exactly one part.
func TestParquetResume(t *testing.T) {
	_, inputs := corpus(t, names...)
	out := t.TempDir()
	shard := Shard{Index: 1, Count: 2}
	opts := Options{OutDir: out, Format: Parquet, Pool: Mean, Shard: shard, Workers: 1, Record: testRecord(), PartSize: 1}
	// An interrupted run commits what it wrote: here one input per part.
	f := &fake{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done atomic.Int32
	_, err := Run(ctx, embedderFunc(func(ctx context.Context, path string) (*vggish.Embeddings, error) {
		if done.Add(1) == 3 {
			cancel()
			return nil, ctx.Err()
		}
		return f.EmbedFile(ctx, path)
	}), inputs, opts)
	require.ErrorIs(t, err, ErrInterrupted)
	rec := readParts(t, out).records[RecordName(shard)]
	require.Len(t, rec.Parts, 2)
	assert.Equal(t, "clips.1-of-2.00001.parquet", rec.Parts[1].File)

	// Killed between listing part 1 and renaming its clips (the pooled file was renamed), and
	// while writing part 2.
	require.NoError(t, os.Remove(filepath.Join(out, rec.Parts[1].File)))
	require.FileExists(t, filepath.Join(out, rec.Parts[1].Pooled))
	stale := filepath.Join(out, ".clips.1-of-2.00002.parquet.123.tmp")
	othersTemp := filepath.Join(out, ".clips.0-of-2.00002.parquet.456.tmp")
	for _, p := range []string{stale, othersTemp} {
		require.NoError(t, os.WriteFile(p, []byte("PAR1"), 0o644))
	}
	f.calls.Store(0)
	opts.PartSize = 0
	sum, err := Run(context.Background(), f, inputs, opts)
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Skipped, "part 0 is complete")
	assert.NoFileExists(t, stale)
	assert.FileExists(t, othersTemp, "another shard's temporary file may be in use")
	require.NoError(t, os.Remove(othersTemp))
	assert.NoFileExists(t, filepath.Join(out, "mean.1-of-2.00001.parquet"), "the incomplete part's files are gone")
	got := readParts(t, out)
	rec = got.records[RecordName(shard)]
	require.Len(t, rec.Parts, 2)
	assert.Equal(t, []string{"clips.1-of-2.00000.parquet", "clips.1-of-2.00002.parquet"}, []string{rec.Parts[0].File, rec.Parts[1].File})
	assert.Empty(t, tempFiles(t, out))

	// The other shard, then a run of the whole: nothing left to do, every input once.
	_, err = Run(context.Background(), f, inputs, Options{OutDir: out, Format: Parquet, Pool: Mean, Shard: Shard{Index: 0, Count: 2}, Record: testRecord()})
	require.NoError(t, err)
	f.calls.Store(0)
	sum, err = Run(context.Background(), f, inputs, Options{OutDir: out, Format: Parquet, Pool: Mean, Record: testRecord()})
	require.NoError(t, err)
	assert.Equal(t, []int{7, 1}, []int{sum.Skipped, int(f.calls.Load())}, "only the bad input is tried again")
	checkParts(t, readParts(t, out), inputs, Mean, false)
}

type embedderFunc func(ctx context.Context, path string) (*vggish.Embeddings, error)

func (f embedderFunc) EmbedFile(ctx context.Context, path string) (*vggish.Embeddings, error) {
	return f(ctx, path)
}

func TestParquetRefuses(t *testing.T) {
	_, inputs := corpus(t, names...)
	opts := func(out string) Options {
		return Options{OutDir: out, Format: Parquet, Record: testRecord(), Shard: Shard{Index: 0, Count: 2}}
	}
	t.Run("a part the record does not list", func(t *testing.T) {
		out := t.TempDir()
		_, err := Run(context.Background(), &fake{}, inputs, opts(out))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(out, "clips.0-of-2.00007.parquet"), nil, 0o644))
		_, err = Run(context.Background(), &fake{}, inputs, opts(out))
		assert.ErrorContains(t, err, "clips.0-of-2.00007.parquet is not listed in "+filepath.Join(out, "vggish-run.0-of-2.json"))
		// --overwrite redoes the shard.
		o := opts(out)
		o.Overwrite = true
		f := &fake{}
		_, err = Run(context.Background(), f, inputs, o)
		require.NoError(t, err)
		assert.Equal(t, int32(len(Shard{Index: 0, Count: 2}.Select(inputs))), f.calls.Load())
		assert.NoFileExists(t, filepath.Join(out, "clips.0-of-2.00007.parquet"))
		assert.Len(t, readParts(t, out).records["vggish-run.0-of-2.json"].Parts, 1)
	})
	t.Run("another pool", func(t *testing.T) {
		out := t.TempDir()
		_, err := Run(context.Background(), &fake{}, inputs, opts(out))
		require.NoError(t, err)
		o := opts(out)
		o.Shard, o.Pool = Shard{Index: 1, Count: 2}, Mean
		_, err = Run(context.Background(), &fake{}, inputs, o)
		assert.ErrorContains(t, err, `holds Parquet parts with pool "" and dtype float32 (vggish-run.0-of-2.json), not "mean" and float32`)
	})
	t.Run("--overwrite of inputs another run's parts hold", func(t *testing.T) {
		out := t.TempDir()
		_, err := Run(context.Background(), &fake{}, inputs, opts(out))
		require.NoError(t, err)
		_, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Format: Parquet, Record: testRecord(), Overwrite: true})
		assert.ErrorContains(t, err, "a part of another run of the folder")
	})
}

// --overwrite redoes the inputs it is given. A part holds many inputs and cannot be redone for some of
// them: an --overwrite given only some of a part's inputs is refused before anything is removed, so
// the others' rows stay.
func TestParquetOverwriteSubset(t *testing.T) {
	_, inputs := corpus(t, names...)
	var good []Input // those in parts
	for _, in := range inputs {
		if !strings.Contains(in.Path, "bad") {
			good = append(good, in)
		}
	}
	half := Shard{Index: 0, Count: 2}
	tests := []struct {
		name  string
		shard Shard
		redo  []Input
		want  string // the refusal; "" for none
	}{
		{"one input of the part", Shard{}, good[:1], "holds inputs not given to this run (" + EscapePath(good[1].Rel)},
		{"one input of a shard's part", half, half.Select(good)[:1], "holds inputs not given to this run (" + EscapePath(half.Select(good)[1].Rel)},
		{"every input", Shard{}, inputs, ""},
		{"every input of the shard", half, inputs, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			opts := Options{OutDir: out, Format: Parquet, Pool: Mean, Shard: tt.shard, Record: testRecord()}
			_, err := Run(context.Background(), &fake{}, inputs, opts)
			require.NoError(t, err)
			snapshot := func() []string { // the folder's files, and the record's text
				names, err := filepath.Glob(filepath.Join(out, "*"))
				require.NoError(t, err)
				rec, err := os.ReadFile(filepath.Join(out, RecordName(tt.shard)))
				require.NoError(t, err)
				return append(names, string(rec))
			}
			before := snapshot()
			opts.Overwrite = true
			f := &fake{}
			sum, err := Run(context.Background(), f, tt.redo, opts)
			if tt.want != "" {
				assert.ErrorContains(t, err, tt.want)
				assert.ErrorContains(t, err, "--overwrite")
				assert.Zero(t, f.calls.Load())
				assert.Equal(t, before, snapshot(), "nothing removed")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, sum.Inputs, int(f.calls.Load()), "redone")
			checkParts(t, readParts(t, out), tt.shard.Select(inputs), Mean, false)
		})
	}
}

// manyClips embeds every file into n clips of pseudo-random values, which compress about as little as
// real embeddings do.
type manyClips int

func (n manyClips) EmbedFile(_ context.Context, path string) (*vggish.Embeddings, error) {
	e := &vggish.Embeddings{SampleRate: 16000, Data: make([]float32, int(n)*vggish.EmbeddingSize)}
	for i := range int(n) {
		e.Starts = append(e.Starts, 0.96*float64(i))
	}
	x := uint32(len(path))*2654435761 + 1
	for i := range e.Data {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		e.Data[i] = float32(int32(x)) / (1 << 31)
	}
	return e, nil
}

// The parts hold at most a row group of clips in memory: the live heap stays well below the size of
// what was written. Parts of several row groups read back bit for bit (pqarrow's FixedSizeList bug,
// shared/README.md, repeated the first rows' vectors in later row groups).
func TestParquetMemoryFlat(t *testing.T) {
	// run embeds files of 400 clips each and returns the output folder and the peak of the live
	// heap, sampled after a forced collection. (Its rise above the start would say less: buffers
	// pooled by the first run are still held at the start of the second.)
	run := func(files int) (string, float64) {
		var rels []string
		for i := range files {
			rels = append(rels, fmt.Sprintf("f%04d.wav", i))
		}
		_, inputs := corpus(t, rels...)
		out := t.TempDir()
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		peak := m.HeapAlloc
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err := Run(context.Background(), manyClips(400), inputs, Options{OutDir: out, Format: Parquet, Workers: 2, Record: testRecord()})
			assert.NoError(t, err)
		}()
		for {
			select {
			case <-done:
				return out, float64(peak) / 1e6
			case <-time.After(50 * time.Millisecond):
			}
			runtime.GC()
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
	}
	_, peak := run(1200) // 480,000 clips, 246 MB of vectors
	t.Logf("live heap peak writing 480,000 clips (246 MB of vectors): %.1f MB", peak)
	assert.Less(t, peak, 100.0, "memory grows with the clips written")

	out, _ := run(100) // 40,000 clips

	got := readParts(t, out)
	require.Len(t, got.parts, 1)
	assert.Equal(t, 3, got.parts[0].RowGroups, "40,000 clips in row groups of 16384")
	assert.Len(t, got.clips, 40000)
	want := map[string]*vggish.Embeddings{}
	for k, row := range got.clips {
		e, ok := want[k.path]
		if !ok {
			e, _ = manyClips(400).EmbedFile(context.Background(), k.path)
			want[k.path] = e
		}
		if !slices.Equal(e.Row(k.clip), row.Float32s(t, "embedding")) {
			t.Fatalf("%s clip %d differs", k.path, k.clip)
		}
	}
}

// A full disk stops a Parquet run: the parts committed before are complete and listed, the part in
// progress is gone, and once there is room a rerun finishes with every input in exactly one part.
func TestParquetFullDisk(t *testing.T) {
	var many []string
	for i := range 200 {
		many = append(many, fmt.Sprintf("d%d/%s%03d.wav", i%7, strings.Repeat("x", i%4+1), i)) // 0 to 3 clips
	}
	_, inputs := corpus(t, many...)
	mnt := mountTmpfs(t, "64k")
	out := filepath.Join(mnt, "out")
	opts := Options{OutDir: out, Format: Parquet, Pool: Mean, Workers: 2, Record: testRecord(), PartSize: 8 << 10}
	sum, err := Run(context.Background(), &fake{}, inputs, opts)
	require.Error(t, err)
	t.Log(err)
	var fault *Fault
	require.ErrorAs(t, err, &fault)
	assert.Contains(t, err.Error(), "no space left on device")
	assert.Contains(t, err.Error(), fmt.Sprintf(": the run stopped after writing the outputs of %d of 200 files (those are complete)", fault.Done))
	assert.Empty(t, sum.Failures)
	assert.Empty(t, tempFiles(t, out))
	got := readParts(t, out)
	held := 0
	for _, p := range got.records["vggish-run.json"].Parts {
		held += len(p.Inputs)
	}
	assert.Equal(t, fault.Done, held, "the record lists the committed parts")
	assert.Equal(t, fault.Done, sum.Embedded, "the summary counts what was written, not the part lost")
	assert.Equal(t, len(got.clips), sum.Clips, "and the clips written")
	assert.Equal(t, []int{fault.Done, len(got.clips)}, []int{got.records["vggish-run.json"].Embedded, got.records["vggish-run.json"].Clips}, "as does the record")
	assert.Positive(t, held)

	require.NoError(t, unix.Mount("", mnt, "", unix.MS_REMOUNT, "size=4m"))
	sum, err = Run(context.Background(), &fake{}, inputs, opts)
	require.NoError(t, err)
	assert.Equal(t, []int{held, 200 - held}, []int{sum.Skipped, sum.Embedded})
	checkParts(t, readParts(t, out), inputs, Mean, false)
}
