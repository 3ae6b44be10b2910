// Command eigenscore-load is a bounded load generator for the eigenscore HTTP
// scoring service (POST /v1/score). It sends requests from a number of
// concurrent clients, each carrying a fixed number of images taken
// round-robin from a dataset, and reports throughput (images/s), latency
// percentiles, counts by status and, optionally, the server's peak RSS.
//
// It only ever sends traffic to loopback addresses, and every run is bounded
// by both a request count and a duration.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
)

// tokenEnv names the environment variable that supplies the bearer token
// when --token is not given.
const tokenEnv = "EIGENSCORE_TOKEN"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "eigenscore-load:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	addr, model, shape string
	clients, images    int
	requests           int
	duration, timeout  time.Duration
	token              string
	dataSpec, dataDir  string
	serverPID          int
	jsonPath           string
	honorRetryAfter    bool
	padBytes           int
	verbose, quiet     bool
	lookup             lookupFunc                                  // resolver for the loopback check; nil means DNS
	stdout             io.Writer                                   // where the summary line goes; nil means os.Stdout
	loadDataset        func(spec data.Spec) (*data.Dataset, error) // nil means data.Load of the test split
}

// newRoot is the command with default hooks.
func newRoot() *cobra.Command { return newCommand(&options{}) }

// newCommand is the command writing its flags into o, whose hooks (lookup,
// stdout, loadDataset) tests may set.
func newCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eigenscore-load",
		Short: "Bounded load generator for the eigenscore scoring service (loopback only)",
		Long: `eigenscore-load sends POST /v1/score requests to an eigenscore server on this
machine from --clients concurrent workers, --images images per request, until
--requests requests have been sent or --duration has passed, whichever comes
first. It prints one summary line (and writes --json), e.g.

  clients=16 images/request=1 requests=200 ok=200 429=0 503=0 504=0 other=0 timeouts=0 errors=0 bad_responses=0 cancelled=0 images/s=12.30 p50=1.200s p95=1.500s p99=1.700s peak_rss_mb=812.4

It refuses any address that is not loopback.`,
		Example:       `  eigenscore-load --addr localhost:8080 --clients 16 --images 4 --requests 400 --server-pid $(pgrep -n eigenscore) --json run.json`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			setupLogging(o.verbose, o.quiet)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.token == "" {
				o.token = os.Getenv(tokenEnv)
			}
			return run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "localhost:8080", "server address, host:port or URL; must be loopback")
	f.IntVar(&o.clients, "clients", 1, "concurrent clients (each waits for its answer before sending again)")
	f.IntVar(&o.images, "images", 1, "images per request")
	f.IntVar(&o.requests, "requests", 200, "requests to send in all (the run stops at this or --duration, whichever comes first)")
	f.DurationVar(&o.duration, "duration", 60*time.Second, "longest run; requests still in flight then are cancelled")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request client timeout, from send to the end of the body")
	f.StringVar(&o.token, "token", "", "bearer token (default $"+tokenEnv+")")
	f.StringVar(&o.dataSpec, "data", "fashion-mnist", "images to send: a dataset spec (name[:classes] or a file), test split, taken round-robin")
	f.StringVar(&o.dataDir, "data-dir", "", "data directory (default $EIGENSCORE_DATA or ./data-cache)")
	f.StringVar(&o.model, "model", "eigenscore", "model name to ask GET /v2/models/{name} for the image shape")
	f.StringVar(&o.shape, "shape", "", "image shape CxHxW, e.g. 1x28x28 (default: ask /v2/models/{name}, else 1x28x28)")
	f.IntVar(&o.serverPID, "server-pid", 0, "server process to read peak RSS of (/proc/PID/status VmHWM, and VmRSS sampled every 100ms)")
	f.StringVar(&o.jsonPath, "json", "", "write the summary as JSON to this file")
	f.IntVar(&o.padBytes, "pad-bytes", 0, "white space added to every request body (valid JSON), to measure how the server holds large bodies")
	f.BoolVar(&o.honorRetryAfter, "honor-retry-after", true, "after a 429, a client waits the Retry-After seconds before its next request")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "debug logging")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "warnings only on stderr")
	return cmd
}

// setupLogging sends slog output to stderr at the level the flags ask for.
func setupLogging(verbose, quiet bool) {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	if quiet {
		level = slog.LevelWarn
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
}

// validate checks the flag values that bound the run.
func (o *options) validate() error {
	switch {
	case o.clients < 1:
		return fmt.Errorf("--clients %d: want at least 1", o.clients)
	case o.images < 1:
		return fmt.Errorf("--images %d: want at least 1", o.images)
	case o.requests < 1:
		return fmt.Errorf("--requests %d: want at least 1 (the run is always bounded)", o.requests)
	case o.duration <= 0:
		return fmt.Errorf("--duration %v: want a positive duration (the run is always bounded)", o.duration)
	case o.timeout <= 0:
		return fmt.Errorf("--timeout %v: want a positive duration", o.timeout)
	case o.serverPID < 0:
		return fmt.Errorf("--server-pid %d: want a process id", o.serverPID)
	}
	return nil
}

// run is the whole command: check the address, learn the shape, load the
// images, drive the load, and report.
func run(ctx context.Context, o *options) error {
	if err := o.validate(); err != nil {
		return err
	}
	base, err := parseAddr(o.addr)
	if err != nil {
		return err
	}
	if err := checkLoopback(ctx, base.Hostname(), o.lookup); err != nil {
		return err
	}
	client := newClient(o.clients)
	shape, err := o.resolveShape(ctx, client, base)
	if err != nil {
		return err
	}
	ds, err := o.loadImages(shape)
	if err != nil {
		return err
	}
	rss, err := startRSS(o.serverPID)
	if err != nil {
		return err
	}
	lt := &loadTest{
		client: client, url: base.JoinPath("v1", "score").String(), token: o.token,
		clients: o.clients, images: o.images, requests: o.requests,
		duration: o.duration, timeout: o.timeout, honorRetryAfter: o.honorRetryAfter,
		source: newImageSource(ds, o.padBytes),
	}
	slog.Info("running", "url", lt.url, "clients", o.clients, "images", o.images, "requests", o.requests, "duration", o.duration, "data", ds.Name, "shape", shape)
	res := lt.run(ctx)
	sum := summarize(res, o.clients, o.images)
	sum.Addr, sum.Model, sum.Shape, sum.Data = base.String(), o.model, shape.String(), ds.Name
	sum.RSS = rss.stop()
	return o.report(sum)
}

// resolveShape is --shape when given; otherwise the server's model metadata,
// falling back to 1x28x28 when the server does not answer it.
func (o *options) resolveShape(ctx context.Context, client *http.Client, base *url.URL) (denoise.Shape, error) {
	if o.shape != "" {
		return parseShape(o.shape)
	}
	fallback := denoise.Shape{C: 1, H: 28, W: 28}
	shape, err := discoverShape(ctx, client, base, o.model, o.token, min(o.timeout, 10*time.Second))
	if err != nil {
		slog.Warn("could not learn the image shape from the server; assuming the default", "default", fallback, "err", err)
		return fallback, nil
	}
	slog.Info("server model shape", "model", o.model, "shape", shape)
	return shape, nil
}

// loadImages loads the --data test split and checks its shape is shape.
func (o *options) loadImages(shape denoise.Shape) (*data.Dataset, error) {
	spec, err := data.ParseSpec(o.dataSpec)
	if err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	load := o.loadDataset
	if load == nil {
		dir := data.DataDir(o.dataDir)
		load = func(spec data.Spec) (*data.Dataset, error) { return data.Load(dir, spec, data.Test) }
	}
	ds, err := load(spec)
	if err != nil {
		return nil, fmt.Errorf("loading --data %s: %w", spec, err)
	}
	if ds.Len() == 0 {
		return nil, fmt.Errorf("--data %s has no images", spec)
	}
	if ds.Shape != shape {
		return nil, fmt.Errorf("--data %s has images of shape %v but the server expects %v", spec, ds.Shape, shape)
	}
	return ds, nil
}

// report prints the summary line and writes the JSON file when asked.
func (o *options) report(sum *Summary) error {
	out := o.stdout
	if out == nil {
		out = os.Stdout
	}
	if _, err := fmt.Fprintln(out, sum.Line()); err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	for _, kind := range slices.Sorted(maps.Keys(sum.ErrorSamples)) {
		slog.Info("first failure", "kind", kind, "msg", sum.ErrorSamples[kind])
	}
	if o.jsonPath == "" {
		return nil
	}
	return writeJSON(o.jsonPath, sum)
}

// writeJSON writes v as indented JSON to path.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the summary: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing --json: %w", err)
	}
	return nil
}
