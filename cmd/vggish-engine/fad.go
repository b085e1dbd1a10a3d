package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/vggish-go/vggish/fad"
	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/cli"
	"github.com/vggish-go/vggish/vggish"
	"github.com/vggish-go/vggish/weights"
)

// listExtensions mark a file that lists a set's audio, one input per line.
var listExtensions = []string{".txt", ".list", ".lst"}

func runFAD(args []string, s cli.Stdio) error {
	f, err := cli.ParseFAD(args, s)
	if err != nil {
		return err
	}
	fs, sets, saveStats, saveEval := f.FS, f.Sets, f.SaveStats, f.SaveEval
	vopts, err := modelOptions(f.Model, fs, s)
	if err != nil {
		return err
	}
	saves := []string{*saveStats, *saveEval}
	if *saveStats != "" && *saveEval != "" && absPathEqual(*saveStats, *saveEval) {
		return fs.Misuse("--save-stats and --save-eval-stats are both %s: give each set's statistics a file of its own", *saveStats)
	}
	for i, set := range sets {
		if saves[i] != "" && cli.IsStats(set) {
			return fs.Misuse("%s is already a statistics file", set)
		}
	}

	// Everything that can be checked is, before the weights load.
	loaded := make([]*fad.Stats, len(sets))
	files := make([][]batch.Input, len(sets))
	for i, set := range sets {
		if cli.IsStats(set) {
			if loaded[i], err = fad.Load(set); err != nil {
				return err
			}
			if loaded[i].Dim() != vggish.EmbeddingSize {
				return fmt.Errorf("%s: %d-dimensional statistics, want %d", set, loaded[i].Dim(), vggish.EmbeddingSize)
			}
			continue
		}
		if files[i], err = setFiles(set, s.Err); err != nil {
			return fs.AsMisuse(err)
		}
	}
	// No statistics over anything read: the audio of every set however found, lists, statistics, weights.
	readOnly := append(slices.Clone(sets), modelFiles(vopts.WeightsPath, "")...)
	if err := batch.CheckOverwrite(saves, nil, slices.Concat(files...), nil, readOnly); err != nil {
		return fs.AsMisuse(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	// What decides a set's statistics: saved with them, and statistics made otherwise are refused.
	want := batch.Settings{Variant: string(vggish.Towhee), Postprocess: "none", Hop: vopts.Preprocess.Hop, Tail: vopts.Preprocess.Tail.String(),
		Channels: vggish.Mix.String(), Resampler: resampler, DType: "float32"}
	var m *vggish.Model
	if slices.ContainsFunc(files, func(f []batch.Input) bool { return f != nil }) {
		m, err = vggish.New(ctx, vopts)
		if err != nil {
			return cli.DownloadHint(err)
		}
		defer m.Close()
		if want.WeightsSHA256, err = weights.SHA256(m.Options().WeightsPath); err != nil {
			return err
		}
	}
	if err := checkSettings(sets, loaded, want, m != nil, s.Err); err != nil {
		return err
	}
	settings, err := json.Marshal(want)
	if err != nil {
		return err
	}
	stats := loaded
	for i, set := range sets {
		if stats[i] != nil {
			continue
		}
		fmt.Fprintf(s.Err, "embedding %s: %d files\n", set, len(files[i]))
		if stats[i], err = embedSet(ctx, m, files[i], s.Err); err != nil {
			return fmt.Errorf("%s: %w", set, err)
		}
		stats[i].Settings = string(settings)
	}
	for i, set := range sets {
		if n := stats[i].N(); n > 0 && n <= vggish.EmbeddingSize {
			fmt.Fprintf(s.Err, "warning: %s has %d clips, no more than the %d dimensions: its covariance is singular, and the FAD of small sets is biased (compare sets of equal size)\n",
				set, n, vggish.EmbeddingSize)
		}
		if saves[i] != "" {
			if err := stats[i].Save(saves[i]); err != nil {
				return err
			}
			fmt.Fprintf(s.Err, "saved the statistics of %s (%d clips) to %s\n", set, stats[i].N(), saves[i])
		}
	}
	if len(sets) == 1 {
		return nil
	}
	d, err := fad.Distance(stats[0], stats[1])
	if err != nil {
		return err
	}
	if math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
		// A distance cannot be: the statistics loaded are not those of any set of vectors.
		var files []string
		for i, set := range sets {
			if loaded[i] != nil {
				files = append(files, set)
			}
		}
		return fmt.Errorf("FAD %g is not a distance: the statistics in %s are not those of a set of embeddings", d, strings.Join(files, " and "))
	}
	fmt.Fprintf(s.Err, "FAD %s vs %s (%s and %s)\n", sets[0], sets[1], clips(stats[0]), clips(stats[1]))
	_, err = fmt.Fprintln(s.Out, strconv.FormatFloat(d, 'g', -1, 64))
	return err
}

// absPathEqual reports whether two paths name the same file, whether or not it exists yet.
func absPathEqual(a, b string) bool {
	if ia, err := os.Stat(a); err == nil {
		ib, err := os.Stat(b)
		return err == nil && os.SameFile(ia, ib)
	}
	aa, err1 := filepath.Abs(a)
	ab, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == ab
}

func clips(s *fad.Stats) string {
	if s.N() == 0 {
		return "an unknown number of clips"
	}
	return strconv.FormatInt(s.N(), 10) + " clips"
}

// setFiles expands a set: a list file's lines, or the argument itself, as embed's inputs.
func setFiles(set string, warnings io.Writer) ([]batch.Input, error) {
	args := []string{set}
	if slices.Contains(listExtensions, strings.ToLower(filepath.Ext(set))) {
		var err error
		if args, err = readList(set, nil); err != nil {
			return nil, err
		}
		if len(args) == 0 {
			return nil, fmt.Errorf("%s lists no inputs", set)
		}
	}
	return batch.Expand(context.Background(), args, nil, func(w string) { fmt.Fprintf(warnings, "warning: %s\n", w) })
}

// embedSet embeds files and gathers their clips' statistics, in input order.
func embedSet(ctx context.Context, m *vggish.Model, files []batch.Input, stderr io.Writer) (*fad.Stats, error) {
	s := fad.New(vggish.EmbeddingSize)
	sum, err := batch.Run(ctx, m, files, batch.Options{
		Each:     func(_ batch.Input, e *vggish.Embeddings) error { return s.Add(e.Data) },
		Progress: stderr, Terminal: cli.IsTerminal(stderr),
	})
	if err != nil {
		return nil, err
	}
	if n := len(sum.Failures); n > 0 {
		return nil, fmt.Errorf("%d of %d files failed: no FAD of the rest", n, sum.Inputs)
	}
	if s.N() < 2 {
		return nil, fmt.Errorf("%d clips: a covariance needs two or more (--tail pad or repeat makes a clip of a short file)", s.N())
	}
	return s, nil
}

// checkSettings refuses loaded statistics (nil for the sets to embed) made with other settings than
// the sets embedded here, or than each other, and says so when a file does not tell.
func checkSettings(sets []string, loaded []*fad.Stats, want batch.Settings, embedded bool, stderr io.Writer) error {
	var ref *batch.Settings
	refName := "this run"
	if embedded {
		ref = &want
	}
	for i, s := range loaded {
		if s == nil {
			continue
		}
		if s.Settings == "" {
			fmt.Fprintf(stderr, "warning: %s does not say how its embeddings were made: make sure they are VGGish's with these settings\n", sets[i])
			continue
		}
		var got batch.Settings
		if err := json.Unmarshal([]byte(s.Settings), &got); err != nil {
			return fmt.Errorf("%s: settings: %w", sets[i], err)
		}
		if ref == nil {
			ref, refName = &got, sets[i]
			continue
		}
		if got != *ref {
			return fmt.Errorf("%s was made with other settings than %s: %s", sets[i], refName, got.Diff(*ref))
		}
	}
	return nil
}
