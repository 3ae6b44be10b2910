package method

import (
	"context"
	"fmt"
	"log/slog"
	"math"
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

// Limits of Settings.Validate.
const (
	maxK        = 64
	maxDraws    = 1000
	maxIter     = 100_000
	maxRedraw   = 100
	maxBatch    = 1 << 14
	maxSigmas   = 1000
	maxSigma    = 1e4
	maxProbes   = 10_000
	maxPixels   = 1 << 24
	maxPatience = 1000
)

// Validate checks every setting against its range; the error names the
// field as "Field: problem" (e.g. "Sigmas[1] = -1, want in (0, 10000]").
// The limits bound the work and memory one image can ask for, far beyond
// any useful value, so that a damaged detector file cannot ask for more.
func (s Settings) Validate() error {
	if err := validEstimator(s.Estimator); err != nil {
		return fmt.Errorf("Estimator.%w", err)
	}
	if s.Draws < 1 || s.Draws > maxDraws {
		return fmt.Errorf("Draws = %d, want 1 to %d", s.Draws, maxDraws)
	}
	if len(s.Sigmas) == 0 || len(s.Sigmas) > maxSigmas {
		return fmt.Errorf("Sigmas has %d levels, want 1 to %d", len(s.Sigmas), maxSigmas)
	}
	for i, v := range s.Sigmas {
		if !(v > 0 && v <= maxSigma) {
			return fmt.Errorf("Sigmas[%d] = %v, want in (0, %g]", i, v, maxSigma)
		}
	}
	if _, err := features.ParseAggregation(string(s.Aggregation)); err != nil {
		return fmt.Errorf("Aggregation: %w", err)
	}
	if s.Probes < 1 || s.Probes > maxProbes {
		return fmt.Errorf("Probes = %d, want 1 to %d", s.Probes, maxProbes)
	}
	return nil
}

// NonNegative rejects the negative (or NaN) fields of an estimator
// configuration that WithDefaults would otherwise silently replace by the
// reference defaults.
func NonNegative(e spectrum.Config) error {
	fields := []struct {
		name string
		v    float64
	}{{"K", float64(e.K)}, {"Step", e.Step}, {"MaxIter", float64(e.MaxIter)}, {"Overlap", e.Overlap},
		{"Patience", float64(e.Patience)}, {"ValueTol", e.ValueTol}, {"Redraw", float64(e.Redraw)}, {"Batch", float64(e.Batch)}}
	for _, f := range fields {
		if f.v < 0 || math.IsNaN(f.v) {
			return fmt.Errorf("%s = %v, want ≥ 0 (0 for the reference default)", f.name, f.v)
		}
	}
	return nil
}

func validEstimator(e spectrum.Config) error {
	switch {
	case e.K < 1 || e.K > maxK:
		return fmt.Errorf("K = %d, want 1 to %d", e.K, maxK)
	case !(e.Step > 0) || math.IsInf(e.Step, 0):
		return fmt.Errorf("Step = %v, want a positive finite value", e.Step)
	case e.MaxIter < 1 || e.MaxIter > maxIter:
		return fmt.Errorf("MaxIter = %d, want 1 to %d", e.MaxIter, maxIter)
	case !(e.Overlap > 0 && e.Overlap <= 1):
		return fmt.Errorf("Overlap = %v, want in (0, 1]", e.Overlap)
	case e.Patience < 1 || e.Patience > maxPatience:
		return fmt.Errorf("Patience = %d, want 1 to %d", e.Patience, maxPatience)
	case !(e.ValueTol >= 0) || math.IsInf(e.ValueTol, 0):
		return fmt.Errorf("ValueTol = %v, want a finite value ≥ 0", e.ValueTol)
	case e.Redraw < 1 || e.Redraw > maxRedraw:
		return fmt.Errorf("Redraw = %d, want 1 to %d", e.Redraw, maxRedraw)
	case e.Batch < 1 || e.Batch > maxBatch:
		return fmt.Errorf("Batch = %d, want 1 to %d", e.Batch, maxBatch)
	case e.Precision != spectrum.Float32 && e.Precision != spectrum.Float64:
		return fmt.Errorf("Precision = %d, want float32 or float64", e.Precision)
	}
	return nil
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
	out := &Features{Names: p.FeatureNames(s)}
	compute := func(c *data.Dataset, update func(int)) (*Features, error) { return p.compute(ctx, s, den, c, update) }
	whole := func(f *Features, n int) bool { return len(f.Rows) == n }
	err := chunked(string(p), p, s, modelID, ds, cache, progress, compute, whole, out.add)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// add appends a chunk's features to f.
func (f *Features) add(c *Features) {
	f.Rows = append(f.Rows, c.Rows...)
	f.Eigen = append(f.Eigen, c.Eigen...)
	f.Sums = append(f.Sums, c.Sums...)
	f.NFE += c.NFE
	f.Seconds += c.Seconds
	f.NotConverged += c.NotConverged
}

// chunked runs compute on ds chunk by chunk, in order, and hands each
// chunk's value to add: read from the cache under the key (label, p's
// settings, modelID, the set's name, the chunk's pixels) when there, else
// computed and stored. A cached value counts only when whole says it holds
// the chunk's n images.
func chunked[T any](label string, p Provider, s Settings, modelID string, ds *data.Dataset, cache featcache.Cache, progress Progress,
	compute func(c *data.Dataset, update func(int)) (*T, error), whole func(v *T, n int) bool, add func(*T)) error {
	if progress == nil {
		progress = NoProgress
	}
	update, finish := progress(label+" "+ds.Name, p.tasks(s, ds.Len()))
	defer finish()
	done, hits := 0, 0
	for start := 0; start < ds.Len(); start += chunkImages {
		// A chunk keeps ds's name, so its noise keys are those of the full set.
		end := min(start+chunkImages, ds.Len())
		c := &data.Dataset{Name: ds.Name, Shape: ds.Shape, Pixels: ds.Pixels[start*ds.Dim() : end*ds.Dim()]}
		key := featcache.Key(label, p.params(s), modelID, c.Name, c.Pixels)
		var v T
		if cache.Load(key, &v) && whole(&v, c.Len()) {
			hits++
		} else {
			base := done
			got, err := compute(c, func(n int) { update(base + n) })
			if err != nil {
				return err
			}
			v = *got
			if err := cache.Store(key, &v); err != nil {
				slog.Warn("feature cache write failed", "err", err)
			}
		}
		done += p.tasks(s, c.Len())
		update(done)
		add(&v)
	}
	if hits > 0 {
		slog.Debug("feature cache", "provider", label, "set", ds.Name, "chunks_cached", hits)
	}
	return nil
}

// compute runs the provider on one chunk, counting its NFEs and time.
func (p Provider) compute(ctx context.Context, s Settings, den denoise.Denoiser, ds *data.Dataset, progress func(int)) (*Features, error) {
	return measured(den, p.FeatureNames(s), func(den denoise.Denoiser, f *Features) error {
		var err error
		switch p {
		case Spectra:
			err = spectra(ctx, s, den, ds, progress, f)
		case DenoisingErrors:
			f.Rows, err = features.DenoisingError(ctx, den, ds, GridSigmas(), s.Draws, s.Seed, progress)
		case ScoreNorms:
			f.Rows, err = features.ScoreNorm(ctx, den, ds, GridSigmas(), s.Draws, s.Seed, progress)
		case Traces:
			f.Rows, err = features.Trace(ctx, den, ds, s.Sigmas, s.Probes, s.Estimator.Step, s.Seed, progress)
		case DiffPaths:
			f.Rows, err = features.DiffPath(ctx, den, ds, features.DiffPathSigmas(), progress)
		default:
			err = fmt.Errorf("method: unknown feature provider %q", p)
		}
		return err
	})
}

// measured runs fill on a fresh Features named names with a denoiser that
// counts its evaluations, then floors the rows (clampPositive) and records
// the NFEs and the time taken.
func measured(den denoise.Denoiser, names []string, fill func(den denoise.Denoiser, f *Features) error) (*Features, error) {
	counter := denoise.NewCounter(den)
	t0 := time.Now()
	f := &Features{Names: names}
	if err := fill(counter, f); err != nil {
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
	f.addSpectra(sp, s)
	return nil
}

// addSpectra appends the feature rows, mean eigenvalues and per-draw sums
// of the images of sp to f.
func (f *Features) addSpectra(sp *features.Spectra, s Settings) {
	f.Rows = append(f.Rows, sp.Features(s.Aggregation)...)
	f.NotConverged += sp.NotConverged
	for _, perSigma := range sp.Draws {
		eigen := make([][]float64, len(s.Sigmas))
		sums := make([][]float64, len(s.Sigmas))
		for j, draws := range perSigma {
			m := make([]float64, s.Estimator.WithDefaults().K)
			ds := make([]float64, len(draws))
			for r, d := range draws {
				for l, v := range d.Values {
					m[l] += v / float64(len(draws))
					ds[r] += v
				}
			}
			eigen[j], sums[j] = m, ds
		}
		f.Eigen, f.Sums = append(f.Eigen, eigen), append(f.Sums, sums)
	}
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
