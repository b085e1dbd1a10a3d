// Preprocessing's native calls: a group of a resampling filter bank's rows, and the log-mel
// spectrogram of framed audio, each in one call and on the CPU on libtorch's threads. internal/tensor
// declares them; their numbers do not depend on the thread count.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

extern "C" {

// vggish_polyphase sets *out to n blocks of a filter bank applied to x (1-D): block j multiplies the
// rows windows of x from offsets[j] on, step apart and as wide as weights[j] has rows, by weights[j];
// *out is (rows, the blocks' columns), block after block. x and the weights are of one dtype on one
// device. Each window lies within x and, with step at least its width, the windows are a strided
// matrix that BLAS reads in place. On the CPU the blocks run on libtorch's threads, each one product.
char *vggish_polyphase(void *x, void **weights, const int64_t *offsets, int n, int64_t rows,
                       int64_t step, void **out) {
  try {
    c10::InferenceMode guard;
    const at::Tensor &in = *static_cast<at::Tensor *>(x);
    std::vector<at::Tensor> w;
    std::vector<int64_t> col{0};
    for (int j = 0; j < n; j++) {
      w.push_back(*static_cast<at::Tensor *>(weights[j]));
      col.push_back(col.back() + w[j].size(1));
    }
    at::Tensor y = at::empty({rows, col.back()}, in.options());
    auto block = [&](int64_t j) {
      c10::InferenceMode guard;  // thread-local: OpenMP's threads need their own
      const int64_t width = w[j].size(0);
      at::Tensor windows = in.narrow(0, offsets[j], (rows - 1) * step + width).unfold(0, width, step);
      at::Tensor part = y.narrow(1, col[j], col[j + 1] - col[j]);
      at::mm_out(part, windows, w[j]);
    };
    if (in.device().is_cpu()) {
      at::parallel_for(0, n, 1, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; j++) {
          block(j);
        }
      });
    } else {
      for (int j = 0; j < n; j++) {
        block(j);
      }
    }
    *out = new at::Tensor(y);
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(std::string(e.what()).c_str());
  }
}

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
