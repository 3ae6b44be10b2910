package eval

import (
	"fmt"
	"math"

	"github.com/eigenscore/eigenscore/metrics"
)

// Reliability measures, on ID images alone, how much of the spread of the
// per-σ spectral features is between images rather than estimator noise:
// for each level, with s_ir the log eigenvalue sum of image i and draw r,
// R = 1 − (mean_i Var_r s_ir / draws) / Var_i mean_r s_ir, averaged over
// levels. R near 1 means the draws agree and the features rank images
// reliably; a cheaper estimator that keeps R high loses little. Needs at
// least 2 draws; returns NaN otherwise.
func Reliability(sums [][][]float64) float64 {
	if len(sums) < 2 || len(sums[0]) == 0 || len(sums[0][0]) < 2 {
		return math.NaN()
	}
	levels := len(sums[0])
	total := 0.0
	for j := 0; j < levels; j++ {
		means := make([]float64, len(sums))
		within := 0.0
		var draws int
		for i, per := range sums {
			logs := make([]float64, len(per[j]))
			for r, v := range per[j] {
				logs[r] = math.Log(math.Max(v, 1e-300))
			}
			m, sd := metrics.MeanStd(logs)
			means[i] = m
			within += sd * sd / float64(len(sums))
			draws = len(logs)
		}
		_, between := metrics.MeanStd(means)
		total += 1 - within/float64(draws)/(between*between)
	}
	return total / float64(levels)
}

// Agreement measures, on ID images alone, how closely a candidate
// estimator's spectral features follow the reference estimator's on the same
// images: the Spearman rank correlation of their one-sided EigenScores, each
// standardised over these images, s_i = Σ_j (f_ij − mean_j)/sd_j. The
// reference's own estimator noise caps it below 1, equally for every
// candidate, so it orders candidates by how much of the reference's ranking
// they keep. Rows are images, columns noise levels.
func Agreement(cand, ref [][]float64) (float64, error) {
	if len(cand) != len(ref) || len(cand) < 3 {
		return 0, fmt.Errorf("eval: agreement needs the same ≥ 3 images in both (have %d and %d)", len(cand), len(ref))
	}
	return metrics.Spearman(standardisedSum(cand), standardisedSum(ref)), nil
}

func standardisedSum(rows [][]float64) []float64 {
	out := make([]float64, len(rows))
	for j := range rows[0] {
		col := make([]float64, len(rows))
		for i, r := range rows {
			col[i] = r[j]
		}
		m, sd := metrics.MeanStd(col)
		if sd == 0 {
			continue
		}
		for i, v := range col {
			out[i] += (v - m) / sd
		}
	}
	return out
}
