// Package adapted stops a build whose gotch is not adapted to the machine's libtorch, at once and
// saying what to do. gotch v0.9.1 as published is generated for libtorch 2.1.0 and links CUDA
// unconditionally; vggish-go builds against a copy that torch/adapt makes for the installed libtorch,
// put in place by the go.work file it writes. Without it (a fresh clone, GOWORK=off, a module that
// never ran the adapter), the build would take minutes to fail on gotch's C++ with "torch/torch.h: No
// such file or directory". Instead it stops here within seconds with
//
//	undefined: gotch.Adapted_run__go_run_github_com_vggish_go_vggish_torch_adapt
//
// which means: in the root of your module, run
//
//	go run github.com/vggish-go/vggish/torch/adapt
//
// (gotch's C++ still compiles to its own failure, which go build prints after this error.)
package adapted

// Package half is the pure-Go part of gotch that the adapter marks; nothing in gotch's libtch imports
// it, so this package compiles beside libtch rather than after it.
import gotch "github.com/sugarme/gotch/half"

var _ = gotch.Adapted_run__go_run_github_com_vggish_go_vggish_torch_adapt
