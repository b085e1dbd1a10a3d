// Package decode reads audio into float64 samples, in pure Go: it does not link libtorch, so a
// program that only decodes audio builds and runs without it.
//
// [Open] decodes WAV files natively (PCM of 8 to 32 bits and IEEE float of 32 or 64 bits, plain or
// WAVE_FORMAT_EXTENSIBLE, any channel count; [NewWAV] reads such a stream) and hands anything else,
// MP3, FLAC, Ogg, M4A or WAV in a compressed encoding, to the ffmpeg command ([NewFFmpeg]), or to the
// [Decoder] set with [SetDecoder] (package decode/libav: ffmpeg's libraries, no process per file). [FromBuffer] reads a
// go-audio [audio.Buffer], [FromFloat32] and [FromFloat64] samples in memory. Every [Source] yields
// mono samples at its own rate, scaled and mixed as the reference (Towhee's vggish operator) does;
// [Split] gives a Source per channel, decoding the input once.
//
// Errors name the input: "decode NAME: what is wrong". An input that is not valid audio is a
// [*FormatError], audio that is not decoded here (a sample rate outside [MinSampleRate] to
// [MaxSampleRate], a file that needs ffmpeg where ffmpeg is not installed) an [*UnsupportedError]:
// a caller tells them apart with errors.As. Other failures, a file or stream that cannot be opened or
// read (a cancelled context included), wrap the underlying error.
package decode
