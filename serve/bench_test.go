package serve

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/vggish"
)

// BenchmarkServe is the load test: 10 s WAVs embedded by the library directly (Capacity goroutines),
// then by concurrent Go clients over loopback REST (binary AUDIO) at saturation, then at 4× the
// concurrency limit, where every request must be answered 200 or 503 and nothing else. It reports
// served clips/s against the library's, p50/p99 latency at saturation and the process's peak RSS.
// VGGISH_SERVE_BENCH_REQUESTS sets the requests per phase (default 24, 240 clips).
func BenchmarkServe(b *testing.B) {
	m := model(b, vggish.NoPostprocess)
	n := 24
	if v := os.Getenv("VGGISH_SERVE_BENCH_REQUESTS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	wav := sineWAV(b, 10, 16000, 1)
	clients := 2 * m.Options().Workers
	for b.Loop() {
		// The library, directly.
		began := time.Now()
		clips := run(n, clients, func() int {
			e, err := m.EmbedReader(b.Context(), bytes.NewReader(wav), "bench")
			require.NoError(b, err)
			return e.Rows()
		})
		direct := float64(clips) / time.Since(began).Seconds()

		// Served, at saturation: as many clients as the library had goroutines.
		ts := start(b, m, Options{})
		body, headLen := binaryAudioBody(b, wav, true)
		var mu sync.Mutex
		var lat []time.Duration
		began = time.Now()
		clips = run(n, clients, func() int {
			start := time.Now()
			code := post(b, ts.url+"/v2/models/vggish/infer", body, headLen)
			require.Equal(b, http.StatusOK, code)
			mu.Lock()
			lat = append(lat, time.Since(start))
			mu.Unlock()
			return 10
		})
		served := float64(clips) / time.Since(began).Seconds()
		slices.Sort(lat)
		b.ReportMetric(direct, "library-clips/s")
		b.ReportMetric(served, "served-clips/s")
		b.ReportMetric(served/direct, "served/library")
		b.ReportMetric(lat[len(lat)/2].Seconds(), "p50-s")
		b.ReportMetric(lat[len(lat)*99/100].Seconds(), "p99-s")

		// Overload: 4× the concurrency limit: only 200s and 503s.
		over := start(b, m, Options{MaxConcurrent: clients / 2})
		var ok, refused, other atomic.Int64
		run(2*n, 2*clients, func() int {
			switch post(b, over.url+"/v2/models/vggish/infer", body, headLen) {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusServiceUnavailable:
				refused.Add(1)
				time.Sleep(50 * time.Millisecond)
			default:
				other.Add(1)
			}
			return 0
		})
		require.Zero(b, other.Load(), "answers other than 200 and 503 under overload")
		b.ReportMetric(float64(refused.Load())/float64(2*n), "overload-503-fraction")
		b.ReportMetric(peakRSS(b), "peak-RSS-MB")
	}
}

// run runs fn n times over c goroutines and sums its results.
func run(n, c int, fn func() int) int {
	var next, sum atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				sum.Add(int64(fn()))
			}
		})
	}
	wg.Wait()
	return int(sum.Load())
}

func post(b *testing.B, url string, body []byte, headLen int) int {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	require.NoError(b, err)
	req.Header.Set(HeaderLength, strconv.Itoa(headLen))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode
}

// peakRSS is the process's peak resident set (VmHWM), in MB.
func peakRSS(b *testing.B) float64 {
	s, err := os.ReadFile("/proc/self/status")
	require.NoError(b, err)
	var kb float64
	for _, line := range bytes.Split(s, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("VmHWM:")) {
			fmt.Sscanf(string(line[6:]), "%f", &kb)
		}
	}
	return kb / 1024
}
