package preprocess

import (
	"fmt"
	"math"
	"sync"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/vggish-go/vggish/internal/tensor"
)

// The VGGish front end (torchvggish vggish_params and mel_features).
const (
	SampleRate    = 16000 // Hz: everything is resampled to this
	FrameLength   = 400   // samples: 25 ms STFT window
	FrameHop      = 160   // samples: 10 ms
	FFTLength     = 512   // 2^ceil(log2(FrameLength))
	MelBins       = 64
	ExampleFrames = 96 // log-mel frames per example: 0.96 s
	// ExampleSamples is the waveform one example covers: (ExampleFrames-1)*FrameHop + FrameLength.
	ExampleSamples = (ExampleFrames-1)*FrameHop + FrameLength

	melLowHz   = 125.0
	melHighHz  = 7500.0
	logOffset  = 0.01
	specBins   = FFTLength/2 + 1
	defaultHop = ExampleFrames
)

// frontend holds the tensors every log-mel computation on one device shares. They are built once per
// device and live as long as the process.
type frontend struct {
	window *ts.Tensor // (400,) periodic Hann, float64
	mel    *ts.Tensor // (257, 64) HTK mel matrix, float64
}

var frontends sync.Map // gotch.Device -> *frontend

func getFrontend(device gotch.Device) (*frontend, error) {
	if f, ok := frontends.Load(device); ok {
		return f.(*frontend), nil
	}
	f := &frontend{}
	var err error
	if f.window, err = tensor.To(device)(tensor.FromSlice(periodicHann(FrameLength), FrameLength)); err != nil {
		return nil, err
	}
	if f.mel, err = tensor.To(device)(tensor.FromSlice(melMatrix(), specBins, MelBins)); err != nil {
		f.window.Drop()
		return nil, err
	}
	if prev, loaded := frontends.LoadOrStore(device, f); loaded {
		f.window.Drop()
		f.mel.Drop()
		return prev.(*frontend), nil
	}
	return f, nil
}

// periodicHann is mel_features.periodic_hann: 0.5 - 0.5 cos(2πi/n).
func periodicHann(n int) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 0.5 - 0.5*math.Cos(2*math.Pi/float64(n)*float64(i))
	}
	return w
}

func hertzToMel(hz float64) float64 { return 1127.0 * math.Log(1+hz/700.0) }

// melMatrix is mel_features.spectrogram_to_mel_matrix for VGGish: (257, 64), row-major, with the DC
// row zeroed. Band edges are spaced evenly in HTK mel like np.linspace.
func melMatrix() []float64 {
	nyquist := SampleRate / 2.0
	binMel := make([]float64, specBins)
	for i := range binMel {
		binMel[i] = hertzToMel(nyquist * float64(i) / float64(specBins-1))
	}
	lo, hi := hertzToMel(melLowHz), hertzToMel(melHighHz)
	edges := make([]float64, MelBins+2)
	step := (hi - lo) / float64(MelBins+1)
	for i := range edges {
		edges[i] = lo + float64(i)*step
	}
	edges[len(edges)-1] = hi // np.linspace ends exactly at stop
	m := make([]float64, specBins*MelBins)
	for i := 1; i < specBins; i++ { // row 0 (DC) stays zero
		for j := 0; j < MelBins; j++ {
			lower := (binMel[i] - edges[j]) / (edges[j+1] - edges[j])
			upper := (edges[j+2] - binMel[i]) / (edges[j+2] - edges[j+1])
			m[i*MelBins+j] = math.Max(0, math.Min(lower, upper))
		}
	}
	return m
}

// logMelExamples computes the examples of a 16 kHz waveform that holds exactly the samples they cover:
// (n-1)*hop*FrameHop + ExampleSamples for n examples. It returns n*96*64 float32 values.
func logMelExamples(wave []float64, n, hop int, device gotch.Device) ([]float32, error) {
	f, err := getFrontend(device)
	if err != nil {
		return nil, err
	}
	var s tensor.Scope
	defer s.Close()
	x, err := s.Own(tensor.To(device)(tensor.FromSlice(wave, int64(len(wave)))))
	if err != nil {
		return nil, err
	}
	x, err = s.Apply(x,
		func(t *ts.Tensor) (*ts.Tensor, error) { return t.Unfold(0, FrameLength, FrameHop, false) },               // (F, 400)
		func(t *ts.Tensor) (*ts.Tensor, error) { return tensor.LogMel(t, f.window, f.mel, logOffset, FFTLength) }, // (F, 64)
		func(t *ts.Tensor) (*ts.Tensor, error) { return t.Unfold(0, ExampleFrames, int64(hop), false) },           // (N, 64, 96)
		func(t *ts.Tensor) (*ts.Tensor, error) { return t.Transpose(1, 2, false) },                                // (N, 96, 64)
	)
	if err != nil {
		return nil, err
	}
	out, err := tensor.ToSlice[float32](x)
	if err != nil {
		return nil, err
	}
	if len(out) != n*ExampleFrames*MelBins {
		return nil, fmt.Errorf("log-mel: %d values for %d examples", len(out), n)
	}
	return out, nil
}
