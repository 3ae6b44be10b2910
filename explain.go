package eigenscore

import (
	"fmt"
	"math"
	"slices"

	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/method"
)

// Explanation says where in an image, and at which noise level, the model
// cannot explain it: the leading eigenvectors of Cov[x|y] are the
// directions in pixel space along which the model's posterior is most
// uncertain, and their eigenvalues say how uncertain. Score computes them
// anyway; with ScoreOptions.Explain it keeps them, at no extra NFEs.
type Explanation struct {
	Shape  denoise.Shape      `json:"shape"`
	Levels []ExplanationLevel `json:"levels"` // one per σ of the detector, in order
	// Combined is the mean over levels of the standardised maps: where the
	// image is unusually uncertain for the model, across noise levels.
	Combined []float64 `json:"combined"`
	// Caveat, when not empty, says why the eigenvectors are rough: draws
	// that stopped at the iteration cap before meeting the stopping rule,
	// as every draw of the fast preset does (3 iterations, 5 needed).
	Caveat string `json:"caveat,omitempty"`
}

// ExplanationLevel is an image's explanation at one noise level σ.
type ExplanationLevel struct {
	Sigma float64 `json:"sigma"`
	// Values are each draw's top-k eigenvalues λ_1 ≥ … ≥ λ_k of Cov[x|y]
	// (the draws the features are made of, converged ones first).
	Values [][]float64 `json:"eigenvalues"`
	// Vectors are the first draw's k unit eigenvectors, C·H·W values each
	// (channel-major), the directions of Values[0]. Their signs are
	// arbitrary.
	Vectors [][]float64 `json:"eigenvectors"`
	// Map is the per-pixel uncertainty M[p] = Σ_i λ_i·v_i[p]², averaged
	// over draws: the diagonal of the rank-k estimate of Cov[x|y], the
	// posterior variance of pixel p along the k most uncertain directions.
	// It sums to the mean over draws of λ_1+…+λ_k.
	Map []float64 `json:"map"`
	// Standardised is (M[p] − μ[p]) / max(s[p], floor): the map against
	// the mean μ and standard deviation s of the fit images' maps at pixel
	// p (saved in the detector), so that it shows where this image is
	// unusually uncertain rather than where every image is. floor is a
	// tenth of the mean of s over pixels (StandardisedFloor).
	Standardised []float64 `json:"standardised_map"`
	// Converged counts the draws that met the stopping rule, of
	// len(Values).
	Converged int `json:"converged"`
}

// StandardisedFloor is the share of a level's mean ID spread (over pixels)
// below which a pixel's spread is not trusted: where every fit image is
// nearly certain (a constant background), the map's spread is tiny and
// dividing by it would turn estimator noise into large values; with the
// floor no pixel is more than 1/StandardisedFloor = 10 times as sensitive
// as a pixel of average spread.
const StandardisedFloor = 0.1

// Peak is the pixel where Combined is largest: channel, row and column.
func (e *Explanation) Peak() (c, y, x int) {
	best := 0
	for p, v := range e.Combined {
		if v > e.Combined[best] {
			best = p
		}
	}
	hw := e.Shape.H * e.Shape.W
	return best / hw, best % hw / e.Shape.W, best % e.Shape.W
}

// explainStats are the ID statistics of the uncertainty maps in the
// detector file: per σ, the mean and standard deviation over the fit images
// of each pixel's map value. They are kept in float32, ample for display
// statistics, to halve the file's size.
type explainStats struct {
	Sigmas []float64   `json:"sigmas"`
	Mean   [][]float32 `json:"mean"`
	SD     [][]float32 `json:"sd"`
}

func newExplainStats(sigmas []float64, st *method.MapStats) *explainStats {
	to32 := func(v [][]float64) [][]float32 {
		out := make([][]float32, len(v))
		for j, r := range v {
			out[j] = make([]float32, len(r))
			for p, x := range r {
				out[j][p] = float32(x)
			}
		}
		return out
	}
	return &explainStats{Sigmas: slices.Clone(sigmas), Mean: to32(st.Mean), SD: to32(st.SD())}
}

// hasSpectra reports whether a method's features include the spectra, the
// only features with eigenvectors to explain.
func hasSpectra(m method.Method) bool { return slices.Contains(m.Info().Providers, method.Spectra) }

// validateExplain checks the map statistics: present exactly for methods
// with spectra, at the settings' σ, levels × C·H·W finite values, spreads
// non-negative.
func (f *file) validateExplain() error {
	e := f.Explain
	if !hasSpectra(f.Method) {
		if e != nil {
			return fmt.Errorf("explain: method %s has no spectra to explain", f.Method)
		}
		return nil
	}
	if e == nil {
		return fmt.Errorf("explain missing (method %s has spectra)", f.Method)
	}
	if !slices.Equal(e.Sigmas, f.Settings.Sigmas) {
		return fmt.Errorf("explain.sigmas %v differ from settings.sigmas %v", e.Sigmas, f.Settings.Sigmas)
	}
	levels, dim := len(f.Settings.Sigmas), f.Shape.Dim()
	for name, v := range map[string][][]float32{"mean": e.Mean, "sd": e.SD} {
		if len(v) != levels {
			return fmt.Errorf("explain.%s has %d levels, want %d", name, len(v), levels)
		}
		for j, r := range v {
			if len(r) != dim {
				return fmt.Errorf("explain.%s[%d] has %d values, want C·H·W = %d", name, j, len(r), dim)
			}
			for p, x := range r {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					return fmt.Errorf("explain.%s[%d][%d] = %v, want a finite value", name, j, p, x)
				}
				if name == "sd" && x < 0 {
					return fmt.Errorf("explain.sd[%d][%d] = %v, want ≥ 0", j, p, x)
				}
			}
		}
	}
	return nil
}

// explainer standardises maps against a detector's ID statistics.
type explainer struct {
	f      *file
	floors []float64 // per level
}

func (f *file) explainer() *explainer {
	e := &explainer{f: f, floors: make([]float64, len(f.Explain.SD))}
	for j, sd := range f.Explain.SD {
		m := 0.0
		for _, v := range sd {
			m += float64(v) / float64(len(sd))
		}
		// The smallest normal float64 keeps the division defined when
		// every fit image had the same map (a constant denoiser).
		e.floors[j] = math.Max(StandardisedFloor*m, 0x1p-1022)
	}
	return e
}

// explain makes one image's Explanation from the method's.
func (e *explainer) explain(ex method.Explained) *Explanation {
	f := e.f
	dim := f.Shape.Dim()
	out := &Explanation{Shape: f.Shape, Combined: make([]float64, dim)}
	draws, converged := 0, 0
	for j, l := range ex.Levels {
		mean, sd := f.Explain.Mean[j], f.Explain.SD[j]
		z := make([]float64, dim)
		for p, v := range l.Map {
			z[p] = (v - float64(mean[p])) / math.Max(float64(sd[p]), e.floors[j])
			out.Combined[p] += z[p] / float64(len(ex.Levels))
		}
		out.Levels = append(out.Levels, ExplanationLevel{Sigma: f.Settings.Sigmas[j], Values: l.Values, Vectors: l.Vectors,
			Map: l.Map, Standardised: z, Converged: l.Converged})
		draws += len(l.Values)
		converged += l.Converged
	}
	if converged < draws {
		est := f.Settings.Estimator
		out.Caveat = fmt.Sprintf("%d of %d draws stopped at the iteration cap (%d) before meeting the stopping rule", draws-converged, draws, est.MaxIter)
		if est.MaxIter < est.Patience {
			out.Caveat += fmt.Sprintf(", which needs %d iterations: no draw can meet it under these settings", est.Patience)
		}
		out.Caveat += "; the eigenvectors are unconverged subspace-iteration directions, rough one by one (a preset with more iterations, such as default, converges them)"
	}
	return out
}
