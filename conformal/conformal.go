// Package conformal turns the scores of ID images a detector was not fitted
// on into p-values and thresholds with a finite-sample guarantee.
//
// With calibration scores c_1…c_n of ID images and a new ID image's score s
// exchangeable with them, the conformal p-value
//
//	p(s) = (1 + #{i : c_i ≥ s}) / (n + 1)
//
// satisfies P(p(s) ≤ α) ≤ α for every α, so flagging p(s) ≤ 1 − acceptance
// accepts at least the asked share of ID images, and (without ties) at most
// that plus 1/(n+1). The scores must not come from a detector fitted on the
// same images: in-sample scores are optimistically small (a Mahalanobis
// distance most of all), which is why the thresholds of in-sample quantiles
// rejected fresh ID images more often than asked. Cross-fitting (Folds)
// gives every fit image an out-of-fold score.
package conformal

import (
	"fmt"
	"math"
	"slices"
)

// Calibration holds the calibration scores, sorted ascending.
type Calibration struct {
	Scores []float64 `json:"scores"`
}

// New sorts a copy of the scores into a Calibration; they must be finite.
func New(scores []float64) (Calibration, error) {
	c := Calibration{Scores: slices.Clone(scores)}
	slices.Sort(c.Scores)
	return c, c.Validate()
}

// Validate checks that there are scores, finite and sorted.
func (c Calibration) Validate() error {
	if len(c.Scores) == 0 {
		return fmt.Errorf("conformal: no calibration scores")
	}
	for i, v := range c.Scores {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("conformal: calibration score %d is %v, want finite", i, v)
		}
		if i > 0 && v < c.Scores[i-1] {
			return fmt.Errorf("conformal: calibration scores are not sorted at %d", i)
		}
	}
	return nil
}

// PValue is (1 + #{c_i ≥ s}) / (n + 1).
func (c Calibration) PValue(s float64) float64 {
	n := len(c.Scores)
	below, _ := slices.BinarySearch(c.Scores, s) // scores < s
	return float64(1+n-below) / float64(n+1)
}

// Flag reports whether p ≤ 1 − acceptance.
func Flag(p, acceptance float64) bool { return p <= 1-acceptance+1e-12 }

// MinScores is the fewest calibration scores with which a p-value can
// reach 1 − acceptance, ⌈1/(1 − acceptance)⌉ − 1 (19 for 0.95).
func MinScores(acceptance float64) int {
	return int(math.Ceil(1/(1-acceptance)-1e-9)) - 1
}

// Threshold is the score above which Flag holds (ties aside): the
// (n − m)-th smallest calibration score, m = ⌊(1 − acceptance)(n + 1)⌋ − 1.
func (c Calibration) Threshold(acceptance float64) (float64, error) {
	n := len(c.Scores)
	m := int(math.Floor((1-acceptance)*float64(n+1)+1e-9)) - 1
	if m < 0 {
		return 0, fmt.Errorf("conformal: %d calibration scores cannot flag at %.4g acceptance; need at least %d", n, acceptance, MinScores(acceptance))
	}
	return c.Scores[n-m-1], nil
}

// Folds splits 0…n−1 into k interleaved folds (i mod k), the held-out sets
// of cross-fitting; k is reduced to n when n < k.
func Folds(n, k int) [][]int {
	k = min(k, n)
	out := make([][]int, k)
	for i := range n {
		out[i%k] = append(out[i%k], i)
	}
	return out
}

// Cauchy combines p-values by the Cauchy combination test (Liu & Xie 2020):
// T = mean_i tan((1/2 − p_i)·π). T is heavy-tailed under the null whatever
// the dependence between the p-values, and larger for smaller p-values;
// its own p-value is 1/2 − arctan(T)/π, approximately valid under arbitrary
// dependence for small p. Here T is used as a score and calibrated
// conformally, which makes its p-value exact.
func Cauchy(ps []float64) float64 {
	t := 0.0
	for _, p := range ps {
		t += math.Tan((0.5 - p) * math.Pi)
	}
	return t / float64(len(ps))
}
