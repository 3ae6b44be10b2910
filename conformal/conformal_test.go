package conformal

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestPValueAndThreshold(t *testing.T) {
	c, err := New([]float64{3, 1, 2, 5, 4})
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[float64]float64{0: 1, 1: 1, 2.5: 4.0 / 6, 5: 2.0 / 6, 6: 1.0 / 6} {
		if got := c.PValue(s); math.Abs(got-want) > 1e-15 {
			t.Errorf("PValue(%v) = %v, want %v", s, got, want)
		}
	}
	// Flag and Threshold agree on continuous scores.
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{19, 20, 57, 200, 1000} {
		scores := make([]float64, n)
		for i := range scores {
			scores[i] = rng.NormFloat64()
		}
		c, _ := New(scores)
		for _, acc := range []float64{0.9, 0.95, 0.99} {
			thr, err := c.Threshold(acc)
			if n < MinScores(acc) {
				if err == nil {
					t.Errorf("n=%d acceptance %v: a threshold from too few scores", n, acc)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for range 2000 {
				s := 3 * rng.NormFloat64()
				if Flag(c.PValue(s), acc) != (s > thr) {
					t.Fatalf("n=%d acceptance %v: s=%v flagged %v, threshold %v", n, acc, s, Flag(c.PValue(s), acc), thr)
				}
			}
		}
	}
	if MinScores(0.95) != 19 || MinScores(0.9) != 9 {
		t.Errorf("MinScores: %d %d, want 19 and 9", MinScores(0.95), MinScores(0.9))
	}
}

// The guarantee, by simulation: a fresh score exchangeable with n
// calibration scores is flagged with probability in [α − 1/(n+1), α] for
// α = 1 − acceptance. With 40,000 trials the estimate's standard error is
// at most 0.0011 (α = 0.05); the test allows 4 of them.
func TestCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{19, 50, 200} {
		const trials = 40000
		flagged := 0
		scores := make([]float64, n)
		for range trials {
			for i := range scores {
				scores[i] = rng.ExpFloat64()
			}
			c, _ := New(scores)
			if Flag(c.PValue(rng.ExpFloat64()), 0.95) {
				flagged++
			}
		}
		rate := float64(flagged) / trials
		lo := 0.05 - 1/float64(n+1)
		if rate > 0.05+0.0044 || rate < lo-0.0044 {
			t.Errorf("n=%d: flagged %.4f of ID draws, want in [%.4f, 0.05]", n, rate, lo)
		}
	}
}

func TestFoldsPartition(t *testing.T) {
	for _, n := range []int{3, 10, 23} {
		var all []int
		for _, f := range Folds(n, 5) {
			all = append(all, f...)
		}
		slices.Sort(all)
		for i, v := range all {
			if v != i {
				t.Fatalf("n=%d: folds %v do not partition 0..n-1", n, Folds(n, 5))
			}
		}
	}
}

// Identical p-values combine to themselves: T = tan((1/2 − p)π) and
// 1/2 − arctan(T)/π = p.
func TestCauchy(t *testing.T) {
	for _, p := range []float64{0.001, 0.05, 0.5, 0.9} {
		T := Cauchy([]float64{p, p, p})
		if back := 0.5 - math.Atan(T)/math.Pi; math.Abs(back-p) > 1e-12 {
			t.Errorf("p=%v: combined back to %v", p, back)
		}
	}
	if Cauchy([]float64{0.01, 0.5}) <= Cauchy([]float64{0.02, 0.5}) {
		t.Error("a smaller p-value did not raise the statistic")
	}
}
