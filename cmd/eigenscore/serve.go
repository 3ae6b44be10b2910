package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/serve"
)

func newServeCmd(g *globals) *cobra.Command {
	var (
		detPath, addr string
		opts          serve.Options
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Score images over HTTP with a detector saved by `fit` (POST /v1/score, GET /healthz, GET /metrics)",
		Example: `  eigenscore serve --detector fm-detector.json --addr :8080
  curl -s localhost:8080/v1/score -d '{"images": [[...784 values in [-1, 1]...]]}'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			det, err := eigenscore.Load(detPath)
			if err != nil {
				return err
			}
			m, err := g.openRecorded(det.Model())
			if err != nil {
				return fmt.Errorf("opening the model %s recorded in %s: %w", det.Model().Source, detPath, err)
			}
			defer m.Close()
			srv, err := serve.New(det, m, opts)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-ctx.Done()
				shut, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				hs.Shutdown(shut)
			}()
			slog.Info("serving", "addr", ln.Addr().String(), "model", m.ID(), "method", det.Method(), "threshold", det.Threshold())
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&detPath, "detector", "", "detector file written by `fit`")
	cmd.Flags().StringVar(&addr, "addr", "localhost:8080", "address to listen on")
	cmd.Flags().IntVar(&opts.MaxImages, "max-images", 256, "images per request at most")
	cmd.Flags().Int64Var(&opts.MaxBodyBytes, "max-body", 32<<20, "request body size limit in bytes")
	cmd.MarkFlagRequired("detector")
	return cmd
}
