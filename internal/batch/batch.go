// Package batch embeds many audio files with one VGGish model: the engine of `vggish embed`.
//
// Run hands the files to a bounded pool of workers, each calling the model's EmbedFile: decoding and
// log-mel preprocessing run in the workers while the model's inference loop packs their examples
// into shared batches. Results are written as they complete, each output through a temporary file
// and a rename, so a killed run leaves no partial file, and a rerun skips the files whose outputs
// exist. In format Parquet the results go to parts holding many files each (see Part). A file that
// fails is reported and the run goes on. Shard splits a run across processes.
package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/atomicfile"
	"github.com/vggish-go/vggish/internal/regfile"
	"github.com/vggish-go/vggish/internal/spec"
	"github.com/vggish-go/vggish/vggish"
)

// Embedder computes a file's embeddings; *vggish.Model is one. It must be safe for concurrent use.
type Embedder interface {
	EmbedFile(ctx context.Context, path string) (*vggish.Embeddings, error)
}

// ReaderEmbedder is an Embedder that also embeds a stream (*vggish.Model is one): an input from
// standard input needs one.
type ReaderEmbedder interface {
	Embedder
	EmbedReader(ctx context.Context, r io.Reader, name string) (*vggish.Embeddings, error)
}

// Options configure Run. Exactly one of OutDir, Output, Stdout and Each says where results go.
type Options struct {
	// OutDir receives one output per input, mirroring the inputs' tree: input Rel "a/b.wav" is
	// written to OutDir/a/b.npy (or .jsonl, .csv), with a pool in NPY format also OutDir/a/b.mean.npy
	// (or .max.npy); in format Parquet it receives parts holding many inputs each (see Part). The
	// run's Record and failure list go there too (RecordName, ErrorsName). Inputs whose outputs all
	// exist are skipped unless Overwrite is set.
	OutDir string
	// Output is the file for a run of a single input (always written); a pool in NPY format goes to
	// its name with ".mean.npy" (".max.npy") in place of its extension.
	Output string
	// Stdout receives every file's result in input order: Show lines, JSONL records, or CSV rows
	// under one header; or the NPY array of a single input (no pool).
	Stdout io.Writer
	// Each is called with every file's embeddings in input order, one call at a time; an error stops
	// the run. Format and Pool do not apply.
	Each func(Input, *vggish.Embeddings) error
	// Stdin is the stream of the input read from standard input (Input.Stdin).
	Stdin io.Reader
	// ReadOnly lists other files the run reads (weights, lists of inputs): like the inputs, none may
	// be written.
	ReadOnly []string

	// Format defaults to NPY for files and Show for Stdout.
	Format Format
	// Pool adds a per-file vector (NPY: a second file; JSONL: a "mean" or "max" field; CSV and Show:
	// a row or line of its own; Parquet: a second file per part).
	Pool Pool
	// Uint8 writes NPY and NPZ arrays and Parquet lists as uint8 (quantised embeddings only).
	Uint8     bool
	Overwrite bool
	// PartSize and PartTime bound a Parquet part: it is committed once it holds about PartSize
	// bytes (default 256 MiB) or has been open for PartTime (default 10 minutes), so that a killed
	// run loses at most that much work.
	PartSize int64
	PartTime time.Duration
	// Workers is the number of files in progress at once (being decoded, or waiting for their clips to
	// be embedded); 0 means the embedder's Capacity() where it has one (a *vggish.Model: enough short
	// files to keep its batches full), else runtime.NumCPU(). Each is an open file (and with ffmpeg a
	// child's pipes): the number is bounded by the open-file limit (see filesInFlight).
	Workers int
	// Shard selects the part of the inputs this process embeds.
	Shard Shard
	// Record, with OutDir, describes the run (see Record); nil means none is written. Format
	// Parquet needs one: it lists the parts.
	Record *Record

	// Progress receives the progress line, warnings, failures and the closing summary; nil
	// discards them. Terminal redraws a single line in place; otherwise a line is written every
	// Interval (default 10 s).
	Progress io.Writer
	Terminal bool
	Interval time.Duration
}

// Summary is the outcome of a run.
type Summary struct {
	Inputs   int // in this shard
	Embedded int
	Skipped  int // outputs existed
	Clips    int // vectors computed
	Failures []Failure
	Elapsed  time.Duration
}

// Failure is a file that could not be embedded or written; ErrorsName files hold one per line.
type Failure struct {
	Path  string `json:"path"`
	Error string `json:"error"`
	// Kind says whose fault it is: the file's (KindFormat, KindUnsupported), the system's (KindIO,
	// KindOutput) or the program's (KindModel, KindPanic).
	Kind Kind `json:"kind"`
	// Stack is the goroutine's stack when processing the file panicked (a bug to report).
	Stack string `json:"stack,omitempty"`
}

// Kind classifies a Failure.
type Kind string

const (
	// KindFormat is an input that is not valid audio (a *decode.FormatError): corrupt, truncated,
	// not audio at all, or holding NaN samples.
	KindFormat Kind = "format"
	// KindUnsupported is audio that is not decoded here (a *decode.UnsupportedError): a sample rate
	// out of range, or a file that needs ffmpeg where ffmpeg is not installed.
	KindUnsupported Kind = "unsupported"
	// KindIO is an input that could not be opened or read (permissions, a vanished file, a failing
	// disk, anything but a regular file).
	KindIO Kind = "io"
	// KindOutput is an output that could not be written.
	KindOutput Kind = "output"
	// KindModel is a failure of the preprocessing or the network on audio that decoded: log-mel
	// values out of range, a libtorch error such as a GPU out of memory.
	KindModel Kind = "model"
	// KindPanic is a bug: processing the file panicked (Failure.Stack has the stack).
	KindPanic Kind = "panic"
)

// kindOf classifies err, a failure of embedding an input (written false) or of writing its output.
func kindOf(err error, written bool) Kind {
	var (
		format      *decode.FormatError
		unsupported *decode.UnsupportedError
		pathErr     *fs.PathError
		errno       syscall.Errno
		p           *panicError
	)
	switch {
	case errors.As(err, &p):
		return KindPanic
	case written:
		return KindOutput
	case errors.As(err, &format):
		return KindFormat
	case errors.As(err, &unsupported):
		return KindUnsupported
	case errors.As(err, &pathErr), errors.As(err, &errno), errors.Is(err, regfile.ErrNotRegular):
		// Anything but a regular file is refused unopened: it could not be read.
		return KindIO
	}
	return KindModel
}

// ErrInterrupted is returned (wrapped) when ctx is cancelled before every input is done.
var ErrInterrupted = errors.New("interrupted")

// Run embeds the inputs of o.Shard with m and writes the results as o says. A file that fails does
// not stop the run, even by panicking in m or in writing its output: it is listed in the Summary (and
// ErrorsName with OutDir). The error is for the run as a whole: bad options, colliding outputs, an
// output that is an input, an output folder made with other settings, a failed write to Stdout, a
// fault of the output folder (full, read-only, vanished: see Fault), or cancellation. Outputs written
// before the run stopped are complete, and a rerun finishes the rest.
//
// Files under OutDir named like the outputs of a run (any Format's extension, the run records and
// failure lists, temporary files) are not taken as inputs: a glob or a list over a tree that holds
// the output folder would otherwise pick up a run's outputs on the next run.
func Run(ctx context.Context, m Embedder, inputs []Input, o Options) (*Summary, error) {
	r, err := newRun(inputs, o)
	if err != nil {
		return nil, err
	}
	return r.run(ctx, m)
}

// run is one Run's state.
type run struct {
	o       Options
	todo    []Input
	targets func(Input) []string // as plan.targets
	skipped int
	sink    sink
	prog    *progress
	rec     *Record  // with OutDir and Options.Record
	lock    *dirLock // with OutDir: held for the run

	mu       sync.Mutex
	sum      Summary
	failures []Failure
	stopped  []string // inputs being embedded when the run was interrupted
}

// Check reports whether the options can write the results of the inputs, none of them over an input,
// so that a caller can fail before loading a model; Run checks them too.
func (o Options) Check(inputs []Input) error {
	_, err := o.plan(inputs)
	return err
}

// plan is what a run writes, worked out from the options and the inputs.
type plan struct {
	o        Options // defaults filled in
	all      []Input // every shard's inputs, less the run's own outputs
	selected []Input // this shard's
	ignored  int     // inputs that are outputs
	// targets lists the files written for an input (with OutDir: not the record and failure list).
	targets func(Input) []string
}

// plan checks the options and the inputs and works out the outputs, reading the file system only.
func (o Options) plan(inputs []Input) (*plan, error) {
	o, err := o.withDefaults(inputs)
	if err != nil {
		return nil, err
	}
	p := &plan{o: o, all: inputs}
	switch {
	case o.Output != "":
		p.targets = func(Input) []string { return targets(o.Output, o.Format, o.Pool) }
	case o.OutDir != "":
		p.all = nil
		outDir := absPath(o.OutDir)
		for _, in := range inputs {
			if ownOutput(in, outDir) {
				p.ignored++
				continue
			}
			p.all = append(p.all, in)
		}
		p.targets = func(in Input) []string {
			stem := strings.TrimSuffix(in.Rel, path.Ext(in.Rel))
			return targets(filepath.Join(o.OutDir, filepath.FromSlash(stem))+"."+string(o.Format), o.Format, o.Pool)
		}
		if o.Format == Parquet { // parts hold many inputs each: no file is an input's own
			p.targets = func(Input) []string { return nil }
		}
		if err := p.checkCollisions(); err != nil {
			return nil, err
		}
	}
	p.selected = o.Shard.Select(p.all)
	if err := p.checkOverwrite(); err != nil {
		return nil, err
	}
	return p, nil
}

// checkCollisions checks that no two inputs (of any shard) share a key or an output, and that no
// output would be written inside another.
func (p *plan) checkCollisions() error {
	o := p.o
	keyed := map[string]string{}
	for _, in := range p.all {
		if prev, ok := keyed[in.Rel]; ok {
			return fmt.Errorf("inputs %s and %s would both be stored as %s in %s (a file found in a folder is named by its path under the folder, a file named directly by its path as named): rename one, or embed them in separate runs",
				prev, in.Path, in.Rel, o.OutDir)
		}
		keyed[in.Rel] = in.Path
	}
	owner := map[string]string{
		filepath.Join(o.OutDir, RecordName(o.Shard)): "the run record",
		filepath.Join(o.OutDir, ErrorsName(o.Shard)): "the failure list",
	}
	for _, in := range p.all {
		for _, t := range p.targets(in) {
			if prev, ok := owner[t]; ok {
				return fmt.Errorf("inputs %s and %s would both be written to %s: rename one, or embed them in separate runs", prev, in.Path, t)
			}
			owner[t] = in.Path
		}
	}
	// An output cannot be the folder of another: x.npy of x.wav and x.npy/y.npy of x.npy/y.wav.
	for _, in := range p.all {
		for _, t := range p.targets(in) {
			for d := filepath.Dir(t); d != filepath.Dir(d); d = filepath.Dir(d) {
				if prev, ok := owner[d]; ok {
					return fmt.Errorf("inputs %s and %s would be written to %s and %s, inside it: rename one, or embed them in separate runs", prev, in.Path, d, t)
				}
			}
		}
	}
	return nil
}

func (o Options) withDefaults(inputs []Input) (Options, error) {
	n := len(inputs)
	dests := 0
	for _, set := range []bool{o.OutDir != "", o.Output != "", o.Stdout != nil, o.Each != nil} {
		if set {
			dests++
		}
	}
	if dests != 1 {
		return o, errors.New("batch: want exactly one of an output folder, an output file, standard output and a function")
	}
	if o.Each != nil {
		o.Format, o.Pool = "", NoPool
	} else if o.Format == "" {
		o.Format = NPY
		if o.Stdout != nil {
			o.Format = Show
		}
	}
	switch {
	case o.Format == Show && o.Stdout == nil:
		return o, errors.New("format show prints on standard output: choose npy, npz, jsonl, csv or parquet for files")
	case o.Format == NPZ && o.Stdout != nil:
		return o, fmt.Errorf("format %s needs an output file or folder", o.Format)
	case o.Format == NPY && o.Stdout != nil && n != 1:
		return o, fmt.Errorf("format npy on standard output holds one input's array, not %d: use an output folder, or jsonl or csv", n)
	case o.Format == NPY && o.Stdout != nil && o.Pool != NoPool:
		return o, errors.New("format npy on standard output holds one array: a pool needs an output file (or npz, jsonl or csv)")
	case o.Format != Show && o.Each == nil && !slices.Contains(Formats, o.Format):
		return o, fmt.Errorf("format %q: want npy, npz, jsonl, csv or parquet", o.Format)
	case o.Format == Parquet && o.OutDir == "":
		return o, errors.New("format parquet writes parts holding many inputs: it needs an output folder")
	case o.PartSize < 0 || o.PartTime < 0:
		return o, fmt.Errorf("part size %d and part time %s: want positive values, or 0 for the defaults", o.PartSize, o.PartTime)
	case o.Pool != NoPool && o.Pool != Mean && o.Pool != Max:
		return o, fmt.Errorf("pool %q: want mean or max", o.Pool)
	case o.Output != "" && n != 1:
		return o, fmt.Errorf("an output file takes one input, not %d: use an output folder", n)
	case o.OutDir != "" && slices.ContainsFunc(inputs, func(in Input) bool { return in.Stdin }):
		return o, errors.New("standard input has no name to write under an output folder: use an output file or standard output")
	case o.Stdin == nil && slices.ContainsFunc(inputs, func(in Input) bool { return in.Stdin }):
		return o, errors.New("batch: an input from standard input, and no Stdin")
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.PartSize == 0 {
		o.PartSize = defaultPartSize
	}
	if o.PartTime == 0 {
		o.PartTime = defaultPartTime
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
		if o.Terminal {
			o.Interval = 250 * time.Millisecond
		}
	}
	return o, nil
}

func newRun(inputs []Input, o Options) (*run, error) {
	p, err := o.plan(inputs)
	if err != nil {
		return nil, err
	}
	o = p.o
	if o.Format == Parquet && o.Record == nil {
		return nil, errors.New("batch: format parquet needs a run record: it lists the inputs of each part")
	}
	r := &run{o: o, targets: p.targets}
	r.sum.Inputs = len(p.selected)
	if o.OutDir != "" && o.Record != nil {
		r.rec = r.newRecord()
	}
	switch {
	case o.Stdout != nil || o.Each != nil:
		r.todo = p.selected
		r.sink = &stream{w: o.Stdout, each: o.Each, format: o.Format, pool: o.Pool, uint8: o.Uint8, pending: map[int]result{}}
	case o.Output != "":
		r.todo = p.selected
		r.sink = newFiles(o, p.targets)
	default:
		if r.lock, err = lockOutDir(o.OutDir, o.Shard); err != nil {
			return nil, err
		}
		if err := r.prepareOutDir(p); err != nil {
			r.lock.unlock()
			return nil, err
		}
	}
	r.prog = &progress{w: o.Progress, terminal: o.Terminal, total: len(r.todo), skipped: r.skipped}
	if p.ignored > 0 {
		r.prog.logf("ignoring %d inputs under %s named like the outputs of a run (%s, run records, locks, temporary files)", p.ignored, o.OutDir, outputExts())
	}
	return r, nil
}

// targets lists the files written for an output named main: main, then with a pool in NPY format
// the pooled vector's file.
func targets(main string, format Format, pool Pool) []string {
	t := []string{main}
	if format == NPY && pool != NoPool {
		t = append(t, strings.TrimSuffix(main, filepath.Ext(main))+"."+string(pool)+".npy")
	}
	return t
}

// prepareOutDir checks that earlier runs in the folder had the same settings, removes temporary files
// left by a killed run of this shard, and skips the inputs that are done.
func (r *run) prepareOutDir(p *plan) error {
	o := r.o
	recs, err := readRecords(o.OutDir)
	if err != nil {
		return err
	}
	if o.Record != nil && !o.Overwrite {
		if err := checkSettings(o.OutDir, recs, r.settings()); err != nil {
			return err
		}
	}
	for _, nr := range recs {
		if nr.name == RecordName(o.Shard) && r.rec != nil {
			r.rec.Others, r.rec.Replacing = others(&nr.rec, o.Format), nr.rec.Replacing
		}
	}
	if o.Overwrite && r.rec != nil {
		r.rec.Replacing = replacing(recs, r.rec.Replacing, r.settings())
	}
	if o.Format == Parquet {
		return r.prepareParts(recs, p.selected)
	}
	for _, nr := range recs {
		if nr.name == RecordName(o.Shard) && len(nr.rec.Parts) > 0 && r.rec != nil {
			// Its record would no longer list them.
			return fmt.Errorf("%s holds Parquet parts listed in %s: write format %s to another folder", o.OutDir, nr.name, o.Format)
		}
	}
	// Temporary files are found by their stem: the target's name, or a shortened form of a long one.
	stem := func(t string) string { return filepath.Join(filepath.Dir(t), atomicfile.Stem(filepath.Base(t))) }
	mine := map[string]bool{stem(filepath.Join(o.OutDir, RecordName(o.Shard))): true, stem(filepath.Join(o.OutDir, ErrorsName(o.Shard))): true}
	for _, in := range p.selected {
		for _, t := range p.targets(in) {
			mine[stem(t)] = true
		}
	}
	if err := removeTemps(o.OutDir, func(stemPath string) bool { return mine[stemPath] }); err != nil {
		return err
	}
	for _, in := range p.selected {
		if !o.Overwrite && allExist(p.targets(in)) {
			r.skipped++
			continue
		}
		r.todo = append(r.todo, in)
	}
	r.sum.Skipped = r.skipped
	r.sink = newFiles(o, p.targets)
	return nil
}

func (r *run) settings() Settings {
	s := r.o.Record.Settings
	s.Format, s.Pool, s.DType = r.o.Format, r.o.Pool, "float32"
	if r.o.Uint8 && (r.o.Format == NPY || r.o.Format == NPZ || r.o.Format == Parquet) {
		s.DType = "uint8"
	}
	return s
}

// allExist reports whether every one of paths is a finished output: a regular file. Anything else in
// its place (a folder) is not one, and writing there fails the input clearly.
func allExist(paths []string) bool {
	for _, p := range paths {
		if regfile.Require(p) != nil {
			return false
		}
	}
	return true
}

// removeTemps deletes the temporary files under dir that were to become a file that mine accepts
// (mine is given the temporary file's folder joined with its stem, atomicfile.Stem of its target's
// name: the name itself unless it is long): a run killed mid-write leaves them behind. Other shards'
// files are left alone, as they may be being written right now.
func removeTemps(dir string, mine func(path string) bool) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return filepath.SkipAll
			}
			return err
		}
		if t := atomicfile.TempStem(d.Name()); t != "" && !d.IsDir() && mine(filepath.Join(filepath.Dir(p), t)) {
			return removeIfExists(p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("output folder %s: %w", dir, err)
	}
	return nil
}

func (r *run) run(ctx context.Context, m Embedder) (*Summary, error) {
	defer r.lock.unlock()
	if r.o.Workers <= 0 {
		r.o.Workers = runtime.NumCPU()
		if c, ok := m.(interface{ Capacity() int }); ok {
			r.o.Workers = c.Capacity()
		}
	}
	r.o.Workers = min(r.o.Workers, filesInFlight())
	start := time.Now()
	o := r.o
	rec := r.rec
	if rec != nil {
		rec.Started, rec.FilesInFlight = start, o.Workers
		if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
			return nil, fmt.Errorf("output folder: %w", err)
		}
		if err := writeRecord(filepath.Join(o.OutDir, RecordName(o.Shard)), rec); err != nil {
			return nil, err
		}
	}
	if r.skipped > 0 {
		r.prog.logf("skipping %d of %d files whose outputs exist in %s (--overwrite to redo them)", r.skipped, r.sum.Inputs, o.OutDir)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Slots bound the files between being handed out and being written: with Stdout, results wait
	// for their predecessors, so a slow file holds at most a few per worker behind it.
	slots := make(chan struct{}, 4*o.Workers)
	release := func() { <-slots }
	r.sink.init(release, cancel)
	work := make(chan int)
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r.embed(ctx, m, i)
			}
		}()
	}
	r.prog.begin(start, o.Interval)
feed:
	for i := range r.todo {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	sinkErr := r.sink.close()
	r.prog.finish()
	r.sum.Elapsed = time.Since(start)
	slices.SortFunc(r.failures, func(a, b Failure) int { return strings.Compare(a.Path, b.Path) })
	r.sum.Failures = r.failures

	var errs []error
	if sinkErr != nil {
		if fault := (*Fault)(nil); errors.As(sinkErr, &fault) {
			fault.Inputs = len(r.todo)
			// Embedded and Clips count what was written: not a Parquet part lost to the fault.
			r.sum.Embedded, r.sum.Clips = fault.Done, fault.clips
		}
		errs = append(errs, sinkErr)
	} else if err := ctx.Err(); err != nil {
		done := r.sum.Embedded + len(r.failures)
		errs = append(errs, fmt.Errorf("%w after %d of %d files%s", ErrInterrupted, done, len(r.todo), r.unfinished()))
	}
	if o.OutDir != "" {
		errs = append(errs, r.writeFailures())
		if rec != nil {
			end := time.Now()
			rec.Finished = &end
			rec.Embedded, rec.Skipped, rec.Failed, rec.Clips = r.sum.Embedded, r.sum.Skipped, len(r.failures), r.sum.Clips
			if r.replaced(sinkErr) {
				rec.Replacing = slices.DeleteFunc(rec.Replacing, func(s Settings) bool { return s.Format == o.Format })
			}
			errs = append(errs, writeRecord(filepath.Join(o.OutDir, RecordName(o.Shard)), rec))
		}
	}
	r.summarize()
	return &r.sum, errors.Join(errs...)
}

// unfinished names the inputs an interruption stopped, so that a file that hangs its decoder is
// found: "; unfinished: a.mp3, b.mp3 and 3 more".
func (r *run) unfinished() string {
	const named = 5
	slices.Sort(r.stopped)
	if len(r.stopped) == 0 {
		return ""
	}
	list := make([]string, 0, named)
	for _, p := range r.stopped[:min(len(r.stopped), named)] {
		list = append(list, EscapePath(p))
	}
	s := "; unfinished: " + strings.Join(list, ", ")
	if more := len(r.stopped) - named; more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// replaced reports whether the run, having ended with the sink's error sinkErr, redid every input and
// left no old outputs that a rerun would skip as done: an --overwrite that ends Record.Replacing.
func (r *run) replaced(sinkErr error) bool {
	if sinkErr != nil || r.sum.Embedded+len(r.failures) < len(r.todo) {
		return false
	}
	failed := map[string]bool{}
	for _, f := range r.failures {
		failed[f.Path] = true
	}
	for _, in := range r.todo {
		if failed[in.Path] && allExist(r.targets(in)) {
			return false // its old outputs are still there, to be skipped as done
		}
	}
	return true
}

func (r *run) newRecord() *Record {
	rec := *r.o.Record
	rec.Settings = r.settings()
	rec.Host, _ = os.Hostname()
	rec.Shard, rec.Inputs, rec.Parts = r.o.Shard.String(), r.sum.Inputs, nil
	// Paths as text, as everywhere in the outputs.
	rec.WeightsPath, rec.PCAPath = EscapePath(rec.WeightsPath), EscapePath(rec.PCAPath)
	rec.Args = escapeAll(rec.Args)
	return &rec
}

// embed embeds and writes input i.
func (r *run) embed(ctx context.Context, m Embedder, i int) {
	in := r.todo[i]
	e, err := protect(func() (*vggish.Embeddings, error) {
		switch {
		case in.Err != nil: // never opened
			return nil, in.Err
		case in.Stdin:
			rm, ok := m.(ReaderEmbedder)
			if !ok {
				return nil, fmt.Errorf("batch: %T cannot embed standard input", m)
			}
			return rm.EmbedReader(ctx, r.o.Stdin, in.Path)
		}
		return m.EmbedFile(ctx, in.Path)
	})
	if ctx.Err() != nil { // interrupted: neither done nor failed
		r.sink.put(i, in, nil)
		r.mu.Lock()
		r.stopped = append(r.stopped, in.Path)
		r.mu.Unlock()
		return
	}
	written := err == nil
	if err == nil {
		if e.Rows() == 0 {
			why := "--tail pad or repeat keeps a clip"
			if r.o.Record != nil && (r.o.Record.Settings.Tail == spec.Pad || r.o.Record.Settings.Tail == spec.Repeat) {
				why = "not one sample is left once resampled to 16 kHz" // a tail policy keeps anything longer
			}
			r.prog.logf("warning: %s: %.3g s of audio is shorter than one clip (0.975 s): empty output, shape (0, 128); %s", in.Path, e.Duration, why)
		}
		err = r.sink.put(i, in, e)
	} else {
		r.sink.put(i, in, nil)
	}
	var p *panicError
	switch {
	case errors.Is(err, errStopped): // the output folder's fault, not the file's: neither done nor failed
	case errors.As(err, &p):
		r.fail(Failure{Path: in.Path, Error: p.Error(), Kind: KindPanic, Stack: p.stack})
	case err != nil:
		r.fail(Failure{Path: in.Path, Error: err.Error(), Kind: kindOf(err, written)})
	default:
		r.mu.Lock()
		defer r.mu.Unlock()
		r.sum.Embedded++
		r.sum.Clips += e.Rows()
		r.prog.add(e.Rows(), false)
	}
}

// panicError is a panic while processing one input: a bug, which fails that input only.
type panicError struct {
	value any
	stack string
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// protect calls fn, turning a panic into a *panicError that keeps the stack.
func protect[T any](fn func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p, stack: string(debug.Stack())}
		}
	}()
	return fn()
}

// fail records a failed input.
func (r *run) fail(f Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, f)
	msg := f.Error
	if !strings.Contains(msg, f.Path) {
		msg = f.Path + ": " + msg
	}
	if f.Stack != "" {
		msg += " (a bug: please report it with the stack"
		if r.o.OutDir != "" {
			msg += " in " + filepath.Join(r.o.OutDir, ErrorsName(r.o.Shard))
		}
		msg += ")"
	}
	r.prog.logf("FAILED %s", msg)
	r.prog.add(0, true)
}

// writeFailures writes the failure list, or removes an earlier run's when nothing failed.
func (r *run) writeFailures() error {
	p := filepath.Join(r.o.OutDir, ErrorsName(r.o.Shard))
	if len(r.failures) == 0 {
		return removeIfExists(p)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	for _, f := range r.failures {
		f.Path = EscapePath(f.Path)
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	return writeAtomic(p, []byte(b.String()))
}

// summarize ends the progress output with the totals and the failures.
func (r *run) summarize() {
	s := &r.sum
	r.prog.logf("%d files: %d embedded (%d clips, %.1f clips/s), %d skipped, %d failed in %s",
		s.Inputs, s.Embedded, s.Clips, float64(s.Clips)/max(s.Elapsed.Seconds(), 1e-3), s.Skipped, len(s.Failures), s.Elapsed.Round(time.Millisecond))
	const shown = 20
	for i, f := range s.Failures {
		if i == shown {
			r.prog.logf("  ... and %d more", len(s.Failures)-shown)
			break
		}
		r.prog.logf("  failed: %s: %s", f.Path, f.Error)
	}
	if len(s.Failures) > 0 && r.o.OutDir != "" {
		r.prog.logf("failures listed in %s", filepath.Join(r.o.OutDir, ErrorsName(r.o.Shard)))
	}
}
