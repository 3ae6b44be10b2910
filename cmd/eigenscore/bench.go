package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/eval"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/internal/featcache"
	"github.com/eigenscore/eigenscore/method"
	"github.com/eigenscore/eigenscore/noise"
	"github.com/eigenscore/eigenscore/spectrum"
)

// benchResult is one estimator configuration's measurements.
type benchResult struct {
	Preset      string                    `json:"preset"`
	Estimator   spectrum.Config           `json:"estimator"`
	Draws       int                       `json:"draws"`
	NFEPerImage float64                   `json:"nfe_per_image"`
	NFEBound    int                       `json:"nfe_bound_per_image"`
	ImagesPerS  float64                   `json:"images_per_s"`
	NFEPerS     float64                   `json:"nfe_per_s"`
	RawNFEPerS  float64                   `json:"raw_nfe_per_s"` // direct denoiser calls at the estimator's batch size
	Efficiency  float64                   `json:"efficiency"`    // NFEPerS / RawNFEPerS
	Seconds     float64                   `json:"seconds"`
	PeakRSSMB   float64                   `json:"peak_rss_mb"` // process peak so far
	AUROC       map[method.Method]float64 `json:"auroc"`
	// IDReliability is eval.Reliability on the ID fit images' spectra;
	// absent with a single draw, where it is undefined.
	IDReliability *float64 `json:"id_reliability,omitempty"`
	// IDAgreement is eval.Agreement with the --agree-with preset, the mean
	// of its values on the ID fit images and on the ID test images (each
	// given too): the ID-only criterion the fast preset is chosen by.
	IDAgreement     *float64 `json:"id_agreement,omitempty"`
	FitAgreement    *float64 `json:"fit_agreement,omitempty"`
	IDTestAgreement *float64 `json:"id_test_agreement,omitempty"`
}

// benchCmd holds the bench command's flags.
type benchCmd struct {
	g                *globals
	presets          []string
	id, ood, den, js string
	agreeWith        string
	n                int
	seed             uint64
	levels           noiseFlags
	batch            int
}

func newBenchCmd(g *globals) *cobra.Command {
	b := &benchCmd{g: g}
	cmd := &cobra.Command{
		Use:     "bench",
		Short:   "Compare estimator presets: NFEs per image, throughput against raw denoiser calls, memory and AUROC",
		Example: `  eigenscore bench --preset fast,default --id fashion-mnist --ood mnist --n 100 --json bench.json`,
		RunE:    func(cmd *cobra.Command, args []string) error { return b.run(cmd) },
	}
	b.levels.register(cmd, "100:300:50")
	cmd.Flags().StringSliceVar(&b.presets, "preset", []string{"fast", "default"}, "presets to compare: "+strings.Join(eigenscore.PresetNames(), ", "))
	cmd.Flags().StringVar(&b.id, "id", "fashion-mnist", "ID dataset")
	cmd.Flags().StringVar(&b.ood, "ood", "mnist", "OOD dataset")
	cmd.Flags().StringVar(&b.den, "denoiser", "", "denoiser (default: the shipped model of --id)")
	cmd.Flags().IntVar(&b.n, "n", 100, "images per set")
	cmd.Flags().IntVar(&b.batch, "batch", 32, "problems per denoiser call (each 2k images)")
	cmd.Flags().Uint64Var(&b.seed, "seed", 1, "random seed")
	cmd.Flags().StringVar(&b.js, "json", "", "write the measurements as JSON")
	cmd.Flags().StringVar(&b.agreeWith, "agree-with", "", "also rank-correlate each preset's scores of the ID fit and ID test images with this preset's (e.g. reference; through the feature cache)")
	return cmd
}

// run measures each preset on the pair and prints (and writes) the table.
func (b *benchCmd) run(cmd *cobra.Command) error {
	sigmas, ts, err := b.levels.resolve()
	if err != nil {
		return err
	}
	base := eval.Config{ID: b.id, OOD: b.ood, N: b.n, FitN: b.n, Seed: b.seed, Sigmas: sigmas, Timesteps: ts,
		Aggregation: features.Mean, Acceptance: 0.95, Probes: 4, Methods: []method.Method{method.EigenScore, method.EigenScore2S}, Protocol: eval.Deploy}
	m, err := b.g.openModel(b.den, b.id)
	if err != nil {
		return err
	}
	defer m.Close()
	sets, err := eval.LoadSets(data.DataDir(b.g.dataDir), base, m.Shape())
	if err != nil {
		return err
	}
	var ref map[eval.Role]*method.Features
	if b.agreeWith != "" {
		if ref, err = b.reference(cmd, base, m, sets); err != nil {
			return err
		}
	}
	var results []benchResult
	for _, name := range b.presets {
		r, err := b.measure(cmd, base, name, m, sets, ref)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	printBench(cmd.OutOrStdout(), fmt.Sprintf("%s vs %s, %d images per set (fit, ID test, OOD test), denoiser %s", b.id, b.ood, b.n, m.ID()), results)
	if b.js != "" {
		out := map[string]any{"id": b.id, "ood": b.ood, "n": b.n, "denoiser": m.ID(), "sigmas": sigmas, "configs": results}
		if err := writeJSON(b.js, out); err != nil {
			return err
		}
	}
	return nil
}

// reference extracts the --agree-with preset's spectra of the fit and ID
// test images, through the feature cache: the reference is the expensive
// part and does not change between bench runs.
func (b *benchCmd) reference(cmd *cobra.Command, base eval.Config, m *eigenscore.Model, sets *eval.Sets) (map[eval.Role]*method.Features, error) {
	cfg, _, err := withPreset(base, b.agreeWith, b.batch)
	if err != nil {
		return nil, err
	}
	cache := featcache.Cache{Dir: b.g.featureDir(false)}
	ref := map[eval.Role]*method.Features{}
	for _, r := range []eval.Role{eval.Fit, eval.ID} {
		if ref[r], err = method.Extract(cmd.Context(), method.Spectra, cfg.Settings(), m.Denoiser(), m.ID(), sets.ByRole(r), cache, b.g.progress()); err != nil {
			return nil, err
		}
	}
	return ref, nil
}

// measure runs the pair with one preset (no feature cache) and measures its
// cost, its raw denoiser throughput at the same call size, and its
// agreement with ref when given.
func (b *benchCmd) measure(cmd *cobra.Command, base eval.Config, name string, m *eigenscore.Model, sets *eval.Sets, ref map[eval.Role]*method.Features) (benchResult, error) {
	cfg, pr, err := withPreset(base, name, b.batch)
	if err != nil {
		return benchResult{}, err
	}
	cfg.Denoiser = m.ID()
	nfe0 := m.NFE()
	t0 := time.Now()
	res, err := eval.Run(cmd.Context(), cfg, m, sets, featcache.Cache{}, b.g.progress())
	if err != nil {
		return benchResult{}, err
	}
	secs := time.Since(t0).Seconds()
	nfe := m.NFE() - nfe0
	raw, err := rawThroughput(cmd.Context(), m.Denoiser(), cfg.Estimator.Batch*2*cfg.Estimator.K, b.seed)
	if err != nil {
		return benchResult{}, err
	}
	r := benchResult{Preset: name, Estimator: cfg.Estimator, Draws: cfg.Draws,
		NFEPerImage: float64(nfe) / float64(res.Images), NFEBound: pr.NFEBound(len(cfg.Sigmas)),
		ImagesPerS: float64(res.Images) / secs, NFEPerS: float64(nfe) / secs, RawNFEPerS: raw,
		Seconds: secs, PeakRSSMB: peakRSSMB(), AUROC: map[method.Method]float64{}}
	r.Efficiency = r.NFEPerS / r.RawNFEPerS
	if rel := eval.Reliability(res.Features[method.Spectra][eval.Fit].Sums); !math.IsNaN(rel) {
		r.IDReliability = &rel
	}
	if ref != nil {
		fa, err := eval.Agreement(res.Features[method.Spectra][eval.Fit].Rows, ref[eval.Fit].Rows)
		if err != nil {
			return benchResult{}, err
		}
		ta, err := eval.Agreement(res.Features[method.Spectra][eval.ID].Rows, ref[eval.ID].Rows)
		if err != nil {
			return benchResult{}, err
		}
		mean := (fa + ta) / 2
		r.FitAgreement, r.IDTestAgreement, r.IDAgreement = &fa, &ta, &mean
	}
	for meth, mr := range res.Methods {
		r.AUROC[meth] = mr.AUROC
	}
	return r, nil
}

// printBench writes the heading and one table row per preset.
func printBench(out io.Writer, heading string, results []benchResult) {
	fmt.Fprintln(out, heading)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "preset\tNFE/image\tbound\timages/s\testimator NFE/s\traw NFE/s\tefficiency\tpeak RSS MB\tID reliability\tID agreement\tAUROC eigenscore\tAUROC eigenscore-2s")
	for _, r := range results {
		agree, rel := "-", "-"
		if r.IDAgreement != nil {
			agree = fmt.Sprintf("%.3f", *r.IDAgreement)
		}
		if r.IDReliability != nil {
			rel = fmt.Sprintf("%.3f", *r.IDReliability)
		}
		fmt.Fprintf(w, "%s\t%.0f\t%d\t%.2f\t%.0f\t%.0f\t%.2f\t%.0f\t%s\t%s\t%.4f\t%.4f\n", r.Preset, r.NFEPerImage, r.NFEBound, r.ImagesPerS,
			r.NFEPerS, r.RawNFEPerS, r.Efficiency, r.PeakRSSMB, rel, agree, r.AUROC[method.EigenScore], r.AUROC[method.EigenScore2S])
	}
	w.Flush()
}

// withPreset returns base with the estimator and draws of a preset, and
// the preset.
func withPreset(base eval.Config, name string, batch int) (eval.Config, eigenscore.Preset, error) {
	pr, err := eigenscore.LookupPreset(name)
	if err != nil {
		return base, pr, err
	}
	base.Estimator, base.Draws = pr.Estimator, pr.Draws
	base.Estimator.Batch = batch
	return base, pr, nil
}

// rawThroughput times direct denoiser calls on batches of the given size
// for about two seconds and returns NFEs per second.
func rawThroughput(ctx context.Context, d denoise.Denoiser, batch int, seed uint64) (float64, error) {
	dim := d.Shape().Dim()
	rng := noise.Stream(seed, noise.Bench, 0, 0)
	x := make([]float32, batch*dim)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	sig := make([]float32, batch)
	for i := range sig {
		sig[i] = 0.7
	}
	out := make([]float32, len(x))
	if err := d.Denoise(ctx, x, sig, out); err != nil { // warm-up
		return 0, err
	}
	t0 := time.Now()
	calls := 0
	for time.Since(t0) < 2*time.Second {
		if err := d.Denoise(ctx, x, sig, out); err != nil {
			return 0, err
		}
		calls++
	}
	return float64(calls*batch) / time.Since(t0).Seconds(), nil
}

func peakRSSMB() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // Linux reports KiB
}
