// Command eigenscore detects out-of-distribution images with the posterior
// covariance spectrum of a diffusion denoiser (EigenScore).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "eigenscore:", err)
		os.Exit(1)
	}
}

// globals are the flags every command shares.
type globals struct {
	dataDir, cacheDir string
	verbose, quiet    bool
	ortLib            string
	threads, batch    int
	sessions          int
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "eigenscore",
		Short:         "Out-of-distribution detection with diffusion posterior covariance (EigenScore)",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			level := slog.LevelInfo
			if g.verbose {
				level = slog.LevelDebug
			}
			if g.quiet {
				level = slog.LevelWarn
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
		},
	}
	root.PersistentFlags().StringVar(&g.dataDir, "data-dir", "", "data directory (default $EIGENSCORE_DATA or ./data-cache)")
	root.PersistentFlags().StringVar(&g.cacheDir, "cache-dir", "", "cache directory for fitted models and features (default $EIGENSCORE_CACHE or the user cache dir)")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "debug logging")
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "no progress bars or info logs")
	root.PersistentFlags().StringVar(&g.ortLib, "onnxruntime-lib", "", "ONNX Runtime shared library (default $ONNXRUNTIME_LIB or the path scripts/install-onnxruntime.sh installs to)")
	// 0 lets the backend choose (package denoise/onnx, Layout): one
	// single-threaded session per core, runs of at most 16 images, no
	// padding, and a session with a thread per core for lone images.
	root.PersistentFlags().IntVar(&g.threads, "threads", 0, "ONNX Runtime intra-op threads per session (0: automatic)")
	root.PersistentFlags().IntVar(&g.sessions, "sessions", 0, "ONNX Runtime sessions; the runs of one call are shared among them (0: automatic, one per core)")
	root.PersistentFlags().IntVar(&g.batch, "ort-batch", 0, "most images per ONNX Runtime run; calls are not padded (0: automatic)")
	root.AddCommand(newSpectrumCmd(g), newEvalCmd(g), newFitCmd(g), newScoreCmd(g), newExplainCmd(g), newServeCmd(g), newQualityCmd(g), newBenchCmd(g))
	return root
}
