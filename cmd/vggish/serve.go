package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/vggish-go/vggish/serve"
	"github.com/vggish-go/vggish/vggish"
)

const serveUsage = `usage: vggish serve [flags]

Serves embeddings over HTTP and gRPC: the Open Inference Protocol (KServe v2) for one model, "vggish",
and POST /v1/embed for plain clients (the body is the audio; the answer JSON, or .npy with
Accept: application/x-npy):

  curl --data-binary @dog.wav http://127.0.0.1:8080/v1/embed

REST: GET /v2/health/live, /v2/health/ready, /v2, /v2/models/vggish[/ready], /metrics (Prometheus);
POST /v2/models/vggish/infer with one input, AUDIO (BYTES [1]: an encoded file, WAV decoded natively,
anything else by ffmpeg from a pipe) or WAVEFORM (FP32 [samples] or [channels, samples], with a
sample_rate parameter), JSON or with the binary tensor data extension (Inference-Header-Content-Length).
Outputs: EMBEDDING (FP32 [clips, 128], UINT8 with --postprocess pca-quantize) and START (FP64 [clips]).
gRPC: the protocol's inference.GRPCInferenceService on --grpc-listen.

Requests from all clients are batched through one inference loop; each result equals vggish embed's.
A forward pass runs what is waiting as soon as the network is free, or with --max-queue-delay waits
that long for its batch to fill.
Past --max-concurrent requests or --max-queue-clips, requests get 503 with Retry-After; past
--max-request-bytes 413; audio longer than --max-duration is refused once decoding passes it. Errors
are JSON: {"error": "...", "kind": "format|unsupported|too large|overloaded|model|request|..."}.
With --auth-token-file every endpoint but health and /metrics needs "Authorization: Bearer TOKEN".
SIGTERM or SIGINT turns readiness off, answers new requests 503, finishes those in flight within
--drain-timeout and exits 0 (1 if some were cut off). Logs are JSON lines on standard error unless
it is a terminal.
`

func runServe(args []string, s stdio) error {
	fs := newFlags("serve", serveUsage)
	model := addModelFlags(fs)
	net1 := addNetFlags(fs)
	var (
		listen        = fs.String("listen", "127.0.0.1:8080", "`ADDRESS` for HTTP (the REST protocol, /v1/embed, /metrics); loopback unless told otherwise")
		grpcListen    = fs.String("grpc-listen", "127.0.0.1:8081", "`ADDRESS` for gRPC; empty for none")
		maxBytes      = fs.String("max-request-bytes", "64MiB", "`SIZE` of the largest request body or gRPC message (413 past it)")
		maxDuration   = fs.Duration("max-duration", time.Hour, "longest audio of one request")
		maxConcurrent = fs.Int("max-concurrent", 64, "most requests embedded at once (503 past it)")
		maxQueue      = fs.Int("max-queue-clips", 4096, "most clips queued over the requests in flight (503 past it; encoded audio is estimated at 30 kB a clip until decoded)")
		maxDelay      = fs.Duration("max-queue-delay", 0, "longest a forward pass that is not full waits for more clips (0: none, a lone request is never held back; a delay longer than the clients' turnaround helps a fixed set of clients sending short clips)")
		reqTimeout    = fs.Duration("request-timeout", 2*time.Minute, "longest time from a request's first byte to its answer")
		headerTimeout = fs.Duration("read-header-timeout", 10*time.Second, "longest time to read a request's headers")
		drainTimeout  = fs.Duration("drain-timeout", 30*time.Second, "on SIGTERM, longest wait for the requests in flight")
		tokenFile     = fs.String("auth-token-file", "", "`FILE` holding the bearer token requests must carry (health endpoints and /metrics stay open)")
		tlsCert       = fs.String("tls-cert", "", "TLS certificate `FILE` (PEM), with --tls-key: both protocols over TLS")
		tlsKey        = fs.String("tls-key", "", "TLS private key `FILE` (PEM)")
	)
	extra, err := fs.parse(args, s.out)
	if err != nil {
		return err
	}
	if len(extra) > 0 {
		return fs.misuse("serve takes no arguments, not %q", extra)
	}
	vopts, err := model.options(fs, s)
	if err != nil {
		return err
	}
	if err := net1.apply(fs, false, &vopts); err != nil {
		return err
	}
	bytes, err := humanize.ParseBytes(*maxBytes)
	if err != nil || bytes < 1024 || bytes > math.MaxInt32 {
		return fs.misuse("--max-request-bytes %s: want a size from 1KiB to 2GiB", *maxBytes)
	}
	for _, c := range []struct {
		bad bool
		msg string
	}{
		{*listen == "", "--listen: want an address such as 127.0.0.1:8080"},
		{*maxDuration <= 0, fmt.Sprintf("--max-duration %s: want a positive duration", *maxDuration)},
		{*maxConcurrent < 1, fmt.Sprintf("--max-concurrent %d: want at least 1", *maxConcurrent)},
		{*maxQueue < 1, fmt.Sprintf("--max-queue-clips %d: want at least 1", *maxQueue)},
		{*maxDelay < 0 || *maxDelay > 10*time.Second, fmt.Sprintf("--max-queue-delay %s: want 0 (no wait) to 10s", *maxDelay)},
		{*reqTimeout <= 0 || *headerTimeout <= 0 || *drainTimeout <= 0, "--request-timeout, --read-header-timeout and --drain-timeout: want positive durations"},
		{(*tlsCert == "") != (*tlsKey == ""), "give --tls-cert and --tls-key together"},
	} {
		if c.bad {
			return fs.misuse("%s", c.msg)
		}
	}
	opts := serve.Options{MaxRequestBytes: int64(bytes), MaxDuration: *maxDuration, MaxConcurrent: *maxConcurrent,
		MaxQueueClips: *maxQueue, RequestTimeout: *reqTimeout, ReadHeaderTimeout: *headerTimeout, DrainTimeout: *drainTimeout,
		Version: version()}
	if *tokenFile != "" {
		if err := checkRegular("--auth-token-file", *tokenFile); err != nil {
			return fs.asMisuse(err)
		}
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fs.asMisuse(err)
		}
		if opts.AuthToken = strings.TrimSpace(string(b)); opts.AuthToken == "" {
			return fs.misuse("--auth-token-file %s is empty", *tokenFile)
		}
	}
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fs.asMisuse(fmt.Errorf("--tls-cert/--tls-key: %w", err))
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	}
	var h slog.Handler = slog.NewJSONHandler(s.err, nil)
	if isTerminal(s.err) {
		h = slog.NewTextHandler(s.err, nil)
	}
	opts.Logger = slog.New(h)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hl, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	defer hl.Close()
	var gl net.Listener
	if *grpcListen != "" {
		if gl, err = net.Listen("tcp", *grpcListen); err != nil {
			return err
		}
		defer gl.Close()
	}
	opts.Batches = serve.NewBatchMetrics()
	vopts.OnBatch = opts.Batches.Observe
	vopts.MaxQueueDelay = *maxDelay
	m, err := interruptible(ctx, "loading the weights", func() (*vggish.Model, error) { return vggish.New(ctx, vopts) }, func(m *vggish.Model) { m.Close() })
	if err != nil {
		return downloadHint(err)
	}
	defer m.Close()
	for _, w := range m.Warnings() {
		opts.Logger.Warn(w)
	}
	srv, err := serve.New(m, opts)
	if err != nil {
		return err
	}
	attrs := []any{"http", hl.Addr().String(), "device", m.Device(), "batch", m.Options().BatchSize, "tls", opts.TLS != nil, "auth", opts.AuthToken != ""}
	if gl != nil {
		attrs = append(attrs, "grpc", gl.Addr().String())
	}
	opts.Logger.Info("serving", attrs...)
	err = srv.Serve(ctx, hl, gl)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
