package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/eval"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
	"github.com/eigenscore/eigenscore/internal/featcache"
	"github.com/eigenscore/eigenscore/method"
)

// evalCmd holds the eval command's flags.
type evalCmd struct {
	g        *globals
	est      estimatorFlags
	levels   noiseFlags
	cfg      eval.Config
	agg, out string
	methods  string
	protocol string
	noCache  bool

	suiteName, csvOut, htmlOut string
}

func newEvalCmd(g *globals) *cobra.Command {
	e := &evalCmd{g: g}
	cfg := &e.cfg
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate OOD detection on an ID/OOD pair: spectra, detector fitted on ID training images, metrics",
		Example: `  eigenscore eval --id fashion-mnist --ood mnist --denoiser gmm --n 200 --json result.json
  eigenscore eval --id fashion-mnist:0-4 --ood fashion-mnist:5-9 --denoiser gmm --n 100`,
		RunE: func(cmd *cobra.Command, args []string) error { return e.run(cmd) },
	}
	e.est.register(cmd, "default")
	e.levels.register(cmd, "100:300:50")
	cmd.Flags().StringVar(&cfg.ID, "id", "fashion-mnist", "in-distribution dataset: name[:classes], a file (IDX, .npy, CIFAR-10 .bin, SVHN .mat) or a folder of PNG/JPEG images; a file or folder is split into disjoint fit and test images")
	cmd.Flags().StringVar(&cfg.OOD, "ood", "mnist", "out-of-distribution dataset (the same kinds as --id)")
	cmd.Flags().StringVar(&cfg.Denoiser, "denoiser", "", "denoiser: gmm, a path to an ONNX model, or empty for the shipped network trained on --id")
	cmd.Flags().IntVar(&cfg.N, "n", 200, "test images per set (ID test and OOD test)")
	cmd.Flags().IntVar(&cfg.FitN, "fit-n", 0, "ID training images to fit the detector on (default: --n)")
	cmd.Flags().StringVar((*string)(&cfg.FitSplit), "fit-split", "train", "split of a named ID set to fit on: train, or test to fit on held-out images (disjoint from the ID test images), for a denoiser trained on the train split")
	cmd.Flags().IntVar(&cfg.Draws, "draws", 0, "noise draws per image and level (default: the preset's, e.g. reference 20, default 5)")
	cmd.Flags().StringVar(&e.agg, "aggregation", "mean", "aggregation over draws: mean, median or all")
	cmd.Flags().Float64Var(&cfg.Acceptance, "acceptance", 0.95, "ID acceptance rate for the detection threshold")
	cmd.Flags().IntVar(&cfg.Bootstrap, "bootstrap", 1000, "bootstrap resamples for 95% confidence intervals (0: none)")
	cmd.Flags().Uint64Var(&cfg.Seed, "seed", 1, "random seed (data sampling and noise draws)")
	cmd.Flags().StringVar(&e.out, "json", "", "write results as JSON to this file")
	cmd.Flags().StringVar(&e.methods, "methods", "", "comma-separated methods to run (default all): "+joinMethods())
	cmd.Flags().IntVar(&cfg.Probes, "probes", 4, "Hutchinson probes per image and σ for the trace method")
	cmd.Flags().StringVar(&e.protocol, "protocol", string(eval.Deploy), "deploy (everything from ID data) or paper (EigenScore window and aggregation chosen on OOD validation data; all methods reported on the test halves)")
	cmd.Flags().StringVar(&e.suiteName, "suite", "", "run a suite of pairs instead of --id/--ood: "+strings.Join(eval.SuiteNames(), ", "))
	cmd.Flags().StringVar(&e.csvOut, "csv", "", "write one CSV row per (pair, method) to this file")
	cmd.Flags().StringVar(&e.htmlOut, "report", "", "write a self-contained HTML report with plots to this file")
	cmd.Flags().IntVar(&cfg.Examples, "examples", 2, "ID and OOD images per pair whose eigenvectors the report shows")
	cmd.Flags().IntVar(&cfg.Tails, "tails", 3, "most and least OOD test images per set (deploy protocol) the report explains with a panel each (0: none)")
	cmd.Flags().BoolVar(&e.noCache, "no-cache", false, "do not read or write the per-image feature cache")
	return cmd
}

// run checks the flags, evaluates the pair or the suite, prints the tables
// and writes the outputs asked for.
func (e *evalCmd) run(cmd *cobra.Command) error {
	cfg := &e.cfg
	if err := spectrumSettings(&e.est, &e.levels, e.agg, cfg); err != nil {
		return err
	}
	if cfg.N < 3 || cfg.Draws < 1 {
		return fmt.Errorf("--n must be at least 3 and --draws at least 1")
	}
	if cfg.FitN == 0 {
		cfg.FitN = cfg.N
	}
	var err error
	if cfg.Methods, err = method.ParseList(e.methods); err != nil {
		return err
	}
	if cfg.Protocol, err = eval.ParseProtocol(e.protocol); err != nil {
		return err
	}
	command := "eigenscore " + strings.Join(os.Args[1:], " ")
	var suite *eval.SuiteResult
	if e.suiteName != "" {
		suite, err = e.runSuite(cmd)
	} else {
		suite, err = e.runPair(cmd)
	}
	if err != nil {
		return err
	}
	if e.out != "" {
		// A single pair's JSON is its result; a suite's is the whole suite.
		var v any = suite
		if e.suiteName == "" {
			v = suite.Pairs[0]
		}
		if err := writeJSON(e.out, v); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", e.out)
	}
	rep, err := toReport(suite, command)
	if err != nil {
		return err
	}
	for _, o := range []struct {
		path string
		csv  bool
	}{{e.csvOut, true}, {e.htmlOut, false}} {
		if o.path == "" {
			continue
		}
		if err := writeReport(o.path, rep, o.csv); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", o.path)
	}
	return nil
}

func (e *evalCmd) open(idSpec string) (*eigenscore.Model, error) {
	return e.g.openModel(e.cfg.Denoiser, idSpec)
}

func (e *evalCmd) cache() featcache.Cache { return featcache.Cache{Dir: e.g.featureDir(e.noCache)} }

// runSuite evaluates every pair of the suite and prints a table per pair
// and the means.
func (e *evalCmd) runSuite(cmd *cobra.Command) (*eval.SuiteResult, error) {
	suite, err := eval.RunSuite(cmd.Context(), e.suiteName, e.cfg, data.DataDir(e.g.dataDir), e.open, e.cache(), e.g.progress())
	if err != nil {
		return nil, err
	}
	for _, r := range suite.Pairs {
		printTable(cmd.OutOrStdout(), r)
		fmt.Fprintln(cmd.OutOrStdout())
	}
	printMeans(cmd.OutOrStdout(), suite)
	return suite, nil
}

// runPair evaluates --id against --ood, with the report's examples and
// tail explanations when an HTML report is asked for, and prints its table.
func (e *evalCmd) runPair(cmd *cobra.Command) (*eval.SuiteResult, error) {
	cfg := &e.cfg
	if err := cfg.CheckData(); err != nil {
		return nil, err
	}
	m, err := e.open(cfg.ID)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	sets, err := eval.LoadSets(data.DataDir(e.g.dataDir), *cfg, m.Shape())
	if err != nil {
		return nil, err
	}
	cfg.Denoiser = m.Source()
	res, err := eval.Run(cmd.Context(), *cfg, m, sets, e.cache(), e.g.progress())
	if err != nil {
		return nil, err
	}
	if cfg.Examples > 0 && e.htmlOut != "" {
		if res.Examples, err = eval.Examples(cmd.Context(), *cfg, m.Denoiser(), sets); err != nil {
			return nil, err
		}
	}
	if cfg.Tails > 0 && e.htmlOut != "" {
		if res.Tails, err = eval.ExplainTails(cmd.Context(), *cfg, m, sets, res, cfg.Tails); err != nil {
			return nil, err
		}
	}
	printTable(cmd.OutOrStdout(), res)
	return &eval.SuiteResult{Suite: "single", Protocol: cfg.Protocol, Pairs: []*eval.Result{res}}, nil
}

func printMeans(w io.Writer, s *eval.SuiteResult) {
	fmt.Fprintf(w, "Mean AUROC over the %d pairs of suite %s (protocol %s):\n", len(s.Pairs), s.Suite, s.Protocol)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, n := range eval.ResultOrder() {
		if v, ok := s.MeanAUROC[n]; ok {
			fmt.Fprintf(tw, "%s\t%.4f\n", n, v)
		}
	}
	tw.Flush()
}

func printTable(w io.Writer, res *eval.Result) {
	fmt.Fprintf(w, "ID %s vs OOD %s — %d test images each, detector fitted on %d ID training images\n",
		res.ID, res.OOD, res.Config.N, res.Config.FitN)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tAUROC\t95% CI\tAUPR-In\tAUPR-Out\tFPR@95TPR\tID accepted\tNFE/image\tseconds")
	for _, n := range eval.ResultOrder() {
		m, ok := res.Methods[n]
		if !ok {
			continue
		}
		ci := "-"
		if c, ok := m.CI["auroc"]; ok {
			ci = fmt.Sprintf("[%.3f, %.3f]", c.Lo, c.Hi)
		}
		fmt.Fprintf(tw, "%s\t%.4f\t%s\t%.4f\t%.4f\t%.4f\t%.3f\t%.0f\t%.1f\n", n, m.AUROC, ci, m.AUPRIn, m.AUPROut, m.FPR95, m.IDAccepted, m.NFEPerImage, m.Seconds)
	}
	tw.Flush()
	// A fixed-budget estimator (fewer iterations than the patience of the
	// convergence rule) never converges by design; the note is for the
	// others.
	if est := res.Config.Estimator; res.NotConverged > 0 && est.MaxIter >= est.Patience {
		fmt.Fprintf(w, "note: %d (image, σ) pairs had fewer converged draws than asked for\n", res.NotConverged)
	}
	if m, ok := res.Methods[eval.PaperMethod]; ok {
		fmt.Fprintf(w, "eigenscore-paper USES OOD DATA: chose %v on the OOD validation half; all rows are on the test halves.\n", m.Selected)
	}
	fmt.Fprintf(w, "FPR@95TPR: fraction of ID scores at or above the largest threshold flagging ≥95%% of OOD. Wall time %.1fs.\n", res.Seconds)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	err = atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
