package reftest

import (
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	timingMu sync.Mutex
	timings  = map[string]map[string]any{}
)

// BenchThreads is the intra-op thread count benchmarks give both libtorch-in-Go and the reference.
func BenchThreads() int { return runtime.NumCPU() }

// Timing runs a reference timing command once per test binary and returns its JSON: a benchmark
// function runs several times while the testing package sizes b.N, and the reference should run once.
func Timing(tb testing.TB, script string, args ...string) map[string]any {
	tb.Helper()
	key := script + " " + strings.Join(args, " ")
	timingMu.Lock()
	defer timingMu.Unlock()
	if t, ok := timings[key]; ok {
		return t
	}
	out := Run(tb, script, append(args, "--threads", strconv.Itoa(BenchThreads()))...)
	var t map[string]any
	if err := json.Unmarshal(out, &t); err != nil {
		tb.Fatalf("reference %s: %v in %q", key, err, out)
	}
	timings[key] = t
	return t
}

// ReportVsReference adds the reference's time per op and the speed-up over it to a benchmark:
// "x-reference" above 1 means vggish-go is faster.
func ReportVsReference(b *testing.B, referenceSecondsPerOp float64) {
	goSeconds := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(referenceSecondsPerOp*1e3, "ref-ms/op")
	b.ReportMetric(referenceSecondsPerOp/goSeconds, "x-reference")
}
