package tensor_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"

	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/internal/tensor"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/torch/adapt/stubs"
)

func wave(n int, f float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Sin(float64(i)*f) + 0.25*math.Cos(float64(i*i)*0.01)
	}
	return out
}

// TestComputesLikePythonTorch proves libtorch computes through gotch: a conv2d and an rfft, checked
// against /usr/bin/python3's torch on the same inputs in this run.
func TestComputesLikePythonTorch(t *testing.T) {
	reftest.Require(t)
	x, w, sig := wave(2*3*5*7, 0.37), wave(4*3*3*3, 1.3), wave(400, 0.21)
	var s tensor.Scope
	defer s.Close()
	xt, err := s.Own(tensor.FromSlice(x, 2, 3, 5, 7))
	require.NoError(t, err)
	wt, err := s.Own(tensor.FromSlice(w, 4, 3, 3, 3))
	require.NoError(t, err)
	conv, err := s.Own(ts.Conv2d(xt, wt, ts.None, []int64{1, 1}, []int64{1, 1}, []int64{1, 1}, 1))
	require.NoError(t, err)
	st, err := s.Own(tensor.FromSlice(sig, 400))
	require.NoError(t, err)
	spec, err := s.Own(st.FftRfft([]int64{512}, -1, "backward", false))
	require.NoError(t, err)
	mag, err := s.Own(spec.Abs(false))
	require.NoError(t, err)

	in, _ := json.Marshal(map[string]any{"x": x, "xshape": []int{2, 3, 5, 7}, "w": w, "wshape": []int{4, 3, 3, 3}, "signal": sig, "n_fft": 512})
	cmd := exec.Command(reftest.Interpreter(), reftest.Script("torch_smoke.py"))
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	require.NoError(t, err)
	var want struct {
		Conv      []float64 `json:"conv"`
		ConvShape []int64   `json:"conv_shape"`
		RfftAbs   []float64 `json:"rfft_abs"`
	}
	require.NoError(t, json.Unmarshal(out, &want))

	shape, err := conv.Size()
	require.NoError(t, err)
	assert.Equal(t, want.ConvShape, shape)
	for _, c := range []struct {
		name string
		got  *ts.Tensor
		want []float64
	}{{"conv2d", conv, want.Conv}, {"|rfft|", mag, want.RfftAbs}} {
		got, err := tensor.ToSlice[float64](c.got)
		require.NoError(t, err)
		require.Len(t, got, len(c.want), c.name)
		maxDiff := 0.0
		for i := range got {
			maxDiff = math.Max(maxDiff, math.Abs(got[i]-c.want[i]))
		}
		t.Logf("%s: max |go - python| = %.3g over %d values", c.name, maxDiff, len(got))
		assert.LessOrEqual(t, maxDiff, 1e-12, c.name)
	}
}

// stubCalls calls gotch wrappers that a supported libtorch lacks, by the names in the stub lists, with
// real tensors so that a wrapper that is not stubbed fails the test instead of crashing. Those with a
// leading underscore are called through libtch: gotch's Go methods for them are unexported.
var stubCalls = map[string]func(*testing.T, *ts.Tensor) error{
	"atg_squeeze_dims": func(t *testing.T, x *ts.Tensor) error {
		var s tensor.Scope
		defer s.Close()
		_, err := s.Own(x.SqueezeDims([]int64{0}, false))
		return err
	},
	"atg__cslt_sparse_mm": func(t *testing.T, x *ts.Tensor) error {
		c := lib.Ctensor(x.Ctensor())
		return libtchCall(t, func(out *lib.Ctensor) { lib.Atg_CsltSparseMm(out, c, c, c, 0) })
	},
	"atg__scaled_mm": func(t *testing.T, x *ts.Tensor) error {
		c := lib.Ctensor(x.Ctensor())
		return libtchCall(t, func(out *lib.Ctensor) { lib.Atg_ScaledMm(out, c, c, c, gotch.Float.CInt(), c, c, c) })
	},
}

// libtchCall runs a libtch wrapper that writes up to two tensors to out, frees what it wrote and
// returns its error, read on the calling thread as libtorch requires.
func libtchCall(t *testing.T, call func(out *lib.Ctensor)) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var out [2]lib.Ctensor
	call(&out[0])
	err := ts.TorchErr()
	for _, c := range out {
		if c != nil {
			require.NoError(t, ts.New(c).Drop())
		}
	}
	return tensor.Err(err)
}

// A wrapper that libtorch cannot provide was stubbed by torch/adapt: calling it is a Go error. Every
// wrapper on the active libtorch's stub list that stubCalls can call is tried.
func TestStubbedOpReturnsError(t *testing.T) {
	version := torch.Version()
	listed, ok := stubs.List(version)
	if !ok {
		t.Skipf("libtorch %s has no committed stub list (torch/adapt/stubs/%s): `go run ./torch/adapt -regen` writes one",
			version, stubs.FileName(version))
	}
	if len(listed) == 0 {
		t.Skipf("libtorch %s compiles every gotch wrapper: none is stubbed", version)
	}
	var s tensor.Scope
	defer s.Close()
	x, err := s.Own(tensor.FromSlice([]float32{1, 2, 3, 4}, 2, 2))
	require.NoError(t, err)
	tried := 0
	for _, name := range listed {
		call, ok := stubCalls[name]
		if !ok {
			continue
		}
		tried++
		t.Run(name, func(t *testing.T) {
			err := call(t, x)
			require.Error(t, err)
			assert.Contains(t, err.Error(), strings.TrimPrefix(name, "atg_")+" is not available with libtorch "+version)
			assert.NotContains(t, err.Error(), "goroutine", "the Go stack trace is cut")
		})
	}
	require.NotZero(t, tried, "none of the %d wrappers stubbed for libtorch %s has a call in stubCalls: add one", len(listed), version)
}

func TestSliceRoundTrip(t *testing.T) {
	var s tensor.Scope
	defer s.Close()
	x, err := s.Own(tensor.FromSlice([]float32{1.5, -2, 3.25, 4, 5, 6}, 2, 3))
	require.NoError(t, err)
	back, err := tensor.ToSlice[float32](x)
	require.NoError(t, err)
	assert.Equal(t, []float32{1.5, -2, 3.25, 4, 5, 6}, back)
	asF64, err := tensor.ToSlice[float64](x)
	require.NoError(t, err)
	assert.Equal(t, []float64{1.5, -2, 3.25, 4, 5, 6}, asF64)

	// AppendSlice extends what it is given, in place when the capacity allows.
	dst := make([]float64, 1, 16)
	dst[0] = 9
	got, err := tensor.AppendSlice(dst, x)
	require.NoError(t, err)
	assert.Equal(t, []float64{9, 1.5, -2, 3.25, 4, 5, 6}, got)
	assert.Same(t, &dst[0], &got[0], "dst's array, not a new one")
	empty, err := s.Own(tensor.FromSlice([]float32{}, 0, 3))
	require.NoError(t, err)
	got, err = tensor.AppendSlice(dst, empty)
	require.NoError(t, err)
	assert.Equal(t, []float64{9}, got)
	none, err := tensor.ToSlice[float32](empty)
	require.NoError(t, err)
	assert.NotNil(t, none, "an empty slice, not nil")
	assert.Empty(t, none)

	_, err = tensor.FromSlice([]float32{1, 2, 3}, 2, 2)
	assert.ErrorContains(t, err, "3 elements do not fill shape [2 2]")
	_, err = tensor.FromSlice([]float32{1})
	assert.ErrorContains(t, err, "no shape")
}

func TestScopeFreesWhatItOwns(t *testing.T) {
	before := len(ts.ExistingTensors)
	var s tensor.Scope
	kept, err := s.Own(tensor.FromSlice([]float32{1}, 1))
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		_, err := s.Own(kept.MulScalar(ts.FloatScalar(2), false))
		require.NoError(t, err)
	}
	s.Release(kept)
	s.Close()
	assert.Equal(t, before+1, len(ts.ExistingTensors), "only the released tensor is alive")
	require.NoError(t, kept.Drop())
	assert.Equal(t, before, len(ts.ExistingTensors))
}

func TestScopeApply(t *testing.T) {
	before := len(ts.ExistingTensors)
	var s tensor.Scope
	x, err := s.Own(tensor.FromSlice([]float32{1, 2}, 2))
	require.NoError(t, err)
	double := func(t *ts.Tensor) (*ts.Tensor, error) { return t.MulScalar(ts.FloatScalar(2), false) }
	y, err := s.Apply(x, double, double)
	require.NoError(t, err)
	got, err := tensor.ToSlice[float32](y)
	require.NoError(t, err)
	assert.Equal(t, []float32{4, 8}, got)

	// A reshape that cannot be done fails on every libtorch.
	ran := false
	_, err = s.Apply(x, double, func(t *ts.Tensor) (*ts.Tensor, error) { return t.Reshape([]int64{3}, false) },
		func(t *ts.Tensor) (*ts.Tensor, error) { ran = true; return t, nil })
	assert.ErrorContains(t, err, "Reshape")
	assert.False(t, ran, "the first error stops the chain")
	s.Close()
	assert.Equal(t, before, len(ts.ExistingTensors), "every result is freed with the scope")
}
