package decode

import (
	"errors"
	"fmt"
)

// A FormatError reports that an input is not valid audio: a corrupt or truncated WAV file, samples
// that are NaN or infinite, a file ffmpeg fails to decode (ffmpeg does not say reliably whether such a
// file is corrupt or in a format it lacks), an empty file.
type FormatError struct {
	Name string // the file, or what stands for it ("float32 samples", "*audio.IntBuffer")
	Err  error  // what is wrong
}

func (e *FormatError) Error() string { return prefix(e.Name) + e.Err.Error() }

func (e *FormatError) Unwrap() error { return e.Err }

// An UnsupportedError reports audio that may be valid but is not decoded here: a sample rate outside
// [MinSampleRate, MaxSampleRate], a WAV encoding that [NewWAV] does not decode (Open hands those to
// ffmpeg), a file that needs ffmpeg when ffmpeg is not installed, a go-audio buffer of an unknown type
// or bit depth.
type UnsupportedError struct {
	Name string // the file, or what stands for it
	Err  error  // what is not supported
}

func (e *UnsupportedError) Error() string { return prefix(e.Name) + e.Err.Error() }

func (e *UnsupportedError) Unwrap() error { return e.Err }

func prefix(name string) string {
	if name == "" {
		return "decode: "
	}
	return "decode " + name + ": "
}

// formatError is a *FormatError naming name, with a message formatted as fmt.Errorf does.
func formatError(name, format string, args ...any) error {
	return &FormatError{Name: name, Err: fmt.Errorf(format, args...)}
}

// unsupported is an *UnsupportedError naming name, with a message formatted as fmt.Errorf does.
func unsupported(name, format string, args ...any) error {
	return &UnsupportedError{Name: name, Err: fmt.Errorf(format, args...)}
}

// failed is any other failure of the input name: err, wrapped, after the package's prefix.
func failed(name string, err error) error { return fmt.Errorf("%s%w", prefix(name), err) }

// readError is err, a failure to read the input name: a *FormatError or *UnsupportedError (from a
// [Decoder]) already names it.
func readError(name string, err error) error {
	var format *FormatError
	var unsupported *UnsupportedError
	if errors.As(err, &format) || errors.As(err, &unsupported) {
		return err
	}
	return failed(name, err)
}

// errUnsupportedEncoding marks a valid WAV file in an encoding decoded only by ffmpeg (MP3, ADPCM, ...):
// Open hands such files to ffmpeg.
var errUnsupportedEncoding = errors.New("unsupported WAV encoding")
