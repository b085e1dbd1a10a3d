package vggish

import "fmt"

// nonFiniteError is an example whose log-mel input or embedding holds a NaN or an infinity.
type nonFiniteError struct {
	example int
	start   float64
	what    string // "log-mel input" or "embedding"
	value   float32
}

func (e *nonFiniteError) Error() string {
	cause := "the network's float32 arithmetic overflowed: are the weights or the log-mel input out of range?"
	if e.what != "embedding" {
		cause = "log-mel values must be finite"
	}
	return fmt.Sprintf("vggish: example %d (at %.2f s): %s value %v: %s", e.example, e.start, e.what, e.value, cause)
}

// checkFinite returns a *nonFiniteError for the first of the examples (len(starts) rows of data) that
// holds a NaN or an infinity.
func checkFinite(data []float32, starts []float64, what string) error {
	if len(starts) == 0 {
		return nil
	}
	per := len(data) / len(starts)
	for i, v := range data {
		if v-v != 0 { // NaN or ±Inf
			return &nonFiniteError{example: i / per, start: starts[i/per], what: what, value: v}
		}
	}
	return nil
}
