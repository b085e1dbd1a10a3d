// Package serve is an embedding service for a [vggish.Model]: the Open Inference Protocol (KServe v2)
// over REST and gRPC for one model, "vggish", and a plain POST /v1/embed. Requests from many clients
// are embedded through the Model's own inference loop, which packs their clips into batches; each
// request's result equals the library's, to the bit.
//
// It is built to face a network: a bounded queue (in clips) and a concurrency limit answer 503 with
// Retry-After beyond them; requests are bounded in bytes and their audio in duration (a small
// compressed file that decodes to hours is refused once the limit is passed); a request has a time
// limit and a client that goes away cancels its work; ffmpeg reads uploads from a pipe with no
// protocol but the pipe; a bearer token guards everything but the health endpoints. [Server.Serve]
// drains in-flight requests when its context ends, readiness off.
package serve

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-audio/audio"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/serve/inference"
	"github.com/vggish-go/vggish/vggish"
)

// ModelName is the model's name in the protocol's paths and messages.
const ModelName = "vggish"

// Options configure a Server; the zero value of a field means its default.
type Options struct {
	// MaxRequestBytes bounds a request's body (413 past it), and a gRPC message; default 64 MiB,
	// Triton's.
	MaxRequestBytes int64
	// MaxDuration bounds the audio of one request; default one hour.
	MaxDuration time.Duration
	// MaxConcurrent is the most requests embedded at once; default 64.
	MaxConcurrent int
	// MaxQueueClips bounds the clips of the requests admitted and not yet answered; default 4096 (about
	// an hour of audio). A request that would pass it gets 503 unless none is in flight. Encoded audio
	// counts 1 clip per 30 kB (16 kHz 16-bit mono), or 1 clip when its size is not known, until its
	// decoding shows more: a request's count grows as it is decoded (past the limit too, as it was
	// admitted), and the requests that come after see it.
	MaxQueueClips int
	// RequestTimeout bounds a request from its first byte to its answer; default 2 minutes.
	RequestTimeout time.Duration
	// ReadHeaderTimeout bounds the reading of a request's headers; default 10 s.
	ReadHeaderTimeout time.Duration
	// DrainTimeout bounds the drain of in-flight requests when Serve's context ends; default 30 s,
	// Triton's.
	DrainTimeout time.Duration
	// RetryAfter is what a 503 asks a client to wait; default 1 s.
	RetryAfter time.Duration
	// AuthToken, when not empty, is the bearer token every request but the health checks must carry.
	AuthToken string
	// TLS, when not nil, serves both protocols over TLS.
	TLS *tls.Config
	// Logger gets a record per request; nil means slog.Default().
	Logger *slog.Logger
	// Registry gets the server's metrics; nil means a registry of the server's own. /metrics serves
	// it.
	Registry *prometheus.Registry
	// Batches, when not nil, are the Model's batch metrics (made with [NewBatchMetrics], the Model
	// with their Observe as its OnBatch), served with the server's own.
	Batches *BatchMetrics
	// Version is the server's version in its metadata.
	Version string
}

func (o *Options) defaults() {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxRequestBytes, 64<<20)
	for _, d := range []struct {
		v *time.Duration
		d time.Duration
	}{{&o.MaxDuration, time.Hour}, {&o.RequestTimeout, 2 * time.Minute}, {&o.ReadHeaderTimeout, 10 * time.Second},
		{&o.DrainTimeout, 30 * time.Second}, {&o.RetryAfter, time.Second}} {
		if *d.v <= 0 {
			*d.v = d.d
		}
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 64
	}
	if o.MaxQueueClips <= 0 {
		o.MaxQueueClips = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Version == "" {
		o.Version = "dev"
	}
}

// Server serves a Model. Make it with New.
type Server struct {
	m       *vggish.Model
	opts    Options
	log     *slog.Logger
	metrics *metrics
	uint8   bool // the model quantises: EMBEDDING is UINT8
	each    bool // the model embeds each channel

	mu       sync.Mutex
	draining bool
	active   int           // inference requests from their first byte to their answer (see enter)
	inflight int           // of those, the ones embedding (see admit)
	queued   int           // clips of the requests in flight (estimated until decoded)
	idle     chan struct{} // closed when draining and no request is active
}

// New returns a Server for m, which stays the caller's to Close after Serve returns.
func New(m *vggish.Model, opts Options) (*Server, error) {
	opts.defaults()
	s := &Server{m: m, opts: opts, log: opts.Logger, uint8: m.Options().Postprocess == vggish.PCAQuantize,
		each: m.Options().Channels == vggish.Each}
	var err error
	if s.metrics, err = newMetrics(opts.Registry, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Ready reports whether the server takes inference requests: false once it drains.
func (s *Server) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.draining
}

// enter counts an inference request in from its first byte, so that a drain waits for its upload as
// well as its embedding, or refuses it (before reading its body) when the server drains.
func (s *Server) enter() (leave func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return nil, failure(KindOverloaded, "the server is shutting down")
	}
	s.active++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.active--
			if s.draining && s.active == 0 && s.idle != nil {
				close(s.idle)
				s.idle = nil
			}
		})
	}, nil
}

// ticket is an admitted request's part of the queue's count.
type ticket struct {
	s     *Server
	clips int
	done  bool
}

// admit counts a request of about clips clips in for embedding, or refuses it when the server is full.
// A request that entered before a drain began is still admitted: the drain waits for it.
func (s *Server) admit(clips int) (*ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.inflight >= s.opts.MaxConcurrent:
		return nil, failure(KindOverloaded, "%d requests in flight, the most this server takes", s.inflight)
	case s.inflight > 0 && s.queued+clips > s.opts.MaxQueueClips:
		return nil, failure(KindOverloaded, "%d clips queued: %d more would pass the limit of %d", s.queued, clips, s.opts.MaxQueueClips)
	}
	s.inflight++
	s.queued += clips
	s.metrics.update(s.inflight, s.queued)
	return &ticket{s: s, clips: clips}, nil
}

// grow raises the request's count to clips, when its decoded audio shows more than was estimated.
func (t *ticket) grow(clips int) {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.done || clips <= t.clips {
		return
	}
	s.queued += clips - t.clips
	t.clips = clips
	s.metrics.update(s.inflight, s.queued)
}

// release counts the request out; later calls do nothing.
func (t *ticket) release() {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.done {
		return
	}
	t.done = true
	s.inflight--
	s.queued -= t.clips
	s.metrics.update(s.inflight, s.queued)
}

// audioClips estimates the clips of n bytes of encoded audio: 16 kHz 16-bit mono, 30,720 bytes a clip.
func audioClips(n int64) int { return int(min(n/30720+1, math.MaxInt32)) }

// waveClips is the clips of frames samples at rate Hz.
func waveClips(frames, rate int) int { return int(float64(frames)/float64(rate)/0.96) + 1 }

// input is a request's audio: encoded bytes (a stream of size bytes, or -1 when unknown) or
// samples.
type input struct {
	audio    io.Reader
	size     int64
	wave     bool      // WAVEFORM: samples at rate
	samples  []float32 // row-major [channels, frames]
	shape    []int64
	channels int
	rate     int
}

// clips estimates in's clips: each channel's with each (the model embeds every channel), else one's.
// A stream of unknown length counts as 1 until it is decoded (see Options.MaxQueueClips).
func (in *input) clips(each bool) int {
	if in.audio != nil {
		return audioClips(max(in.size, 0))
	}
	n := waveClips(len(in.samples)/max(1, in.channels), in.rate)
	if each {
		n *= max(1, in.channels)
	}
	return n
}

// embed admits in and embeds it through the model, within the request's time limit.
func (s *Server) embed(ctx context.Context, in *input, name string) (*vggish.Embeddings, error) {
	t, err := s.admit(in.clips(s.each))
	if err != nil {
		return nil, err
	}
	defer t.release()
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	start := time.Now()
	defer func() { s.metrics.inference.Observe(time.Since(start).Seconds()) }()
	if in.audio != nil {
		src, err := decode.OpenReader(ctx, in.audio, name)
		if err != nil {
			return nil, err
		}
		limited := decode.Watch(src, s.opts.MaxDuration.Seconds(), func(frames int64, channels int) {
			if !s.each {
				channels = 1
			}
			t.grow(channels * waveClips(int(frames), src.SampleRate()))
		})
		defer limited.Close()
		return s.m.EmbedSource(ctx, limited)
	}
	if err := s.checkWave(in); err != nil {
		return nil, err
	}
	if in.channels == 1 {
		return s.m.Embed(ctx, in.samples, in.rate)
	}
	frames := len(in.samples) / in.channels
	inter := make([]float32, len(in.samples)) // [channels, frames] → frames of interleaved channels
	for c := range in.channels {
		for i, v := range in.samples[c*frames : (c+1)*frames] {
			inter[i*in.channels+c] = v
		}
	}
	return s.m.EmbedBuffer(ctx, &audio.Float32Buffer{Format: &audio.Format{NumChannels: in.channels, SampleRate: in.rate}, Data: inter})
}

// checkWave checks samples' shape and rate, and their duration against the limit.
func (s *Server) checkWave(in *input) error {
	if err := decode.CheckSampleRate(in.rate); err != nil {
		return &Error{KindUnsupported, err}
	}
	if in.channels < 1 || len(in.samples)%in.channels != 0 {
		return failure(KindRequest, "WAVEFORM: %d samples in %d channels", len(in.samples), in.channels)
	}
	if d := float64(len(in.samples)/in.channels) / float64(in.rate); d > s.opts.MaxDuration.Seconds() {
		return failure(KindTooLarge, "WAVEFORM: %.1f s of audio, more than the limit of %g s", d, s.opts.MaxDuration.Seconds())
	}
	return nil
}

// authorized reports whether an Authorization header value carries the token.
func (s *Server) authorized(header string) bool {
	if s.opts.AuthToken == "" {
		return true
	}
	want := "Bearer " + s.opts.AuthToken
	return subtle.ConstantTimeCompare([]byte(header), []byte(want)) == 1
}

// Serve serves REST on hl and gRPC on gl (either may be nil) until ctx ends; then it turns
// readiness off, refuses new inference requests (503), waits for those in flight up to the drain
// timeout, and closes the listeners. It returns nil when everything in flight was answered.
func (s *Server) Serve(ctx context.Context, hl, gl net.Listener) error {
	if hl == nil && gl == nil {
		return errors.New("serve: no listener")
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.RequestTimeout, // a slow client cannot hold a request past its time
		WriteTimeout:      s.opts.RequestTimeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	gs := s.GRPCServer()
	errs := make(chan error, 2)
	if hl != nil {
		if s.opts.TLS != nil {
			hl = tls.NewListener(hl, s.opts.TLS)
		}
		go func() { errs <- hs.Serve(hl) }()
	}
	if gl != nil {
		go func() { errs <- gs.Serve(gl) }()
	}
	select {
	case err := <-errs:
		hs.Close()
		gs.Stop()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	err := s.drain()
	shut, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	hs.Shutdown(shut)
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-shut.Done():
		gs.Stop()
	}
	hs.Close()
	return err
}

// drain turns readiness off and waits for the active requests, up to the drain timeout.
func (s *Server) drain() error {
	s.mu.Lock()
	s.draining = true
	n := s.active
	idle := make(chan struct{})
	if n == 0 {
		close(idle)
	} else {
		s.idle = idle
	}
	s.mu.Unlock()
	s.log.Info("draining", "in_flight", n, "timeout", s.opts.DrainTimeout.String())
	select {
	case <-idle:
		s.log.Info("drained")
		return nil
	case <-time.After(s.opts.DrainTimeout):
		s.mu.Lock()
		defer s.mu.Unlock()
		return fmt.Errorf("serve: %d requests still in flight after the drain timeout of %s", s.active, s.opts.DrainTimeout)
	}
}

// GRPCServer returns a gRPC server serving the inference service, with the server's limits and
// token check.
func (s *Server) GRPCServer() *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(min(s.opts.MaxRequestBytes, math.MaxInt32))),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.UnaryInterceptor(s.grpcIntercept),
		grpc.StatsHandler(grpcRefusals{s}),
		grpc.InTapHandle(s.grpcTap),
		grpc.ConnectionTimeout(s.opts.ReadHeaderTimeout),
	}
	if s.opts.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.opts.TLS)))
	}
	g := grpc.NewServer(opts...)
	inference.RegisterGRPCInferenceServiceServer(g, &grpcService{s: s})
	return g
}
