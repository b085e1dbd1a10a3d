package vggish

import (
	"fmt"
	"math"
)

// Log-mel values are log(mel + 0.01) of finite audio: at least log(0.01) and at most the log of the
// largest float64. Anything outside did not come from audio, and on the CPU it could overflow inside
// the convolutions unseen: oneDNN's ReLU and max-pool turn a NaN into a number.
var (
	minLogMel = float32(math.Log(0.01)) - 0.01
	maxLogMel = float32(math.Log(math.MaxFloat64)) + 0.01
)

// badValueError is an example whose log-mel input or embedding holds a value that cannot be right.
type badValueError struct {
	example int
	start   float64
	what    string // "log-mel input" or "embedding"
	value   float32
}

func (e *badValueError) Error() string {
	cause := "the network's arithmetic overflowed (float32, or float16's 65504 at precision fp16): are the weights or the log-mel input out of range?"
	if e.what != "embedding" {
		cause = fmt.Sprintf("log-mel values of audio lie in [%.2f, %.1f]", minLogMel, maxLogMel)
	}
	return fmt.Sprintf("example %d (at %.2f s): %s value %v: %s", e.example, e.start, e.what, e.value, cause)
}

// checkRange returns a *badValueError for the first of the examples (len(starts) rows of data) that
// holds a value outside [lo, hi], a NaN or an infinity.
func checkRange(data []float32, starts []float64, what string, lo, hi float32) error {
	if len(starts) == 0 {
		return nil
	}
	per := len(data) / len(starts)
	for i, v := range data {
		if !(v >= lo && v <= hi) { // NaN too
			return &badValueError{example: i / per, start: starts[i/per], what: what, value: v}
		}
	}
	return nil
}

// checkFinite is checkRange for any finite value.
func checkFinite(data []float32, starts []float64, what string) error {
	return checkRange(data, starts, what, -math.MaxFloat32, math.MaxFloat32)
}
