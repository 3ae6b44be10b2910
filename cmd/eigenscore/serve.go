package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/serve"
)

// serveFlags are the service's settings beyond serve.Options.
type serveFlags struct {
	detPath, addr, tokenFile  string
	tlsCert, tlsKey           string
	drain                     time.Duration
	readTimeout, writeTimeout time.Duration
	idleTimeout, headerTime   time.Duration
	maxHeaderBytes            int
}

func newServeCmd(g *globals) *cobra.Command {
	var (
		f    serveFlags
		opts serve.Options
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Score images over HTTP with a detector saved by `fit` (/v1/score, the Open Inference Protocol under /v2, /healthz, /metrics)",
		Example: `  eigenscore serve --detector fm-detector.json --addr localhost:8080
  curl -s localhost:8080/v1/score -H 'Content-Type: application/json' -d '{"images": [[...784 values in [-1, 1]...]]}'
  curl -s localhost:8080/v1/score -H 'Content-Type: image/png' --data-binary @shirt.png`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Token, err = readToken(f.tokenFile); err != nil {
				return err
			}
			if (f.tlsCert == "") != (f.tlsKey == "") {
				return fmt.Errorf("--tls-cert and --tls-key go together")
			}
			det, err := eigenscore.Load(f.detPath)
			if err != nil {
				return err
			}
			m, err := g.openRecorded(det.Model())
			if err != nil {
				return fmt.Errorf("opening the model %s recorded in %s: %w", det.Model().Source, f.detPath, err)
			}
			defer m.Close()
			srv, err := serve.New(det, m, opts)
			if err != nil {
				return err
			}
			return serveUntilDone(cmd.Context(), srv, f, det, m)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.detPath, "detector", "", "detector file written by eigenscore fit")
	fl.StringVar(&f.addr, "addr", "localhost:8080", "address to listen on (localhost only by default; :8080 for every interface)")
	fl.IntVar(&opts.MaxImages, "max-images", 256, "images per request at most")
	fl.Int64Var(&opts.MaxBodyBytes, "max-body", 32<<20, "request body size limit in bytes")
	fl.IntVar(&opts.MaxBatch, "max-batch", 64, "images of concurrent requests scored together")
	fl.IntVar(&opts.QueueImages, "queue", 0, "images queued or being scored at most; more get 429 (default 4·max-batch, at least max-images)")
	fl.DurationVar(&opts.BatchDelay, "batch-delay", 5*time.Millisecond, "how long a partial batch waits for more requests")
	fl.DurationVar(&opts.RequestTimeout, "request-timeout", 30*time.Second, "deadline of a request from its arrival (504 after it; 503 at once when the queue would not drain before it)")
	fl.StringVar(&opts.ModelName, "model-name", "eigenscore", "model name in the Open Inference Protocol (/v2/models/NAME)")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding a bearer token that requests must send (default: $EIGENSCORE_TOKEN; none when both are empty)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate file (with --tls-key: serve HTTPS)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key file")
	fl.DurationVar(&f.drain, "drain", 30*time.Second, "on SIGTERM/SIGINT, how long requests in flight may take to finish")
	fl.DurationVar(&f.readTimeout, "read-timeout", 60*time.Second, "time to read a whole request")
	fl.DurationVar(&f.headerTime, "read-header-timeout", 10*time.Second, "time to read a request's headers")
	fl.DurationVar(&f.writeTimeout, "write-timeout", 0, "time to write a response, from the end of the request's headers (default: request-timeout + 10s)")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 120*time.Second, "how long an idle keep-alive connection stays open")
	fl.IntVar(&f.maxHeaderBytes, "max-header-bytes", 64<<10, "request header size limit in bytes")
	cmd.MarkFlagRequired("detector")
	return cmd
}

// readToken reads the bearer token from a file, else $EIGENSCORE_TOKEN.
func readToken(path string) (string, error) {
	if path == "" {
		return os.Getenv("EIGENSCORE_TOKEN"), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--token-file %s is empty", path)
	}
	return tok, nil
}

// serveUntilDone serves until ctx ends (SIGTERM/SIGINT), then drains: it stops
// accepting, waits up to --drain for the requests in flight, stops the
// scoring worker, and only then returns, so the model is closed last.
func serveUntilDone(ctx context.Context, srv *serve.Server, f serveFlags, det *eigenscore.Detector, m *eigenscore.Model) error {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	write := f.writeTimeout
	if write == 0 {
		write = srv.Options().RequestTimeout + 10*time.Second
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: f.headerTime, ReadTimeout: f.readTimeout,
		WriteTimeout: write, IdleTimeout: f.idleTimeout, MaxHeaderBytes: f.maxHeaderBytes}
	errc := make(chan error, 1)
	go func() {
		if f.tlsCert != "" {
			errc <- hs.ServeTLS(ln, f.tlsCert, f.tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	slog.Info("serving", "addr", ln.Addr().String(), "tls", f.tlsCert != "", "model", m.ID(), "method", det.Method(), "threshold", det.Threshold())
	select {
	case err := <-errc:
		srv.Close()
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down: draining requests in flight", "deadline", f.drain)
	srv.Drain()
	shut, cancel := context.WithTimeout(context.Background(), f.drain)
	defer cancel()
	err = hs.Shutdown(shut)
	srv.Close()
	if err != nil {
		return fmt.Errorf("draining: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	slog.Info("drained")
	return nil
}
