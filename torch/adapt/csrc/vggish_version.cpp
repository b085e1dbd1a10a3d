// The libtorch version compiled against, for the Go side (gotch has no call for it). It sits in an ELF
// section of its own, so that cmd/vggish reads it from vggish-engine's file without loading libtorch
// (internal/cli.LibtorchVersion). github.com/vggish-go/vggish/torch declares it.
#include <torch/version.h>
extern "C" __attribute__((section("vggish.libtorch"), used)) const char vggish_libtorch_version[] = TORCH_VERSION;
