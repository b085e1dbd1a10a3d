package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/regfile"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
	"github.com/vggish-go/vggish/weights"
)

// resampler names the resampling every output went through, for the run record.
const resampler = "resampy kaiser_best (vggish-go: polyphase filter bank in torch, Go port for uncommon rates)"

var postprocessModes = map[string]vggish.Postprocess{"none": vggish.NoPostprocess, "pca": vggish.PCA, "pca-quantize": vggish.PCAQuantize}

const embedUsage = `usage: vggish embed [flags] INPUT...

Embeds audio. INPUTs are files, folders (searched recursively for audio files; hidden names skipped),
quoted filepath.Glob patterns ("**" is not recursive: name the folder), or - for audio on standard
input, read as it arrives (WAV natively, anything else through ffmpeg):

  ffmpeg -i talk.mp4 -f wav - | vggish embed -
  vggish embed --output - talk.wav | python3 -c 'import io, sys, numpy; print(numpy.load(io.BytesIO(sys.stdin.buffer.read())))'

Each file is embedded once, in sorted order. Without --output or --out-dir each file's result is printed
the way a Towhee pipeline's show() does: PATH [v0, v1, ...] shape=(N, 128). --output - writes the result
to standard output in --format (npy, the default, for one input; jsonl or csv for any number).

An INPUT named on the command line that does not exist, matches nothing, or is neither a regular file
nor a folder stops the command before any work (exit status 2): a typo is best fixed first. What
--files-from lists and what folders hold are data: an entry that is missing, unreadable or not a
regular file (a named pipe, a device) fails alone, like a corrupt file, and the others go on.

With --out-dir DIR, input a/b.wav (its path under the deepest folder holding every input: a single
folder argument is its own root) is written to DIR/a/b.npy, or .npz, .jsonl or .csv; inputs that would share
an output (b.wav and b.mp3) are refused. Each output is written to a temporary file and renamed, and a
rerun skips the inputs whose outputs exist, so an interrupted or killed run is finished by running it
again. DIR also gets vggish-run.json (weights sha256, settings, versions, device, counts) and, when
files fail, vggish-errors.jsonl ({"path", "error"} per line); a shard's are vggish-run.I-of-N.json and
vggish-errors.I-of-N.jsonl. One run writes DIR at a time (the shards of a job side by side): a
second is refused, naming the first. Files under DIR named like outputs (.npy, .npz, .jsonl, .csv, .parquet, run
records, temporary files) are never taken as inputs. Audio shorter than one clip (0.975 s) gives an
empty (0, 128) output and a warning, unless --tail pad or repeat makes a clip of it. Every format but
npy carries each clip's start in seconds: npz as "timestamps" beside "embedding" (OpenL3's layout),
jsonl as "starts", csv in the start column.

With --format parquet, DIR gets Parquet parts instead, each holding many files' clips:
clips.NNNNN.parquet (a shard's: clips.I-of-N.NNNNN.parquet), a row per clip with columns path,
clip, start and embedding (128 float, or uint8 with --quantize), and with --pool mean.NNNNN.parquet
(or max.), a row per file with path, clips and the pooled vector. A part is committed when it
reaches --part-size or --part-time, and at the end; the run record lists the files each part holds,
and a rerun skips them. A killed run loses the part in progress: its files are embedded again.
Query all parts at once, e.g. in DuckDB: SELECT count(*) FROM 'DIR/clips.*.parquet'.

No output is ever written over an input, --weights, --pca or --files-from, by name, through a link or
through a redirection of standard output: such a run is refused before any work. The first SIGINT
(Ctrl-C) or SIGTERM stops a run cleanly in any phase (reading the inputs, loading the weights,
decoding, embedding): outputs in progress are not written and ffmpeg ends with it; a second one kills
it at once.

Exit status: 0 when every input was embedded, 1 when some failed (or the run did), 2 for a wrong
command line (flags are checked before any work, and their ranges are given below).
`

func runEmbed(args []string, s stdio) error {
	fs := newFlags("embed", embedUsage)
	model := addModelFlags(fs)
	net := addNetFlags(fs)
	var (
		framework = fs.String("framework", "pytorch", "weights framework, as the Towhee operator's argument (only pytorch)")
		quantize  = fs.Bool("quantize", false, "write uint8 values (npy arrays, parquet lists); implies --postprocess pca-quantize")
		output    = fs.String("output", "", "write the result of a single input to `FILE`, or - for standard output (format from its extension unless --format;\nnpy for -)")
		outDir    = fs.String("out-dir", "", "write one output per input to `DIR`, mirroring the inputs' folders, with vggish-run.json and,\nif files fail, vggish-errors.jsonl; inputs whose outputs exist are skipped")
		format    = fs.String("format", "", "npy (N×128 array per file), npz (arrays embedding and timestamps per file), jsonl (a record per file: path,\nstarts, embeddings), csv (path,start,v0..v127 per clip) or, with --out-dir, parquet (parts holding many files' clips);\nwithout --output/--out-dir: show (default), jsonl, csv, or npy for one input, on stdout")
		pool      = fs.String("pool", "", "also write a per-file mean or max vector (npy: NAME.mean.npy; npz: array mean/max; jsonl: a \"mean\"/\"max\" field;\ncsv/show: a row with start \"mean\"/\"max\"; parquet: mean.NNNNN.parquet beside each part)")
		partSize  = fs.String("part-size", "256MiB", "with --format parquet: commit a part once it holds about `SIZE` (e.g. 64MB, 1GiB)")
		partTime  = fs.Duration("part-time", 10*time.Minute, "with --format parquet: commit a part once it has been open this long (a killed run loses at most the part in progress)")
		filesFrom = fs.String("files-from", "", "read more inputs from `FILE` (a file or a pipe), one per line (- for standard input)")
		overwrite = fs.Bool("overwrite", false, "with --out-dir: redo inputs whose outputs exist")
		shardFlag = fs.String("shard", "", "embed only shard `I/N` of the inputs, 0 <= I < N (default from $JOB_COMPLETION_INDEX with --num-shards or $VGGISH_NUM_SHARDS,\nor $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT); a file's shard is sha256(its relative path) mod N")
		numShards = fs.Int("num-shards", 0, "number of shards, at least 1, with an index from the environment")
	)
	inputs, err := fs.parse(args, s.out)
	if err != nil {
		return err
	}

	// Every flag is checked before any work.
	for _, c := range []struct {
		bad bool
		msg string
	}{
		{len(inputs) == 0 && *filesFrom == "", "no inputs: name files, folders or patterns, - for standard input, or --files-from LIST"},
		{fs.set("num-shards") && *numShards < 1, fmt.Sprintf("--num-shards %d: want at least 1", *numShards)},
		{*framework != "pytorch", fmt.Sprintf("--framework %q: want pytorch (vggish-go runs the pytorch weights)", *framework)},
		{*output != "" && *outDir != "", "give --output or --out-dir, not both"},
		{*filesFrom == "-" && slices.Contains(inputs, batch.StdinArg), "audio (-) and --files-from - cannot both come from standard input"},
		{*partTime <= 0, fmt.Sprintf("--part-time %s: want a positive duration", *partTime)},
		// Flags that would be silently ignored: the user meant something that would not happen.
		{(fs.set("part-size") || fs.set("part-time")) && *format != string(batch.Parquet), "--part-size and --part-time size Parquet parts: they need --format parquet"},
		{*overwrite && *outDir == "", "--overwrite redoes the outputs of an output folder: it needs --out-dir (--output is always written)"},
		{vggish.Precision(*net.precision) == vggish.FP16 && !onCUDA(*model.device),
			fmt.Sprintf("--precision fp16 runs on CUDA only (libtorch's CPU kernels lack float16 convolutions), and --device %s is the CPU here: use bf16", *model.device)},
	} {
		if c.bad {
			return fs.misuse("%s", c.msg)
		}
	}
	vopts, err := model.options(fs, s)
	if err != nil {
		return err
	}
	if err := net.apply(fs, *quantize, &vopts); err != nil {
		return err
	}
	partBytes, err := humanize.ParseBytes(*partSize)
	if err != nil || partBytes == 0 || partBytes > math.MaxInt64 {
		return fs.misuse("--part-size %s: want a size such as 256MiB, 1 byte to 8 EiB", *partSize)
	}
	readOnly := modelFiles(vopts.WeightsPath, *net.pca) // files no output may be written over, besides the inputs
	if *filesFrom != "" && *filesFrom != "-" {
		if err := checkList(*filesFrom); err != nil {
			return fs.asMisuse(err)
		}
		readOnly = append(readOnly, *filesFrom)
	}
	opts := batch.Options{
		OutDir: *outDir, Output: *output, Format: batch.Format(*format), Pool: batch.Pool(*pool),
		Uint8: *quantize, Overwrite: *overwrite, Progress: s.err, Terminal: isTerminal(s.err),
		PartSize: int64(partBytes), PartTime: *partTime, Stdin: s.in, ReadOnly: readOnly,
	}
	stdinAudio := slices.Contains(inputs, batch.StdinArg)
	switch {
	case *output == "-" || (*output == "" && *outDir == ""):
		opts.Output, opts.Stdout = "", s.out
		if *output == "-" && opts.Format == "" {
			opts.Format = batch.NPY
		}
		// A progress line redrawn in place would tear the results printed on the same terminal.
		opts.Terminal = opts.Terminal && !isTerminal(s.out)
		out := ""
		if opts.Format == batch.NPY {
			out = "-" // binary
		}
		in := ""
		if stdinAudio {
			in = "-"
		}
		if err := checkStreams(in, out, s); err != nil {
			return fs.asMisuse(err)
		}
	case *output != "" && opts.Format == "":
		opts.Format = batch.Format(strings.TrimPrefix(strings.ToLower(filepath.Ext(*output)), "."))
	}
	if stdinAudio && opts.Stdout == nil {
		if err := checkStreams("-", "", s); err != nil {
			return fs.asMisuse(err)
		}
	}
	if opts.Shard, err = batch.ShardFromEnv(*shardFlag, *numShards, os.Getenv); err != nil {
		return fs.asMisuse(err)
	}

	// The first interrupt stops the run cleanly, whatever it is doing; a second one kills the process
	// as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	var listed []string
	if *filesFrom != "" {
		if listed, err = interruptible(ctx, "reading "+*filesFrom, func() ([]string, error) { return readList(*filesFrom, s.in) }, nil); err != nil {
			return err
		}
	}
	files, err := batch.Expand(ctx, inputs, listed, func(w string) { fmt.Fprintf(s.err, "warning: %s\n", w) })
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w while listing the inputs", batch.ErrInterrupted)
		}
		return fs.asMisuse(err)
	}
	if err := opts.Check(files); err != nil {
		return fs.asMisuse(err)
	}

	type loaded struct {
		m   *vggish.Model
		rec *batch.Record
	}
	l, err := interruptible(ctx, "loading the weights", func() (loaded, error) {
		var sum func(string) (string, error)
		if opts.OutDir != "" {
			sum = hashing(vopts.WeightsPath)
		}
		m, err := vggish.New(ctx, vopts)
		if err != nil || opts.OutDir == "" {
			return loaded{m: m}, err
		}
		rec, err := record(m, args, sum)
		if err != nil {
			m.Close()
			return loaded{}, err
		}
		return loaded{m, rec}, nil
	}, func(l loaded) { l.m.Close() })
	if err != nil {
		return downloadHint(err)
	}
	defer l.m.Close()
	for _, w := range l.m.Warnings() {
		fmt.Fprintf(s.err, "warning: %s\n", w)
	}
	opts.Record = l.rec
	sum, err := batch.Run(ctx, l.m, files, opts)
	if err != nil {
		return err
	}
	if n := len(sum.Failures); n > 0 {
		return fmt.Errorf("%d of %d files failed", n, sum.Inputs)
	}
	return nil
}

// interruptible runs fn and returns its result, or ErrInterrupted as soon as ctx ends: what fn waits
// on (a pipe, a slow disk, libtorch) cannot be interrupted, and a signal must not wait for it. A result
// that comes too late is handed to discard, if not nil.
func interruptible[T any](ctx context.Context, what string, fn func() (T, error), discard func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil && discard != nil {
				discard(r.v)
			}
		}()
		var zero T
		return zero, fmt.Errorf("%w while %s", batch.ErrInterrupted, what)
	}
}

// checkList refuses a --files-from that cannot be a list: missing, a folder, a device or a socket. A
// regular file or a pipe (a named one, or a shell's <(...)) is read.
func checkList(path string) error {
	if info, err := os.Stat(path); err == nil && info.Mode()&iofs.ModeNamedPipe != 0 {
		return nil
	}
	if err := regfile.Require(path); err != nil {
		return fmt.Errorf("--files-from %s: %w", path, err)
	}
	return nil
}

// modelFiles are the files a model reads, given or published (where they would be downloaded): no
// output may be written over them.
func modelFiles(weightsPath, pcaPath string) []string {
	var files []string
	for _, f := range []struct {
		given string
		file  weights.File
	}{{weightsPath, weights.Model}, {pcaPath, weights.PCA}} {
		if f.given != "" {
			files = append(files, f.given)
		} else if p, err := (weights.Options{}).Path(f.file); err == nil {
			files = append(files, p)
		}
	}
	return files
}

// postprocessMode resolves --postprocess against the flags that imply it.
func postprocessMode(name, pca string, quantize bool) (vggish.Postprocess, error) {
	if name == "" {
		name = "none"
		if pca != "" || quantize {
			name = "pca-quantize"
		}
	}
	mode, ok := postprocessModes[name]
	switch {
	case !ok:
		return 0, fmt.Errorf("--postprocess %q: want none, pca or pca-quantize", name)
	case quantize && mode != vggish.PCAQuantize:
		return 0, fmt.Errorf("--quantize writes quantised values: it needs --postprocess pca-quantize, not %s", name)
	case pca != "" && mode == vggish.NoPostprocess:
		return 0, errors.New("--pca with --postprocess none: the PCA parameters would not be used")
	}
	return mode, nil
}

// record describes the model side of a run for batch.Record.
func record(m *vggish.Model, args []string, sha256 func(path string) (string, error)) (*batch.Record, error) {
	o := m.Options()
	r := &batch.Record{
		WeightsPath: o.WeightsPath, VggishGo: version(), Libtorch: torch.Version(), Gotch: torch.GotchVersion,
		Go: runtime.Version(), Device: m.Device(), BatchSize: o.BatchSize, Threads: torch.Threads(), Workers: o.Workers, Args: args,
		Settings: batch.Settings{Variant: string(o.Variant), Hop: o.Preprocess.Hop, Tail: o.Preprocess.Tail.String(),
			Channels: o.Channels.String(), Resampler: resampler, Precision: string(o.Precision)},
	}
	for name, mode := range postprocessModes {
		if mode == o.Postprocess {
			r.Settings.Postprocess = name
		}
	}
	var err error
	if r.Settings.WeightsSHA256, err = sha256(o.WeightsPath); err != nil {
		return nil, err
	}
	if o.Postprocess != vggish.NoPostprocess {
		r.PCAPath = o.PCAPath
		if r.Settings.PCASHA256, err = weights.SHA256(o.PCAPath); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// hashing starts weights.SHA256 of path in the background, for the run record: it reads the file while
// the model loads, on cores that are idle then, rather than after. The function it returns gives the
// sum of any path, waiting for path's.
func hashing(path string) func(string) (string, error) {
	if path == "" { // the published file, found by New
		return weights.SHA256
	}
	type result struct {
		sum string
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := weights.SHA256(path)
		done <- result{sum, err}
	}()
	return func(p string) (string, error) {
		if p != path {
			return weights.SHA256(p)
		}
		r := <-done
		return r.sum, r.err
	}
}

// readList reads input paths, one per line (blank lines ignored), from a file or "-" (stdin).
func readList(name string, stdin io.Reader) ([]string, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("--files-from: %w", err)
		}
		defer f.Close()
		r = f
	}
	var out []string
	// A Reader, not a Scanner: a line has no length limit here (a path too long is that entry's
	// failure, not the list's).
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line = strings.TrimRight(line, "\r\n"); strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("--files-from %s: %w", name, err)
		}
	}
}

// onCUDA reports whether a valid --device runs on CUDA: cuda or cuda:N, or auto where CUDA is there.
func onCUDA(device string) bool {
	d, err := torch.ParseDevice(device)
	if device == "auto" {
		return torch.CUDAAvailable()
	}
	return err == nil && d.IsCUDA()
}
