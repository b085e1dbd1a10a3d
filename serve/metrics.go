package serve

import (
	"github.com/prometheus/client_golang/prometheus"
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
			Help: "Clips of the requests in flight (encoded audio estimated from its size): the queue bounded by --max-queue-clips."}),
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
	for _, c := range []prometheus.Collector{m.requests, m.clips, m.reqClips, m.latency, m.inference, m.inflight, m.queued, batch, ready} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) update(inflight, queued int) {
	m.inflight.Set(float64(inflight))
	m.queued.Set(float64(queued))
}
