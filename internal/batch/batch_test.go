package batch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"codeberg.org/sbinet/npyio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/atomicfile"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/spec"
	"github.com/vggish-go/vggish/vggish"
)

// fake embeds a path into rows (0 to 3, from the name's length) of integer values in 0..255 derived
// from the path, so that any format, uint8 included, can hold them exactly. Names holding "bad" fail.
type fake struct {
	calls   atomic.Int32
	jitter  bool          // sleep a random few ms, to scramble the order results complete in
	block   chan struct{} // if set, calls wait for it (or ctx)
	failOn  func(string) bool
	panicOn func(string) bool
	onCall  func(n int32) // called with the call's number, from 1
}

func (f *fake) EmbedFile(ctx context.Context, path string) (*vggish.Embeddings, error) {
	if n := f.calls.Add(1); f.onCall != nil {
		f.onCall(n)
	}
	if f.panicOn != nil && f.panicOn(path) {
		var e *vggish.Embeddings
		return e, fmt.Errorf("%d rows", e.Rows()) // a nil dereference
	}
	if f.jitter {
		time.Sleep(time.Duration(rand.Intn(5)) * time.Millisecond)
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if (f.failOn == nil && strings.Contains(path, "bad")) || (f.failOn != nil && f.failOn(path)) {
		return nil, &decode.FormatError{Name: path, Err: errors.New("not audio")}
	}
	return fakeEmbeddings(path), nil
}

func (f *fake) EmbedReader(ctx context.Context, r io.Reader, name string) (*vggish.Embeddings, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return f.EmbedFile(ctx, name+":"+string(b))
}

func fakeEmbeddings(path string) *vggish.Embeddings {
	rows := len(filepath.Base(path)) % 4
	h := fnv.New32a()
	h.Write([]byte(path))
	seed := int(h.Sum32() % 256)
	e := &vggish.Embeddings{SampleRate: 16000, Duration: 0.5 + 0.96*float64(rows)}
	for r := range rows {
		e.Starts = append(e.Starts, 0.96*float64(r))
		for j := range vggish.EmbeddingSize {
			e.Data = append(e.Data, float32((seed+7*r+j)%256))
		}
	}
	return e
}

// corpus makes empty files (the fake does not read them) and returns their expansion.
func corpus(t *testing.T, rels ...string) (string, []Input) {
	t.Helper()
	root := t.TempDir()
	touch(t, root, rels...)
	inputs, err := Expand(context.Background(), []string{root}, nil, nil)
	require.NoError(t, err)
	return root, inputs
}

var names = []string{"a.wav", "bb.wav", "ccc.mp3", "sub/d.flac", "sub/ee.wav", "sub/deep/fff.ogg", "sub/deep/gggg.wav", "bad.wav"}

func testRecord() *Record {
	return &Record{Settings: Settings{WeightsSHA256: "abc", Variant: "towhee", Postprocess: "none", Hop: 0.96}}
}

// tempFiles lists files left by an unfinished atomic write under dir.
func tempFiles(t *testing.T, dir string) []string {
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && atomicfile.TempStem(d.Name()) != "" {
			out = append(out, p)
		}
		return err
	}))
	return out
}

func readNPY(t *testing.T, path string) ([]float32, []int) {
	t.Helper()
	data, shape, err := npyfile.Read(path)
	require.NoError(t, err)
	return data, shape
}

func TestRunOutDirFormats(t *testing.T) {
	_, inputs := corpus(t, names...)
	tests := []struct {
		format Format
		pool   Pool
		uint8  bool
		files  []string // outputs of input sub/ee.wav (2 rows)
	}{
		{NPY, NoPool, false, []string{"sub/ee.npy"}},
		{NPY, Mean, false, []string{"sub/ee.npy", "sub/ee.mean.npy"}},
		{NPY, Max, true, []string{"sub/ee.npy", "sub/ee.max.npy"}},
		{JSONL, Mean, false, []string{"sub/ee.jsonl"}},
		{CSV, Max, false, []string{"sub/ee.csv"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s-%s-uint8=%v", tt.format, tt.pool, tt.uint8), func(t *testing.T) {
			out := t.TempDir()
			sum, err := Run(context.Background(), &fake{jitter: true}, inputs, Options{OutDir: out, Format: tt.format, Pool: tt.pool, Uint8: tt.uint8, Workers: 3, Record: testRecord()})
			require.NoError(t, err)
			assert.Equal(t, len(names)-1, sum.Embedded)
			require.Len(t, sum.Failures, 1)
			for _, f := range tt.files {
				assert.FileExists(t, filepath.Join(out, f))
			}
			assert.Empty(t, tempFiles(t, out))
			var ee *Input
			for i := range inputs {
				if inputs[i].Rel == "sub/ee.wav" {
					ee = &inputs[i]
				}
			}
			want := fakeEmbeddings(ee.Path)
			main := filepath.Join(out, tt.files[0])
			switch tt.format {
			case NPY:
				if tt.uint8 {
					f, err := os.Open(main)
					require.NoError(t, err)
					defer f.Close()
					var got []uint8
					require.NoError(t, npyio.Read(f, &got))
					q, err := want.Uint8()
					require.NoError(t, err)
					assert.Equal(t, q, got)
				} else {
					data, shape := readNPY(t, main)
					assert.Equal(t, []int{2, 128}, shape)
					assert.Equal(t, want.Data, data)
				}
				if tt.pool != NoPool {
					data, shape := readNPY(t, filepath.Join(out, tt.files[1]))
					assert.Equal(t, []int{128}, shape)
					assert.Equal(t, tt.pool.of(want), data)
				}
			case JSONL:
				b, err := os.ReadFile(main)
				require.NoError(t, err)
				var rec jsonRecord
				require.NoError(t, json.Unmarshal(b, &rec))
				assert.Equal(t, ee.Path, rec.Path)
				assert.Equal(t, [2]int{2, 128}, rec.Shape)
				assert.Equal(t, want.Starts, rec.Starts)
				assert.Equal(t, [][]float32{want.Row(0), want.Row(1)}, rec.Embeddings)
				require.NotNil(t, rec.Mean)
				assert.Equal(t, want.Mean(), *rec.Mean)
			case CSV:
				f, err := os.Open(main)
				require.NoError(t, err)
				defer f.Close()
				rows, err := csv.NewReader(f).ReadAll()
				require.NoError(t, err)
				require.Len(t, rows, 4) // header, 2 clips, max
				assert.Equal(t, csvHeader(false), rows[0])
				assert.Equal(t, []string{ee.Path, "0.96"}, rows[2][:2])
				assert.Equal(t, fmt.Sprint(want.Row(1)[5]), rows[2][7])
				assert.Equal(t, "max", rows[3][1])
			}
			// An input without clips (gggg.wav: the fake gives none to 8-byte names) gets an empty
			// output.
			if tt.format == NPY && !tt.uint8 {
				_, shape := readNPY(t, filepath.Join(out, "sub/deep/gggg.npy"))
				assert.Equal(t, []int{0, 128}, shape)
				if tt.pool != NoPool {
					_, shape := readNPY(t, filepath.Join(out, "sub/deep/gggg."+string(tt.pool)+".npy"))
					assert.Equal(t, []int{0}, shape)
				}
			}
		})
	}
}

func TestRunFailuresRerunAndRecord(t *testing.T) {
	_, inputs := corpus(t, names...)
	out := t.TempDir()
	var log bytes.Buffer
	f := &fake{}
	sum, err := Run(context.Background(), f, inputs, Options{OutDir: out, Workers: 2, Record: testRecord(), Progress: &log})
	require.NoError(t, err)
	assert.Equal(t, []int{8, 7, 0, 1 + 2 + 3 + 2 + 2 + 3 + 0}, []int{sum.Inputs, sum.Embedded, sum.Skipped, sum.Clips})
	bad := inputs[1].Path
	require.Equal(t, "bad.wav", filepath.Base(bad))
	require.Len(t, sum.Failures, 1)
	assert.Equal(t, bad, sum.Failures[0].Path)
	assert.Contains(t, log.String(), "FAILED decode "+bad+": not audio")
	assert.Contains(t, log.String(), "warning: "+filepath.Join(filepath.Dir(bad), "sub/deep/gggg.wav")+": 0.5 s of audio is shorter than one clip (0.975 s): empty output, shape (0, 128); --tail pad or repeat keeps a clip")
	assert.Contains(t, log.String(), "8 files: 7 embedded")
	// Under a tail policy only audio that resampling leaves empty gives no clip: the hint says so.
	padded := testRecord()
	padded.Settings.Tail = spec.Pad
	var padLog bytes.Buffer
	_, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: t.TempDir(), Workers: 2, Record: padded, Progress: &padLog})
	require.NoError(t, err)
	assert.Contains(t, padLog.String(), "gggg.wav: 0.5 s of audio is shorter than one clip (0.975 s): empty output, shape (0, 128); not one sample is left once resampled to 16 kHz")

	b, err := os.ReadFile(filepath.Join(out, "vggish-errors.jsonl"))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf(`{"path":%q,"error":"decode %s: not audio","kind":"format"}`+"\n", bad, bad), string(b))
	var rec Record
	b, err = os.ReadFile(filepath.Join(out, "vggish-run.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rec))
	assert.Equal(t, Settings{WeightsSHA256: "abc", Variant: "towhee", Postprocess: "none", Hop: 0.96, Format: NPY, DType: "float32"}, rec.Settings)
	assert.Equal(t, []int{8, 7, 0, 1, sum.Clips, 2}, []int{rec.Inputs, rec.Embedded, rec.Skipped, rec.Failed, rec.Clips, rec.FilesInFlight})
	require.NotNil(t, rec.Finished)

	// A rerun embeds only the failed file; once it works, the failure list goes.
	f.calls.Store(0)
	sum, err = Run(context.Background(), f, inputs, Options{OutDir: out, Record: testRecord()})
	require.NoError(t, err)
	assert.Equal(t, int32(1), f.calls.Load())
	assert.Equal(t, 7, sum.Skipped)
	assert.Len(t, sum.Failures, 1)
	fixed := &fake{failOn: func(string) bool { return false }}
	sum, err = Run(context.Background(), fixed, inputs, Options{OutDir: out, Record: testRecord()})
	require.NoError(t, err)
	assert.Equal(t, []int{1, 7, 0}, []int{sum.Embedded, sum.Skipped, len(sum.Failures)})
	assert.NoFileExists(t, filepath.Join(out, "vggish-errors.jsonl"))

	// --overwrite redoes everything.
	fixed.calls.Store(0)
	_, err = Run(context.Background(), fixed, inputs, Options{OutDir: out, Overwrite: true, Record: testRecord()})
	require.NoError(t, err)
	assert.Equal(t, int32(8), fixed.calls.Load())
}

func TestRunRefusesOtherSettings(t *testing.T) {
	_, inputs := corpus(t, "a.wav")
	out := t.TempDir()
	_, err := Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: testRecord()})
	require.NoError(t, err)
	other := testRecord()
	other.Settings.Variant = "torchvggish"
	_, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: other})
	assert.ErrorContains(t, err, "other settings (vggish-run.json, format npy: variant towhee, now torchvggish)")
	_, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: other, Overwrite: true})
	assert.NoError(t, err)
	// Format and pool choose files, not numbers.
	_, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: other, Format: JSONL, Pool: Mean})
	assert.NoError(t, err)
}

// --overwrite is scoped to what it writes: overwriting the JSONL outputs with new settings does not
// make the NPY outputs, made with the old ones, look done to a run with the new settings.
func TestOverwriteScopedToItsFormat(t *testing.T) {
	_, inputs := corpus(t, "a.wav")
	out := t.TempDir()
	_, err := Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: testRecord()})
	require.NoError(t, err)
	other := testRecord()
	other.Settings.Hop = 0.5
	_, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: other, Format: JSONL})
	assert.ErrorContains(t, err, "other settings (vggish-run.json, format npy: hop_seconds 0.96, now 0.5)")
	_, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: other, Format: JSONL, Overwrite: true})
	require.NoError(t, err)
	f := &fake{}
	_, err = Run(context.Background(), f, inputs, Options{OutDir: out, Record: other})
	assert.ErrorContains(t, err, "other settings (vggish-run.json, format npy: hop_seconds 0.96, now 0.5)", "the npy outputs are the old settings'")
	assert.Zero(t, f.calls.Load())
	_, err = Run(context.Background(), f, inputs, Options{OutDir: out, Record: other, Overwrite: true})
	require.NoError(t, err)
	assert.Equal(t, int32(1), f.calls.Load(), "redone")
	_, err = Run(context.Background(), f, inputs, Options{OutDir: out, Record: other, Format: JSONL})
	require.NoError(t, err, "both formats have the new settings now")
	assert.Equal(t, int32(1), f.calls.Load(), "skipped")
}

// A pool held in the files (npz, jsonl, csv) is a setting of theirs: a rerun with another one is
// refused, as with another hop, rather than skipping files that lack it. In npy the pool is a file of
// its own, written where it is missing.
func TestRunRefusesOtherPool(t *testing.T) {
	tests := []struct {
		format   Format
		was, now Pool
		want     string // the difference refused; "" when the rerun goes on
	}{
		{NPZ, NoPool, Max, "format npz: pool none, now max"},
		{JSONL, NoPool, Mean, "format jsonl: pool none, now mean"},
		{CSV, Mean, Max, "format csv: pool mean, now max"},
		{JSONL, Mean, NoPool, "format jsonl: pool mean, now none"},
		{NPY, NoPool, Mean, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %q then %q", tt.format, tt.was, tt.now), func(t *testing.T) {
			_, inputs := corpus(t, "a.wav")
			out := t.TempDir()
			_, err := Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Format: tt.format, Pool: tt.was, Record: testRecord()})
			require.NoError(t, err)
			f := &fake{}
			_, err = Run(context.Background(), f, inputs, Options{OutDir: out, Format: tt.format, Pool: tt.now, Record: testRecord()})
			if tt.want == "" {
				require.NoError(t, err)
				assert.Equal(t, int32(1), f.calls.Load(), "the pooled file was missing")
				return
			}
			assert.ErrorContains(t, err, "other settings (vggish-run.json, "+tt.want+"); rerun with --overwrite")
			assert.Zero(t, f.calls.Load())
			_, err = Run(context.Background(), f, inputs, Options{OutDir: out, Format: tt.format, Pool: tt.now, Record: testRecord(), Overwrite: true})
			require.NoError(t, err)
			assert.Equal(t, int32(1), f.calls.Load(), "redone")
		})
	}
}

// After an --overwrite in one format, the outputs of each format are checked against their own
// settings (other_formats): those of the other format are resumed, not refused.
func TestRunResumesEachFormatWithItsSettings(t *testing.T) {
	_, inputs := corpus(t, "a.wav")
	out := t.TempDir()
	steps := []struct {
		format    Format
		hop       float64
		overwrite bool
		want      string // the refusal; "" for none
		calls     int32
	}{
		{NPY, 0.96, false, "", 1},
		{JSONL, 0.96, false, "", 1},
		{JSONL, 0.5, true, "", 1},
		{NPY, 0.96, false, "", 0}, // the npy outputs, as they were made
		{NPY, 0.5, false, "format npy: hop_seconds 0.96, now 0.5", 0},
		{JSONL, 0.5, false, "", 0},
		{JSONL, 0.96, false, "format jsonl: hop_seconds 0.5, now 0.96", 0},
		{CSV, 0.96, false, "format jsonl: hop_seconds 0.5, now 0.96", 0}, // a new format agrees with every one
	}
	for i, s := range steps {
		rec := testRecord()
		rec.Settings.Hop = s.hop
		f := &fake{}
		_, err := Run(context.Background(), f, inputs, Options{OutDir: out, Format: s.format, Record: rec, Overwrite: s.overwrite})
		if s.want == "" {
			require.NoError(t, err, "step %d", i)
		} else {
			assert.ErrorContains(t, err, "other settings (vggish-run.json, "+s.want+")", "step %d", i)
		}
		assert.Equal(t, s.calls, f.calls.Load(), "step %d", i)
	}
}

// An --overwrite with new settings that does not redo every input (interrupted, or failing an input
// whose old output stays) leaves outputs of both settings: its record keeps the old ones (replacing),
// and a run without --overwrite is refused until an --overwrite has redone everything.
func TestRunRefusesAfterInterruptedOverwrite(t *testing.T) {
	for _, shard := range []Shard{{}, {0, 2}} {
		t.Run(RecordName(shard), func(t *testing.T) {
			_, inputs := corpus(t, names...)
			var kept string // a good input of the shard, failed by one step
			for _, in := range shard.Select(inputs) {
				if !strings.Contains(in.Path, "bad") {
					kept = in.Path
				}
			}
			out := t.TempDir()
			steps := []struct {
				name      string
				hop       float64
				overwrite bool
				interrupt bool   // at the third file
				fail      string // another input that fails
				want      string // the refusal; "" for none
				replacing []float64
			}{
				{"first run", 0.96, false, false, "", "", nil},
				{"overwrite interrupted", 0.5, true, true, "", "", []float64{0.96}},
				{"new settings refused", 0.5, false, false, "", "holds outputs of an --overwrite that was interrupted (" + RecordName(shard) + ", format npy: hop_seconds 0.96, now 0.5), some of them still with the old settings; rerun with --overwrite", []float64{0.96}},
				{"old settings refused", 0.96, false, false, "", "other settings (" + RecordName(shard) + ", format npy: hop_seconds 0.5, now 0.96)", []float64{0.96}},
				{"another overwrite interrupted", 0.7, true, true, "", "", []float64{0.96}},
				{"an old output left by a failure", 0.5, true, false, kept, "", []float64{0.96}},
				{"every input redone", 0.5, true, false, "", "", nil},
				{"resumed", 0.5, false, false, "", "", nil},
			}
			for _, s := range steps {
				rec := testRecord()
				rec.Settings.Hop = s.hop
				ctx, cancel := context.WithCancel(context.Background())
				f := &fake{failOn: func(p string) bool { return strings.Contains(p, "bad") || p == s.fail }}
				if s.interrupt {
					f.onCall = func(n int32) {
						if n == 3 {
							cancel()
						}
					}
				}
				sum, err := Run(ctx, f, inputs, Options{OutDir: out, Shard: shard, Workers: 1, Record: rec, Overwrite: s.overwrite})
				cancel()
				switch {
				case s.want != "":
					assert.ErrorContains(t, err, s.want, s.name)
					assert.Zero(t, f.calls.Load(), s.name)
				case s.interrupt:
					assert.ErrorIs(t, err, ErrInterrupted, s.name)
				default:
					require.NoError(t, err, s.name)
				}
				if s.name == "resumed" {
					assert.Equal(t, []int{len(shard.Select(inputs)) - 1, 0}, []int{sum.Skipped, sum.Embedded}, "all but bad.wav done")
				}
				recs, err := readRecords(out)
				require.NoError(t, err)
				require.Len(t, recs, 1)
				var hops []float64
				for _, r := range recs[0].rec.Replacing {
					assert.Equal(t, NPY, r.Format)
					hops = append(hops, r.Hop)
				}
				assert.Equal(t, s.replacing, hops, s.name)
			}
		})
	}
}

// A record without a precision (written before there was a choice) is fp32's.
func TestRunRefusesOtherPrecision(t *testing.T) {
	_, inputs := corpus(t, "a.wav")
	out := t.TempDir()
	_, err := Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: testRecord()})
	require.NoError(t, err)
	rec := testRecord()
	rec.Settings.Precision = "fp32"
	_, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: rec})
	require.NoError(t, err)
	rec = testRecord()
	rec.Settings.Precision = "bf16"
	_, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: rec})
	assert.ErrorContains(t, err, "other settings (vggish-run.json, format npy: precision fp32, now bf16)")
}

func TestRunStdoutInInputOrder(t *testing.T) {
	_, inputs := corpus(t, names...)
	var good []Input
	for _, in := range inputs {
		if !strings.Contains(in.Path, "bad") {
			good = append(good, in)
		}
	}
	t.Run("show", func(t *testing.T) {
		var out bytes.Buffer
		_, err := Run(context.Background(), &fake{jitter: true}, inputs, Options{Stdout: &out, Workers: 4})
		require.NoError(t, err)
		var want strings.Builder
		for _, in := range good {
			want.WriteString(in.Path + " " + fakeEmbeddings(in.Path).String() + "\n")
		}
		assert.Equal(t, want.String(), out.String())
	})
	t.Run("jsonl", func(t *testing.T) {
		var out bytes.Buffer
		_, err := Run(context.Background(), &fake{jitter: true}, inputs, Options{Stdout: &out, Format: JSONL, Pool: Max, Workers: 4})
		require.NoError(t, err)
		sc := bufio.NewScanner(&out)
		sc.Buffer(nil, 1<<20)
		var paths []string
		for sc.Scan() {
			var rec jsonRecord
			require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
			paths = append(paths, rec.Path)
			if rec.Shape[0] == 0 {
				assert.Nil(t, rec.Max, "no clips: null pool")
				assert.Equal(t, []float64{}, rec.Starts)
			}
		}
		require.Len(t, paths, len(good))
		for i, in := range good {
			assert.Equal(t, in.Path, paths[i])
		}
	})
	t.Run("csv has one header", func(t *testing.T) {
		var out bytes.Buffer
		_, err := Run(context.Background(), &fake{}, inputs, Options{Stdout: &out, Format: CSV, Workers: 2})
		require.NoError(t, err)
		rows, err := csv.NewReader(&out).ReadAll()
		require.NoError(t, err)
		clips := 0
		for _, in := range good {
			clips += fakeEmbeddings(in.Path).Rows()
		}
		assert.Len(t, rows, 1+clips)
		assert.Equal(t, "path", rows[0][0])
	})
}

func TestRunRejects(t *testing.T) {
	root, inputs := corpus(t, "x/a.wav", "x/a.mp3", "b.wav")
	touch(t, root, "b.max.npy")
	b := filepath.Join(root, "b.wav")
	one := []Input{{Path: b, Rel: "b.wav"}}
	links := t.TempDir()
	hard, sym := filepath.Join(links, "hard.npy"), filepath.Join(links, "sym.npy")
	require.NoError(t, os.Link(b, hard))
	require.NoError(t, os.Symlink(b, sym))
	outDir := t.TempDir()
	require.NoError(t, os.Link(b, filepath.Join(outDir, "b.npy")))
	stdout, err := os.OpenFile(b, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	defer stdout.Close()
	stdin := []Input{{Path: "-", Rel: "-", Stdin: true}}
	tests := []struct {
		name string
		o    Options
		in   []Input
		want string
	}{
		{"two outputs", Options{OutDir: root, Output: "x.npy"}, inputs, "exactly one of"},
		{"no output", Options{}, inputs, "exactly one of"},
		{"npy on stdout for many", Options{Stdout: &bytes.Buffer{}, Format: NPY}, inputs, "npy on standard output holds one input's array, not 3"},
		{"npy on stdout with a pool", Options{Stdout: &bytes.Buffer{}, Format: NPY, Pool: Mean}, one, "a pool needs an output file"},
		{"standard input into a folder", Options{OutDir: t.TempDir(), Stdin: &bytes.Buffer{}}, stdin, "standard input has no name"},
		{"standard input without Stdin", Options{Stdout: &bytes.Buffer{}}, stdin, "no Stdin"},
		{"output is the input", Options{Output: b, Format: NPY}, one, "output " + b + " is the input " + b + ": refusing"},
		{"output is a hard link to the input", Options{Output: hard}, one, "output " + hard + " is the input " + b + " (the same file through a link)"},
		{"output is a symbolic link to the input", Options{Output: sym}, one, "output " + sym + " is the input " + b + " (the same file through a link)"},
		{"the pool's output is the input", Options{Output: filepath.Join(root, "b.npy"), Pool: Max}, []Input{{Path: filepath.Join(root, "b.max.npy"), Rel: "b.max.npy"}},
			"output " + filepath.Join(root, "b.max.npy") + " is the input"},
		{"an output in the folder is a link to an input", Options{OutDir: outDir}, one, "output " + filepath.Join(outDir, "b.npy") + " is the input " + b},
		{"output is a read-only file", Options{Output: hard, ReadOnly: []string{b}}, []Input{{Path: filepath.Join(root, "x/a.wav")}}, "is the input " + b},
		{"standard output appends to the input", Options{Stdout: stdout}, one, "standard output is the input " + b},
		{"standard input is the output", Options{Output: b, Format: NPY, Stdin: stdout}, stdin, "output " + b + " is the input -"},
		{"show to files", Options{OutDir: root, Format: Show}, inputs, "show prints on standard output"},
		{"unknown format", Options{OutDir: root, Format: "avro"}, inputs, `format "avro": want npy, npz, jsonl, csv or parquet`},
		{"parquet on stdout", Options{Stdout: &bytes.Buffer{}, Format: Parquet}, inputs, "parquet writes parts holding many inputs: it needs an output folder"},
		{"parquet without a record", Options{OutDir: t.TempDir(), Format: Parquet}, inputs, "parquet needs a run record"},
		{"negative part size", Options{OutDir: t.TempDir(), Format: Parquet, Record: testRecord(), PartSize: -1}, inputs, "want positive values"},
		{"unknown pool", Options{OutDir: root, Pool: "median"}, inputs, `pool "median"`},
		{"one output for many", Options{Output: "x.npy"}, inputs, "an output file takes one input, not 3"},
		{"colliding outputs", Options{OutDir: t.TempDir()}, inputs, "would both be written to"},
		{"an output inside another", Options{OutDir: outDir},
			[]Input{{Path: filepath.Join(root, "x.wav"), Rel: "x.wav"}, {Path: filepath.Join(root, "x.npy/y.wav"), Rel: "x.npy/y.wav"}},
			"inputs " + filepath.Join(root, "x.wav") + " and " + filepath.Join(root, "x.npy/y.wav") + " would be written to " +
				filepath.Join(outDir, "x.npy") + " and " + filepath.Join(outDir, "x.npy/y.npy") + ", inside it"},
		{"colliding keys", Options{OutDir: t.TempDir(), Format: Parquet, Record: testRecord()},
			[]Input{{Path: filepath.Join(root, "b.wav"), Rel: "b.wav"}, {Path: filepath.Join(root, "x/b.wav"), Rel: "b.wav"}},
			"inputs " + b + " and " + filepath.Join(root, "x/b.wav") + " would both be stored as b.wav in "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.o.Record != nil || tt.o.Format != Parquet { // Check comes before there is a record
				assert.ErrorContains(t, tt.o.Check(tt.in), tt.want, "Check")
			}
			f := &fake{}
			_, err := Run(context.Background(), f, tt.in, tt.o)
			assert.ErrorContains(t, err, tt.want)
			assert.Zero(t, f.calls.Load(), "nothing embedded")
		})
	}
	info, err := os.Stat(b)
	require.NoError(t, err)
	assert.Zero(t, info.Size(), "the input is untouched")
}

// Only a regular file is a finished output: an input whose output path is a folder fails clearly,
// and a rerun tries it again instead of skipping it as done.
func TestRunFolderAtOutputIsNotDone(t *testing.T) {
	_, inputs := corpus(t, "a.wav", "bb.wav")
	out := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(out, "a.npy"), 0o755))
	for run := range 2 {
		sum, err := Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: testRecord()})
		require.NoError(t, err, "run %d", run)
		assert.Equal(t, []int{run, 1 - run}, []int{sum.Skipped, sum.Embedded}, "bb.wav done, then skipped; a.wav tried each time (run %d)", run)
		require.Len(t, sum.Failures, 1, "run %d", run)
		assert.Equal(t, KindOutput, sum.Failures[0].Kind)
		assert.Contains(t, sum.Failures[0].Error, "npy "+filepath.Join(out, "a.npy")+": not a regular file: it is a folder")
		assert.FileExists(t, filepath.Join(out, ErrorsName(Shard{})), "run %d", run)
	}
}

// A shard removes the temporary files a killed run of its own left, and leaves other shards' alone:
// they may be being written.
func TestRunRemovesItsStaleTemps(t *testing.T) {
	_, inputs := corpus(t, names...)
	out := t.TempDir()
	shard := Shard{Index: 0, Count: 2}
	var mine, theirs []string
	for _, in := range inputs {
		tmp := filepath.Join(out, filepath.Dir(in.Rel), "."+strings.TrimSuffix(filepath.Base(in.Rel), filepath.Ext(in.Rel))+".npy.123456.tmp")
		touch(t, out, must(filepath.Rel(out, tmp)))
		if shard.Contains(in) {
			mine = append(mine, tmp)
		} else {
			theirs = append(theirs, tmp)
		}
	}
	require.NotEmpty(t, mine)
	require.NotEmpty(t, theirs)
	_, err := Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Shard: shard, Record: testRecord()})
	require.NoError(t, err)
	assert.ElementsMatch(t, theirs, tempFiles(t, out))
	assert.FileExists(t, filepath.Join(out, "vggish-run.0-of-2.json"))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestRunInterrupted(t *testing.T) {
	_, inputs := corpus(t, names...)
	out := t.TempDir()
	f := &fake{block: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	sum, err := Run(ctx, f, inputs, Options{OutDir: out, Workers: 2, Record: testRecord()})
	require.ErrorIs(t, err, ErrInterrupted)
	// The two files in the workers' hands are named: one that hangs its decoder is found so.
	assert.Regexp(t, `^interrupted after 0 of 8 files; unfinished: /\S+\.wav, /\S+\.wav$`, err.Error())
	assert.Equal(t, 0, sum.Embedded)
	assert.Empty(t, sum.Failures, "interrupted files are not failures")
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// The record, and the locks' files, which stay (the kernel releases the locks themselves).
	assert.ElementsMatch(t, []string{"vggish-run.json", ".vggish.lock", ".vggish-run.lock"}, names)
}

func TestProgress(t *testing.T) {
	_, inputs := corpus(t, names...)
	var log syncBuffer
	f := &fake{block: make(chan struct{})}
	go func() { // the files wait for the first line
		defer close(f.block)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !strings.Contains(log.String(), "\n"); {
			time.Sleep(time.Millisecond)
		}
	}()
	_, err := Run(context.Background(), f, inputs, Options{Stdout: &bytes.Buffer{}, Progress: &log, Interval: 5 * time.Millisecond})
	require.NoError(t, err)
	assert.Contains(t, log.String(), "0/8 files, 0 clips, 0.0 clips/s\n")
	assert.NotContains(t, log.String(), "\x1b[", "no terminal control off a terminal")
}

// cursorUp is what mpb writes before redrawing: cursor up N lines, erase below.
var cursorUp = regexp.MustCompile(`\x1b\[\d+A\x1b\[J`)

// On a terminal, a bar is redrawn in place, and messages printed while it runs are whole lines
// above it: every line is a bar or a message, never a mix.
func TestProgressBar(t *testing.T) {
	_, inputs := corpus(t, names...)
	var log syncBuffer
	f := &fake{jitter: true, block: make(chan struct{})}
	go func() { // the files wait for the bar to be drawn
		defer close(f.block)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !strings.Contains(log.String(), "0/8 files"); {
			time.Sleep(time.Millisecond)
		}
	}()
	_, err := Run(context.Background(), f, inputs, Options{OutDir: t.TempDir(), Record: testRecord(), Workers: 2, Progress: &log, Terminal: true, Interval: time.Millisecond})
	require.NoError(t, err)
	out := log.String()
	require.Regexp(t, cursorUp, out, "redrawn in place")
	var bars, messages int
	for _, line := range strings.Split(cursorUp.ReplaceAllString(out, ""), "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, " [") && strings.Contains(line, "/8 files"):
			bars++
			assert.Regexp(t, `^ \[[=>-]+\] \d/8 files( \(\d failed\))?, \d+ clips, [0-9.]+ clips/s(, ETA \w+)?\s*$`, line)
		case strings.HasPrefix(line, "FAILED "), strings.HasPrefix(line, "warning: "):
			messages++
		case strings.HasPrefix(line, "8 files: 7 embedded"), strings.HasPrefix(line, "  failed: "), strings.HasPrefix(line, "failures listed in "):
			// the summary, after the bar
		default:
			t.Errorf("torn line: %q", line)
		}
	}
	assert.Positive(t, bars)
	assert.Equal(t, 2, messages, "the failure and the warning")
	assert.Contains(t, out, "] 8/8 files (1 failed)", "the last bar drawn is complete")
}

// syncBuffer is a bytes.Buffer safe for the progress display's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A failure's kind comes from the error's type, through any wrapping: the decoder's typed errors, the
// file system's, the output's, a panic, and anything else the model's.
func TestFailureKinds(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.wav")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	decodeErr := func(path string) error {
		_, err := decode.Open(path)
		require.Error(t, err)
		return fmt.Errorf("wrapped: %w", err)
	}
	for _, c := range []struct {
		name    string
		err     error
		written bool
		want    Kind
	}{
		{"empty file", decodeErr(empty), false, KindFormat},
		{"missing file", decodeErr(filepath.Join(dir, "missing.wav")), false, KindIO},
		{"unsupported", &decode.UnsupportedError{Name: "x.wav", Err: errors.New("sample rate 2 Hz is out of range")}, false, KindUnsupported},
		{"model", errors.New("vggish x.wav: libtorch: CUDA out of memory"), false, KindModel},
		{"output", &os.PathError{Op: "write", Path: "out/x.npy", Err: errors.New("disk quota exceeded")}, true, KindOutput},
		{"panic", fmt.Errorf("x: %w", &panicError{value: "bug"}), true, KindPanic},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, kindOf(c.err, c.written), c.err.Error())
		})
	}
}
