package method

import (
	"context"
	"fmt"
	"math"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/internal/featcache"
	"github.com/eigenscore/eigenscore/spectrum"
)

// Explained is one image's explanation: at each σ of the settings, the
// eigenpairs of Cov[x|y] the spectrum estimator found while computing the
// image's features, and the uncertainty map they make.
type Explained struct {
	Levels []Level // one per Settings.Sigmas, in order
}

// Level is an image's explanation at one σ.
type Level struct {
	// Values are each draw's estimates λ_1 ≥ … ≥ λ_k, in the order of the
	// estimator's draws (converged ones first, by attempt: the draws the
	// features are made of).
	Values [][]float64
	// Vectors are the first draw's k unit eigenvectors (C·H·W values
	// each), the directions of Values[0].
	Vectors [][]float64
	// Map is the mean over draws of M[p] = Σ_i λ_i·v_i[p]², the diagonal
	// of the rank-k estimate Σ_i λ_i v_i v_iᵀ of Cov[x|y]: the posterior
	// variance of pixel p along the k most uncertain directions. Since the
	// v_i are unit vectors, it sums over pixels to the mean of Σ_i λ_i,
	// the image's feature at this σ under the mean aggregation.
	Map []float64
	// Converged counts the draws that met the estimator's stopping rule.
	Converged int
}

// addMap adds w·Σ_i λ_i·v_i[p]² to dst[p] for every pixel p.
func addMap(dst []float64, w float64, values []float64, vectors [][]float64) {
	for i, v := range vectors {
		wl := w * values[i]
		for p, x := range v {
			dst[p] += wl * x * x
		}
	}
}

// explainDraws makes an image's explanation at one σ from its draws, which
// must carry their vectors (spectrum.Config.KeepVectors).
func explainDraws(draws []spectrum.Draw, dim int) Level {
	l := Level{Map: make([]float64, dim)}
	for r, d := range draws {
		l.Values = append(l.Values, d.Values)
		if r == 0 {
			l.Vectors = d.Vectors
		}
		if d.Converged {
			l.Converged++
		}
		addMap(l.Map, 1/float64(len(draws)), d.Values, d.Vectors)
	}
	return l
}

// maxKeptBytes bounds the eigenvectors and noisy images held at once while
// explaining: images are estimated in groups small enough for it (about 250
// Fashion-MNIST images with the fast preset, 6 CIFAR images with the
// reference one), which fills the estimator's batches all the same.
const maxKeptBytes = 64 << 20

// explainSpectra computes the spectra features of ds exactly as the
// provider does (the same estimator and noise, so the same rows and NFEs),
// keeping each draw's eigenvectors, and hands every image's explanation to
// each. progress receives the (image, σ) tasks done.
func explainSpectra(ctx context.Context, s Settings, den denoise.Denoiser, ds *data.Dataset, progress func(int), each func(i int, e Explained)) (*Features, error) {
	return measured(den, Spectra.FeatureNames(s), func(den denoise.Denoiser, f *Features) error {
		cfg := s.Estimator
		cfg.KeepVectors = true
		e := &spectrum.Estimator{Denoiser: den, Config: cfg, Seed: s.Seed}
		perImage := len(s.Sigmas) * s.Draws * (cfg.WithDefaults().K + 1) * ds.Dim() * 8
		group := max(1, maxKeptBytes/perImage)
		for start := 0; start < ds.Len(); start += group {
			end := min(start+group, ds.Len())
			sub := &data.Dataset{Name: ds.Name, Shape: ds.Shape, Pixels: ds.Pixels[start*ds.Dim() : end*ds.Dim()]}
			base := start * len(s.Sigmas)
			sp, err := features.Estimate(ctx, e, sub, s.Sigmas, s.Draws, func(n int) {
				if progress != nil {
					progress(base + n)
				}
			})
			if err != nil {
				return err
			}
			f.addSpectra(sp, s)
			for i, perSigma := range sp.Draws {
				ex := Explained{Levels: make([]Level, len(perSigma))}
				for j, draws := range perSigma {
					ex.Levels[j] = explainDraws(draws, ds.Dim())
				}
				each(start+i, ex)
			}
		}
		return nil
	})
}

// ExtractExplained computes the spectra features of ds as Extract does for
// Spectra, with the same rows and NFEs (the eigenvectors are a by-product of
// the estimator, kept instead of dropped), and each image's explanation. It
// reads and writes no cache, since the cache keeps no eigenvectors.
// progress may be nil.
func ExtractExplained(ctx context.Context, s Settings, den denoise.Denoiser, ds *data.Dataset, progress Progress) (*Features, []Explained, error) {
	if progress == nil {
		progress = NoProgress
	}
	update, finish := progress("explain "+ds.Name, Spectra.tasks(s, ds.Len()))
	defer finish()
	out := make([]Explained, ds.Len())
	f, err := explainSpectra(ctx, s, den, ds, update, func(i int, e Explained) { out[i] = e })
	if err != nil {
		return nil, nil, err
	}
	return f, out, nil
}

// MapStats are per-pixel statistics of a set of images' uncertainty maps
// (Level.Map) at each σ: the count, the mean and the sum of squared
// deviations from it, updated one image at a time by Welford's rule and
// merged across chunks by Chan et al.'s pairwise rule, both exact in exact
// arithmetic and stable in floating point.
type MapStats struct {
	N    int
	Mean [][]float64 // [level][pixel]
	M2   [][]float64 // [level][pixel]
}

// add folds one image's maps, one per level, into m.
func (m *MapStats) add(maps [][]float64) {
	if m.N == 0 {
		m.Mean, m.M2 = make([][]float64, len(maps)), make([][]float64, len(maps))
		for j, mp := range maps {
			m.Mean[j], m.M2[j] = make([]float64, len(mp)), make([]float64, len(mp))
		}
	}
	m.N++
	for j, mp := range maps {
		mean, m2 := m.Mean[j], m.M2[j]
		for p, x := range mp {
			d := x - mean[p]
			mean[p] += d / float64(m.N)
			m2[p] += d * (x - mean[p])
		}
	}
}

// merge folds the statistics of another set of images into m.
func (m *MapStats) merge(o *MapStats) {
	if o.N == 0 {
		return
	}
	if m.N == 0 {
		m.N, m.Mean, m.M2 = o.N, o.Mean, o.M2
		return
	}
	n := float64(m.N + o.N)
	for j := range m.Mean {
		for p := range m.Mean[j] {
			d := o.Mean[j][p] - m.Mean[j][p]
			m.Mean[j][p] += d * float64(o.N) / n
			m.M2[j][p] += o.M2[j][p] + d*d*float64(m.N)*float64(o.N)/n
		}
	}
	m.N += o.N
}

// shaped reports whether m holds levels maps of dim pixels.
func (m *MapStats) shaped(levels, dim int) bool {
	if len(m.Mean) != levels || len(m.M2) != levels {
		return false
	}
	for j := range m.Mean {
		if len(m.Mean[j]) != dim || len(m.M2[j]) != dim {
			return false
		}
	}
	return true
}

// SD is the per-pixel sample standard deviation √(M2/(N−1)), 0 for fewer
// than two images.
func (m *MapStats) SD() [][]float64 {
	out := make([][]float64, len(m.M2))
	for j, m2 := range m.M2 {
		out[j] = make([]float64, len(m2))
		if m.N < 2 {
			continue
		}
		for p, v := range m2 {
			out[j][p] = math.Sqrt(math.Max(v, 0) / float64(m.N-1))
		}
	}
	return out
}

// mapChunk is a chunk's spectra features with its map statistics, as
// cached by ExtractMapStats.
type mapChunk struct {
	Features Features
	Stats    MapStats
}

// mapsLabel names ExtractMapStats' cache entries, apart from Extract's,
// whose values hold no map statistics.
const mapsLabel = "spectrum+maps"

// ExtractMapStats computes the spectra features of ds as Extract does for
// Spectra, with the same rows and NFEs, together with the per-pixel
// statistics of the images' uncertainty maps at each σ (for standardising
// explanations against ID images). Chunks are cached like Extract's, under
// keys of their own. progress may be nil.
func ExtractMapStats(ctx context.Context, s Settings, den denoise.Denoiser, modelID string, ds *data.Dataset, cache featcache.Cache, progress Progress) (*Features, *MapStats, error) {
	out := &Features{Names: Spectra.FeatureNames(s)}
	stats := &MapStats{}
	compute := func(c *data.Dataset, update func(int)) (*mapChunk, error) {
		mc := &mapChunk{}
		f, err := explainSpectra(ctx, s, den, c, update, func(_ int, e Explained) {
			maps := make([][]float64, len(e.Levels))
			for j, l := range e.Levels {
				maps[j] = l.Map
			}
			mc.Stats.add(maps)
		})
		if err != nil {
			return nil, err
		}
		mc.Features = *f
		return mc, nil
	}
	add := func(mc *mapChunk) {
		out.add(&mc.Features)
		stats.merge(&mc.Stats)
	}
	whole := func(mc *mapChunk, n int) bool {
		return len(mc.Features.Rows) == n && mc.Stats.N == n && mc.Stats.shaped(len(s.Sigmas), ds.Dim())
	}
	if err := chunked(mapsLabel, Spectra, s, modelID, ds, cache, progress, compute, whole, add); err != nil {
		return nil, nil, err
	}
	if stats.N != ds.Len() {
		return nil, nil, fmt.Errorf("method: map statistics of %d images for %d", stats.N, ds.Len())
	}
	return out, stats, nil
}
