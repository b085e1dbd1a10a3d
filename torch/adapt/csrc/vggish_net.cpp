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

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

enum Layout { kPlain = 0, kMkldnn = 1, kChannelsLast = 2 };
enum Flags { kConv = 1, kRelu = 2, kPool = 4 };

struct Layer {
  int flags;
  at::Tensor weight, bias;
};

struct Net {
  std::vector<Layer> layers;
  Layout layout;
  at::ScalarType dtype;
};

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

// linear is x W^T + b. On the CPU in float32 it runs on libtorch's own threads, each taking a slice of
// the output features (every output still sums over the whole input in one sgemm, so the result does
// not depend on the thread count): OpenBLAS's thread pool, left to itself, busy-waits beside libtorch's
// OpenMP threads, which cost a third of the CPU time of a run in the kernel.
at::Tensor linear(const Net &net, const Layer &l, const at::Tensor &x) {
  if (!x.device().is_cpu() || net.dtype != at::kFloat) {
    return at::linear(x, l.weight, l.bias);
  }
  const int64_t n = l.weight.size(0);
  at::Tensor y = at::empty({x.size(0), n}, x.options());
  const int64_t threads = at::get_num_threads();
  const int64_t grain = ((n + threads - 1) / threads + 63) / 64 * 64;
  at::parallel_for(0, n, grain, [&](int64_t lo, int64_t hi) {
    at::Tensor part = y.narrow(1, lo, hi - lo);
    at::addmm_out(part, l.bias.narrow(0, lo, hi - lo), x, l.weight.narrow(0, lo, hi - lo).t());
  });
  return y;
}

// single_threaded_blas keeps OpenBLAS (Debian's libtorch's BLAS) to the calling thread; linear spreads
// the work instead. Builds on MKL have no such symbol and need nothing: MKL runs on OpenMP's threads.
void single_threaded_blas() {
  if (auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(1);
  }
}

}  // namespace

extern "C" {

// vggish_net_new builds a network from n layers: flags[i] is kConv (a 3x3 convolution, padding 1) or
// not (a linear layer), plus kRelu and kPool (2x2 max-pool) after it; params holds weight and bias
// tensors per layer (float32, on the device the network runs on). layout is a Layout, dtype an
// at::ScalarType for the weights and activations. The first linear layer takes the convolutions'
// output flattened in (H, W, C) order, as TensorFlow-trained weights expect.
char *vggish_net_new(void **params, const int *flags, int n, int layout, int dtype, void **out) {
  try {
    auto *net = new Net{{}, static_cast<Layout>(layout), static_cast<at::ScalarType>(dtype)};
    for (int i = 0; i < n; i++) {
      at::Tensor w = static_cast<at::Tensor *>(params[2 * i])->to(net->dtype);
      at::Tensor b = *static_cast<at::Tensor *>(params[2 * i + 1]);
      bool is_conv = flags[i] & kConv;
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
    if (net->layers.empty() || net->layers[0].weight.device().is_cpu()) {
      single_threaded_blas();
    }
    *out = net;
    return nullptr;
  } catch (const std::exception &e) {
    return error_string(e.what());
  }
}

// vggish_net_forward maps x, float32 (B, 1, H, W) on the network's device, to float32 (B, D) in *out.
char *vggish_net_forward(void *handle, void *x, void **out) {
  try {
    const Net &net = *static_cast<Net *>(handle);
    c10::InferenceMode guard;
    at::Tensor y = static_cast<at::Tensor *>(x)->to(net.dtype);
    if (net.layout == kMkldnn) {
      y = y.to_mkldnn();
    } else if (net.layout == kChannelsLast) {
      y = y.contiguous(at::MemoryFormat::ChannelsLast);
    }
    bool flat = false;
    const int64_t rows = y.size(0);
    for (const Layer &l : net.layers) {
      if (l.flags & kConv) {
        y = conv(net, l, y);
      } else {
        if (!flat) {
          if (y.is_mkldnn()) {
            y = y.to_dense();
          }
          y = y.permute({0, 2, 3, 1}).contiguous().flatten(1);
          // libtorch multiplies a single row by other kernels (matrix-vector) than a batch, so a clip's
          // last bits would depend on its batch; the convolutions do not. A lone row goes twice.
          if (rows == 1) {
            y = at::cat({y, y});
          }
          flat = true;
        }
        y = linear(net, l, y);
      }
      if (l.flags & kRelu) {
        y.relu_();
      }
      if (l.flags & kPool) {
        y = at::max_pool2d(y, {2, 2}, {2, 2});
      }
    }
    *out = new at::Tensor(y.slice(0, 0, rows).to(at::kFloat).contiguous());
    return nullptr;
  } catch (const std::exception &e) {
    return error_string(e.what());
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
