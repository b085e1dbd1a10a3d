package cli

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/vggish-go/vggish/internal/spec"
)

// Each command that runs libtorch has its flags here, as a Parse function that defines them, parses
// args and checks what needs no libtorch (the engine checks the rest, and runs the command).

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

With --out-dir DIR, an input's output is named by its key: its path under the folder argument that
found it (corpus/a/b.wav from corpus/ is a/b.wav, written to DIR/a/b.npy, or .npz, .jsonl or .csv),
or the path it was named by, cleaned, less a leading / and .. (/data/x.wav is data/x.wav); inputs that
would share an output (b.wav and b.mp3) are refused. Each output is written to a temporary file and renamed, and a
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

const logmelUsage = `usage: vggish logmel --output OUT.npy [--hop S] [--tail drop|pad|repeat] INPUT

Writes the log-mel examples the network sees, float32 (N, 96, 64), a block at a time: memory does not
grow with the length of the audio. INPUT - reads the audio from standard input (WAV natively, anything
else through ffmpeg); --output - writes the .npy to standard output, once complete (the examples wait
in a temporary file: the header needs their count). The output may not be the input.
`

const fadUsage = `usage: vggish fad [flags] BACKGROUND EVAL
       vggish fad --save-stats FILE SET

Prints the Fréchet Audio Distance (Kilgour et al. 2019) between two sets of audio:
|mu_b - mu_e|^2 + Tr(S_b + S_e - 2 (S_b S_e)^(1/2)) over the sets' clip embeddings (the network's
128-d output: no final ReLU, no PCA; mean and sample covariance in float64, in one pass). The
number goes to standard output, the details to standard error.

A set is a folder (searched recursively for audio files), a quoted glob pattern, an audio file, a
.txt/.list/.lst file listing inputs one per line, or a statistics file (.npz: mu, sigma and n, as
--save-stats writes them; pytorch-fid's mu/sigma files are read too); not - (fad reads no standard
input). A set or a --save-stats/--save-eval-stats file that cannot be read or written is refused
before any work (exit status 2). Audio is embedded with the
batching of vggish embed. A file that fails fails the command: the FAD of the rest would not be the
set's. Statistics made with other weights or settings are refused.
`

const serveUsage = `usage: vggish serve [flags]

Serves embeddings over HTTP and gRPC: the Open Inference Protocol (KServe v2) for one model, "vggish",
and POST /v1/embed for plain clients (the body is the audio; the answer JSON, or .npy with
Accept: application/x-npy):

  curl --data-binary @dog.wav http://127.0.0.1:8080/v1/embed

REST: GET /v2/health/live, /v2/health/ready, /v2, /v2/models/vggish[/ready], /metrics (Prometheus);
POST /v2/models/vggish/infer with one input, AUDIO (BYTES [1]: an encoded file, WAV decoded natively,
anything else by ffmpeg from a pipe) or WAVEFORM (FP32 [samples] or [channels, samples], with a
sample_rate parameter), JSON or with the binary tensor data extension (Inference-Header-Content-Length).
Outputs: EMBEDDING (FP32 [clips, 128], UINT8 with --postprocess pca-quantize) and START (FP64 [clips]).
gRPC: the protocol's inference.GRPCInferenceService on --grpc-listen.

Requests from all clients are batched through one inference loop; each result equals vggish embed's.
A forward pass runs what is waiting as soon as the network is free, or with --max-queue-delay waits
that long for its batch to fill.
Past --max-concurrent requests or --max-queue-clips, requests get 503 with Retry-After; past
--max-request-bytes 413; audio longer than --max-duration is refused once decoding passes it. Errors
are JSON: {"error": "...", "kind": "format|unsupported|too large|overloaded|model|request|..."}.
With --auth-token-file every endpoint but health and /metrics needs "Authorization: Bearer TOKEN".
SIGTERM or SIGINT turns readiness off, answers new requests 503, finishes those in flight within
--drain-timeout and exits 0 (1 if some were cut off). Logs are JSON lines on standard error unless
it is a terminal.
`

const selftestUsage = `usage: vggish selftest [--weights FILE] [--pca FILE] [--json] [--save FILE.npz]

Runs TensorFlow's vggish_smoke_test.py input (3 s of a 1 kHz sine at 16 kHz: 3 clips) through the
weights, libtorch and preprocessing of this machine, and prints the mean and standard deviation of
the embeddings (the network's output, no final ReLU) and of the post-processed ones (PCA, clipped to
[-2, 2], quantised to 0..255 as TensorFlow's Postprocessor does: truncated to uint8) beside the
figures that test publishes, 0.000657, 0.343, 126.0 and 89.3, which it checks at a relative
tolerance of 0.1. Exit status 1 when a figure is off.
`

// Embed is embed's command line.
type Embed struct {
	FS                                                                  *FlagSet
	Model                                                               *ModelFlags
	Net                                                                 *NetFlags
	Framework, Output, OutDir, Format, Pool, PartSize, FilesFrom, Shard *string
	Quantize, Overwrite                                                 *bool
	PartTime                                                            *time.Duration
	NumShards                                                           *int
	Inputs                                                              []string
	PartBytes                                                           int64 // --part-size in bytes
}

// ParseEmbed parses embed's command line.
func ParseEmbed(args []string, s Stdio) (*Embed, error) {
	fs := NewFlags("embed", embedUsage)
	e := &Embed{FS: fs, Model: addModelFlags(fs), Net: addNetFlags(fs)}
	e.Framework = fs.String("framework", "pytorch", "weights framework, as the Towhee operator's argument (only pytorch)")
	e.Quantize = fs.Bool("quantize", false, "write uint8 values (npy arrays, parquet lists); implies --postprocess pca-quantize")
	e.Output = fs.String("output", "", "write the result of a single input to `FILE`, or - for standard output (format from its extension unless --format;\nnpy for -)")
	e.OutDir = fs.String("out-dir", "", "write one output per input to `DIR`, mirroring the inputs' folders, with vggish-run.json and,\nif files fail, vggish-errors.jsonl; inputs whose outputs exist are skipped")
	e.Format = fs.String("format", "", "npy (N×128 array per file), npz (arrays embedding and timestamps per file), jsonl (a record per file: path,\nstarts, embeddings), csv (path,start,v0..v127 per clip) or, with --out-dir, parquet (parts holding many files' clips);\nwithout --output/--out-dir: show (default), jsonl, csv, or npy for one input, on stdout")
	e.Pool = fs.String("pool", "", "also write a per-file mean or max vector (npy: NAME.mean.npy; npz: array mean/max; jsonl: a \"mean\"/\"max\" field;\ncsv/show: a row with start \"mean\"/\"max\"; parquet: mean.NNNNN.parquet beside each part)")
	e.PartSize = fs.String("part-size", "256MiB", "with --format parquet: commit a part once it holds about `SIZE` (e.g. 64MB, 1GiB)")
	e.PartTime = fs.Duration("part-time", 10*time.Minute, "with --format parquet: commit a part once it has been open this long (a killed run loses at most the part in progress)")
	e.FilesFrom = fs.String("files-from", "", "read more inputs from `FILE` (a file or a pipe), one per line (- for standard input)")
	e.Overwrite = fs.Bool("overwrite", false, "with --out-dir: redo inputs whose outputs exist")
	e.Shard = fs.String("shard", "", "embed only shard `I/N` of the inputs, 0 <= I < N (default from $JOB_COMPLETION_INDEX with --num-shards or $VGGISH_NUM_SHARDS,\nor $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT); a file's shard is sha256(its relative path) mod N")
	e.NumShards = fs.Int("num-shards", 0, "number of shards, at least 1, with an index from the environment")
	var err error
	if e.Inputs, err = fs.ParseArgs(args, s.Out); err != nil {
		return nil, err
	}

	// Every flag is checked before any work.
	for _, c := range []struct {
		bad bool
		msg string
	}{
		// An empty path would read as the flag left out: the result on standard output, say.
		{fs.IsSet("output") && *e.Output == "", "--output is empty: name a file, or - for standard output"},
		{fs.IsSet("out-dir") && *e.OutDir == "", "--out-dir is empty: name a folder"},
		{fs.IsSet("files-from") && *e.FilesFrom == "", "--files-from is empty: name a list, or - for standard input"},
		{len(e.Inputs) == 0 && *e.FilesFrom == "", "no inputs: name files, folders or patterns, - for standard input, or --files-from LIST"},
		{fs.IsSet("num-shards") && *e.NumShards < 1, fmt.Sprintf("--num-shards %d: want at least 1", *e.NumShards)},
		{*e.Framework != "pytorch", fmt.Sprintf("--framework %q: want pytorch (vggish-go runs the pytorch weights)", *e.Framework)},
		{*e.Output != "" && *e.OutDir != "", "give --output or --out-dir, not both"},
		{*e.FilesFrom == spec.StdinArg && slices.Contains(e.Inputs, spec.StdinArg), "audio (-) and --files-from - cannot both come from standard input"},
		{*e.PartTime <= 0, fmt.Sprintf("--part-time %s: want a positive duration", *e.PartTime)},
		// Flags that would be silently ignored: the user meant something that would not happen.
		{(fs.IsSet("part-size") || fs.IsSet("part-time")) && *e.Format != spec.Parquet, "--part-size and --part-time size Parquet parts: they need --format parquet"},
		{*e.Overwrite && *e.OutDir == "", "--overwrite redoes the outputs of an output folder: it needs --out-dir (--output is always written)"},
	} {
		if c.bad {
			return nil, fs.Misuse("%s", c.msg)
		}
	}
	if err := e.Model.check(fs); err != nil {
		return nil, err
	}
	if err := e.Net.check(fs); err != nil {
		return nil, err
	}
	partBytes, err := humanize.ParseBytes(*e.PartSize)
	if err != nil || partBytes == 0 || partBytes > math.MaxInt64 {
		return nil, fs.Misuse("--part-size %s: want a size such as 256MiB, 1 byte to 8 EiB", *e.PartSize)
	}
	e.PartBytes = int64(partBytes)
	return e, nil
}

// Logmel is logmel's command line.
type Logmel struct {
	FS     *FlagSet
	Output *string
	Audio  *AudioFlags
	Input  string
}

// ParseLogmel parses logmel's command line.
func ParseLogmel(args []string, s Stdio) (*Logmel, error) {
	fs := NewFlags("logmel", logmelUsage)
	l := &Logmel{FS: fs}
	l.Output = fs.String("output", "", "the .npy `FILE` to write, or - for standard output (required)")
	l.Audio = addAudioFlags(fs, "example")
	inputs, err := fs.ParseArgs(args, s.Out)
	if err != nil {
		return nil, err
	}
	if *l.Output == "" || len(inputs) != 1 {
		return nil, fs.Misuse("want --output FILE and one INPUT")
	}
	if err := l.Audio.check(fs); err != nil {
		return nil, err
	}
	l.Input = inputs[0]
	if err := CheckStreams(l.Input, *l.Output, s); err != nil {
		return nil, fs.AsMisuse(err)
	}
	if l.Input != spec.StdinArg {
		if err := CheckRegular("input", l.Input); err != nil {
			return nil, fs.AsMisuse(err)
		}
	}
	return l, nil
}

// FAD is fad's command line.
type FAD struct {
	FS                  *FlagSet
	Model               *ModelFlags
	SaveStats, SaveEval *string
	Sets                []string
}

// ParseFAD parses fad's command line.
func ParseFAD(args []string, s Stdio) (*FAD, error) {
	fs := NewFlags("fad", fadUsage)
	f := &FAD{FS: fs, Model: addModelFlags(fs)}
	f.SaveStats = fs.String("save-stats", "", "write BACKGROUND's (or the only SET's) mean, covariance and clip count to `FILE` (.npz)")
	f.SaveEval = fs.String("save-eval-stats", "", "write EVAL's statistics to `FILE` (.npz)")
	var err error
	if f.Sets, err = fs.ParseArgs(args, s.Out); err != nil {
		return nil, err
	}
	switch {
	case len(f.Sets) == 1 && *f.SaveStats == "":
		return nil, fs.Misuse("one set: give a second one, or --save-stats FILE to save its statistics")
	case len(f.Sets) == 1 && *f.SaveEval != "":
		return nil, fs.Misuse("--save-eval-stats needs two sets")
	case len(f.Sets) != 1 && len(f.Sets) != 2:
		return nil, fs.Misuse("want BACKGROUND and EVAL")
	}
	if err := f.Model.check(fs); err != nil {
		return nil, err
	}
	// Every path is checked before any work: a statistics file's, like audio's, and the outputs'.
	for _, set := range f.Sets {
		switch {
		case set == spec.StdinArg:
			return nil, fs.Misuse("set -: fad reads no standard input: name a folder, a glob, an audio file, a list or a statistics file")
		case IsStats(set):
			if err := CheckRegular("statistics", set); err != nil {
				return nil, fs.AsMisuse(err)
			}
		}
	}
	for _, o := range []struct{ flag, path string }{{"--save-stats", *f.SaveStats}, {"--save-eval-stats", *f.SaveEval}} {
		if o.path != "" {
			if err := CheckOutput(o.flag, o.path); err != nil {
				return nil, fs.AsMisuse(err)
			}
		}
	}
	return f, nil
}

// IsStats reports whether a fad set is a statistics file (.npz) rather than audio.
func IsStats(set string) bool { return strings.EqualFold(filepath.Ext(set), ".npz") }

// Serve is serve's command line.
type Serve struct {
	FS                                                                          *FlagSet
	Model                                                                       *ModelFlags
	Net                                                                         *NetFlags
	Listen, GRPCListen, TokenFile, TLSCert, TLSKey                              *string
	MaxDuration, MaxQueueDelay, RequestTimeout, ReadHeaderTimeout, DrainTimeout *time.Duration
	MaxConcurrent, MaxQueueClips                                                *int
	MaxRequestBytes                                                             int64 // --max-request-bytes in bytes
}

// ParseServe parses serve's command line.
func ParseServe(args []string, s Stdio) (*Serve, error) {
	fs := NewFlags("serve", serveUsage)
	v := &Serve{FS: fs, Model: addModelFlags(fs), Net: addNetFlags(fs)}
	v.Listen = fs.String("listen", "127.0.0.1:8080", "`ADDRESS` for HTTP (the REST protocol, /v1/embed, /metrics); loopback unless told otherwise")
	v.GRPCListen = fs.String("grpc-listen", "127.0.0.1:8081", "`ADDRESS` for gRPC; empty for none")
	maxBytes := fs.String("max-request-bytes", "64MiB", "`SIZE` of the largest request body or gRPC message (413 past it)")
	v.MaxDuration = fs.Duration("max-duration", time.Hour, "longest audio of one request")
	v.MaxConcurrent = fs.Int("max-concurrent", 64, "most requests embedded at once (503 past it)")
	v.MaxQueueClips = fs.Int("max-queue-clips", 4096, "most clips queued over the requests in flight (503 past it; encoded audio counts 30 kB a clip, 1 of unknown size, until decoding shows more)")
	v.MaxQueueDelay = fs.Duration("max-queue-delay", 0, "longest a forward pass that is not full waits for more clips (0: none, a lone request is never held back; a delay longer than the clients' turnaround helps a fixed set of clients sending short clips)")
	v.RequestTimeout = fs.Duration("request-timeout", 2*time.Minute, "longest time from a request's first byte to its answer")
	v.ReadHeaderTimeout = fs.Duration("read-header-timeout", 10*time.Second, "longest time to read a request's headers")
	v.DrainTimeout = fs.Duration("drain-timeout", 30*time.Second, "on SIGTERM, longest wait for the requests in flight")
	v.TokenFile = fs.String("auth-token-file", "", "`FILE` holding the bearer token requests must carry (health endpoints and /metrics stay open)")
	v.TLSCert = fs.String("tls-cert", "", "TLS certificate `FILE` (PEM), with --tls-key: both protocols over TLS")
	v.TLSKey = fs.String("tls-key", "", "TLS private key `FILE` (PEM)")
	extra, err := fs.ParseArgs(args, s.Out)
	if err != nil {
		return nil, err
	}
	if len(extra) > 0 {
		return nil, fs.Misuse("serve takes no arguments, not %q", extra)
	}
	if err := v.Model.check(fs); err != nil {
		return nil, err
	}
	if err := v.Net.check(fs); err != nil {
		return nil, err
	}
	bytes, err := humanize.ParseBytes(*maxBytes)
	if err != nil || bytes < 1024 || bytes > math.MaxInt32 {
		return nil, fs.Misuse("--max-request-bytes %s: want a size from 1KiB to 2GiB", *maxBytes)
	}
	v.MaxRequestBytes = int64(bytes)
	for _, c := range []struct {
		bad bool
		msg string
	}{
		{*v.Listen == "", "--listen: want an address such as 127.0.0.1:8080"},
		{*v.MaxDuration <= 0, fmt.Sprintf("--max-duration %s: want a positive duration", *v.MaxDuration)},
		{*v.MaxConcurrent < 1, fmt.Sprintf("--max-concurrent %d: want at least 1", *v.MaxConcurrent)},
		{*v.MaxQueueClips < 1, fmt.Sprintf("--max-queue-clips %d: want at least 1", *v.MaxQueueClips)},
		{*v.MaxQueueDelay < 0 || *v.MaxQueueDelay > 10*time.Second, fmt.Sprintf("--max-queue-delay %s: want 0 (no wait) to 10s", *v.MaxQueueDelay)},
		{*v.RequestTimeout <= 0 || *v.ReadHeaderTimeout <= 0 || *v.DrainTimeout <= 0, "--request-timeout, --read-header-timeout and --drain-timeout: want positive durations"},
		{(*v.TLSCert == "") != (*v.TLSKey == ""), "give --tls-cert and --tls-key together"},
	} {
		if c.bad {
			return nil, fs.Misuse("%s", c.msg)
		}
	}
	if *v.TokenFile != "" {
		if err := CheckRegular("--auth-token-file", *v.TokenFile); err != nil {
			return nil, fs.AsMisuse(err)
		}
	}
	return v, nil
}

// Selftest is selftest's command line.
type Selftest struct {
	FS                         *FlagSet
	Weights, PCA, Device, Save *string
	JSON                       *bool
}

// ParseSelftest parses selftest's command line.
func ParseSelftest(args []string, s Stdio) (*Selftest, error) {
	fs := NewFlags("selftest", selftestUsage)
	t := &Selftest{FS: fs}
	t.Weights = fs.String("weights", "", "VGGish state dict `FILE` (default: the published vggish-10086976.pth, downloaded once)")
	t.PCA = fs.String("pca", "", "PCA parameters `FILE` (.pth or .npz; default: the published vggish_pca_params-970ea276.pth)")
	t.Device = fs.String("device", "auto", "auto, cpu, cuda or cuda:N")
	t.JSON = fs.Bool("json", false, "print the report as JSON")
	t.Save = fs.String("save", "", "also write input (float64), embedding and pca (float32) and postprocessed (uint8) to `FILE` (.npz)")
	if rest, err := fs.ParseArgs(args, s.Out); err != nil {
		return nil, err
	} else if len(rest) > 0 {
		return nil, fs.Misuse("unexpected arguments %q", rest)
	}
	for _, f := range []struct{ flag, path string }{{"--weights", *t.Weights}, {"--pca", *t.PCA}} {
		if f.path != "" {
			if err := CheckRegular(f.flag, f.path); err != nil {
				return nil, fs.AsMisuse(err)
			}
		}
	}
	if *t.Save != "" {
		if err := CheckOutput("--save", *t.Save); err != nil {
			return nil, fs.AsMisuse(err)
		}
	}
	return t, nil
}

// ParseInfo parses info's command line.
func ParseInfo(args []string, s Stdio) error {
	fs := NewFlags("info", "usage: vggish info\n\nPrints the libtorch and gotch versions, whether CUDA is available, the CUDA devices, and the libtorch\nintra-op threads a run uses by default (one per usable CPU).\n")
	rest, err := fs.ParseArgs(args, s.Out)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fs.Misuse("info takes no arguments, not %q", rest)
	}
	return nil
}
