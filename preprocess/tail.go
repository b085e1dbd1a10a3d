package preprocess

import (
	"fmt"

	"github.com/vggish-go/vggish/internal/spec"
)

// Tail is what happens to the audio after the last whole example, and to audio shorter than one
// example (0.975 s).
type Tail int

const (
	// Drop drops a last partial example, as the reference does: audio shorter than one example
	// gives none.
	Drop Tail = iota
	// Pad pads the 16 kHz waveform with silence so that a last, partial example is kept, and audio
	// shorter than one example gives one (fadtk's choice).
	Pad
	// Repeat fills the last, partial example by looping its own audio (from the example's start to
	// the end of the input): a sound shorter than one example is repeated until it fills 0.975 s.
	// Essentia's lastPatchMode "repeat" loops a last patch's log-mel frames; here the waveform itself
	// is looped, and the log-mel computed over it.
	Repeat
)

var tailNames = []string{Drop: spec.Drop, Pad: spec.Pad, Repeat: spec.Repeat}

// String is the policy's name: drop, pad or repeat.
func (t Tail) String() string {
	if t < 0 || int(t) >= len(tailNames) {
		return fmt.Sprintf("Tail(%d)", int(t))
	}
	return tailNames[t]
}

// ParseTail reads a policy's name.
func ParseTail(s string) (Tail, error) {
	for i, name := range tailNames {
		if s == name {
			return Tail(i), nil
		}
	}
	return 0, fmt.Errorf("preprocess: tail policy %q: want drop, pad or repeat", s)
}

// Set makes *Tail a flag.Value.
func (t *Tail) Set(s string) error {
	v, err := ParseTail(s)
	if err == nil {
		*t = v
	}
	return err
}

// tailExamples is how many examples the Pad and Repeat policies make of total 16 kHz samples with
// examples stride samples apart: the fewest that cover every sample, but none that starts at or after
// the end (which only a stride longer than an example could give).
func tailExamples(total, stride int) int {
	if total <= 0 {
		return 0
	}
	n := 1
	if total > ExampleSamples {
		n = 1 + (total-ExampleSamples+stride-1)/stride
	}
	return min(n, (total+stride-1)/stride)
}

// fill extends wave to length samples by the policy: zeros for Pad; for Repeat the samples from
// wave[start:] (the last example's own audio) over and over.
func (t Tail) fill(wave []float64, start, length int) []float64 {
	if len(wave) >= length {
		return wave
	}
	if t == Pad {
		return append(wave, make([]float64, length-len(wave))...)
	}
	period := len(wave) - start
	for len(wave) < length {
		wave = append(wave, wave[start+(len(wave)-start)%period])
	}
	return wave
}
