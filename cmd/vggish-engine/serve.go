package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vggish-go/vggish/internal/cli"
	"github.com/vggish-go/vggish/serve"
	"github.com/vggish-go/vggish/vggish"
)

func runServe(args []string, s cli.Stdio) error {
	v, err := cli.ParseServe(args, s)
	if err != nil {
		return err
	}
	fs := v.FS
	vopts, err := modelOptions(v.Model, fs, s)
	if err != nil {
		return err
	}
	if err := applyNet(v.Net, fs, false, &vopts); err != nil {
		return err
	}
	opts := serve.Options{MaxRequestBytes: v.MaxRequestBytes, MaxDuration: *v.MaxDuration, MaxConcurrent: *v.MaxConcurrent,
		MaxQueueClips: *v.MaxQueueClips, RequestTimeout: *v.RequestTimeout, ReadHeaderTimeout: *v.ReadHeaderTimeout, DrainTimeout: *v.DrainTimeout,
		Version: cli.Version()}
	if *v.TokenFile != "" {
		b, err := os.ReadFile(*v.TokenFile)
		if err != nil {
			return fs.AsMisuse(err)
		}
		if opts.AuthToken = strings.TrimSpace(string(b)); opts.AuthToken == "" {
			return fs.Misuse("--auth-token-file %s is empty", *v.TokenFile)
		}
	}
	if *v.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(*v.TLSCert, *v.TLSKey)
		if err != nil {
			return fs.AsMisuse(fmt.Errorf("--tls-cert/--tls-key: %w", err))
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	}
	var h slog.Handler = slog.NewJSONHandler(s.Err, nil)
	if cli.IsTerminal(s.Err) {
		h = slog.NewTextHandler(s.Err, nil)
	}
	opts.Logger = slog.New(h)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hl, err := net.Listen("tcp", *v.Listen)
	if err != nil {
		return err
	}
	defer hl.Close()
	var gl net.Listener
	if *v.GRPCListen != "" {
		if gl, err = net.Listen("tcp", *v.GRPCListen); err != nil {
			return err
		}
		defer gl.Close()
	}
	opts.Batches = serve.NewBatchMetrics()
	vopts.OnBatch = opts.Batches.Observe
	vopts.MaxQueueDelay = *v.MaxQueueDelay
	m, err := interruptible(ctx, "loading the weights", func() (*vggish.Model, error) { return vggish.New(ctx, vopts) }, func(m *vggish.Model) { m.Close() })
	if err != nil {
		return cli.DownloadHint(err)
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
