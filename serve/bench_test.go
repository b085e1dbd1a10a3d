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

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/vggish"
)

// BenchmarkServe is the load test, on loopback: 10 s WAVs (10 clips) embedded by the library
// directly, as vggish embed does (2 goroutines per worker), then by concurrent Go clients over REST
// (binary AUDIO):
//   - at saturation, as many clients as the library had goroutines, each sending its next request on
//     its answer: served clips/s, against the library's (served/library), and p50/p99 latency;
//   - at 50% and 90% of the served capacity, requests arriving at a steady rate whatever the answers:
//     p50/p99 latency;
//   - at 2× the capacity, against a server admitting as many requests as the saturating clients: the
//     answers must be 200 or 503 and nothing else; it reports the served clips/s, the count of 503s and
//     of other answers, and the process's peak RSS (clients and server, the model's weights included).
//
// VGGISH_SERVE_BENCH_REQUESTS sets the requests per phase (default 24, 240 clips; twice that at 2×).
func BenchmarkServe(b *testing.B) {
	m := model(b, vggish.NoPostprocess)
	n := benchRequests(b, 24)
	wav := sineWAV(b, 10, 16000, 1)
	const clipsPer = 10
	clients := 2 * m.Options().Workers
	body, headLen := binaryAudioBody(b, wav, true)
	for b.Loop() {
		// The library, directly.
		began := time.Now()
		clips := run(n, clients, func() int {
			e, err := m.EmbedReader(b.Context(), bytes.NewReader(wav), "bench")
			if err != nil {
				b.Error(err)
				return 0
			}
			return e.Rows()
		})
		direct := float64(clips) / time.Since(began).Seconds()

		// Served, at saturation.
		ts := start(b, m, Options{})
		infer := ts.url + "/v2/models/vggish/infer"
		var mu sync.Mutex
		var lat []time.Duration
		began = time.Now()
		clips = run(n, clients, func() int {
			start := time.Now()
			if code := post(b, infer, body, headLen); code != http.StatusOK {
				b.Errorf("answer %d at saturation", code)
			}
			mu.Lock()
			lat = append(lat, time.Since(start))
			mu.Unlock()
			return clipsPer
		})
		served := float64(clips) / time.Since(began).Seconds()
		b.ReportMetric(direct, "library-clips/s")
		b.ReportMetric(served, "served-clips/s")
		b.ReportMetric(served/direct, "served/library")
		p50, p99 := percentiles(lat)
		b.ReportMetric(p50, "p50-s")
		b.ReportMetric(p99, "p99-s")

		// Steady arrivals at a fraction of the served capacity.
		for _, frac := range []float64{0.5, 0.9} {
			var lat []time.Duration
			arrive(n, frac*served/clipsPer, func() {
				start := time.Now()
				if code := post(b, infer, body, headLen); code != http.StatusOK {
					b.Errorf("answer %d at %.0f%% of capacity", code, 100*frac)
				}
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
			})
			p50, p99 := percentiles(lat)
			b.ReportMetric(p50, fmt.Sprintf("p50-s@%.0f%%", 100*frac))
			b.ReportMetric(p99, fmt.Sprintf("p99-s@%.0f%%", 100*frac))
		}

		// 2× the capacity: only 200s and 503s.
		over := start(b, m, Options{MaxConcurrent: clients})
		var ok, refused, other atomic.Int64
		began = time.Now()
		arrive(2*n, 2*served/clipsPer, func() {
			switch code := post(b, over.url+"/v2/models/vggish/infer", body, headLen); code {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusServiceUnavailable:
				refused.Add(1)
			default:
				other.Add(1)
				b.Errorf("answer %d under overload", code)
			}
		})
		b.ReportMetric(float64(clipsPer*ok.Load())/time.Since(began).Seconds(), "overload-served-clips/s")
		b.ReportMetric(float64(refused.Load()), "overload-503s")
		b.ReportMetric(float64(other.Load()), "overload-other-errors")
		b.ReportMetric(peakRSS(b), "peak-RSS-MB")
	}
}

// benchRequests is VGGISH_SERVE_BENCH_REQUESTS, or def.
func benchRequests(b *testing.B, def int) int {
	v := os.Getenv("VGGISH_SERVE_BENCH_REQUESTS")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(b, err)
	require.Positive(b, n, "VGGISH_SERVE_BENCH_REQUESTS")
	return n
}

// arrive calls fn n times at rate calls a second, each in its own goroutine whatever the others do,
// and waits for them.
func arrive(n int, rate float64, fn func()) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	for i := range n {
		if i > 0 {
			<-tick.C
		}
		wg.Go(fn)
	}
	wg.Wait()
}

// percentiles are the 50th and 99th percentiles of lat, in seconds.
func percentiles(lat []time.Duration) (p50, p99 float64) {
	slices.Sort(lat)
	return lat[len(lat)/2].Seconds(), lat[len(lat)*99/100].Seconds()
}

// BenchmarkQueueDelay is the measurement behind --max-queue-delay's default of 0: 16 clients each
// sending 1 s WAVs to /v1/embed and waiting for the answer, at each delay. It reports served clips/s,
// p50/p99 latency and the mean clips per forward pass. Without a delay such clients split into two
// groups whose passes alternate (8 clips each); a delay longer than a client's turnaround merges them.
// VGGISH_SERVE_BENCH_REQUESTS sets the requests per delay (default 96).
func BenchmarkQueueDelay(b *testing.B) {
	n := benchRequests(b, 96)
	wav := sineWAV(b, 1, 16000, 1)
	for _, delay := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("delay=%s", delay), func(b *testing.B) {
			var passes, clips atomic.Int64
			m, err := vggish.New(b.Context(), vggish.Options{WeightsPath: golden.Weights(b), Device: "cpu", MaxQueueDelay: delay,
				OnBatch: func(s vggish.BatchStats) { passes.Add(1); clips.Add(int64(s.Clips)) }})
			require.NoError(b, err)
			defer m.Close()
			ts := start(b, m, Options{})
			for b.Loop() {
				passes.Store(0)
				clips.Store(0)
				var mu sync.Mutex
				var lat []time.Duration
				began := time.Now()
				run(n, 16, func() int {
					start := time.Now()
					if code := post(b, ts.url+"/v1/embed", wav, -1); code != http.StatusOK {
						b.Errorf("answer %d", code)
					}
					mu.Lock()
					lat = append(lat, time.Since(start))
					mu.Unlock()
					return 1
				})
				b.ReportMetric(float64(clips.Load())/time.Since(began).Seconds(), "clips/s")
				p50, p99 := percentiles(lat)
				b.ReportMetric(p50, "p50-s")
				b.ReportMetric(p99, "p99-s")
				b.ReportMetric(float64(clips.Load())/float64(passes.Load()), "clips/pass")
			}
		})
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

// post posts body and returns the answer's status; headLen is the binary tensor data extension's
// header length, or -1 for none.
func post(b *testing.B, url string, body []byte, headLen int) int {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	require.NoError(b, err)
	if headLen >= 0 {
		req.Header.Set(HeaderLength, strconv.Itoa(headLen))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Error(err) // not FailNow: post runs on the clients' goroutines
		return 0
	}
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
