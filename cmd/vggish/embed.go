package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"golang.org/x/term"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
	"github.com/vggish-go/vggish/weights"
)

// resampler names the resampling every output went through, for the run record.
const resampler = "resampy kaiser_best (vggish-go: polyphase filter bank in torch, Go port for uncommon rates)"

var postprocessModes = map[string]vggish.Postprocess{"none": vggish.NoPostprocess, "pca": vggish.PCA, "pca-quantize": vggish.PCAQuantize}

func runEmbed(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("embed", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: vggish embed [flags] INPUT...

Embeds audio files: INPUTs are files, folders (searched recursively for audio files; hidden names
skipped), or quoted filepath.Glob patterns ("**" is not recursive: name the folder). Each file is
embedded once, in sorted order. Without --output or --out-dir each file's result is printed the way a
Towhee pipeline's show() does: PATH [v0, v1, ...] shape=(N, 128).

With --out-dir DIR, input a/b.wav (its path under the deepest folder holding every input: a single
folder argument is its own root) is written to DIR/a/b.npy, or .npz, .jsonl or .csv; inputs that would share
an output (b.wav and b.mp3) are refused. Each output is written to a temporary file and renamed, and a
rerun skips the inputs whose outputs exist, so an interrupted or killed run is finished by running it
again. DIR also gets vggish-run.json (weights sha256, settings, versions, device, counts) and, when
files fail, vggish-errors.jsonl ({"path", "error"} per line); a shard's are vggish-run.I-of-N.json and
vggish-errors.I-of-N.jsonl. A file that fails does not stop the run; the exit status is then 1.
Audio shorter than one clip (0.975 s) gives an empty (0, 128) output and a warning, unless --tail pad or
repeat makes a clip of it. Every format but npy carries each clip's start in seconds: npz as
"timestamps" beside "embedding" (OpenL3's layout), jsonl as "starts", csv in the start column.

With --format parquet, DIR gets Parquet parts instead, each holding many files' clips:
clips.NNNNN.parquet (a shard's: clips.I-of-N.NNNNN.parquet), a row per clip with columns path,
clip, start and embedding (128 float, or uint8 with --quantize), and with --pool mean.NNNNN.parquet
(or max.), a row per file with path, clips and the pooled vector. A part is committed when it
reaches --part-size or --part-time, and at the end; the run record lists the files each part holds,
and a rerun skips them. A killed run loses the part in progress: its files are embedded again.
Query all parts at once, e.g. in DuckDB: SELECT count(*) FROM 'DIR/clips.*.parquet'.

flags:
`)
		fs.PrintDefaults()
	}
	var (
		weightsPath = fs.String("weights", "", "VGGish state dict `FILE` (default: the published vggish-10086976.pth, downloaded once; see `vggish weights`)")
		framework   = fs.String("framework", "pytorch", "weights framework, as the Towhee operator's argument (only pytorch)")
		variant     = fs.String("variant", string(vggish.Towhee), "network: towhee (no final ReLU, the Towhee operator) or torchvggish (final ReLU)")
		postprocess = fs.String("postprocess", "", "none, pca (PCA whitening) or pca-quantize (torchvggish's: PCA, clip to [-2, 2], quantise to 0..255, as float32)\n(default none; pca-quantize if --pca or --quantize is given)")
		pcaPath     = fs.String("pca", "", "PCA parameters `FILE` (.pth or .npz); implies --postprocess pca-quantize unless told otherwise\n(default with --postprocess: the published vggish_pca_params-970ea276.pth)")
		quantize    = fs.Bool("quantize", false, "write uint8 values (npy arrays, parquet lists); implies --postprocess pca-quantize")
		device      = fs.String("device", "auto", "auto, cpu, cuda or cuda:N")
		precision   = fs.String("precision", string(vggish.FP32), "the network's arithmetic: fp32 (the reference's numbers), bf16 (CPU and CUDA), fp16 (CUDA) or tf32 (CUDA;\nfp32 on the CPU); see `vggish info` for what the device runs natively")
		batchSize   = fs.Int("batch", 64, "most clips per forward pass, packed across files")
		workers     = fs.Int("workers", 0, "files decoded and preprocessed at once (default: one per usable CPU)")
		threads     = fs.Int("threads", 0, "libtorch intra-op threads (default: one per usable CPU)")
		hop         = fs.Float64("hop", 0.96, "seconds between clip starts (rounded to 10 ms)")
		tailPolicy  = tailFlags(fs, "clip")
		channels    = vggish.Mix
		output      = fs.String("output", "", "write the result of a single input to `FILE` (format from its extension unless --format)")
		outDir      = fs.String("out-dir", "", "write one output per input to `DIR`, mirroring the inputs' folders, with vggish-run.json and,\nif files fail, vggish-errors.jsonl; inputs whose outputs exist are skipped")
		format      = fs.String("format", "", "npy (N×128 array per file), npz (arrays embedding and timestamps per file), jsonl (a record per file: path,\nstarts, embeddings), csv (path,start,v0..v127 per clip) or, with --out-dir, parquet (parts holding many files' clips);\nwithout --output/--out-dir: show (default), jsonl or csv on stdout")
		pool        = fs.String("pool", "", "also write a per-file mean or max vector (npy: NAME.mean.npy; npz: array mean/max; jsonl: a \"mean\"/\"max\" field;\ncsv/show: a row with start \"mean\"/\"max\"; parquet: mean.NNNNN.parquet beside each part)")
		partSize    = fs.String("part-size", "256MiB", "with --format parquet: commit a part once it holds about `SIZE` (e.g. 64MB, 1GiB)")
		partTime    = fs.Duration("part-time", 10*time.Minute, "with --format parquet: commit a part once it has been open this long (a killed run loses at most the part in progress)")
		filesFrom   = fs.String("files-from", "", "read more inputs from `FILE`, one per line (- for standard input)")
		overwrite   = fs.Bool("overwrite", false, "with --out-dir: redo inputs whose outputs exist")
		shardFlag   = fs.String("shard", "", "embed only shard `I/N` of the inputs (default from $JOB_COMPLETION_INDEX with --num-shards or $VGGISH_NUM_SHARDS,\nor $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT); a file's shard is sha256(its relative path) mod N")
		numShards   = fs.Int("num-shards", 0, "number of shards, with an index from the environment")
	)
	fs.Var(&channels, "channels", "`MODE`: mix (average the channels to mono, the reference) or each (a stream of vectors per channel:\nnpy/npz (C, N, 128), a record per channel in jsonl, a channel column in csv) (default mix)")
	inputs, err := parse(fs, args)
	if err != nil {
		return err
	}
	tail, err := tailPolicy()
	if err != nil {
		return err
	}
	if *filesFrom != "" {
		listed, err := readList(*filesFrom)
		if err != nil {
			return err
		}
		inputs = append(inputs, listed...)
	}
	if len(inputs) == 0 {
		fs.Usage()
		return errors.New("no inputs")
	}
	if *framework != "pytorch" {
		return fmt.Errorf("--framework %q: vggish-go runs the pytorch weights (the Towhee operator's framework \"pytorch\")", *framework)
	}
	mode, err := postprocessMode(*postprocess, *pcaPath, *quantize)
	if err != nil {
		return err
	}
	partBytes, err := humanize.ParseBytes(*partSize)
	if err != nil || partBytes == 0 || partBytes > math.MaxInt64 || *partTime <= 0 {
		return fmt.Errorf("--part-size %s, --part-time %s: want a size such as 256MiB and a positive duration", *partSize, *partTime)
	}
	opts := batch.Options{
		OutDir: *outDir, Output: *output, Format: batch.Format(*format), Pool: batch.Pool(*pool),
		Uint8: *quantize, Overwrite: *overwrite, Progress: stderr, Terminal: isTerminal(stderr),
		PartSize: int64(partBytes), PartTime: *partTime,
	}
	switch {
	case *output != "" && *outDir != "":
		return errors.New("give --output or --out-dir, not both")
	case *output == "" && *outDir == "":
		opts.Stdout = stdout
		// A progress line redrawn in place would tear the results printed on the same terminal.
		opts.Terminal = opts.Terminal && !isTerminal(stdout)
	case *output != "" && opts.Format == "":
		opts.Format = batch.Format(strings.TrimPrefix(strings.ToLower(filepath.Ext(*output)), "."))
	}
	if opts.Shard, err = batch.ShardFromEnv(*shardFlag, *numShards, os.Getenv); err != nil {
		return err
	}
	files, err := batch.Expand(inputs)
	if err != nil {
		return err
	}
	if err := opts.Check(len(files)); err != nil {
		return err
	}

	// The first interrupt stops the run cleanly (outputs in progress are not written); a second one
	// kills the process as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	vopts := vggish.Options{
		WeightsPath: *weightsPath, Device: *device, Variant: vggish.Variant(*variant),
		Postprocess: mode, PCAPath: *pcaPath, BatchSize: *batchSize, Threads: *threads, Workers: *workers,
		Preprocess: preprocess.Options{Hop: *hop, Tail: tail}, Channels: channels, Precision: vggish.Precision(*precision),
		Progress: downloadProgress(stderr),
	}
	m, err := vggish.New(ctx, vopts)
	if err != nil {
		return downloadHint(err)
	}
	defer m.Close()
	for _, w := range m.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if opts.OutDir != "" {
		if opts.Record, err = record(m, args); err != nil {
			return err
		}
	}
	sum, err := batch.Run(ctx, m, files, opts)
	if err != nil {
		return err
	}
	if n := len(sum.Failures); n > 0 {
		return fmt.Errorf("%d of %d files failed", n, sum.Inputs)
	}
	return nil
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
func record(m *vggish.Model, args []string) (*batch.Record, error) {
	o := m.Options()
	r := &batch.Record{
		WeightsPath: o.WeightsPath, VggishGo: version(), Libtorch: torch.Version(), Gotch: torch.GotchVersion,
		Go: runtime.Version(), Device: m.Device(), BatchSize: o.BatchSize, Threads: torch.Threads(), Args: args,
		Settings: batch.Settings{Variant: string(o.Variant), Hop: o.Preprocess.Hop, Tail: o.Preprocess.Tail.String(),
			Channels: o.Channels.String(), Resampler: resampler, Precision: string(o.Precision)},
	}
	for name, mode := range postprocessModes {
		if mode == o.Postprocess {
			r.Settings.Postprocess = name
		}
	}
	var err error
	if r.Settings.WeightsSHA256, err = weights.SHA256(o.WeightsPath); err != nil {
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

// readList reads input paths, one per line (blank lines ignored), from a file or "-" (stdin).
func readList(name string) ([]string, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("--files-from: %w", err)
		}
		defer f.Close()
		r = f
	}
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if line := strings.TrimRight(sc.Text(), "\r"); strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--files-from %s: %w", name, err)
	}
	return out, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
