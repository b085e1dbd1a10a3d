package main

import (
	"os"
	"path/filepath"
)

// decoderName is the decoding workers' own program (cmd/vggish-decoder), which starts in a tenth of
// the time this one takes (it does not load libtorch).
const decoderName = "vggish-decoder"

// decoderCommand is the program the decoding workers run: decoderName in exe's folder where it is an
// executable file, else exe itself.
func decoderCommand(exe string) string {
	path := filepath.Join(filepath.Dir(exe), decoderName)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return path
	}
	return exe
}
