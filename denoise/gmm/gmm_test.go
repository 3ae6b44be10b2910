package gmm_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/eigenscore/eigenscore/denoise/gmm"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/metrics"
)

// The exact covariance must equal σ²·∂D/∂y. Central differences with step h
// have truncation error O(h²·‖D”'‖) and rounding error O(ε/h); h = 1e-4
// keeps both far below the 1e-6 relative tolerance for D of order one.
func TestCovIsJacobian(t *testing.T) {
	m := testenv.FashionMixture(t)
	ds := testenv.Load(t, "fashion-mnist", "test").Head(2)
	d := m.Dim()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sigma := range []float64{0.3, 1.2} {
		for i := 0; i < ds.Len(); i++ {
			y := make([]float64, d)
			for j, v := range ds.Image(i) {
				y[j] = float64(v) + sigma*rng.NormFloat64()
			}
			cov, _ := m.Cov(y, sigma)
			// Check J·u for a few random directions u.
			for probe := 0; probe < 3; probe++ {
				u := make([]float64, d)
				for j := range u {
					u[j] = rng.NormFloat64()
				}
				const h = 1e-4
				plus, minus := make([]float64, d), make([]float64, d)
				for j := range y {
					plus[j], minus[j] = y[j]+h*u[j], y[j]-h*u[j]
				}
				in := append(plus, minus...)
				out := make([]float64, 2*d)
				if err := m.Denoise64(context.Background(), in, []float64{sigma, sigma}, out); err != nil {
					t.Fatal(err)
				}
				var want mat.VecDense
				want.MulVec(cov, mat.NewVecDense(d, u))
				maxErr, scale := 0.0, 0.0
				for j := 0; j < d; j++ {
					fd := sigma * sigma * (out[j] - out[d+j]) / (2 * h)
					maxErr = math.Max(maxErr, math.Abs(fd-want.AtVec(j)))
					scale = math.Max(scale, math.Abs(want.AtVec(j)))
				}
				if maxErr > 1e-6*scale+1e-9 {
					t.Errorf("σ=%v image %d: σ²J·u differs from Cov·u by %.3g (scale %.3g)", sigma, i, maxErr, scale)
				}
			}
		}
	}
}

// MMSE identity: E‖x − D(y)‖² = E tr Cov[x|y] for x from the prior. The
// per-sample difference δ = ‖x − D(y)‖² − tr Cov has mean zero; the test
// allows 4 standard errors of its mean (a false failure has probability
// about 6e-5 under the normal approximation).
func TestMMSEIdentity(t *testing.T) {
	m := testenv.FashionMixture(t)
	d := m.Dim()
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 60
	for _, sigma := range []float64{0.34226, 1.24016} {
		xs := m.Sample(rng, n)
		ys := make([]float64, len(xs))
		for i := range xs {
			ys[i] = xs[i] + sigma*rng.NormFloat64()
		}
		sig := make([]float64, n)
		for i := range sig {
			sig[i] = sigma
		}
		den := make([]float64, len(xs))
		if err := m.Denoise64(context.Background(), ys, sig, den); err != nil {
			t.Fatal(err)
		}
		var deltas []float64
		meanErr, meanTr := 0.0, 0.0
		for i := 0; i < n; i++ {
			e := 0.0
			for j := i * d; j < (i+1)*d; j++ {
				e += (xs[j] - den[j]) * (xs[j] - den[j])
			}
			cov, _ := m.Cov(ys[i*d:(i+1)*d], sigma)
			tr := mat.Trace(cov)
			deltas = append(deltas, e-tr)
			meanErr += e / n
			meanTr += tr / n
		}
		mu, sd := metrics.MeanStd(deltas)
		se := sd / math.Sqrt(n)
		t.Logf("σ=%.3f: E‖x−D‖² = %.4f, E tr Cov = %.4f, diff %.4f ± %.4f (se)", sigma, meanErr, meanTr, mu, se)
		if math.Abs(mu) > 4*se {
			t.Errorf("σ=%v: MMSE %.4f differs from mean posterior trace %.4f by %.2f standard errors", sigma, meanErr, meanTr, math.Abs(mu)/se)
		}
	}
}

func TestSaveLoad(t *testing.T) {
	m := testenv.FashionMixture(t)
	path := filepath.Join(t.TempDir(), "m.gob.gz")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := gmm.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	x := testenv.Load(t, "fashion-mnist", "test").Head(1).Pixels
	a, b := make([]float32, len(x)), make([]float32, len(x))
	ctx := context.Background()
	if err := m.Denoise(ctx, x, []float32{0.5}, a); err != nil {
		t.Fatal(err)
	}
	if err := back.Denoise(ctx, x, []float32{0.5}, b); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("loaded mixture differs at %d: %v vs %v", i, a[i], b[i])
		}
	}
	if _, err := gmm.Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestRejectsBadInput(t *testing.T) {
	m := testenv.FashionMixture(t)
	ctx := context.Background()
	d := m.Dim()
	if err := m.Denoise(ctx, make([]float32, d-1), []float32{1}, make([]float32, d-1)); err == nil {
		t.Error("short input accepted")
	}
	x := make([]float32, d)
	x[5] = float32(math.NaN())
	if err := m.Denoise(ctx, x, []float32{1}, make([]float32, d)); err == nil {
		t.Error("NaN input accepted")
	}
	if err := m.Denoise(ctx, make([]float32, d), []float32{0}, make([]float32, d)); err == nil {
		t.Error("zero sigma accepted")
	}
}
