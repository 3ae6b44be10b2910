// Command eigenscore-beam scores image datasets with a detector saved by
// `eigenscore fit`, as an Apache Beam pipeline: on this machine with Beam's
// Prism runner (the default), or on Flink, Spark or Dataflow. See
// docs/beam.md.
//
//	eigenscore-beam score --detector fm.json --input 'shards/*.npy' --output scores/
//	eigenscore-beam score ... --runner flink -- --endpoint=localhost:8099 --environment_type=DOCKER ...
//
// Arguments after "--" are Beam's own pipeline options, passed unchanged.
// Beam starts this same binary on its workers with --worker; it then runs
// the Beam worker harness instead of the command line.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/spf13/cobra"

	// The runners a user can name with --runner, and Beam's file systems.
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec/optimized"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/dataflow"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/flink"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/spark"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/universal"

	"github.com/eigenscore/eigenscore/beam/pipeline"
)

func main() {
	if isWorker(os.Args[1:]) {
		flag.Parse()
		beam.Init() // runs the worker harness and exits
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

// isWorker reports whether Beam started the binary as a worker.
func isWorker(args []string) bool {
	return slices.Contains(args, "--worker") || slices.Contains(args, "--worker=true") || slices.Contains(args, "-worker")
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "eigenscore-beam",
		Short:         "Score image datasets with an eigenscore detector on Apache Beam (Prism, Flink, Spark, Dataflow)",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newScore())
	return root
}

func newScore() *cobra.Command {
	var (
		cfg            pipeline.Config
		format, runner string
		verbose        bool
	)
	cmd := &cobra.Command{
		Use:   "score --detector FILE --input PATTERN... --output DIR [-- BEAM OPTIONS]",
		Short: "Score every image the input patterns match; one part file per work item, summary.json when complete",
		Example: `  eigenscore-beam score --detector fm-detector.json --input 'shards/*.npy' --output scores/
  eigenscore-beam score --detector fm-detector.json --input 'photos/' --input 'more/*.png' --output scores/ --format jsonl --skip-bad-input
  eigenscore-beam score --detector /opt/fm.json --input '/data/shards/*.npy' --output /data/scores \
      --runner flink -- --endpoint=flink-jobserver:8099 --environment_type=DOCKER \
      --environment_config=registry.example/eigenscore-beam:latest`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := flag.CommandLine.Parse(args); err != nil {
				return fmt.Errorf("Beam options after --: %w", err)
			}
			if flag.NArg() > 0 {
				return fmt.Errorf("unexpected arguments %q: put Beam's options after --", flag.Args())
			}
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelInfo
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
			beam.Init()
			cfg.Format = pipeline.Format(format)
			sum, err := pipeline.Run(cmd.Context(), runner, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d images scored with %s in %d work items (%d resumed), %d flagged OOD (%.1f%%), %d NFEs, %d inputs failed\nwrote %d part files, summary.json and failures.jsonl to %s\n",
				sum.Images, sum.Method, sum.Items, sum.Resumed, sum.Flagged, 100*sum.FlaggedRate, sum.NFE, sum.Failures, len(sum.Parts), cfg.Output)
			if sum.Failures > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%d inputs were left out: see %s/failures.jsonl\n", sum.Failures, cfg.Output)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Detector, "detector", "", "detector file written by `eigenscore fit` (readable on every worker)")
	f.StringArrayVar(&cfg.Inputs, "input", nil, "file pattern of images to score: IDX, .npy, CIFAR-10 .bin, SVHN .mat files, PNG/JPEG images, or folders of them (repeatable)")
	f.StringVar(&cfg.Output, "output", "", "output folder: part files, job.json, summary.json (written last) and failures.jsonl; rerun into it to resume")
	f.StringVar(&format, "format", string(pipeline.CSV), "part file format: csv or jsonl")
	f.IntVar(&cfg.ItemSize, "item-size", pipeline.DefaultItemSize, "most images per work item")
	f.BoolVar(&cfg.SkipBadInput, "skip-bad-input", false, "leave unreadable inputs out and list them in failures.jsonl instead of failing")
	f.StringVar(&cfg.Model, "model", "", "ONNX model to use instead of the one the detector records (same weights)")
	f.StringVar(&runner, "runner", "prism", "Beam runner: prism (local), flink, spark, dataflow or universal")
	f.StringVar(&cfg.ORT.LibPath, "onnxruntime-lib", "", "ONNX Runtime shared library on the workers (default $ONNXRUNTIME_LIB or the path scripts/install-onnxruntime.sh installs to)")
	f.IntVar(&cfg.ORT.Threads, "threads", 0, "ONNX Runtime intra-op threads per session (0: automatic)")
	f.IntVar(&cfg.ORT.Sessions, "sessions", 0, "ONNX Runtime sessions per worker (0: automatic, one per core)")
	f.IntVar(&cfg.ORT.BatchSize, "ort-batch", 0, "most images per ONNX Runtime run (0: automatic)")
	f.BoolVarP(&verbose, "verbose", "v", false, "Beam's info logs")
	cmd.MarkFlagRequired("detector")
	cmd.MarkFlagRequired("input")
	cmd.MarkFlagRequired("output")
	return cmd
}
