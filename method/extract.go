package method

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/internal/featcache"
	"github.com/eigenscore/eigenscore/spectrum"
)

// Settings are everything besides the model and the images that determines
// a provider's features: the estimator and its levels and draws for the
// spectra, the draws for the per-noise features, the probes of the trace,
// and the seed of every random stream (package noise).
type Settings struct {
	Estimator   spectrum.Config      `json:"estimator"`
	Sigmas      []float64            `json:"sigmas"` // spectra and trace levels
	Draws       int                  `json:"draws"`  // noise draws per image and σ
	Aggregation features.Aggregation `json:"aggregation"`
	Probes      int                  `json:"probes"` // Hutchinson probes per image and σ
	Seed        uint64               `json:"seed"`
}

// GridSigmas is the fixed σ grid of the denoising-error and score-norm
// features, chosen in advance (not on any OOD data): it spans the small σ
// where fine detail is denoised to the large σ where only the coarse shape
// survives, as in DDPM-OOD's range of noise levels.
func GridSigmas() []float64 { return []float64{0.1, 0.2, 0.34226, 0.72359, 1.24016, 2.0} }

// FeatureNames names the provider's columns under s: prefix(σ=…), with a
// draw suffix for the spectra under the "all" aggregation.
func (p Provider) FeatureNames(s Settings) []string {
	switch p {
	case Spectra:
		return Names("eig", s.Sigmas, s.Aggregation, s.Draws)
	case DenoisingErrors:
		return Names("mse", GridSigmas(), features.Mean, 1)
	case ScoreNorms:
		return Names("score", GridSigmas(), features.Mean, 1)
	case Traces:
		return Names("trace", s.Sigmas, features.Mean, 1)
	case DiffPaths:
		return []string{"eps^1", "eps^2", "eps^3", "deps^1", "deps^2", "deps^3"}
	}
	return nil
}

// Names names feature columns prefix(σ), with a draw suffix for the "all"
// aggregation.
func Names(prefix string, sigmas []float64, agg features.Aggregation, draws int) []string {
	var out []string
	for _, s := range sigmas {
		if agg == features.All {
			for d := 0; d < draws; d++ {
				out = append(out, fmt.Sprintf("%s(σ=%.3g)#%d", prefix, s, d))
			}
			continue
		}
		out = append(out, fmt.Sprintf("%s(σ=%.3g)", prefix, s))
	}
	return out
}

// tasks is the progress total of the provider for n images.
func (p Provider) tasks(s Settings, n int) int {
	switch p {
	case Spectra:
		return n * len(s.Sigmas)
	case DenoisingErrors, ScoreNorms:
		return n * len(GridSigmas()) * s.Draws
	case Traces:
		return n * len(s.Sigmas) * s.Probes
	}
	return n
}

// params are the settings that determine the provider's features, for
// cache keys.
func (p Provider) params(s Settings) any {
	switch p {
	case Spectra:
		return []any{s.Estimator, s.Sigmas, s.Draws, s.Aggregation, s.Seed}
	case DenoisingErrors, ScoreNorms:
		return []any{GridSigmas(), s.Draws, s.Seed}
	case Traces:
		return []any{s.Sigmas, s.Probes, s.Estimator.Step, s.Seed}
	}
	return features.DiffPathSigmas()
}

// Features are one provider's features of one image set.
type Features struct {
	Rows  [][]float64 // one row per image
	Names []string    // one name per column
	NFE   int64       // denoiser evaluations spent on the set
	// Seconds is the compute time, also for features read from the cache
	// (the time it took when they were computed).
	Seconds float64
	// Eigen, for the spectra: per image, per σ, the mean over draws of
	// λ_1..λ_k (for plots); Sums, per image, per σ, each draw's
	// λ_1+…+λ_k (for re-aggregation).
	Eigen        [][][]float64
	Sums         [][][]float64
	NotConverged int
}

// Progress creates a progress reporter for a stage with total steps; it
// returns the function called with the steps done and one that closes it.
type Progress func(stage string, total int) (update func(done int), finish func())

// NoProgress reports nothing.
func NoProgress(string, int) (func(int), func()) { return func(int) {}, func() {} }

// chunkImages is the number of images per cache entry: small enough that a
// killed run loses little, large enough to fill the estimator's batches.
const chunkImages = 50

// Extract computes the provider's features of ds, chunk by chunk, reading
// chunks already in the cache (keyed by the provider, its settings, modelID,
// the set's name and the pixels) and storing new ones. The set's name is
// part of every noise key (package noise), so name sets by their role. NFE
// counts what the denoiser was asked for chunks computed now and what it was
// asked when cached chunks were made. progress may be nil.
func Extract(ctx context.Context, p Provider, s Settings, den denoise.Denoiser, modelID string, ds *data.Dataset, cache featcache.Cache, progress Progress) (*Features, error) {
	if progress == nil {
		progress = NoProgress
	}
	total := p.tasks(s, ds.Len())
	update, finish := progress(string(p)+" "+ds.Name, total)
	defer finish()
	out := &Features{Names: p.FeatureNames(s)}
	done, hits := 0, 0
	for start := 0; start < ds.Len(); start += chunkImages {
		// A chunk keeps ds's name, so its noise keys are those of the full set.
		end := min(start+chunkImages, ds.Len())
		c := &data.Dataset{Name: ds.Name, Shape: ds.Shape, Pixels: ds.Pixels[start*ds.Dim() : end*ds.Dim()]}
		key := featcache.Key(string(p), p.params(s), modelID, c.Name, c.Pixels)
		var f Features
		if cache.Load(key, &f) && len(f.Rows) == c.Len() {
			hits++
		} else {
			base := done
			got, err := p.compute(ctx, s, den, c, func(n int) { update(base + n) })
			if err != nil {
				return nil, err
			}
			f = *got
			if err := cache.Store(key, &f); err != nil {
				slog.Warn("feature cache write failed", "err", err)
			}
		}
		done += p.tasks(s, c.Len())
		update(done)
		out.Rows = append(out.Rows, f.Rows...)
		out.Eigen = append(out.Eigen, f.Eigen...)
		out.Sums = append(out.Sums, f.Sums...)
		out.NFE += f.NFE
		out.Seconds += f.Seconds
		out.NotConverged += f.NotConverged
	}
	if hits > 0 {
		slog.Debug("feature cache", "provider", p, "set", ds.Name, "chunks_cached", hits)
	}
	return out, nil
}

// compute runs the provider on one chunk, counting its NFEs and time.
func (p Provider) compute(ctx context.Context, s Settings, den denoise.Denoiser, ds *data.Dataset, progress func(int)) (*Features, error) {
	counter := denoise.NewCounter(den)
	t0 := time.Now()
	f := &Features{Names: p.FeatureNames(s)}
	var err error
	switch p {
	case Spectra:
		err = spectra(ctx, s, counter, ds, progress, f)
	case DenoisingErrors:
		f.Rows, err = features.DenoisingError(ctx, counter, ds, GridSigmas(), s.Draws, s.Seed, progress)
	case ScoreNorms:
		f.Rows, err = features.ScoreNorm(ctx, counter, ds, GridSigmas(), s.Draws, s.Seed, progress)
	case Traces:
		f.Rows, err = features.Trace(ctx, counter, ds, s.Sigmas, s.Probes, s.Estimator.Step, s.Seed, progress)
	case DiffPaths:
		f.Rows, err = features.DiffPath(ctx, counter, ds, features.DiffPathSigmas(), progress)
	default:
		err = fmt.Errorf("method: unknown feature provider %q", p)
	}
	if err != nil {
		return nil, err
	}
	clampPositive(f.Rows)
	f.NFE = counter.NFE()
	f.Seconds = time.Since(t0).Seconds()
	return f, nil
}

// spectra estimates the posterior spectra and keeps, besides the
// aggregated feature rows, each draw's eigenvalue sum and the mean
// eigenvalues (for re-aggregation and plots).
func spectra(ctx context.Context, s Settings, den denoise.Denoiser, ds *data.Dataset, progress func(int), f *Features) error {
	e := &spectrum.Estimator{Denoiser: den, Config: s.Estimator, Seed: s.Seed}
	sp, err := features.Estimate(ctx, e, ds, s.Sigmas, s.Draws, progress)
	if err != nil {
		return err
	}
	f.Rows, f.NotConverged = sp.Features(s.Aggregation), sp.NotConverged
	f.Eigen = make([][][]float64, len(sp.Draws))
	f.Sums = make([][][]float64, len(sp.Draws))
	for i, perSigma := range sp.Draws {
		f.Eigen[i] = make([][]float64, len(s.Sigmas))
		f.Sums[i] = make([][]float64, len(s.Sigmas))
		for j, draws := range perSigma {
			m := make([]float64, s.Estimator.WithDefaults().K)
			sums := make([]float64, len(draws))
			for r, d := range draws {
				for l, v := range d.Values {
					m[l] += v / float64(len(draws))
					sums[r] += v
				}
			}
			f.Eigen[i][j], f.Sums[i][j] = m, sums
		}
	}
	return nil
}

// clampPositive floors features at 1e-12. Features are positive in exact
// arithmetic; a Hutchinson estimate can dip below zero for tiny traces. The
// floor keeps logs finite without changing any realistic value.
func clampPositive(rows [][]float64) {
	for _, r := range rows {
		for j, v := range r {
			if v < 1e-12 {
				r[j] = 1e-12
			}
		}
	}
}
