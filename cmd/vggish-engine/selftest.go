package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/cli"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
	"github.com/vggish-go/vggish/weights"
)

// The published figures of TensorFlow's models/research/audioset/vggish/vggish_smoke_test.py, for the
// embeddings of smokeSeconds of a smokeHz sine sampled at 16 kHz, checked there with
// np.testing.assert_allclose(rtol=smokeTolerance).
const (
	smokeSeconds   = 3
	smokeHz        = 1000
	smokeTolerance = 0.1
)

var smokeFigures = []struct {
	name      string
	published float64
}{
	{"embedding mean", 0.000657},
	{"embedding std", 0.343},
	{"postprocessed mean", 126.0},
	{"postprocessed std", 89.3},
}

// smokeInput is the smoke test's input: np.sin(2 * np.pi * freq * t) with t = np.arange(0, 3, 1 / 16000),
// evaluated in numpy's order (numpy's sin may differ from Go's in the last bit).
func smokeInput() []float64 {
	step, twoPi := 1.0/16000, 2*math.Pi
	w := twoPi * smokeHz // rounded twice, as numpy's (2 * np.pi) * freq
	x := make([]float64, smokeSeconds*16000)
	for i := range x {
		x[i] = math.Sin(w * (float64(i) * step))
	}
	return x
}

// figure is one of the four, as selftest reports it.
type figure struct {
	Name      string  `json:"name"`
	Value     float64 `json:"value"`
	Published float64 `json:"published"`
	Relative  float64 `json:"relative_difference"`
	Pass      bool    `json:"pass"`
}

type selftestReport struct {
	Input     string   `json:"input"`
	Weights   string   `json:"weights"`
	PCA       string   `json:"pca"`
	Device    string   `json:"device"`
	Libtorch  string   `json:"libtorch"`
	Tolerance float64  `json:"tolerance"`
	Figures   []figure `json:"figures"`
	Error     string   `json:"error,omitempty"`
	Pass      bool     `json:"pass"`
}

// errSelftestFailed makes the exit status 1 after the report has said why.
var errSelftestFailed = errors.New("the figures are not TensorFlow's")

func runSelftest(args []string, s cli.Stdio) error {
	t, err := cli.ParseSelftest(args, s)
	if err != nil {
		return err
	}
	fs, weightsPath, pcaPath, device, asJSON, save := t.FS, t.Weights, t.PCA, t.Device, t.JSON, t.Save
	if _, err := torch.ParseDevice(*device); err != nil {
		return fs.AsMisuse(err)
	}
	if err := batch.CheckOverwrite([]string{*save}, nil, nil, nil, modelFiles(*weightsPath, *pcaPath)); err != nil {
		return fs.AsMisuse(err)
	}
	if err := cli.CheckMemoryLimits(s.Err); err != nil {
		return err
	}
	ctx := context.Background()
	fetch := weights.Options{Progress: cli.DownloadProgress(s.Err)}
	if *weightsPath == "" {
		if *weightsPath, err = weights.Fetch(ctx, weights.Model, fetch); err != nil {
			return cli.DownloadHint(err)
		}
	}
	r := &selftestReport{
		Input:   fmt.Sprintf("%d s of a %d Hz sine at 16 kHz (TensorFlow's vggish_smoke_test.py)", smokeSeconds, smokeHz),
		Weights: *weightsPath, Libtorch: torch.Version(), Tolerance: smokeTolerance,
	}
	x := smokeInput()
	// The raw embeddings, then the PCA alone: the quantisation is TensorFlow's (truncation), not
	// torchvggish's (rounding), as the published figures are TensorFlow's.
	emb, err := smokeEmbed(ctx, vggish.Options{WeightsPath: *weightsPath, Device: *device}, x, &r.Device)
	if err != nil {
		return err
	}
	r.Figures = append(r.Figures, check(0, meanStd(emb.Data))...)
	var pca *vggish.Embeddings
	var post []uint8
	if *pcaPath == "" {
		*pcaPath, err = weights.Fetch(ctx, weights.PCA, fetch)
	}
	if err == nil {
		r.PCA = *pcaPath
		pca, err = smokeEmbed(ctx, vggish.Options{WeightsPath: *weightsPath, Device: *device, Postprocess: vggish.PCA, PCAPath: *pcaPath}, x, nil)
	}
	if err != nil {
		r.Error = fmt.Sprintf("post-processed figures not computed: %v", cli.DownloadHint(err))
	} else {
		post = quantizeTF(pca.Data)
		wide := make([]float32, len(post))
		for i, v := range post {
			wide[i] = float32(v)
		}
		r.Figures = append(r.Figures, check(2, meanStd(wide))...)
	}
	r.Pass = r.Error == "" && len(r.Figures) == len(smokeFigures)
	for _, f := range r.Figures {
		r.Pass = r.Pass && f.Pass
	}
	if *save != "" {
		z := npyfile.NewNPZ()
		npyfile.Add(z, "input", x, len(x))
		npyfile.Add(z, "embedding", emb.Data, emb.Rows(), vggish.EmbeddingSize)
		if pca != nil {
			npyfile.Add(z, "pca", pca.Data, pca.Rows(), vggish.EmbeddingSize)
			npyfile.Add(z, "postprocessed", post, pca.Rows(), vggish.EmbeddingSize)
		}
		if err := z.Write(*save); err != nil {
			return err
		}
	}
	if err := writeSelftest(s.Out, r, *asJSON); err != nil {
		return err
	}
	if !r.Pass {
		return errSelftestFailed
	}
	return nil
}

// smokeEmbed embeds the smoke input with a model made for it.
func smokeEmbed(ctx context.Context, o vggish.Options, x []float64, device *string) (*vggish.Embeddings, error) {
	m, err := vggish.New(ctx, o)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if device != nil {
		*device = m.Device()
	}
	samples := make([]float32, len(x))
	for i, v := range x {
		samples[i] = float32(v)
	}
	return m.Embed(ctx, samples, 16000)
}

// quantizeTF is TensorFlow's vggish_postprocess.Postprocessor after the PCA: clip to [-2, 2], scale to
// 0..255 and cast to uint8, which truncates.
func quantizeTF(pca []float32) []uint8 {
	out := make([]uint8, len(pca))
	for i, v := range pca {
		c := math.Min(math.Max(float64(v), -2), 2)
		out[i] = uint8((c + 2) * (255.0 / 4))
	}
	return out
}

// meanStd is np.mean and np.std (population) of x, in float64.
func meanStd(x []float32) [2]float64 {
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := sum / float64(len(x))
	var ss float64
	for _, v := range x {
		d := float64(v) - mean
		ss += d * d
	}
	return [2]float64{mean, math.Sqrt(ss / float64(len(x)))}
}

// check compares a mean and a standard deviation with the published figures from index at on, as
// np.testing.assert_allclose(rtol=0.1) does: |value - published| <= 0.1 |published|.
func check(at int, ms [2]float64) []figure {
	var out []figure
	for k, v := range ms {
		f := smokeFigures[at+k]
		rel := math.Abs(v-f.published) / math.Abs(f.published)
		out = append(out, figure{Name: f.name, Value: v, Published: f.published, Relative: rel, Pass: rel <= smokeTolerance})
	}
	return out
}

func writeSelftest(w io.Writer, r *selftestReport, asJSON bool) error {
	if asJSON {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "input:    %s\nweights:  %s\npca:      %s\ndevice:   %s (libtorch %s)\n\n", r.Input, r.Weights, r.PCA, r.Device, r.Libtorch)
	fmt.Fprintf(tw, "\tthis machine\tTensorFlow\t|difference| / TensorFlow\t\t\n")
	for _, f := range r.Figures {
		verdict := "ok"
		if !f.Pass {
			verdict = "OFF"
		}
		fmt.Fprintf(tw, "%-18s\t%.6g\t%g\t%.3g\t%s\t\n", f.Name, f.Value, f.Published, f.Relative, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Error != "" {
		fmt.Fprintf(w, "\n%s\n", r.Error)
	}
	verdict := "PASS: these weights, libtorch and preprocessing give TensorFlow's figures"
	if !r.Pass {
		verdict = "FAIL: these weights, libtorch and preprocessing do not give TensorFlow's figures"
	}
	_, err := fmt.Fprintf(w, "\ntolerance %g relative, as the smoke test's assert_allclose\n%s\n", r.Tolerance, verdict)
	return err
}
