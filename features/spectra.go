package features

import (
	"context"
	"fmt"
	"sort"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/spectrum"
)

// Aggregation reduces an image's draws at one σ to features.
type Aggregation string

const (
	Mean   Aggregation = "mean"   // mean over draws of λ_1+…+λ_k
	Median Aggregation = "median" // median over draws
	All    Aggregation = "all"    // every draw's sum is its own feature
)

// ParseAggregation checks an aggregation name.
func ParseAggregation(s string) (Aggregation, error) {
	switch a := Aggregation(s); a {
	case Mean, Median, All:
		return a, nil
	}
	return "", fmt.Errorf("features: unknown aggregation %q, want mean, median or all", s)
}

// Spectra are the estimated spectra of a set of images at several σ.
type Spectra struct {
	Sigmas []float64
	// Draws[i][j] are image i's draws at Sigmas[j].
	Draws [][][]spectrum.Draw
	// NFE is the total number of denoiser evaluations spent.
	NFE int64
	// NotConverged counts (image, σ) pairs that had fewer converged draws
	// than asked for.
	NotConverged int
}

// Estimate runs the estimator on every image of ds at every σ, draws times.
// progress, if not nil, receives the number of (image, σ) tasks finished.
func Estimate(ctx context.Context, est *spectrum.Estimator, ds *data.Dataset, sigmas []float64, draws int, progress func(done int)) (*Spectra, error) {
	tasks := make([]spectrum.Task, 0, ds.Len()*len(sigmas))
	keys := LevelKeys(ds, len(sigmas))
	for i := 0; i < ds.Len(); i++ {
		for j, s := range sigmas {
			tasks = append(tasks, spectrum.Task{Image: ds.Image(i), Sigma: s, Key: keys[i][j]})
		}
	}
	res, err := est.Run(ctx, tasks, draws, progress)
	if err != nil {
		return nil, err
	}
	sp := &Spectra{Sigmas: sigmas, Draws: make([][][]spectrum.Draw, ds.Len())}
	for i := range sp.Draws {
		sp.Draws[i] = make([][]spectrum.Draw, len(sigmas))
		for j := range sigmas {
			r := res[i*len(sigmas)+j]
			sp.Draws[i][j] = r.Draws
			sp.NFE += r.NFE
			if r.Converged < draws {
				sp.NotConverged++
			}
		}
	}
	return sp, nil
}

// Features returns one feature row per image: per σ, the aggregated sum of
// the top-k eigenvalues.
func (s *Spectra) Features(agg Aggregation) [][]float64 {
	out := make([][]float64, len(s.Draws))
	for i, perSigma := range s.Draws {
		var row []float64
		for _, draws := range perSigma {
			sums := make([]float64, len(draws))
			for d, dr := range draws {
				for _, v := range dr.Values {
					sums[d] += v
				}
			}
			if agg == All {
				row = append(row, sums...)
			} else {
				row = append(row, Aggregate(agg, sums))
			}
		}
		out[i] = row
	}
	return out
}

// Aggregate reduces one image's draws at one σ: their median for Median,
// their mean otherwise.
func Aggregate(agg Aggregation, x []float64) float64 {
	if agg == Median {
		return median(x)
	}
	return mean(x)
}

func mean(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return 0.5 * (s[n/2-1] + s[n/2])
}
