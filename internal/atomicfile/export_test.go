package atomicfile

import "testing"

// Named makes Create write named temporary files for the rest of t, as where O_TMPFILE is refused.
func Named(t testing.TB) {
	unnamed = false
	t.Cleanup(func() { unnamed = true })
}
