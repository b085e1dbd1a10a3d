// A stack of 3x3 convolutions and linear layers (VGG-style, as VGGish) run in one call, with the
// weights laid out once at load for the fastest kernels libtorch has on the device. The network's
// shape comes from the Go side (github.com/vggish-go/vggish/vggish); internal/tensor declares these
// functions.
//
// Errors are returned as malloc'd strings rather than through gotch's thread-local error, so a call
// needs no locked OS thread.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

enum Layout { kPlain = 0, kMkldnn = 1, kChannelsLast = 2 };
enum Flags { kConv = 1, kRelu = 2, kPool = 4 };

// A clip's embedding must not depend on the batch it runs in: not on the batch's size, the clip's
// place in it or its neighbours. Kernel libraries do not promise that: OpenBLAS and oneDNN pick other
// kernels for other shapes (OpenBLAS's small-matrix paths; oneDNN's implementations by minibatch) and,
// in some kernels (OpenBLAS's Haswell sgemm), treat rows by their place in the tiles. So every product
// runs at one shape: the convolutions on kConvRows clips at a time, the linear layers on kLinearRows
// clips at a time with the clips as BLAS's M dimension, the last chunk padded with zeros. Measured on
// every OpenBLAS core type and oneDNN ISA an x86-64 CPU offers (vggish's TestBatchInvariance): at
// these shapes a row's result is the same wherever it sits, whatever the thread count; 32 linear rows
// were not, on OpenBLAS's Haswell kernels. The convolutions take one clip at a time, libtorch's
// threads sharing out the clips (see vggish_net_forward): a lone clip pays for no padding, and a
// batch runs without oneDNN's threads meeting at every layer. On an AVX2 Zen 3 that beat 4-clip chunks
// each split across the threads (1 clip: 48-55 against 88-106 ms; 256 clips: 10-25% more clips/s; 8:
// the same). A lone clip still pays for 16 rows of products, against re-packing the weights more often.
constexpr int64_t kConvRows = 1, kLinearRows = 16;
// On CUDA the shapes are fixed too (cuBLAS and cuDNN choose kernels by shape), larger: a GPU runs 64
// clips in about the time of one.
constexpr int64_t kCudaRows = 64;
// kSliceCols is the width of the slices of a linear layer's outputs that libtorch's threads share: a
// fixed width, so that the slices, and so the products, do not depend on the thread count.
constexpr int64_t kSliceCols = 256;

struct Layer {
  int flags;
  at::Tensor weight, bias;
};

struct Net {
  std::vector<Layer> layers;
  Layout layout;
  at::ScalarType dtype;
};

// linear_f32 says whether net, on device, runs its linear layers as float32 products of its dtype's
// values, rounded back to the dtype after each layer: a reduced-precision network on the CPU does.
// libtorch's own bfloat16 products on the CPU treat a row by its place in the chunk (measured: 1 ulp
// apart, whatever the kernel path), where float32's at these shapes do not. A product of two bfloat16
// values is exact in float32 and bfloat16 products sum in float32 anyway: the drift from fp32 is the
// same (TestPrecisionDrift), the speed too (at batch 256 here), at the cost of float32 copies of the
// linear weights.
bool linear_f32(const Net &net, const at::Device &device) { return net.dtype != at::kFloat && device.is_cpu(); }

// round_in_place rounds float32 w to dtype's precision, in place, a slice of rows at a time: the
// float32 copies of a reduced-precision network's linear weights (see linear_f32) then need no memory
// beyond the weights as loaded. Fresh memory is what loading costs most on virtual machines: the
// converted copies (134 MB of bfloat16, then 268 MB of float32) took 0.4-0.6 s of a run's start.
void round_in_place(at::Tensor &w, at::ScalarType dtype) {
  constexpr int64_t kRows = 256;
  for (int64_t r = 0; r < w.size(0); r += kRows) {
    at::Tensor part = w.narrow(0, r, std::min(kRows, w.size(0) - r));
    part.copy_(part.to(dtype));
  }
}

// kStopped is vggish_net_forward's error when told to stop; internal/tensor knows it.
constexpr const char *kStopped = "vggish: stopped";

char *error_string(const char *what) {
  std::string msg(what);
  // libtorch appends a C++ backtrace after the first line; the Go side keeps the first line.
  return strdup(msg.c_str());
}

at::Tensor conv(const Net &net, const Layer &l, const at::Tensor &x) {
  if (net.layout == kMkldnn) {
    return at::mkldnn_convolution(x, l.weight, l.bias, {1, 1}, {1, 1}, {1, 1}, 1);
  }
  return at::conv2d(x, l.weight, l.bias, {1, 1}, {1, 1}, {1, 1}, 1);
}

// features runs the convolution layers on x, float32 (B, 1, H, W), and flattens their output for the
// first linear layer: (B, H*W*C) in the net's dtype.
at::Tensor features(const Net &net, const at::Tensor &x) {
  at::Tensor y = x.to(net.dtype);
  if (net.layout == kMkldnn) {
    y = y.to_mkldnn();
  } else if (net.layout == kChannelsLast) {
    y = y.contiguous(at::MemoryFormat::ChannelsLast);
  }
  for (const Layer &l : net.layers) {
    if (!(l.flags & kConv)) {
      break;
    }
    y = conv(net, l, y);
    if (l.flags & kRelu) {
      y.relu_();
    }
    if (l.flags & kPool) {
      y = at::max_pool2d(y, {2, 2}, {2, 2});
    }
  }
  if (y.is_mkldnn()) {
    y = y.to_dense();
  }
  return y.permute({0, 2, 3, 1}).contiguous().flatten(1);
}

// pad returns x with rows of zeros appended up to a multiple of m rows.
at::Tensor pad(const at::Tensor &x, int64_t m) {
  const int64_t rows = x.size(0), want = (rows + m - 1) / m * m;
  if (want == rows) return x;
  std::vector<int64_t> shape = x.sizes().vec();
  shape[0] = want - rows;
  return at::cat({x, at::zeros(shape, x.options())});
}

// linear maps xT, (K, N) with N a multiple of the linear rows, to W xT + b, (out, N): the activations
// are kept transposed so that clips are BLAS's M dimension. On the CPU, libtorch's threads share the
// outputs in fixed slices, each thread packing only its slice's weights, one product per chunk of
// rows; OpenBLAS itself is single-threaded (see vggish_single_threaded_blas).
at::Tensor linear(const Net &net, const Layer &l, const at::Tensor &xT) {
  const bool cpu = xT.device().is_cpu();
  const int64_t rows = cpu ? kLinearRows : kCudaRows;
  const int64_t out = l.weight.size(0), n = xT.size(1);
  const int64_t width = cpu ? std::min(kSliceCols, out) : out, slices = (out + width - 1) / width;
  at::Tensor yT = at::empty({out, n}, xT.options());
  auto slice = [&](int64_t s) {
    c10::InferenceMode guard;  // thread-local: OpenMP's threads need their own
    const int64_t lo = s * width, cols = std::min(width, out - lo);
    at::Tensor w = l.weight.narrow(0, lo, cols), b = l.bias.narrow(0, lo, cols).unsqueeze(1);
    for (int64_t r = 0; r < n; r += rows) {
      at::Tensor part = yT.narrow(0, lo, cols).narrow(1, r, rows);
      at::addmm_out(part, b, w, xT.narrow(1, r, rows));
    }
  };
  if (cpu) {
    at::parallel_for(0, slices, 1, [&](int64_t s0, int64_t s1) {
      for (int64_t s = s0; s < s1; s++) slice(s);
    });
  } else {
    for (int64_t s = 0; s < slices; s++) slice(s);
  }
  return yT;
}

}  // namespace


extern "C" {

// vggish_net_new builds a network from n layers: flags[i] is kConv (a 3x3 convolution, padding 1) or
// not (a linear layer), plus kRelu and kPool (2x2 max-pool) after it; params holds weight and bias
// tensors per layer (float32, on the device the network runs on), which it takes over: it keeps them
// or rounds them in place (see round_in_place). layout is a Layout, dtype an
// at::ScalarType for the weights and activations. The first linear layer takes the convolutions'
// output flattened in (H, W, C) order, as TensorFlow-trained weights expect.
char *vggish_net_new(void **params, const int *flags, int n, int layout, int dtype, void **out) {
  try {
    auto net = std::make_unique<Net>(Net{{}, static_cast<Layout>(layout), static_cast<at::ScalarType>(dtype)});
    if (n > 0 && static_cast<at::Tensor *>(params[0])->is_cuda()) {
      // cuDNN's deterministic algorithms, chosen without benchmarking: with fixed shapes, the same
      // clip gives the same bits from run to run (a process-wide setting; vggish-go runs only this).
      at::globalContext().setDeterministicCuDNN(true);
      at::globalContext().setBenchmarkCuDNN(false);
    }
    for (int i = 0; i < n; i++) {
      at::Tensor w = *static_cast<at::Tensor *>(params[2 * i]);
      at::Tensor b = *static_cast<at::Tensor *>(params[2 * i + 1]);
      bool is_conv = flags[i] & kConv;
      if (!is_conv && linear_f32(*net, w.device())) {
        round_in_place(w, net->dtype);
        net->layers.push_back(Layer{flags[i], w.contiguous(), b.to(net->dtype).to(at::kFloat)});
        continue;
      }
      w = w.to(net->dtype);
      if (is_conv && net->layout == kMkldnn) {
        // Reordered once into oneDNN's blocked layout: otherwise every call reorders every weight.
        w = at::mkldnn_reorder_conv2d_weight(w.to_mkldnn(), {1, 1}, {1, 1}, {1, 1}, 1);
      } else if (is_conv && net->layout == kChannelsLast) {
        w = w.contiguous(at::MemoryFormat::ChannelsLast);
      } else {
        w = w.contiguous();
      }
      if (net->dtype != at::kFloat && !(is_conv && net->layout == kMkldnn)) {
        b = b.to(net->dtype);
      }
      net->layers.push_back(Layer{flags[i], w, b});
    }
    *out = net.release();
    return nullptr;
  } catch (const std::exception &e) {
    return error_string(e.what());
  }
}

// vggish_net_forward maps x, float32 (B, 1, H, W) on the network's device, to float32 (B, D) in *out.
// A nonzero *stop (read between chunks of clips; stop may be null) ends it early with kStopped.
char *vggish_net_forward(void *handle, void *x, const int *stop, void **out) {
  try {
    const Net &net = *static_cast<Net *>(handle);
    c10::InferenceMode guard;
    const at::Tensor &in = *static_cast<at::Tensor *>(x);
    const int64_t rows = in.size(0);
    const bool cpu = in.device().is_cpu();
    const int64_t conv_rows = cpu ? kConvRows : kCudaRows, linear_rows = cpu ? kLinearRows : kCudaRows;
    const at::Tensor padded = pad(in, conv_rows);
    // On the CPU the threads share out the chunks, each chunk's convolutions on one thread (oneDNN
    // runs single-threaded inside libtorch's parallel region); a lone chunk runs on all of them.
    const int64_t chunks = padded.size(0) / conv_rows;
    std::vector<at::Tensor> parts(chunks);
    bool stopped = false;
    auto run = [&](int64_t c0, int64_t c1) {
      c10::InferenceMode guard;  // thread-local: OpenMP's threads need their own
      for (int64_t c = c0; c < c1; c++) {
        if (stop && __atomic_load_n(stop, __ATOMIC_RELAXED)) {
          __atomic_store_n(&stopped, true, __ATOMIC_RELAXED);
          return;
        }
        parts[c] = features(net, padded.narrow(0, c * conv_rows, conv_rows));
      }
    };
    if (cpu) {
      at::parallel_for(0, chunks, 1, run);
    } else {
      run(0, chunks);
    }
    if (stopped) {
      return strdup(kStopped);
    }
    at::Tensor y = pad(parts.size() == 1 ? parts[0] : at::cat(parts), linear_rows).t();
    for (const Layer &l : net.layers) {
      if (!(l.flags & kConv)) {
        if (linear_f32(net, in.device())) {
          y = linear(net, l, y.to(at::kFloat)).to(net.dtype);
        } else {
          y = linear(net, l, y);
        }
        if (l.flags & kRelu) {
          y.relu_();
        }
      }
    }
    y = y.t();
    *out = new at::Tensor(y.slice(0, 0, rows).to(at::kFloat).contiguous());
    return nullptr;
  } catch (const std::exception &e) {
    return error_string(e.what());
  }
}

// vggish_single_threaded_blas keeps OpenBLAS (Debian's libtorch's BLAS) to the calling thread:
// libtorch's threads split the products instead (linear, and preprocessing's products). Builds on MKL
// have no such symbol and need nothing: MKL runs on OpenMP's threads.
void vggish_single_threaded_blas() {
  if (auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(1);
  }
}

void vggish_net_free(void *handle) { delete static_cast<Net *>(handle); }

// vggish_set_tf32 allows (or forbids) TensorFloat-32 in CUDA convolutions and matrix products. libtorch
// allows it in cuDNN convolutions by default, which would change float32 results on Ampere and later.
void vggish_set_tf32(int allow) {
  at::globalContext().setAllowTF32CuDNN(allow != 0);
  at::globalContext().setAllowTF32CuBLAS(allow != 0);
}

}  // extern "C"
