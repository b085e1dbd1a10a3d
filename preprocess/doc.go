// Package preprocess turns audio samples into VGGish's log-mel examples, the network's input, with
// the numbers of the reference (torchvggish's vggish_input, as the Towhee operator runs it). It
// computes in libtorch tensors, on the CPU or on the model's CUDA device ([Options.Device]):
//
//   - resampling to 16 kHz as resampy's kaiser_best filter does, by a polyphase filter bank (the pure
//     Go port in package resample for rates whose bank would be too large);
//   - the log-mel spectrogram: 25 ms periodic-Hann frames every 10 ms, the magnitude of a 512-point
//     FFT, 64 HTK mel bands from 125 to 7500 Hz, log(x + 0.01), in float64;
//   - the examples: 96 frames (0.96 s) each, a new one every [Options.Hop], as float32.
//
// [Stream] reads a [decode.Source] to the end a block of [BlockExamples] at a time, so memory stays
// flat however long the audio; [Read] returns all the examples of a source and [File] those of a
// file. [Tail] decides what becomes of a last, partial example.
//
// Errors name the input: "preprocess NAME: ...". The decoder's own errors ([*decode.FormatError],
// [*decode.UnsupportedError]) come through as they are.
package preprocess
