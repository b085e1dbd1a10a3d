package reftest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// Sweep is a test signal of n samples in [-1, 1]: a sine sweep plus noise, the same for the same seed.
func Sweep(n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([]float64, n)
	for i := range x {
		f := 0.001 + 0.2*float64(i)/float64(n)
		x[i] = 0.6*math.Sin(2*math.Pi*f*float64(i)) + 0.3*(2*rng.Float64()-1)
	}
	return x
}

// Signal is samples at a rate.
type Signal struct {
	X    []float64
	Rate int
}

// Resampy returns resampy.resample(s.X, s.Rate, outRate) (kaiser_best) for each signal, in one run of
// the reference; a nil result where resampy refuses the input (too short for one output sample).
func Resampy(tb testing.TB, outRate int, signals []Signal) [][]float64 {
	tb.Helper()
	dir := tb.TempDir()
	cases := make([]map[string]any, len(signals))
	for i, s := range signals {
		in := filepath.Join(dir, fmt.Sprintf("in%d", i))
		b := make([]byte, 0, 8*len(s.X))
		for _, v := range s.X {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
		if err := os.WriteFile(in, b, 0o644); err != nil {
			tb.Fatal(err)
		}
		cases[i] = map[string]any{"in": in, "out": in + ".out", "sr_in": s.Rate, "sr_out": outRate}
	}
	manifest := filepath.Join(dir, "cases.json")
	b, err := json.Marshal(cases)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	var refErrors []*string
	if err := json.Unmarshal(Run(tb, "resample_ref.py", "resample", manifest), &refErrors); err != nil || len(refErrors) != len(cases) {
		tb.Fatalf("resample_ref.py: %d results for %d cases (%v)", len(refErrors), len(cases), err)
	}
	out := make([][]float64, len(cases))
	for i, c := range cases {
		if refErrors[i] != nil {
			continue
		}
		b, err := os.ReadFile(c["out"].(string))
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = make([]float64, len(b)/8)
		for j := range out[i] {
			out[i][j] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*j:]))
		}
	}
	return out
}
