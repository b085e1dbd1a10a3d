package torch

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE // dladdr
#include <dlfcn.h>
#include <stddef.h>

// vggish_openblas_config is OpenBLAS's description of its build and kernels ("OpenBLAS 0.3.21 ...
// DYNAMIC_ARCH ... Haswell ..."), or NULL without OpenBLAS.
static const char *vggish_openblas_config(void) {
	char *(*config)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_config");
	return config ? config() : NULL;
}

// vggish_sgemm_file is the file, as the loader opened it, that defines sgemm_, or NULL.
static const char *vggish_sgemm_file(void) {
	Dl_info info;
	void *f = dlsym(RTLD_DEFAULT, "sgemm_");
	return f && dladdr(f, &info) ? info.dli_fname : NULL;
}
*/
import "C"

import (
	"path/filepath"
	"strings"
)

// ReferenceBLASFix says what the reference BLAS costs and how to replace it, for the messages that
// report it.
const ReferenceBLASFix = "several times slower than OpenBLAS: install it (Debian, Ubuntu: apt install libopenblas0)"

// BLAS says which BLAS libtorch's float32 products (the linear layers) run on: OpenBLAS with its
// build and kernels, the file that provides sgemm_, or libtorch's own (an upstream libtorch links MKL
// into itself). reference reports Debian's and Ubuntu's reference BLAS (package libblas3), which a
// libtorch built against the generic libblas.so.3 (Debian 13's) runs on unless OpenBLAS is installed:
// the network was 3x to 10x slower there. The file that provides sgemm_ decides, not whether OpenBLAS
// is loaded: with the libblas.so.3 alternative set to the reference and liblapack.so.3's to OpenBLAS,
// both are.
func BLAS() (desc string, reference bool) {
	file := ""
	if c := C.vggish_sgemm_file(); c != nil {
		file = C.GoString(c)
		if real, err := filepath.EvalSymlinks(file); err == nil {
			file = real
		}
	}
	switch c := C.vggish_openblas_config(); {
	case filepath.Base(filepath.Dir(file)) == "blas" && strings.HasPrefix(filepath.Base(file), "libblas.so"):
		return file, true
	case c != nil:
		return C.GoString(c), false
	case file == "":
		return "libtorch's own", false
	}
	return file, false
}
