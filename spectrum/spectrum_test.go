package spectrum_test

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/spectrum"
)

// exactTop returns the k largest eigenvalues of Cov[x|y] by dense
// eigendecomposition.
func exactTop(t *testing.T, cov *mat.SymDense, k int) []float64 {
	var eig mat.EigenSym
	if !eig.Factorize(cov, false) {
		t.Fatal("eigendecomposition failed")
	}
	v := eig.Values(nil)
	sort.Sort(sort.Reverse(sort.Float64Slice(v)))
	return v[:k]
}

// The estimator must reproduce the exact top-3 eigenvalues of the mixture's
// posterior covariance to 1% for at least 95% of draws (issue acceptance).
//
// Two settings differ from the reference protocol, for reasons this test
// measured: the finite-difference step c = 1 is not small against the
// mixture's curvature at σ ≈ 1.24 (it overestimated λ_1 by 19% on one
// draw), so c = 1e-3; and the 0.98 overlap rule stops while the nearly
// degenerate top eigenvectors still mix (estimates 2–5% low), so the
// eigenvalue-change rule with tolerance 1e-4 is used, whose error bound is
// 1e-4/(2(1−r)) ≤ 0.5% for every eigenvalue ratio r ≤ 0.99 (see
// Config.ValueTol); ratios above 0.99 are within 1% by definition.
func TestEstimatorMatchesExactSpectrum(t *testing.T) {
	m := testenv.FashionMixture(t)
	ds := testenv.Load(t, "fashion-mnist", "test").Head(4)
	for _, prec := range []spectrum.Precision{spectrum.Float64, spectrum.Float32} {
		est := spectrum.Estimator{Denoiser: m, Seed: 7, Config: spectrum.Config{KeepVectors: true, Precision: prec, Step: 1e-3, ValueTol: 1e-4, MaxIter: 1000}}
		var tasks []spectrum.Task
		for i := 0; i < ds.Len(); i++ {
			for j, s := range []float64{0.34226, 0.72359, 1.24016} {
				tasks = append(tasks, spectrum.Task{Image: ds.Image(i), Sigma: s, Key: uint64(10*i + j)})
			}
		}
		res, err := est.Run(context.Background(), tasks, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		total, good := 0, 0
		worst := 0.0
		for ti, r := range res {
			for _, dr := range r.Draws {
				cov, _ := m.Cov(dr.Input, tasks[ti].Sigma)
				want := exactTop(t, cov, 3)
				rel := 0.0
				for i := range want {
					rel = math.Max(rel, math.Abs(dr.Values[i]-want[i])/want[i])
				}
				worst = math.Max(worst, rel)
				if rel > 0.01 && total < 6 {
					t.Logf("σ=%v est %v exact %v conv %v it %d", tasks[ti].Sigma, dr.Values, want, dr.Converged, dr.Iterations)
				}
				total++
				if rel <= 0.01 {
					good++
				}
			}
		}
		t.Logf("precision %d: %d/%d draws within 1%%, worst relative error %.2e", prec, good, total, worst)
		if total != len(tasks)*2 {
			t.Fatalf("got %d draws, want %d", total, len(tasks)*2)
		}
		if float64(good) < 0.95*float64(total) {
			t.Errorf("only %d of %d draws within 1%% of the exact top-3 eigenvalues", good, total)
		}
	}
}

// linear is the exact denoiser of a Gaussian prior N(0, diag(s)) in d
// dimensions: D(y) = s/(s+σ²)·y, so Cov[x|y] = diag(sσ²/(s+σ²)).
type linear struct {
	s     []float64
	noise float64 // standard deviation of noise added to every output
	rng   *rand.Rand
}

func (l *linear) Shape() denoise.Shape { return denoise.Shape{C: 1, H: 1, W: len(l.s)} }

func (l *linear) Denoise(_ context.Context, x, sigma, out []float32) error {
	d := len(l.s)
	for i, s := range sigma {
		s2 := float64(s) * float64(s)
		for j := 0; j < d; j++ {
			v := l.s[j] / (l.s[j] + s2) * float64(x[i*d+j])
			if l.noise > 0 {
				v += l.noise * l.rng.NormFloat64()
			}
			out[i*d+j] = float32(v)
		}
	}
	return nil
}

func separated(d int) []float64 {
	s := make([]float64, d)
	for j := range s {
		s[j] = 0.01
	}
	// At σ = 0.5 the Jacobian's eigenvalues s/(s+σ²) are 0.8, 0.5, 0.2 and
	// 0.04 elsewhere: every ratio λ_{i+1}/λ_i is at most 0.625, so the
	// subspace iteration resolves each eigenvector within the 50 iterations.
	s[3], s[10], s[20] = 1, 0.25, 0.0625
	return s
}

func TestConvergedFlag(t *testing.T) {
	ctx := context.Background()
	img := make([]float32, 50)
	tasks := []spectrum.Task{{Image: img, Sigma: 0.5, Key: 1}}

	// A linear denoiser with a well-separated spectrum converges, to the
	// right eigenvalues and eigenvectors.
	lin := &linear{s: separated(50)}
	est := spectrum.Estimator{Denoiser: lin, Seed: 1, Config: spectrum.Config{KeepVectors: true, ValueTol: 1e-7}}
	res, err := est.Run(ctx, tasks, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, dr := range res[0].Draws {
		if !dr.Converged {
			t.Fatalf("did not converge on a separated spectrum: %+v", dr)
		}
		for i, j := range []int{3, 10, 20} {
			s := lin.s[j]
			want := s * 0.25 / (s + 0.25)
			if math.Abs(dr.Values[i]-want)/want > 1e-3 {
				t.Errorf("λ%d = %v, want %v", i+1, dr.Values[i], want)
			}
			if math.Abs(dr.Vectors[i][j]) < 0.999 {
				t.Errorf("v%d has |v[%d]| = %v, want ≈1", i+1, j, math.Abs(dr.Vectors[i][j]))
			}
		}
	}

	// The reference overlap rule converges here too.
	est.Config.ValueTol = 0
	res, err = est.Run(ctx, tasks, 3, nil)
	if err != nil || res[0].Converged != 3 {
		t.Fatalf("overlap rule: %d of 3 converged (%v)", res[0].Converged, err)
	}

	// Fewer iterations than the patience rule needs: never converged.
	est.Config.MaxIter = 4
	res, err = est.Run(ctx, tasks, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Converged != 0 || res[0].Attempts != 10 {
		t.Errorf("MaxIter 4: converged %d of %d attempts, want 0 of 10 (5 redraws per draw)", res[0].Converged, res[0].Attempts)
	}
	if len(res[0].Draws) != 2 || res[0].Draws[0].Converged {
		t.Errorf("want 2 non-converged draws reported, got %+v", res[0].Draws)
	}

	// A denoiser whose output is dominated by noise has no stable subspace.
	noisy := &linear{s: separated(50), noise: 1, rng: rand.New(rand.NewPCG(1, 1))}
	est = spectrum.Estimator{Denoiser: noisy, Seed: 1}
	res, err = est.Run(ctx, tasks, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Converged != 0 {
		t.Errorf("noisy denoiser converged in %d draws", res[0].Converged)
	}
}

// The same seed gives the same draws whatever the batch size.
func TestDeterministicAcrossBatching(t *testing.T) {
	lin := &linear{s: separated(50)}
	var tasks []spectrum.Task
	for i := 0; i < 5; i++ {
		img := make([]float32, 50)
		img[i] = 1
		tasks = append(tasks, spectrum.Task{Image: img, Sigma: 0.3 + 0.1*float64(i), Key: uint64(i)})
	}
	run := func(batch int) []spectrum.Result {
		est := spectrum.Estimator{Denoiser: lin, Seed: 9, Config: spectrum.Config{Batch: batch}}
		r, err := est.Run(context.Background(), tasks, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := run(1), run(7)
	for i := range a {
		for j := range a[i].Draws {
			for l := range a[i].Draws[j].Values {
				if a[i].Draws[j].Values[l] != b[i].Draws[j].Values[l] {
					t.Fatalf("task %d draw %d differs between batch sizes", i, j)
				}
			}
		}
	}
}

func TestRejectsBadTasks(t *testing.T) {
	lin := &linear{s: separated(50)}
	est := spectrum.Estimator{Denoiser: lin}
	ctx := context.Background()
	if _, err := est.Run(ctx, []spectrum.Task{{Image: make([]float32, 49), Sigma: 1}}, 1, nil); err == nil {
		t.Error("wrong image size accepted")
	}
	if _, err := est.Run(ctx, []spectrum.Task{{Image: make([]float32, 50), Sigma: math.NaN()}}, 1, nil); err == nil {
		t.Error("NaN sigma accepted")
	}
	est.Config.Precision = spectrum.Float64
	if _, err := est.Run(ctx, []spectrum.Task{{Image: make([]float32, 50), Sigma: 1}}, 1, nil); err == nil {
		t.Error("float64 mode accepted a float32-only denoiser")
	}
}

// Forward differences are exact for a linear denoiser, so they follow the
// central ones draw for draw; they cost one NFE per direction and iteration
// plus one for D(y), and give the same draws whatever the batching.
func TestForwardDifferences(t *testing.T) {
	lin := &linear{s: separated(50)}
	var tasks []spectrum.Task
	for i := 0; i < 5; i++ {
		img := make([]float32, 50)
		img[i] = 1
		tasks = append(tasks, spectrum.Task{Image: img, Sigma: 0.5, Key: uint64(i)})
	}
	run := func(forward bool, batch int) []spectrum.Result {
		est := spectrum.Estimator{Denoiser: lin, Seed: 3, Config: spectrum.Config{Forward: forward, Batch: batch, MaxIter: 20, Redraw: 1}}
		r, err := est.Run(context.Background(), tasks, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	central, a, b := run(false, 4), run(true, 1), run(true, 7)
	for ti, r := range a {
		iters := 0
		for j, dr := range r.Draws {
			iters += dr.Iterations
			want := central[ti].Draws[j]
			if dr.Iterations != want.Iterations {
				t.Errorf("task %d draw %d: %d iterations, central %d", ti, j, dr.Iterations, want.Iterations)
			}
			for i, v := range dr.Values {
				// float32 rounding of the two differences' inputs and outputs
				// only: ~1e-7 relative per step, grown over ≤ 20 iterations.
				if math.Abs(v-want.Values[i])/want.Values[i] > 1e-4 {
					t.Errorf("task %d draw %d: λ%d = %v, central %v", ti, j, i+1, v, want.Values[i])
				}
				if v != b[ti].Draws[j].Values[i] {
					t.Fatalf("task %d draw %d differs between batch sizes", ti, j)
				}
			}
		}
		if want := int64(2 + 3*iters); r.NFE != want {
			t.Errorf("task %d: %d NFEs, want 2 draws × (1 + 3 per iteration) = %d", ti, r.NFE, want)
		}
		if want := int64(6 * iters); central[ti].NFE != want {
			t.Errorf("task %d: central %d NFEs, want 6 per iteration = %d", ti, central[ti].NFE, want)
		}
	}
}

// On the mixture, forward differences with a small step reproduce the exact
// top-3 eigenvalues as the central ones do (float64, so that the rounding
// error ε/c ≈ 1e-11 is negligible next to the O(c) = 1e-5 truncation).
//
// ValueTol is 1e-5 because these draws' top eigenvalues nearly coincide
// (λ4/λ3 = 0.992 at σ = 0.342 for one of them): the value rule then stops
// with a relative error of about ValueTol/(2(1−r)) (Config.ValueTol), 0.6%
// at 1e-4, too close to the 1% bound, and 0.06% at 1e-5.
func TestForwardMatchesExactSpectrum(t *testing.T) {
	m := testenv.FashionMixture(t)
	ds := testenv.Load(t, "fashion-mnist", "test").Head(2)
	est := spectrum.Estimator{Denoiser: m, Seed: 5, Config: spectrum.Config{KeepVectors: true, Precision: spectrum.Float64,
		Forward: true, Step: 1e-5, ValueTol: 1e-5, MaxIter: 1000}}
	var tasks []spectrum.Task
	for i := 0; i < ds.Len(); i++ {
		for j, s := range []float64{0.34226, 1.24016} {
			tasks = append(tasks, spectrum.Task{Image: ds.Image(i), Sigma: s, Key: uint64(10*i + j)})
		}
	}
	res, err := est.Run(context.Background(), tasks, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for ti, r := range res {
		dr := r.Draws[0]
		cov, _ := m.Cov(dr.Input, tasks[ti].Sigma)
		want := exactTop(t, cov, 3)
		for i := range want {
			if rel := math.Abs(dr.Values[i]-want[i]) / want[i]; rel > 0.01 {
				t.Errorf("σ=%v: λ%d = %v, exact %v (%.2g relative)", tasks[ti].Sigma, i+1, dr.Values[i], want[i], rel)
			}
		}
	}
}

// With SharedNoise every image at a σ gets the same noise draw, and another
// σ gets another.
func TestSharedNoise(t *testing.T) {
	lin := &linear{s: separated(50)}
	a, b := make([]float32, 50), make([]float32, 50)
	b[7] = 2
	tasks := []spectrum.Task{{Image: a, Sigma: 0.5, Key: 1}, {Image: b, Sigma: 0.5, Key: 2}, {Image: a, Sigma: 0.7, Key: 3}}
	est := spectrum.Estimator{Denoiser: lin, Seed: 3, Config: spectrum.Config{SharedNoise: true, KeepVectors: true, MaxIter: 1, Redraw: 1}}
	res, err := est.Run(context.Background(), tasks, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	noise := func(task, draw int) []float64 {
		y := res[task].Draws[draw].Input
		n := make([]float64, len(y))
		for j := range y {
			n[j] = (y[j] - float64(tasks[task].Image[j])) / tasks[task].Sigma
		}
		return n
	}
	n0, n1, n2, other := noise(0, 0), noise(1, 0), noise(2, 0), noise(0, 1)
	for j := range n0 {
		if math.Abs(n0[j]-n1[j]) > 1e-12 {
			t.Fatalf("images at the same σ got different noise: %v vs %v at %d", n0[j], n1[j], j)
		}
	}
	if n0[0] == n2[0] || n0[0] == other[0] {
		t.Error("another σ or another draw reused the noise")
	}
}

// Rayleigh–Ritz finds the exact eigenvalues of a linear denoiser where the
// column-norm estimates can stall (the reference's sort-after-QR leaves
// some draws at a rotated pair of eigenvectors), and after a few iterations
// its estimates are closer than the norms, since its error is quadratic in
// the subspace angle.
func TestRitz(t *testing.T) {
	lin := &linear{s: separated(50)}
	var tasks []spectrum.Task
	for i := 0; i < 8; i++ {
		img := make([]float32, 50)
		img[i] = 1
		tasks = append(tasks, spectrum.Task{Image: img, Sigma: 0.5, Key: uint64(i)})
	}
	exact := []float64{}
	for _, l := range []int{3, 10, 20} {
		exact = append(exact, lin.s[l]*0.25/(lin.s[l]+0.25))
	}
	meanErr := func(ritz bool, iters int) (float64, int) {
		est := spectrum.Estimator{Denoiser: lin, Seed: 3, Config: spectrum.Config{Ritz: ritz, MaxIter: iters, Redraw: 1, ValueTol: 1e-6}}
		res, err := est.Run(context.Background(), tasks, 4, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum, n, bad := 0.0, 0, 0
		for _, r := range res {
			for _, dr := range r.Draws {
				worst := 0.0
				for i, v := range dr.Values {
					e := math.Abs(v-exact[i]) / exact[i]
					sum += e
					n++
					worst = math.Max(worst, e)
				}
				if worst > 1e-4 {
					bad++
				}
			}
		}
		return sum / float64(n), bad
	}
	if _, bad := meanErr(true, 50); bad != 0 {
		t.Errorf("Ritz: %d of 32 draws off the exact eigenvalues by more than 1e-4", bad)
	}
	_, badNorm := meanErr(false, 50)
	t.Logf("column norms: %d of 32 draws off by more than 1e-4 after 50 iterations", badNorm)
	ritz3, _ := meanErr(true, 3)
	norm3, _ := meanErr(false, 3)
	t.Logf("mean relative error after 3 iterations: Ritz %.3g, norms %.3g", ritz3, norm3)
	if ritz3 >= norm3 {
		t.Errorf("after 3 iterations Ritz errs %.3g, no better than the norms' %.3g", ritz3, norm3)
	}
}
