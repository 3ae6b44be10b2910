package eigenscore

import (
	"context"
	"math"
	"sort"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/noise"
	"github.com/eigenscore/eigenscore/spectrum"
)

// exactMap returns Σ_{i≤k} λ_i·u_i[p]² for the exact top-k eigenpairs of
// cov, and the eigenvalues λ_k and λ_{k+1}.
func exactMap(t *testing.T, cov *mat.SymDense, k int) ([]float64, float64, float64) {
	var eig mat.EigenSym
	if !eig.Factorize(cov, true) {
		t.Fatal("eigendecomposition failed")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	order := make([]int, len(vals))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	m := make([]float64, len(vals))
	for _, col := range order[:k] {
		for p := range m {
			u := vecs.At(p, col)
			m[p] += vals[col] * u * u
		}
	}
	return m, vals[order[k-1]], vals[order[k]]
}

// The uncertainty map of an explanation is the diagonal of the rank-k
// posterior covariance: on the Gaussian-mixture denoiser, whose Cov[x|y] is
// exact ((*gmm.Mixture).Cov at the draw's noisy image y, rebuilt here from
// package noise), the estimated map matches Σ_{i≤k} λ_i u_i² of the exact
// eigenpairs to within 1% in relative L1 distance, for every image and σ.
//
// The estimator is made to converge (float64, central differences at step
// 1e-4, the eigenvalue-change rule at ValueTol τ = 1e-8, one draw so the
// map is that draw's). Its error is the angle θ left between the estimated
// and the exact top-k subspace: with eigenvalue ratio r = λ_{k+1}/λ_k,
// subspace iteration shrinks θ by r per step, and the norm estimate of λ_k
// then changes by about ½(1−r²)²θ² per step, so the rule stops at
// θ ≈ √(2τ)/(1−r²). A rotation by θ changes Σ_p v[p]² weighting by at most
// 2θ in L1 (‖v̂²−u²‖₁ ≤ ‖v̂−u‖₂‖v̂+u‖₂), for the k-th vector, whose weight
// is λ_k/Σλ ≈ 1/3: the relative L1 error is about (2/3)θ. The smallest gap
// among these draws is 1−r = 0.94% (λ_4/λ_3 = 0.4959/0.5007 at σ = 0.724),
// for which θ ≈ 7.6e-3 and the error ≈ 0.5%, so 1% holds with a margin;
// draws with wider gaps agree to ~3e-5. The standardised map and its
// combination follow from the map and the file's statistics by their
// formulas, checked too.
func TestExplanationMatchesExactCovariance(t *testing.T) {
	mix := testenv.FashionMixture(t)
	m := NewModel(mix, "gmm:fashion-mnist", "test-gmm")
	ctx := context.Background()
	opts := &Options{Estimator: &spectrum.Config{K: 3, Step: 1e-4, MaxIter: 1000, ValueTol: 1e-8, Redraw: 1, Precision: spectrum.Float64},
		Draws: 1, Sigmas: []float64{0.724, 1.24}, Acceptance: 0.8, Seed: 3}
	det, err := Fit(ctx, m, testenv.Load(t, "fashion-mnist", "train").Head(10), opts)
	if err != nil {
		t.Fatal(err)
	}
	test := testenv.Load(t, "fashion-mnist", "test").Head(4)
	res, err := det.Score(ctx, m, test, &ScoreOptions{Explain: true})
	if err != nil {
		t.Fatal(err)
	}
	f := &det.file
	e := f.explainer()
	for i, r := range res {
		for j, l := range r.Explanation.Levels {
			// The noisy image of draw 0 (attempt 0: one draw, no redraws).
			y := make([]float64, test.Dim())
			key := noise.LevelKey(noise.ImageKey(scoreSet, test.Image(i)), j)
			noise.Noisy(y, test.Image(i), l.Sigma, noise.Stream(3, noise.NoisyImage, key, 0))
			cov, _ := mix.Cov(y, l.Sigma)
			want, lk, lk1 := exactMap(t, cov, 3)
			diff, total := 0.0, 0.0
			for p := range want {
				diff += math.Abs(l.Map[p] - want[p])
				total += want[p]
			}
			t.Logf("image %d σ=%.3g: λ_3/λ_4 gap %.2f%%, relative L1 error %.2e, converged %d", i, l.Sigma, 100*(1-lk1/lk), diff/total, l.Converged)
			if diff > 0.01*total {
				t.Errorf("image %d σ=%v: the map is %.3g%% (L1) from the exact diagonal of the rank-3 covariance, want ≤ 1%%", i, l.Sigma, 100*diff/total)
			}
			for p, v := range l.Map {
				z := (v - float64(f.Explain.Mean[j][p])) / math.Max(float64(f.Explain.SD[j][p]), e.floors[j])
				if math.Abs(z-l.Standardised[p]) > 1e-9*(1+math.Abs(z)) {
					t.Fatalf("image %d σ=%v pixel %d: standardised %v, want %v", i, l.Sigma, p, l.Standardised[p], z)
				}
			}
		}
	}
}
