package features

import (
	"context"
	"math"
	"sync"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/denoise/gmm"
)

// gaussian is a one-component mixture in d = 16 with two principal
// directions: D is linear, D(y) = μ + A(y − μ), so every baseline has a
// closed form.
func gaussian() *gmm.Mixture {
	d := 16
	basis := mat.NewDense(d, 2, nil)
	basis.Set(0, 0, 1)
	basis.Set(5, 1, 1)
	mean := make([]float64, d)
	for j := range mean {
		mean[j] = 0.1 * float64(j%3)
	}
	return &gmm.Mixture{Name: "g", ImageShape: denoise.Shape{C: 1, H: 4, W: 4},
		Comps: []gmm.Component{{Weight: 1, Mean: mean, Basis: basis, Var: []float64{2, 0.5}, Iso: 0.05}}}
}

// operator returns A = U diag(s/(s+σ²) − a) Uᵀ + a·I with a = s_iso/(s_iso+σ²).
func operator(m *gmm.Mixture, sigma float64) *mat.Dense {
	c := m.Comps[0]
	d := m.Dim()
	s2 := sigma * sigma
	a := c.Iso / (c.Iso + s2)
	A := mat.NewDense(d, d, nil)
	for i := 0; i < d; i++ {
		A.Set(i, i, a)
	}
	for k, v := range c.Var {
		col := mat.Col(nil, k, c.Basis)
		var outer mat.Dense
		outer.Outer(v/(v+s2)-a, mat.NewVecDense(d, col), mat.NewVecDense(d, col))
		A.Add(A, &outer)
	}
	return A
}

func oneImage(m *gmm.Mixture) *data.Dataset {
	x := make([]float32, m.Dim())
	for j := range x {
		x[j] = float32(0.3 * math.Sin(float64(j)))
	}
	return &data.Dataset{Name: "x", Shape: denoise.Shape{C: 1, H: 4, W: 4}, Pixels: x}
}

// E‖D(x+σn) − x‖² = ‖(A−I)(x−μ)‖² + σ² tr(AᵀA) for fixed x; the mean over
// R draws has variance (2σ⁴ tr((AᵀA)²) + 4σ² ‖Aᵀ(A−I)(x−μ)‖²)/R, the
// variance of a Gaussian quadratic form, and the test allows 4 sd.
func TestDenoisingErrorClosedForm(t *testing.T) {
	m := gaussian()
	ds := oneImage(m)
	const draws = 4000
	for _, sigma := range []float64{0.3, 1.2} {
		got, err := DenoisingError(context.Background(), m, ds, []float64{sigma}, draws, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		A := operator(m, sigma)
		d := m.Dim()
		bias := make([]float64, d)
		for j := range bias {
			bias[j] = float64(ds.Pixels[j]) - m.Comps[0].Mean[j]
		}
		var AmI mat.Dense
		AmI.Sub(A, identity(d))
		var a mat.VecDense
		a.MulVec(&AmI, mat.NewVecDense(d, bias))
		var AtA, AtA2 mat.Dense
		AtA.Mul(A.T(), A)
		AtA2.Mul(&AtA, &AtA)
		var Ata mat.VecDense
		Ata.MulVec(A.T(), &a)
		want := mat.Dot(&a, &a) + sigma*sigma*mat.Trace(&AtA)
		sd := math.Sqrt((2*math.Pow(sigma, 4)*mat.Trace(&AtA2) + 4*sigma*sigma*mat.Dot(&Ata, &Ata)) / draws)
		if diff := math.Abs(got[0][0] - want); diff > 4*sd+1e-5*want {
			t.Errorf("σ=%v: denoising error %.5f, closed form %.5f (sd %.5f)", sigma, got[0][0], want, sd)
		}
	}
}

func identity(d int) *mat.Dense {
	I := mat.NewDense(d, d, nil)
	for i := 0; i < d; i++ {
		I.Set(i, i, 1)
	}
	return I
}

// Hutchinson: for linear D the central difference is exact, so each probe
// gives σ²·vᵀAv with E = σ² tr A and Var = 2σ⁴ Σ_{i≠j} A_ij² (Rademacher).
func TestTraceClosedForm(t *testing.T) {
	m := gaussian()
	ds := oneImage(m)
	const probes = 2000
	sigma := 0.5
	got, err := Trace(context.Background(), m, ds, []float64{sigma}, probes, 1, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	A := operator(m, sigma)
	off := 0.0
	d := m.Dim()
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			if i != j {
				off += A.At(i, j) * A.At(i, j)
			}
		}
	}
	want := sigma * sigma * mat.Trace(A)
	sd := sigma * sigma * math.Sqrt(2*off/probes)
	// float32 inputs bound the difference quotient's rounding to about
	// 1e-7·‖D‖/h relative; 1e-4·want covers it.
	if diff := math.Abs(got[0][0] - want); diff > 4*sd+1e-4*want {
		t.Errorf("trace %.6f, closed form %.6f (sd %.2e)", got[0][0], want, sd)
	}
}

// recorder keeps the inputs a denoiser saw.
type recorder struct {
	denoise.Denoiser
	mu     sync.Mutex
	inputs [][]float32
}

func (r *recorder) Denoise(ctx context.Context, x, sigma, out []float32) error {
	r.mu.Lock()
	d := r.Shape().Dim()
	for i := range sigma {
		r.inputs = append(r.inputs, append([]float32(nil), x[i*d:(i+1)*d]...))
	}
	r.mu.Unlock()
	return r.Denoiser.Denoise(ctx, x, sigma, out)
}

// Score norm: ‖D(y) − y‖/σ² = ‖(A − I)(y − μ)‖/σ² at the y evaluated.
func TestScoreNormClosedForm(t *testing.T) {
	m := gaussian()
	ds := oneImage(m)
	rec := &recorder{Denoiser: m}
	sigma := 0.7
	got, err := ScoreNorm(context.Background(), rec, ds, []float64{sigma}, 1, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := m.Dim()
	A := operator(m, sigma)
	var AmI mat.Dense
	AmI.Sub(A, identity(d))
	yc := make([]float64, d)
	for j, v := range rec.inputs[0] {
		yc[j] = float64(v) - m.Comps[0].Mean[j]
	}
	var r mat.VecDense
	r.MulVec(&AmI, mat.NewVecDense(d, yc))
	want := mat.Norm(&r, 2) / (sigma * sigma)
	if math.Abs(got[0][0]-want) > 1e-5*want {
		t.Errorf("score norm %.6f, closed form %.6f", got[0][0], want)
	}
}

func TestDiffPathCost(t *testing.T) {
	m := gaussian()
	ds := oneImage(m)
	c := denoise.NewCounter(m)
	f, err := DiffPath(context.Background(), c, ds, DiffPathSigmas(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.NFE() != 10 {
		t.Errorf("DiffPath used %d NFEs, want 10", c.NFE())
	}
	for i, v := range f[0] {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("feature %d = %v, want positive", i, v)
		}
	}
	// For this Gaussian, ε(x, σ) = (x − D)/σ = (I − A)(x − μ)/σ, so the
	// first step's ε is known exactly.
	s0 := DiffPathSigmas()[0]
	A := operator(m, s0)
	var AmI mat.Dense
	AmI.Sub(identity(m.Dim()), A)
	xc := make([]float64, m.Dim())
	for j, v := range ds.Pixels {
		xc[j] = float64(v) - m.Comps[0].Mean[j]
	}
	var e mat.VecDense
	e.MulVec(&AmI, mat.NewVecDense(m.Dim(), xc))
	first := mat.Norm(&e, 2) / s0 / math.Sqrt(float64(m.Dim()))
	if f[0][0] < first {
		t.Errorf("Σ‖ε‖ = %v is below its first term %v", f[0][0], first)
	}
}
