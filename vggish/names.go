package vggish

import (
	"fmt"
	"slices"
)

// String is the variant's name: towhee or torchvggish.
func (v Variant) String() string { return string(v) }

// ParseVariant reads a variant's name.
func ParseVariant(s string) (Variant, error) {
	if v := Variant(s); v == Towhee || v == TorchVGGish {
		return v, nil
	}
	return "", fmt.Errorf("vggish: variant %q: want %q or %q", s, Towhee, TorchVGGish)
}

// Set makes *Variant a flag.Value.
func (v *Variant) Set(s string) error { return set(v, s, ParseVariant) }

// String is the precision's name: fp32, bf16, fp16 or tf32.
func (p Precision) String() string { return string(p) }

// ParsePrecision reads a precision's name.
func ParsePrecision(s string) (Precision, error) {
	if p := Precision(s); slices.Contains(precisions, p) {
		return p, nil
	}
	return "", fmt.Errorf("vggish: precision %q: want %s", s, joinPrecisions(precisions))
}

// Set makes *Precision a flag.Value.
func (p *Precision) Set(s string) error { return set(p, s, ParsePrecision) }

var postprocessNames = []string{NoPostprocess: "none", PCA: "pca", PCAQuantize: "pca-quantize"}

// String is the post-processing's name: none, pca or pca-quantize.
func (p Postprocess) String() string {
	if p < 0 || int(p) >= len(postprocessNames) {
		return fmt.Sprintf("Postprocess(%d)", int(p))
	}
	return postprocessNames[p]
}

// ParsePostprocess reads a post-processing's name.
func ParsePostprocess(s string) (Postprocess, error) {
	if i := slices.Index(postprocessNames, s); i >= 0 {
		return Postprocess(i), nil
	}
	return 0, fmt.Errorf("vggish: postprocess %q: want none, pca or pca-quantize", s)
}

// Set makes *Postprocess a flag.Value.
func (p *Postprocess) Set(s string) error { return set(p, s, ParsePostprocess) }

// set is the Set of each flag.Value here: *dst changes only when s parses.
func set[T any](dst *T, s string, parse func(string) (T, error)) error {
	v, err := parse(s)
	if err == nil {
		*dst = v
	}
	return err
}
