// Package gmm is a closed-form denoiser for a Gaussian-mixture prior.
//
// For p(x) = Σ_k π_k N(μ_k, Σ_k) and y = x + σ·n, everything is analytic
// (method.md §4). With Σ_k = U_k diag(s_k) U_kᵀ + s_iso,k (I − U_k U_kᵀ):
//
//	w_k(y) ∝ π_k N(y; μ_k, Σ_k + σ²I)
//	m_k(y) = μ_k + (Σ_k + σ²I)⁻¹Σ_k (y − μ_k)
//	C_k    = σ²(Σ_k + σ²I)⁻¹Σ_k
//	D(y)   = Σ_k w_k m_k,   Cov[x|y] = Σ_k w_k (C_k + m_k m_kᵀ) − D Dᵀ = σ²·∂D/∂y.
//
// Each component keeps its top r principal directions with their own
// variances and one isotropic variance for the rest (probabilistic PCA). That
// is a shrinkage estimate of the class covariance, keeps every evaluation at
// O(d·r) instead of O(d²), and leaves the model exactly Gaussian, so the
// formulas above stay exact for it.
package gmm

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/eigenscore/eigenscore/denoise"
)

// Component is one Gaussian of the mixture.
type Component struct {
	Weight float64   // π_k, the mixing weight
	Mean   []float64 // μ_k, length d
	// Basis holds r orthonormal principal directions as the columns of a
	// d×r matrix, and Var their variances.
	Basis *mat.Dense
	Var   []float64
	// Iso is the variance in every direction orthogonal to Basis.
	Iso float64
}

// Mixture is a Gaussian-mixture prior over images of one shape, and the exact
// MMSE denoiser for it.
type Mixture struct {
	Name       string
	ImageShape denoise.Shape
	Comps      []Component
}

var _ denoise.Denoiser64 = (*Mixture)(nil)

// Shape is the C×H×W shape of an image.
func (m *Mixture) Shape() denoise.Shape { return m.ImageShape }

// Dim is the dimension d of an image.
func (m *Mixture) Dim() int { return m.ImageShape.Dim() }

// Rank is the number of principal directions per component.
func (m *Mixture) Rank() int { _, r := m.Comps[0].Basis.Dims(); return r }

// Denoise evaluates D(y, σ) in float64 and rounds the result to float32.
func (m *Mixture) Denoise(ctx context.Context, x, sigma, out []float32) error {
	if err := denoise.CheckBatch(m.ImageShape, x, sigma, out); err != nil {
		return err
	}
	x64 := make([]float64, len(x))
	for i, v := range x {
		x64[i] = float64(v)
	}
	s64 := make([]float64, len(sigma))
	for i, v := range sigma {
		s64[i] = float64(v)
	}
	o64 := make([]float64, len(out))
	if err := m.Denoise64(ctx, x64, s64, o64); err != nil {
		return err
	}
	for i, v := range o64 {
		out[i] = float32(v)
	}
	return nil
}

// batchStats are the per-component quantities of a batch that both the
// denoiser and the covariance need.
type batchStats struct {
	w [][]float64  // w[n][k], posterior component weights
	z []*mat.Dense // z[k] = (Y − μ_k) U_k, n×r
}

func (m *Mixture) stats(y *mat.Dense, sigma []float64) batchStats {
	n, d := y.Dims()
	K := len(m.Comps)
	r := m.Rank()
	st := batchStats{w: make([][]float64, n), z: make([]*mat.Dense, K)}
	logw := make([][]float64, n)
	for i := range logw {
		logw[i] = make([]float64, K)
	}
	yc := mat.NewDense(n, d, nil)
	for k, c := range m.Comps {
		centre(yc, y, c.Mean)
		z := mat.NewDense(n, r, nil)
		z.Mul(yc, c.Basis)
		st.z[k] = z
		for i := 0; i < n; i++ {
			s2 := sigma[i] * sigma[i]
			row := yc.RawRowView(i)
			zi := z.RawRowView(i)
			total := floats.Dot(row, row)
			inBasis := 0.0
			quad := 0.0
			logdet := 0.0
			for j, v := range c.Var {
				inBasis += zi[j] * zi[j]
				quad += zi[j] * zi[j] / (v + s2)
				logdet += math.Log(v + s2)
			}
			rest := math.Max(total-inBasis, 0)
			quad += rest / (c.Iso + s2)
			logdet += float64(d-r) * math.Log(c.Iso+s2)
			logw[i][k] = math.Log(c.Weight) - 0.5*(quad+logdet+float64(d)*math.Log(2*math.Pi))
		}
	}
	for i := range logw {
		lse := floats.LogSumExp(logw[i])
		w := make([]float64, K)
		for k, l := range logw[i] {
			w[k] = math.Exp(l - lse)
		}
		st.w[i] = w
	}
	return st
}

func centre(dst, y *mat.Dense, mean []float64) {
	n, _ := y.Dims()
	for i := 0; i < n; i++ {
		floats.SubTo(dst.RawRowView(i), y.RawRowView(i), mean)
	}
}

// negligible is the posterior weight below which a component's contribution
// to D is dropped: it changes D by less than float64 resolution of values
// of order one.
const negligible = 1e-17

// Denoise64 evaluates D(y, σ) exactly in float64.
func (m *Mixture) Denoise64(ctx context.Context, x, sigma, out []float64) error {
	if err := denoise.CheckBatch(m.ImageShape, x, sigma, out); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n, d := len(sigma), m.Dim()
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("gmm: input image %d has a non-finite value at offset %d", i/d, i%d)
		}
	}
	y := mat.NewDense(n, d, x)
	st := m.stats(y, sigma)
	for i := range out {
		out[i] = 0
	}
	mk := make([]float64, d)
	for k, c := range m.Comps {
		for i := 0; i < n; i++ {
			w := st.w[i][k]
			if w < negligible {
				continue
			}
			m.componentMean(mk, c, y.RawRowView(i), st.z[k].RawRowView(i), sigma[i])
			floats.AddScaled(out[i*d:(i+1)*d], w, mk)
		}
	}
	return nil
}

// componentMean writes m_k(y) = μ + a_iso (y − μ) + U ((s/(s+σ²) − a_iso) ⊙ z)
// with z = Uᵀ(y − μ) and a_iso = s_iso/(s_iso+σ²).
func (m *Mixture) componentMean(dst []float64, c Component, y, z []float64, sigma float64) {
	s2 := sigma * sigma
	aIso := c.Iso / (c.Iso + s2)
	for j := range dst {
		dst[j] = c.Mean[j] + aIso*(y[j]-c.Mean[j])
	}
	coef := make([]float64, len(c.Var))
	for j, v := range c.Var {
		coef[j] = (v/(v+s2) - aIso) * z[j]
	}
	var u mat.VecDense
	u.MulVec(c.Basis, mat.NewVecDense(len(coef), coef))
	floats.Add(dst, u.RawVector().Data)
}
