// The log-mel spectrogram of framed audio in one call: on the CPU in chunks of frames on libtorch's
// threads, each chunk windowed, transformed, mapped to mel bands and logged while it is in the caches.
// github.com/vggish-go/vggish/preprocess declares the function; its numbers are those of the same ops
// applied to all the frames at once.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstring>
#include <string>

extern "C" {

// vggish_log_mel sets *out to log(|rfft(frames * window, fft)| mel + offset): frames (F, L) and window
// (L) real, mel (fft/2+1, M), all of one dtype on one device; *out is (F, M). Errors are returned as
// malloc'd strings.
char *vggish_log_mel(void *frames, void *window, void *mel, double offset, int64_t fft, void **out) {
  try {
    c10::InferenceMode guard;
    const at::Tensor &x = *static_cast<at::Tensor *>(frames);
    const at::Tensor &w = *static_cast<at::Tensor *>(window);
    const at::Tensor &m = *static_cast<at::Tensor *>(mel);
    at::Tensor y = at::empty({x.size(0), m.size(1)}, x.options());
    const int64_t n = x.size(0);
    auto rows = [&](int64_t lo, int64_t hi) {
      c10::InferenceMode guard;  // thread-local: OpenMP's threads need their own
      at::Tensor part = y.narrow(0, lo, hi - lo);
      at::mm_out(part, at::fft_rfft(x.narrow(0, lo, hi - lo) * w, fft).abs(), m);
      part.add_(offset).log_();
    };
    if (x.device().is_cpu()) {
      // Chunks of kChunk frames at fixed places, so that the result does not depend on the thread
      // count: 128 frames of spectrum (1.3 s at 16 kHz) take 0.5 MB, and stay in the caches.
      constexpr int64_t kChunk = 128;
      at::parallel_for(0, (n + kChunk - 1) / kChunk, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; c++) {
          rows(c * kChunk, std::min(n, (c + 1) * kChunk));
        }
      });
    } else {
      rows(0, n);
    }
    *out = new at::Tensor(y);
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(std::string(e.what()).c_str());
  }
}

}  // extern "C"
