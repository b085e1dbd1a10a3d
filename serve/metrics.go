package serve

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vggish-go/vggish/vggish"
)

// metrics are the server's Prometheus metrics.
type metrics struct {
	requests  *prometheus.CounterVec // by endpoint and result ("ok" or the failure's kind)
	clips     prometheus.Counter
	reqClips  prometheus.Histogram
	latency   *prometheus.HistogramVec
	inference prometheus.Histogram
	inflight  prometheus.Gauge
	queued    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	const ns = "vggish"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_total",
			Help: "Requests answered, by endpoint and result: ok or the failure's kind."}, []string{"endpoint", "result"}),
		clips: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "clips_total",
			Help: "Clips (0.96 s embeddings) served."}),
		reqClips: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "request_clips",
			Help: "Clips per answered request.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "request_duration_seconds",
			Help: "Time from a request's headers to its answer, by endpoint.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12)}, []string{"endpoint"}),
		inference: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "inference_duration_seconds",
			Help:    "Time from a request's admission to its embeddings: decoding, queueing for the network's batches and the network.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12)}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "requests_in_flight",
			Help: "Inference requests admitted and not yet answered."}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "queue_clips",
			Help: "Clips of the requests in flight (encoded audio estimated from its size until decoded): the queue bounded by --max-queue-clips."}),
	}
	batch := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "batch_size_max",
		Help: "The most clips the network runs per forward pass."}, func() float64 { return float64(s.m.Options().BatchSize) })
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "ready",
		Help: "1 while the server takes inference requests, 0 once it drains."}, func() float64 {
		if s.Ready() {
			return 1
		}
		return 0
	})
	cs := []prometheus.Collector{m.requests, m.clips, m.reqClips, m.latency, m.inference, m.inflight, m.queued, batch, ready}
	if b := s.opts.Batches; b != nil {
		cs = append(cs, b.clips, b.runs, b.wait, b.forward)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// BatchMetrics are the metrics of the Model's forward passes, which the server cannot see by
// itself: clips per pass (the batch size), runs of examples per pass (how many requests' clips were
// packed together), the wait of a pass's oldest run in the queue, and the pass's time. Make the Model
// with Observe as its [vggish.Options.OnBatch], and give the BatchMetrics to [New] in
// [Options.Batches], which serves them with the server's other metrics:
//
//	batches := serve.NewBatchMetrics()
//	m, err := vggish.New(ctx, vggish.Options{OnBatch: batches.Observe})
//	...
//	s, err := serve.New(m, serve.Options{Batches: batches})
type BatchMetrics struct {
	clips, runs, wait, forward prometheus.Histogram
}

// NewBatchMetrics makes the batch metrics, all zero.
func NewBatchMetrics() *BatchMetrics {
	const ns = "vggish"
	return &BatchMetrics{
		clips: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "batch_clips",
			Help: "Clips per forward pass of the network (the batch size).", Buckets: prometheus.ExponentialBuckets(1, 2, 13)}),
		runs: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "batch_runs",
			Help:    "Runs of clips packed into a forward pass: a request's clips are queued in runs of at most the batch size, a block of audio at a time.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "queue_wait_seconds",
			Help: "Time the oldest run of a forward pass waited in the queue for it.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14)}),
		forward: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "forward_duration_seconds",
			Help: "Time of a forward pass: the network and post-processing.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14)}),
	}
}

// Observe records a forward pass; it is quick and never blocks, as OnBatch must be.
func (b *BatchMetrics) Observe(s vggish.BatchStats) {
	b.clips.Observe(float64(s.Clips))
	b.runs.Observe(float64(s.Requests))
	b.wait.Observe(s.QueueWait.Seconds())
	b.forward.Observe(s.Forward.Seconds())
}

func (m *metrics) update(inflight, queued int) {
	m.inflight.Set(float64(inflight))
	m.queued.Set(float64(queued))
}
