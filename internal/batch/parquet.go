package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/vggish-go/vggish/internal/atomicfile"
	"github.com/vggish-go/vggish/vggish"
)

// Parquet parts: the output of a corpus job, for the tools that read embeddings at scale.
//
// A run writes its clips to parts in OutDir, clips.NNNNN.parquet (a shard's are
// clips.I-of-N.NNNNN.parquet: the shards of a job write disjoint files), zstd-compressed, one row
// per clip: path (string, the input as named, escaped: EscapePath), clip (int32, the clip's index in its file), start
// (double, seconds) and embedding (a list of 128 float, or with Uint8 of 128 UINT_8). With a pool,
// each part has a companion mean.NNNNN.parquet (or max.) with one row per input: path, clips
// (int32) and mean (or max: a list of 128 float, null for an input without clips). The pooled
// vectors are a table of their own because they are one per file, not per clip: in the clips'
// rows they would have to be repeated on every row or mixed in as rows that every query over
// clips must filter out, and the file table also shows the inputs that gave no clip.
//
// A part is written through temporary files. It is committed once it holds about PartSize bytes,
// has been open PartTime, or the run ends: its footers are written, the run record is rewritten to
// list it with the inputs it holds, and then its files are renamed into place. A part is complete
// when a record lists it and all its files exist. A rerun skips the inputs held in the complete
// parts of every run record in the folder, clears what a killed run of its own shard left
// (temporary files, the files of a listed part not renamed whole) and numbers its new parts after
// its own earlier ones, so every input ends up in exactly one part.

const (
	defaultPartSize = 256 << 20
	defaultPartTime = 10 * time.Minute
	// rowGroupRows bounds the clips a part holds in memory before writing them out: 8 MB of
	// float32 vectors.
	rowGroupRows = 16384
	clipsKind    = "clips"
	settingsKey  = "vggish.settings" // a part's key-value metadata: the run's Settings as JSON
)

// Part is a committed Parquet part, as the run record lists it.
type Part struct {
	File   string   `json:"file"`             // the clips, e.g. clips.2-of-4.00003.parquet
	Pooled string   `json:"pooled,omitempty"` // the pooled vectors, e.g. mean.2-of-4.00003.parquet
	Clips  int      `json:"clips"`
	Inputs []string `json:"inputs"` // the key (Input.Rel, escaped: EscapePath) of each input it holds, those without clips included
}

// files lists the part's files, the one that completes it last.
func (p Part) files() []string {
	if p.Pooled == "" {
		return []string{p.File}
	}
	return []string{p.Pooled, p.File}
}

func partName(kind string, s Shard, n int) string {
	return fmt.Sprintf("%s%s.%05d.parquet", kind, shardSuffix(s), n)
}

// partPattern matches the file names of shard s's parts; the submatch is the part's number.
func partPattern(s Shard) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + clipsKind + `|` + string(Mean) + `|` + string(Max) + `)` +
		regexp.QuoteMeta(shardSuffix(s)) + `\.(\d+)\.parquet$`)
}

// clipRow is a row of a clips part. T is float32, or int32 holding quantised values (written as
// UINT_8: parquet-go v0.32.0 writes a list of Go uint8 as empty lists).
type clipRow[T float32 | int32] struct {
	Path string `parquet:"path,dict"`
	// Channel is the channel of the streams of --channels each (clip and start count within it), null
	// for the one stream of mixed audio.
	Channel   *int32  `parquet:"channel,optional"`
	Clip      int32   `parquet:"clip"`
	Start     float64 `parquet:"start"`
	Embedding []T     `parquet:"embedding,list"`
}

// pooledRow is a row of a pooled part; the vector's column is named after the pool.
type pooledRow struct {
	Path    string    `parquet:"path"`
	Channel *int32    `parquet:"channel,optional"` // as clipRow's
	Clips   int32     `parquet:"clips"`
	Vector  []float32 `parquet:"vector,optional,list"`
}

var (
	// Byte-stream-split puts the bytes of the floats' exponents together, where zstd finds
	// something to compress.
	floatSchema = parquet.NewSchema("vggish_clips", parquet.SchemaOf(clipRow[float32]{},
		parquet.StructTag(`parquet:"embedding,list" parquet-element:",split"`, "Embedding")))
	uint8Schema = parquet.NewSchema("vggish_clips", parquet.SchemaOf(clipRow[int32]{},
		parquet.StructTag(`parquet:"embedding,list" parquet-element:",uint(8)"`, "Embedding")))
	zstdCodec = &zstd.Codec{Level: zstd.SpeedDefault}
)

// pooledOptions name the vector's column after the pool: in the schema, and in the mapping of
// pooledRow to it.
func pooledOptions(pool Pool) []parquet.WriterOption {
	rename := parquet.StructTag(reflect.StructTag(`parquet:"`+string(pool)+`,optional,list"`), "Vector")
	return []parquet.WriterOption{rename, parquet.NewSchema("vggish_pooled", parquet.SchemaOf(pooledRow{}, rename))}
}

// clipRows are the rows of e's clips, data being e.Data or its quantised values: a stream's, or each
// channel's in turn with the streams of Each.
func clipRows[T float32 | int32](path string, e *vggish.Embeddings, data []T) []clipRow[T] {
	rows := make([]clipRow[T], 0, e.Rows())
	eachChannel(e, func(c *int, ce *vggish.Embeddings) error {
		ch := channelOf(c)
		for i := range ce.Rows() {
			v := data[len(rows)*vggish.EmbeddingSize : (len(rows)+1)*vggish.EmbeddingSize]
			rows = append(rows, clipRow[T]{Path: path, Channel: ch, Clip: int32(i), Start: ce.Starts[i], Embedding: v})
		}
		return nil
	})
	return rows
}

// pooledRows are the rows of e's pooled vectors: one, or one per channel with the streams of Each.
func pooledRows(path string, e *vggish.Embeddings, pool Pool) []pooledRow {
	var rows []pooledRow
	eachChannel(e, func(c *int, ce *vggish.Embeddings) error {
		rows = append(rows, pooledRow{Path: path, Channel: channelOf(c), Clips: int32(ce.Rows()), Vector: pool.of(ce)})
		return nil
	})
	return rows
}

// channelOf is the channel column's value: null for a stream that is not a channel's.
func channelOf(c *int) *int32 {
	if c == nil {
		return nil
	}
	v := int32(*c)
	return &v
}

// clipWriter writes the clip rows of one element type.
type clipWriter interface {
	add(path string, e *vggish.Embeddings, data []int32) error
	Close() error
}

type floatClips struct {
	*parquet.GenericWriter[clipRow[float32]]
}

func (w floatClips) add(path string, e *vggish.Embeddings, _ []int32) error {
	_, err := w.Write(clipRows(path, e, e.Data))
	return err
}

type uint8Clips struct {
	*parquet.GenericWriter[clipRow[int32]]
}

func (w uint8Clips) add(path string, e *vggish.Embeddings, data []int32) error {
	_, err := w.Write(clipRows(path, e, data))
	return err
}

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// part is the Parquet part being written.
type part struct {
	meta       Part
	opened     time.Time
	clipsFile  *atomicfile.File
	clipsOut   *counter
	clips      clipWriter
	pooledFile *atomicfile.File // nil without a pool
	pooled     *parquet.GenericWriter[pooledRow]
}

// parquetSink writes results to Parquet parts as they arrive (see Part).
type parquetSink struct {
	o        Options
	settings string // JSON, in each part's metadata
	rec      *Record
	next     int // the number of the next part
	release  func()
	cancel   context.CancelFunc

	mu     sync.Mutex
	open   *part
	done   int // inputs in the parts committed by this run
	clips  int // their clips
	failed error
}

func (s *parquetSink) init(release func(), cancel context.CancelFunc) {
	s.release, s.cancel = release, cancel
}

func (s *parquetSink) put(_ int, in Input, e *vggish.Embeddings) error {
	defer s.release()
	if e == nil {
		return nil
	}
	// Values are converted before anything is written, so that a value error fails the input
	// alone and never leaves part of it in a part.
	var quantised []int32
	if s.o.Uint8 {
		q, err := e.Uint8()
		if err != nil {
			return fmt.Errorf("output %s: %w", in.Path, err)
		}
		quantised = make([]int32, len(q))
		for i, v := range q {
			quantised[i] = int32(v)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return errStopped
	}
	_, err := protect(func() (any, error) {
		err := s.add(in, e, quantised)
		if err == nil && s.full() {
			err = s.commit()
		}
		return nil, err
	})
	if err != nil {
		s.stop(err)
		return errStopped // the part's fault, not the input's
	}
	return nil
}

// stop ends the run on a failure to write the open part, which is lost: its inputs are done again
// by a rerun.
func (s *parquetSink) stop(err error) {
	if s.open != nil { // after a panic
		s.abandon()
	}
	if _, panicked := err.(*panicError); !panicked {
		err = &Fault{Err: err, Done: s.done, clips: s.clips}
	}
	s.failed = err
	s.cancel()
}

// add writes an input's rows to the open part, opening one if needed. An error leaves the part
// unusable: the caller abandons the run.
func (s *parquetSink) add(in Input, e *vggish.Embeddings, quantised []int32) error {
	if s.open == nil {
		p, err := s.openPart()
		if err != nil {
			return err
		}
		s.open = p
	}
	p := s.open
	path := EscapePath(in.Path)
	err := p.clips.add(path, e, quantised)
	if err == nil && p.pooled != nil {
		_, err = p.pooled.Write(pooledRows(path, e, s.o.Pool))
	}
	if err != nil {
		s.abandon()
		return fmt.Errorf("Parquet part %s: %w", filepath.Join(s.o.OutDir, p.meta.File), err)
	}
	p.meta.Inputs = append(p.meta.Inputs, EscapePath(in.Rel))
	p.meta.Clips += e.Rows()
	return nil
}

// full reports whether the open part has reached its size or age: the bytes written out, and an
// estimate of the row group still in memory.
func (s *parquetSink) full() bool {
	p := s.open
	clipBytes := 4 * vggish.EmbeddingSize
	if s.o.Uint8 {
		clipBytes = vggish.EmbeddingSize
	}
	size := p.clipsOut.n + int64(p.meta.Clips%rowGroupRows*clipBytes)
	return size >= s.o.PartSize || time.Since(p.opened) >= s.o.PartTime
}

func (s *parquetSink) openPart() (*part, error) {
	n := s.next
	s.next++
	p := &part{meta: Part{File: partName(clipsKind, s.o.Shard, n)}, opened: time.Now()}
	opts := []parquet.WriterOption{parquet.Compression(zstdCodec), parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.KeyValueMetadata(settingsKey, s.settings)}
	f, err := atomicfile.Create(filepath.Join(s.o.OutDir, p.meta.File), 0o644)
	if err != nil {
		return nil, fmt.Errorf("Parquet part: %w", err)
	}
	p.clipsFile, p.clipsOut = f, &counter{w: f}
	if s.o.Uint8 {
		p.clips = uint8Clips{parquet.NewGenericWriter[clipRow[int32]](p.clipsOut, append(opts, uint8Schema)...)}
	} else {
		p.clips = floatClips{parquet.NewGenericWriter[clipRow[float32]](p.clipsOut, append(opts, floatSchema)...)}
	}
	if s.o.Pool != NoPool {
		p.meta.Pooled = partName(string(s.o.Pool), s.o.Shard, n)
		if p.pooledFile, err = atomicfile.Create(filepath.Join(s.o.OutDir, p.meta.Pooled), 0o644); err != nil {
			p.clipsFile.Abort()
			return nil, fmt.Errorf("Parquet part: %w", err)
		}
		p.pooled = parquet.NewGenericWriter[pooledRow](p.pooledFile, append(opts, pooledOptions(s.o.Pool)...)...)
	}
	return p, nil
}

// commit ends the open part: footers written, the record lists it, then its files are renamed into
// place, the clips last.
func (s *parquetSink) commit() error {
	p := s.open
	err := p.clips.Close()
	if err == nil && p.pooled != nil {
		err = p.pooled.Close()
	}
	if err == nil {
		s.rec.Parts = append(s.rec.Parts, p.meta)
		if err = writeRecord(filepath.Join(s.o.OutDir, RecordName(s.o.Shard)), s.rec); err != nil {
			s.rec.Parts = s.rec.Parts[:len(s.rec.Parts)-1]
		}
	}
	if err == nil && p.pooledFile != nil {
		err = p.pooledFile.Commit()
	}
	if err == nil {
		if err = p.clipsFile.Commit(); err != nil && p.pooledFile != nil {
			removeIfExists(filepath.Join(s.o.OutDir, p.meta.Pooled)) // the next run would not know it
		}
	}
	if err != nil {
		s.abandon()
		return fmt.Errorf("Parquet part %s: %w (its %d inputs are embedded again by a rerun)",
			filepath.Join(s.o.OutDir, p.meta.File), err, len(p.meta.Inputs))
	}
	s.open = nil
	s.done += len(p.meta.Inputs)
	s.clips += p.meta.Clips
	return nil
}

// abandon removes what is left of the open part's files.
func (s *parquetSink) abandon() {
	p := s.open
	s.open = nil
	p.clipsFile.Abort()
	if p.pooledFile != nil {
		p.pooledFile.Abort()
	}
	if n := len(s.rec.Parts); n > 0 && s.rec.Parts[n-1].File == p.meta.File {
		s.rec.Parts = s.rec.Parts[:n-1]
	}
}

// close commits the part in progress: what was written before an interruption is kept.
func (s *parquetSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open != nil && s.failed == nil {
		if err := s.commit(); err != nil {
			s.stop(err)
		}
	}
	return s.failed
}

// prepareParts decides what is left to do in a Parquet output folder holding the run records
// recs: the inputs held in complete parts are done. It clears what a killed run of this shard
// left, or with Overwrite every part of this shard.
func (r *run) prepareParts(recs []namedRecord, selected []Input) error {
	o := r.o
	own := RecordName(o.Shard)
	mine := partPattern(o.Shard)
	if o.Overwrite {
		if err := r.checkOverwriteParts(recs, selected); err != nil {
			return err
		}
	}
	done := map[string]string{} // input -> the part holding it
	listed := map[string]bool{}
	next := 0
	for _, nr := range recs {
		if len(nr.rec.Parts) > 0 && !o.Overwrite {
			if got := nr.rec.Settings; got.Pool != o.Pool || got.DType != r.settings().DType {
				return fmt.Errorf("%s holds Parquet parts with pool %q and dtype %s (%s), not %q and %s: the parts of a folder must agree; use another output folder",
					o.OutDir, got.Pool, got.DType, nr.name, o.Pool, r.settings().DType)
			}
		}
		for _, p := range nr.rec.Parts {
			complete := r.complete(p)
			if nr.name == own {
				for _, f := range p.files() {
					listed[f] = true
				}
				if m := mine.FindStringSubmatch(p.File); m != nil {
					n, _ := strconv.Atoi(m[1])
					next = max(next, n+1)
				}
				if o.Overwrite || !complete {
					for _, f := range p.files() {
						if err := removeIfExists(filepath.Join(o.OutDir, f)); err != nil {
							return fmt.Errorf("output folder %s: %w", o.OutDir, err)
						}
					}
					continue
				}
				r.rec.Parts = append(r.rec.Parts, p)
			}
			if complete {
				for _, in := range p.Inputs {
					done[in] = p.File
				}
			}
		}
	}
	entries, err := os.ReadDir(o.OutDir)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("output folder %s: %w", o.OutDir, err)
	}
	for _, e := range entries {
		if !mine.MatchString(e.Name()) || listed[e.Name()] {
			continue
		}
		if !o.Overwrite {
			return fmt.Errorf("%s is not listed in %s, so the inputs it holds are unknown: remove it, or rerun with --overwrite to redo this shard",
				filepath.Join(o.OutDir, e.Name()), filepath.Join(o.OutDir, own))
		}
		if err := removeIfExists(filepath.Join(o.OutDir, e.Name())); err != nil {
			return fmt.Errorf("output folder %s: %w", o.OutDir, err)
		}
	}
	isMine := func(path string) bool {
		dir, name := filepath.Split(path)
		return filepath.Clean(dir) == filepath.Clean(o.OutDir) && (mine.MatchString(name) || name == own || name == ErrorsName(o.Shard))
	}
	if err := removeTemps(o.OutDir, isMine); err != nil {
		return err
	}
	for _, in := range selected {
		if _, ok := done[EscapePath(in.Rel)]; ok {
			r.skipped++
			continue
		}
		r.todo = append(r.todo, in)
	}
	r.sum.Skipped = r.skipped
	b, err := json.Marshal(r.settings())
	if err != nil {
		return err
	}
	r.sink = &parquetSink{o: o, settings: string(b), rec: r.rec, next: next}
	return nil
}

// complete reports whether all the files of part p, listed in a record, exist.
func (r *run) complete(p Part) bool {
	for _, f := range p.files() {
		if _, err := os.Stat(filepath.Join(r.o.OutDir, f)); err != nil {
			return false
		}
	}
	return true
}

// checkOverwriteParts refuses an --overwrite that would lose inputs it does not redo, before anything
// is removed: a part of this shard is replaced whole, so every input it holds must be given again (a
// part cannot be rewritten without some of them), and an input held by another run's part would end
// up in two parts.
func (r *run) checkOverwriteParts(recs []namedRecord, selected []Input) error {
	o := r.o
	given := map[string]string{} // key -> path
	for _, in := range selected {
		given[EscapePath(in.Rel)] = in.Path
	}
	for _, nr := range recs {
		for _, p := range nr.rec.Parts {
			if !r.complete(p) {
				continue // a killed run's, whose inputs are not done
			}
			var missing []string
			for _, in := range p.Inputs {
				path, ok := given[in]
				switch {
				case nr.name != RecordName(o.Shard) && ok:
					return fmt.Errorf("--overwrite: %s is held by %s, a part of another run of the folder (other shards): remove that run's parts and record, or use another output folder", path, filepath.Join(o.OutDir, p.File))
				case nr.name == RecordName(o.Shard) && !ok:
					missing = append(missing, in)
				}
			}
			if len(missing) > 0 {
				slices.Sort(missing)
				names := strings.Join(missing[:min(3, len(missing))], ", ")
				if len(missing) > 3 {
					names += fmt.Sprintf(" and %d more", len(missing)-3)
				}
				return fmt.Errorf("--overwrite replaces a run's Parquet parts whole, and %s holds inputs not given to this run (%s): give them too, or embed these inputs into another output folder",
					filepath.Join(o.OutDir, p.File), names)
			}
		}
	}
	return nil
}
