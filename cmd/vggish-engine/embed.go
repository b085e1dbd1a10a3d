package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/cli"
	"github.com/vggish-go/vggish/internal/regfile"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
	"github.com/vggish-go/vggish/weights"
)

// resampler names the resampling every output went through, for the run record.
const resampler = "resampy kaiser_best (vggish-go: polyphase filter bank in torch, Go port for uncommon rates)"

var postprocessModes = map[string]vggish.Postprocess{"none": vggish.NoPostprocess, "pca": vggish.PCA, "pca-quantize": vggish.PCAQuantize}

func runEmbed(args []string, s cli.Stdio) error {
	e, err := cli.ParseEmbed(args, s)
	if err != nil {
		return err
	}
	fs, inputs := e.FS, e.Inputs
	if vggish.Precision(*e.Net.Precision) == vggish.FP16 && !onCUDA(*e.Model.Device) {
		return fs.Misuse("--precision fp16 runs on CUDA only (libtorch's CPU kernels lack float16 convolutions), and --device %s is the CPU here: use bf16", *e.Model.Device)
	}
	vopts, err := modelOptions(e.Model, fs, s)
	if err != nil {
		return err
	}
	if err := applyNet(e.Net, fs, *e.Quantize, &vopts); err != nil {
		return err
	}
	readOnly := modelFiles(vopts.WeightsPath, *e.Net.PCA) // files no output may be written over, besides the inputs
	if *e.FilesFrom != "" && *e.FilesFrom != "-" {
		if err := checkList(*e.FilesFrom); err != nil {
			return fs.AsMisuse(err)
		}
		readOnly = append(readOnly, *e.FilesFrom)
	}
	opts := batch.Options{
		OutDir: *e.OutDir, Output: *e.Output, Format: batch.Format(*e.Format), Pool: batch.Pool(*e.Pool),
		Uint8: *e.Quantize, Overwrite: *e.Overwrite, Progress: s.Err, Terminal: cli.IsTerminal(s.Err),
		PartSize: e.PartBytes, PartTime: *e.PartTime, Stdin: s.In, ReadOnly: readOnly,
	}
	stdinAudio := slices.Contains(inputs, batch.StdinArg)
	switch {
	case *e.Output == "-" || (*e.Output == "" && *e.OutDir == ""):
		opts.Output, opts.Stdout = "", s.Out
		if *e.Output == "-" && opts.Format == "" {
			opts.Format = batch.NPY
		}
		// A progress line redrawn in place would tear the results printed on the same terminal.
		opts.Terminal = opts.Terminal && !cli.IsTerminal(s.Out)
		out := ""
		if opts.Format == batch.NPY {
			out = "-" // binary
		}
		in := ""
		if stdinAudio {
			in = "-"
		}
		if err := cli.CheckStreams(in, out, s); err != nil {
			return fs.AsMisuse(err)
		}
	case *e.Output != "" && opts.Format == "":
		opts.Format = batch.Format(strings.TrimPrefix(strings.ToLower(filepath.Ext(*e.Output)), "."))
	}
	if stdinAudio && opts.Stdout == nil {
		if err := cli.CheckStreams("-", "", s); err != nil {
			return fs.AsMisuse(err)
		}
	}
	if opts.Shard, err = batch.ShardFromEnv(*e.Shard, *e.NumShards, os.Getenv); err != nil {
		return fs.AsMisuse(err)
	}

	// The first interrupt stops the run cleanly, whatever it is doing; a second one kills the process
	// as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	var listed []string
	if *e.FilesFrom != "" {
		if listed, err = interruptible(ctx, "reading "+*e.FilesFrom, func() ([]string, error) { return readList(*e.FilesFrom, s.In) }, nil); err != nil {
			return err
		}
		if len(listed) == 0 && len(inputs) == 0 { // else Expand's error would name no file
			if *e.FilesFrom == "-" {
				return fs.Misuse("--files-from -: standard input lists no files")
			}
			return fs.Misuse("--files-from %s lists no files", *e.FilesFrom)
		}
	}
	files, err := batch.Expand(ctx, inputs, listed, func(w string) { fmt.Fprintf(s.Err, "warning: %s\n", w) })
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w while listing the inputs", batch.ErrInterrupted)
		}
		return fs.AsMisuse(err)
	}
	if err := opts.Check(files); err != nil {
		return fs.AsMisuse(err)
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
		return cli.DownloadHint(err)
	}
	defer l.m.Close()
	for _, w := range l.m.Warnings() {
		fmt.Fprintf(s.Err, "warning: %s\n", w)
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
		WeightsPath: o.WeightsPath, VggishGo: cli.Version(), Libtorch: torch.Version(), BLAS: blas(), Gotch: torch.GotchVersion,
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
