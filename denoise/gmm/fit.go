package gmm

import (
	"compress/gzip"
	"encoding/gob"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"

	"gonum.org/v1/gonum/mat"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
)

// FitOptions control Fit.
type FitOptions struct {
	// Rank is the number of principal directions kept per component
	// (default 64).
	Rank int
	// IsoFloor is the smallest variance allowed in any direction (default
	// 1e-4, in [-1,1] pixel units²). It keeps Σ_k invertible where training
	// pixels never vary, such as Fashion-MNIST's borders.
	IsoFloor float64
}

func (o FitOptions) withDefaults() FitOptions {
	if o.Rank <= 0 {
		o.Rank = 64
	}
	if o.IsoFloor <= 0 {
		o.IsoFloor = 1e-4
	}
	return o
}

// Fit fits one Gaussian per class of ds (one for all when ds has no labels):
// the class mean, the top Rank eigenpairs of the sample covariance, and the
// mean of the remaining eigenvalues as the isotropic variance, which is the
// maximum-likelihood probabilistic-PCA estimate. Mixing weights are the
// class frequencies.
func Fit(ds *data.Dataset, opts FitOptions) (*Mixture, error) {
	opts = opts.withDefaults()
	d := ds.Dim()
	if opts.Rank >= d {
		return nil, fmt.Errorf("gmm: rank %d must be below the image dimension %d", opts.Rank, d)
	}
	groups := map[int][]int{}
	for i := 0; i < ds.Len(); i++ {
		label := 0
		if ds.Labels != nil {
			label = ds.Labels[i]
		}
		groups[label] = append(groups[label], i)
	}
	labels := make([]int, 0, len(groups))
	for l := range groups {
		labels = append(labels, l)
	}
	sort.Ints(labels)
	m := &Mixture{Name: ds.Name, ImageShape: ds.Shape}
	for _, l := range labels {
		idx := groups[l]
		if len(idx) < 2 {
			return nil, fmt.Errorf("gmm: class %d of %s has %d image(s), need at least 2", l, ds.Name, len(idx))
		}
		c, err := fitComponent(ds, idx, opts)
		if err != nil {
			return nil, fmt.Errorf("gmm: class %d of %s: %w", l, ds.Name, err)
		}
		c.Weight = float64(len(idx)) / float64(ds.Len())
		m.Comps = append(m.Comps, c)
	}
	return m, nil
}

func fitComponent(ds *data.Dataset, idx []int, opts FitOptions) (Component, error) {
	d := ds.Dim()
	n := len(idx)
	mean := make([]float64, d)
	for _, i := range idx {
		for j, v := range ds.Image(i) {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	xc := mat.NewDense(n, d, nil)
	for r, i := range idx {
		row := xc.RawRowView(r)
		for j, v := range ds.Image(i) {
			row[j] = float64(v) - mean[j]
		}
	}
	var cov mat.SymDense
	cov.SymOuterK(1/float64(n-1), xc.T())
	var eig mat.EigenSym
	if !eig.Factorize(&cov, true) {
		return Component{}, fmt.Errorf("eigendecomposition of the covariance failed")
	}
	vals := eig.Values(nil) // ascending
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	r := opts.Rank
	basis := mat.NewDense(d, r, nil)
	vars := make([]float64, r)
	for j := 0; j < r; j++ {
		src := d - 1 - j
		vars[j] = math.Max(vals[src], opts.IsoFloor)
		for i := 0; i < d; i++ {
			basis.Set(i, j, vecs.At(i, src))
		}
	}
	rest := 0.0
	for j := 0; j < d-r; j++ {
		rest += math.Max(vals[j], 0)
	}
	iso := math.Max(rest/float64(d-r), opts.IsoFloor)
	for j := range vars {
		vars[j] = math.Max(vars[j], iso)
	}
	return Component{Mean: mean, Basis: basis, Var: vars, Iso: iso}, nil
}

// Cov returns the exact posterior covariance Cov[x | y] at noise level sigma
// as a dense d×d matrix, together with D(y).
func (m *Mixture) Cov(y []float64, sigma float64) (*mat.SymDense, []float64) {
	d := m.Dim()
	ym := mat.NewDense(1, d, append([]float64(nil), y...))
	st := m.stats(ym, []float64{sigma})
	s2 := sigma * sigma
	cov := mat.NewSymDense(d, nil)
	mean := make([]float64, d)
	mk := make([]float64, d)
	for k, c := range m.Comps {
		w := st.w[0][k]
		if w < negligible {
			continue
		}
		m.componentMean(mk, c, y, st.z[k].RawRowView(0), sigma)
		// C_k = c_iso I + U diag(e) Uᵀ with e_j = s_j σ²/(s_j+σ²) − c_iso.
		cIso := c.Iso * s2 / (c.Iso + s2)
		_, r := c.Basis.Dims()
		scaled := mat.NewDense(d, r, nil)
		for j, v := range c.Var {
			e := v*s2/(v+s2) - cIso
			col := mat.Col(nil, j, c.Basis)
			for i := range col {
				col[i] *= math.Sqrt(e) // e ≥ 0 because Var ≥ Iso (checked by Fit and Load)
			}
			scaled.SetCol(j, col)
		}
		var ck mat.SymDense
		ck.SymOuterK(1, scaled)
		for i := 0; i < d; i++ {
			ck.SetSym(i, i, ck.At(i, i)+cIso)
		}
		cov.AddSym(cov, scaleSym(&ck, w))
		cov.SymRankOne(cov, w, mat.NewVecDense(d, mk))
		for i := range mean {
			mean[i] += w * mk[i]
		}
	}
	cov.SymRankOne(cov, -1, mat.NewVecDense(d, mean))
	return cov, mean
}

func scaleSym(a *mat.SymDense, f float64) *mat.SymDense {
	var out mat.SymDense
	out.ScaleSym(f, a)
	return &out
}

// Sample draws n images from the mixture prior, image-major.
func (m *Mixture) Sample(rng *rand.Rand, n int) []float64 {
	d := m.Dim()
	out := make([]float64, 0, n*d)
	cum := make([]float64, len(m.Comps))
	acc := 0.0
	for k, c := range m.Comps {
		acc += c.Weight
		cum[k] = acc
	}
	for i := 0; i < n; i++ {
		u := rng.Float64() * acc
		k := sort.SearchFloat64s(cum, u)
		if k >= len(cum) {
			k = len(cum) - 1
		}
		c := m.Comps[k]
		// x = μ + U diag(√s − √s_iso) g₁ + √s_iso g  with g ~ N(0, I_d) and
		// g₁ = Uᵀg, which has covariance U diag(s) Uᵀ + s_iso (I − UUᵀ).
		g := make([]float64, d)
		for j := range g {
			g[j] = rng.NormFloat64()
		}
		var proj mat.VecDense
		proj.MulVec(c.Basis.T(), mat.NewVecDense(d, g))
		for j, v := range c.Var {
			proj.SetVec(j, proj.AtVec(j)*(math.Sqrt(v)-math.Sqrt(c.Iso)))
		}
		var lift mat.VecDense
		lift.MulVec(c.Basis, &proj)
		for j := range g {
			out = append(out, c.Mean[j]+math.Sqrt(c.Iso)*g[j]+lift.AtVec(j))
		}
	}
	return out
}

// fileMagic identifies a saved mixture and its format version.
const fileMagic = "eigenscore-gmm/1"

type fileHeader struct {
	Magic string
	Name  string
	Shape denoise.Shape
	Comps []Component
}

// Save writes the mixture to path (gzip-compressed gob).
func (m *Mixture) Save(path string) error {
	err := atomicfile.Write(path, func(w io.Writer) error {
		gz := gzip.NewWriter(w)
		if err := gob.NewEncoder(gz).Encode(fileHeader{Magic: fileMagic, Name: m.Name, Shape: m.ImageShape, Comps: m.Comps}); err != nil {
			return err
		}
		return gz.Close()
	})
	if err != nil {
		return fmt.Errorf("gmm: save %s: %w", path, err)
	}
	return nil
}

// Load reads a mixture written by Save.
func Load(path string) (*Mixture, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gmm: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("gmm: %s is not a saved mixture: %w", path, err)
	}
	var h fileHeader
	if err := gob.NewDecoder(gz).Decode(&h); err != nil {
		return nil, fmt.Errorf("gmm: %s is not a saved mixture: %w", path, err)
	}
	if h.Magic != fileMagic {
		return nil, fmt.Errorf("gmm: %s has format %q, want %q", path, h.Magic, fileMagic)
	}
	if len(h.Comps) == 0 {
		return nil, fmt.Errorf("gmm: %s has no components", path)
	}
	for k, c := range h.Comps {
		if err := c.check(h.Shape.Dim()); err != nil {
			return nil, fmt.Errorf("gmm: %s component %d: %w", path, k, err)
		}
	}
	return &Mixture{Name: h.Name, ImageShape: h.Shape, Comps: h.Comps}, nil
}

// check validates what the closed forms assume: a positive weight, shapes
// that agree, and principal variances no smaller than the isotropic one.
func (c Component) check(d int) error {
	if c.Basis == nil || len(c.Mean) != d {
		return fmt.Errorf("mean has %d values, want %d", len(c.Mean), d)
	}
	rows, r := c.Basis.Dims()
	if rows != d || r != len(c.Var) || r == 0 {
		return fmt.Errorf("basis is %dx%d with %d variances, want %dx%d", rows, r, len(c.Var), d, len(c.Var))
	}
	if !(c.Weight > 0) || !(c.Iso > 0) {
		return fmt.Errorf("weight %v and isotropic variance %v must be positive", c.Weight, c.Iso)
	}
	for j, v := range c.Var {
		if !(v >= c.Iso) {
			return fmt.Errorf("variance %d is %v, below the isotropic variance %v", j, v, c.Iso)
		}
	}
	return nil
}
