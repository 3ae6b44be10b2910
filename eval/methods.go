package eval

import (
	"context"
	"fmt"
	"math"

	"github.com/eigenscore/eigenscore/baseline"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/detector"
	"github.com/eigenscore/eigenscore/schedule"
	"github.com/eigenscore/eigenscore/spectrum"
)

// GridSigmas is the fixed σ grid of the denoising-error and score-norm
// features, chosen in advance (not on any OOD data): it spans the small σ
// where fine detail is denoised to the large σ where only the coarse shape
// survives, as in DDPM-OOD's range of noise levels.
var GridSigmas = []float64{0.1, 0.2, 0.34226, 0.72359, 1.24016, 2.0}

// Features are one provider's features of one image set.
type Features struct {
	Rows  [][]float64 // one row per image
	Names []string    // one name per column
	NFE   int64       // denoiser evaluations spent on the set
	// Seconds is the compute time, also for features read from the cache
	// (the time it took when they were computed).
	Seconds float64
	// Eigen, for the spectrum provider: per image, per σ, the mean over
	// draws of λ_1..λ_k (for plots); Sums, per image, per σ, each draw's
	// λ_1+…+λ_k (for re-aggregation).
	Eigen        [][][]float64
	Sums         [][][]float64
	NotConverged int
}

// Provider computes features of an image set with a denoiser.
type Provider struct {
	Name string
	// Params identify the provider's settings in cache keys.
	Params  any
	compute func(ctx context.Context, den denoise.Denoiser, ds *data.Dataset, progress func(int)) (*Features, error)
	// tasks is the progress total for a set of n images.
	tasks func(n int) int
}

// Detector combines providers' features with a score rule.
type Detector struct {
	Name      string
	Providers []string
	Score     detector.Score
	Note      string
	UsesOOD   bool
	// Collapse names providers whose features enter as one column, their
	// geometric mean over the columns (for the two-sided score, the mean of
	// the log-features): one dimension of evidence instead of several
	// correlated, noisy ones.
	Collapse map[string]bool
}

// Providers builds the feature providers for cfg.
func Providers(cfg Config) map[string]*Provider {
	est := cfg.Estimator
	sig := cfg.Sigmas
	draws := cfg.Draws
	seed := cfg.Seed
	agg := cfg.Aggregation
	return map[string]*Provider{
		"spectrum":       spectrumProvider("spectrum", est, sig, draws, agg, seed),
		"spectrum-paper": spectrumProvider("spectrum-paper", est, PaperSigmas(), draws, agg, seed),
		"recon": {
			Name: "recon", Params: []any{GridSigmas, draws, seed},
			tasks: func(n int) int { return n * len(GridSigmas) * draws },
			compute: func(ctx context.Context, den denoise.Denoiser, ds *data.Dataset, progress func(int)) (*Features, error) {
				rows, err := baseline.DenoisingError(ctx, den, ds, GridSigmas, draws, seed, progress)
				return &Features{Rows: rows, Names: FeatureNames("mse", GridSigmas, detector.Mean, 1)}, err
			},
		},
		"scorenorm": {
			Name: "scorenorm", Params: []any{GridSigmas, draws, seed},
			tasks: func(n int) int { return n * len(GridSigmas) * draws },
			compute: func(ctx context.Context, den denoise.Denoiser, ds *data.Dataset, progress func(int)) (*Features, error) {
				rows, err := baseline.ScoreNorm(ctx, den, ds, GridSigmas, draws, seed, progress)
				return &Features{Rows: rows, Names: FeatureNames("score", GridSigmas, detector.Mean, 1)}, err
			},
		},
		"trace": {
			Name: "trace", Params: []any{sig, cfg.Probes, est.Step, seed},
			tasks: func(n int) int { return n * len(sig) * cfg.Probes },
			compute: func(ctx context.Context, den denoise.Denoiser, ds *data.Dataset, progress func(int)) (*Features, error) {
				rows, err := baseline.Trace(ctx, den, ds, sig, cfg.Probes, est.Step, seed, progress)
				return &Features{Rows: rows, Names: FeatureNames("trace", sig, detector.Mean, 1)}, err
			},
		},
		"diffpath": {
			Name: "diffpath", Params: baseline.DiffPathSigmas(),
			tasks: func(n int) int { return n },
			compute: func(ctx context.Context, den denoise.Denoiser, ds *data.Dataset, progress func(int)) (*Features, error) {
				rows, err := baseline.DiffPath(ctx, den, ds, baseline.DiffPathSigmas(), progress)
				names := []string{"eps^1", "eps^2", "eps^3", "deps^1", "deps^2", "deps^3"}
				return &Features{Rows: rows, Names: names}, err
			},
		},
	}
}

func spectrumProvider(name string, est spectrum.Config, sig []float64, draws int, agg detector.Aggregation, seed uint64) *Provider {
	return &Provider{
		Name: name, Params: []any{est, sig, draws, agg, seed},
		tasks: func(n int) int { return n * len(sig) },
		compute: func(ctx context.Context, den denoise.Denoiser, ds *data.Dataset, progress func(int)) (*Features, error) {
			e := &spectrum.Estimator{Denoiser: den, Config: est, Seed: seed}
			sp, err := detector.Estimate(ctx, e, ds, sig, draws, progress)
			if err != nil {
				return nil, err
			}
			f := &Features{Rows: sp.Features(agg), Names: FeatureNames("eig", sig, agg, draws), NFE: sp.NFE, NotConverged: sp.NotConverged}
			f.Eigen = make([][][]float64, len(sp.Draws))
			f.Sums = make([][][]float64, len(sp.Draws))
			for i, perSigma := range sp.Draws {
				f.Eigen[i] = make([][]float64, len(sig))
				f.Sums[i] = make([][]float64, len(sig))
				for j, ds := range perSigma {
					m := make([]float64, est.K)
					sums := make([]float64, len(ds))
					for r, d := range ds {
						for l, v := range d.Values {
							m[l] += v / float64(len(ds))
							sums[r] += v
						}
					}
					f.Eigen[i][j] = m
					f.Sums[i][j] = sums
				}
			}
			return f, nil
		},
	}
}

// PaperSigmas are the reference protocol's 13 levels, DDPM timesteps
// 100, 150, …, 700.
func PaperSigmas() []float64 {
	var ts []int
	for t := 100; t <= 700; t += 50 {
		ts = append(ts, t)
	}
	s, _ := schedule.DDPM.Sigmas(ts)
	return s
}

// Detectors are the methods every evaluation reports, in table order.
var Detectors = []Detector{
	{Name: "eigenscore", Providers: []string{"spectrum"}, Score: detector.OneSided, Note: "paper: standardised top-k eigenvalue sums, summed over σ (one-sided)"},
	{Name: "eigenscore-2s", Providers: []string{"spectrum"}, Score: detector.TwoSided, Note: "Mahalanobis distance of log eigenvalue sums (two-sided)"},
	{Name: "eigenscore+", Providers: []string{"spectrum", "recon"}, Score: detector.TwoSided, Note: "ours: log eigenvalue sums and log denoising errors, Mahalanobis (two-sided)"},
	{Name: "eigenscore+1d", Providers: []string{"spectrum", "recon"}, Score: detector.TwoSided, Collapse: map[string]bool{"spectrum": true},
		Note: "ours: the eigenvalue sums' geometric mean over σ as one dimension next to the log denoising errors, Mahalanobis (two-sided)"},
	{Name: "trace", Providers: []string{"trace"}, Score: detector.OneSided, Note: "Hutchinson trace of Cov[x|y], standardised and summed (one-sided)"},
	{Name: "recon-error", Providers: []string{"recon"}, Score: detector.OneSided, Note: "denoising error over the σ grid, standardised and summed (DDPM-OOD style)"},
	{Name: "recon-error-2s", Providers: []string{"recon"}, Score: detector.TwoSided, Note: "Mahalanobis distance of log denoising errors"},
	{Name: "msma", Providers: []string{"scorenorm"}, Score: detector.TwoSided, Note: "score norms over the σ grid, Gaussian density on their logs (MSMA style)"},
	{Name: "diffpath-6d", Providers: []string{"diffpath"}, Score: detector.TwoSided, Note: "DiffPath-6D path statistics, Gaussian density on their logs"},
}

// collapse replaces each row by its geometric mean, named after prefix.
func collapse(f *Features, prefix string) *Features {
	out := &Features{Names: []string{prefix + "(geometric mean)"}, Rows: make([][]float64, len(f.Rows))}
	for i, r := range f.Rows {
		s := 0.0
		for _, v := range r {
			s += math.Log(v)
		}
		out.Rows[i] = []float64{math.Exp(s / float64(len(r)))}
	}
	return out
}

// join concatenates providers' rows column-wise.
func join(fs []*Features) ([][]float64, []string) {
	n := len(fs[0].Rows)
	rows := make([][]float64, n)
	var names []string
	for _, f := range fs {
		names = append(names, f.Names...)
	}
	for i := range rows {
		for _, f := range fs {
			rows[i] = append(rows[i], f.Rows[i]...)
		}
	}
	return rows, names
}

// FeatureNames names feature columns prefix(σ), with a draw suffix for the
// "all" aggregation.
func FeatureNames(prefix string, sigmas []float64, agg detector.Aggregation, draws int) []string {
	var out []string
	for _, s := range sigmas {
		if agg == detector.All {
			for d := 0; d < draws; d++ {
				out = append(out, fmt.Sprintf("%s(σ=%.3g)#%d", prefix, s, d))
			}
			continue
		}
		out = append(out, fmt.Sprintf("%s(σ=%.3g)", prefix, s))
	}
	return out
}

func clampPositive(rows [][]float64) {
	// Features are positive in exact arithmetic; a Hutchinson estimate can
	// dip below zero for tiny traces. The floor keeps logs finite without
	// changing any realistic value.
	for _, r := range rows {
		for j, v := range r {
			if v < 1e-12 {
				r[j] = 1e-12
			}
		}
	}
}
