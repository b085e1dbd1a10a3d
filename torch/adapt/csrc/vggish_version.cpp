// Lets the Go side report the libtorch version it was compiled against; gotch has no call for it.
// github.com/vggish-go/vggish/torch declares the function.
#include <torch/version.h>
extern "C" const char *vggish_libtorch_version() { return TORCH_VERSION; }
