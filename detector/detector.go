// Package detector fits the ID statistics of per-image feature rows
// (one-sided: mean and spread; two-sided: a Gaussian on the log-features)
// and scores new rows against them, with thresholds at an ID acceptance
// rate.
package detector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"

	"gonum.org/v1/gonum/mat"

	"github.com/eigenscore/eigenscore/internal/atomicfile"
	"github.com/eigenscore/eigenscore/metrics"
)

// Score names a scoring rule.
type Score string

const (
	// OneSided is the paper's score: Σ_j (f_j − μ_j)/s_j with μ, s the ID
	// mean and standard deviation of feature j. Large spectra score high;
	// spectra smaller than ID score low, however atypical.
	OneSided Score = "one-sided"
	// TwoSided is the squared Mahalanobis distance of the log-features from
	// the ID mean under a shrunk ID covariance (the Gaussian negative
	// log-likelihood up to constants). A spectrum atypically small scores as
	// high as one atypically large.
	TwoSided Score = "two-sided"
)

// Scores lists the rules a Detector computes.
var Scores = []Score{OneSided, TwoSided}

// ParseScore checks a score name.
func ParseScore(s string) (Score, error) {
	for _, v := range Scores {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("detector: unknown score %q, want one-sided or two-sided", s)
}

// Shrinkage is the weight α of the diagonal in the two-sided covariance
// estimate (1−α)·S + α·diag(S). Per-σ log-features are strongly correlated,
// and with a few hundred fit images the sample covariance's small
// eigenvalues are noisy; α = 0.1 bounds its condition number by roughly
// 10× the diagonal's without changing the dominant directions.
const Shrinkage = 0.1

// Detector holds the ID statistics of one feature set.
type Detector struct {
	Features   []string  `json:"features"` // a name per feature column
	Mean       []float64 `json:"mean"`     // one-sided: ID mean
	Std        []float64 `json:"std"`      // one-sided: ID standard deviation
	LogMean    []float64 `json:"log_mean"`
	LogPrec    []float64 `json:"log_precision"` // row-major inverse covariance of the log-features
	Default    Score     `json:"default_score"`
	Acceptance float64   `json:"acceptance"` // ID acceptance rate of the thresholds
	// Thresholds per score: inputs scoring above are flagged OOD. Each is
	// the Acceptance-quantile of the fit set's scores.
	Thresholds map[Score]float64 `json:"thresholds"`
	FitSize    int               `json:"fit_size"`
	// Meta records how features were made (σ, k, draws, denoiser …) so that
	// a saved detector is only applied to matching features.
	Meta map[string]any `json:"meta,omitempty"`
}

// Fit estimates the ID statistics from fit features (one row per image) and
// sets thresholds at the given ID acceptance rate (e.g. 0.95). Every fit
// feature must be finite and positive, and def must be one of Scores. The
// returned detector satisfies Validate, so Save and Load round-trip it.
func Fit(names []string, fit [][]float64, acceptance float64, def Score) (*Detector, error) {
	if len(fit) < 3 {
		return nil, fmt.Errorf("detector: %d fit images, need at least 3", len(fit))
	}
	m := len(fit[0])
	if len(names) != m {
		return nil, fmt.Errorf("detector: %d feature names for %d features", len(names), m)
	}
	if !(acceptance > 0 && acceptance < 1) {
		return nil, fmt.Errorf("detector: acceptance %v, want in (0, 1)", acceptance)
	}
	if _, err := ParseScore(string(def)); err != nil {
		return nil, err
	}
	for i, r := range fit {
		if len(r) != m || !finite(r) {
			return nil, fmt.Errorf("detector: fit row %d has %d values (want %d) or a non-finite one", i, len(r), m)
		}
		for _, v := range r {
			if !(v > 0) {
				return nil, fmt.Errorf("detector: fit row %d has a non-positive feature %v; spectral features must be positive", i, v)
			}
		}
	}
	names = append([]string(nil), names...)
	n := float64(len(fit))
	d := &Detector{Features: names, Mean: make([]float64, m), Std: make([]float64, m), LogMean: make([]float64, m),
		Default: def, Acceptance: acceptance, Thresholds: map[Score]float64{}, FitSize: len(fit)}
	logs := mat.NewDense(len(fit), m, nil)
	for i, r := range fit {
		for j, v := range r {
			d.Mean[j] += v / n
			logs.Set(i, j, math.Log(v))
			d.LogMean[j] += math.Log(v) / n
		}
	}
	cov := mat.NewSymDense(m, nil)
	for i, r := range fit {
		for j := 0; j < m; j++ {
			d.Std[j] += (r[j] - d.Mean[j]) * (r[j] - d.Mean[j]) / (n - 1)
			for l := j; l < m; l++ {
				cov.SetSym(j, l, cov.At(j, l)+(logs.At(i, j)-d.LogMean[j])*(logs.At(i, l)-d.LogMean[l])/(n-1))
			}
		}
	}
	for j := range d.Std {
		d.Std[j] = math.Sqrt(d.Std[j])
		if d.Std[j] == 0 {
			return nil, fmt.Errorf("detector: feature %s is constant on the fit set", names[j])
		}
		for l := j + 1; l < m; l++ {
			cov.SetSym(j, l, (1-Shrinkage)*cov.At(j, l))
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(cov) {
		return nil, fmt.Errorf("detector: ID covariance of the log-features is singular")
	}
	var prec mat.SymDense
	if err := chol.InverseTo(&prec); err != nil {
		return nil, fmt.Errorf("detector: inverting the ID covariance: %w", err)
	}
	d.LogPrec = make([]float64, m*m)
	for j := 0; j < m; j++ {
		for l := 0; l < m; l++ {
			d.LogPrec[j*m+l] = prec.At(j, l)
		}
	}
	for _, s := range Scores {
		scores, err := d.ScoreAll(fit, s)
		if err != nil {
			return nil, err
		}
		d.Thresholds[s] = metrics.Quantile(scores, acceptance)
	}
	// The statistics of finite positive features can still be unusable
	// (a variance overflowing, an inverse too ill-conditioned to factorize,
	// an empty feature name); refuse here rather than write a detector
	// that Load would reject.
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("detector: fitted statistics are unusable: %w", err)
	}
	return d, nil
}

// Score scores one feature row with rule s; higher means more OOD. The row
// must have one finite value per feature of the detector, and for TwoSided
// every value must be positive. On a detector that satisfies Validate,
// Score never returns NaN or ±Inf: a score that is not finite (features so
// far from the fit set that the arithmetic overflows) is an error naming
// the feature values.
func (d *Detector) Score(f []float64, s Score) (float64, error) {
	m := len(d.Mean)
	if len(f) != m {
		return 0, fmt.Errorf("detector: %d features, the detector was fitted on %d (%v)", len(f), m, d.Features)
	}
	if len(d.Std) != m || len(d.LogMean) != m || len(d.LogPrec) != m*m || len(d.Features) != m {
		return 0, fmt.Errorf("detector: inconsistent dimensions, the detector is not valid")
	}
	if !finite(f) {
		return 0, fmt.Errorf("detector: non-finite feature in %v", f)
	}
	var v float64
	switch s {
	case OneSided:
		for j, x := range f {
			v += (x - d.Mean[j]) / d.Std[j]
		}
	case TwoSided:
		diff := make([]float64, m)
		for j, x := range f {
			if !(x > 0) {
				return 0, fmt.Errorf("detector: feature %s = %v, want positive", d.Features[j], x)
			}
			diff[j] = math.Log(x) - d.LogMean[j]
		}
		for j := 0; j < m; j++ {
			for l := 0; l < m; l++ {
				v += diff[j] * d.LogPrec[j*m+l] * diff[l]
			}
		}
	default:
		return 0, fmt.Errorf("detector: unknown score %q", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("detector: %s score of features %v is not finite (%v); they are too far from the fit set", s, f, v)
	}
	return v, nil
}

// ScoreAll scores every row with Score; an error names the row.
func (d *Detector) ScoreAll(rows [][]float64, s Score) ([]float64, error) {
	out := make([]float64, len(rows))
	for i, r := range rows {
		v, err := d.Score(r, s)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}

// Flag reports whether a score exceeds the threshold of rule s.
func (d *Detector) Flag(score float64, s Score) bool { return score > d.Thresholds[s] }

// Save writes the detector as JSON, atomically. It refuses a detector that
// fails Validate, so that every file Save writes is one Load accepts.
func (d *Detector) Save(path string) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("detector: save %s: %w", path, err)
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Errorf("detector: save %s: %w", path, err)
	}
	err = atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("detector: save: %w", err)
	}
	return nil
}

// Load reads a detector file written by Save with Decode; the error names
// the path.
func Load(path string) (*Detector, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("detector: %w", err)
	}
	d, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("detector: %s: %w", path, err)
	}
	return d, nil
}

// Decode parses a detector from JSON as written by Save and validates it.
// It rejects JSON that is malformed, has a field Detector does not know,
// or has anything but white space after the detector object, and
// statistics that fail Validate. An accepted detector scores finite
// features without NaN or ±Inf (see Score). Errors begin with "detector: ".
func Decode(b []byte) (*Detector, error) {
	d, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("detector: %w", err)
	}
	return d, nil
}

// decode is Decode without the package prefix on errors.
func decode(b []byte) (*Detector, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d Detector
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("not a detector file: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("not a detector file: data after the detector object at byte %d", dec.InputOffset())
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// symTol is the relative tolerance of the symmetry check of LogPrec:
// entries (j,l) and (l,j) may differ by symTol·max(|P_jl|, |P_lj|,
// √P_jj·√P_ll). Fit and Save produce an exactly symmetric matrix (the
// inverse comes from a SymDense and JSON round-trips float64 exactly), so
// the tolerance only admits files written by other tools that print about
// 10 or more significant digits; a real asymmetry is far larger. It is
// harmless for scoring because the quadratic form only sees (P+Pᵀ)/2,
// which is the matrix whose positive definiteness is checked. The diagonal
// term keeps the check meaningful for off-diagonal entries near zero, whose
// natural scale is √P_jj·√P_ll (the Cauchy–Schwarz bound).
const symTol = 1e-9

// Validate checks that d is a usable detector: it has m ≥ 1 features with
// non-empty names; Mean, Std and LogMean have m entries and LogPrec m×m,
// all finite; every Std is positive; LogPrec is symmetric (to a relative
// 1e-9) and positive definite; Acceptance is in (0, 1); Default is one of
// Scores; FitSize is at least 3; and Thresholds has a finite entry for each
// of Scores and no other. Errors name the field by its JSON name and are
// not prefixed with "detector: ", since callers wrap them with the file
// they came from.
func (d *Detector) Validate() error {
	if d == nil {
		return fmt.Errorf("no detector")
	}
	m := len(d.Mean)
	if m == 0 || len(d.Std) != m || len(d.LogMean) != m || len(d.LogPrec) != m*m || len(d.Features) != m {
		return fmt.Errorf("inconsistent dimensions: %d features, %d mean, %d std, %d log_mean and %d log_precision entries, want m ≥ 1 of each and m×m log_precision",
			len(d.Features), m, len(d.Std), len(d.LogMean), len(d.LogPrec))
	}
	for j, name := range d.Features {
		if name == "" {
			return fmt.Errorf("features[%d] is empty, want a name", j)
		}
	}
	for _, v := range []struct {
		name string
		x    []float64
	}{{"mean", d.Mean}, {"std", d.Std}, {"log_mean", d.LogMean}, {"log_precision", d.LogPrec}} {
		for j, x := range v.x {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%s[%d] = %v, want finite", v.name, j, x)
			}
		}
	}
	for j, x := range d.Std {
		if !(x > 0) {
			return fmt.Errorf("std[%d] = %v for feature %s, want > 0", j, x, d.Features[j])
		}
	}
	sym := mat.NewSymDense(m, nil)
	for j := 0; j < m; j++ {
		for l := j; l < m; l++ {
			a, b := d.LogPrec[j*m+l], d.LogPrec[l*m+j]
			scale := math.Max(math.Max(math.Abs(a), math.Abs(b)),
				math.Sqrt(math.Abs(d.LogPrec[j*m+j]))*math.Sqrt(math.Abs(d.LogPrec[l*m+l])))
			if math.Abs(a-b) > symTol*scale {
				return fmt.Errorf("log_precision is not symmetric: entry (%d,%d) = %v but (%d,%d) = %v", j, l, a, l, j, b)
			}
			sym.SetSym(j, l, a/2+b/2)
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(sym) {
		return fmt.Errorf("log_precision is not positive definite")
	}
	if !(d.Acceptance > 0 && d.Acceptance < 1) {
		return fmt.Errorf("acceptance = %v, want in (0, 1)", d.Acceptance)
	}
	if _, err := ParseScore(string(d.Default)); err != nil {
		return fmt.Errorf("default_score %q is unknown, want one of %v", d.Default, Scores)
	}
	if d.FitSize < 3 {
		return fmt.Errorf("fit_size = %d, want at least 3", d.FitSize)
	}
	for _, s := range Scores {
		t, ok := d.Thresholds[s]
		if !ok {
			return fmt.Errorf("thresholds has no entry for the %s score", s)
		}
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return fmt.Errorf("thresholds[%s] = %v, want finite", s, t)
		}
	}
	for s := range d.Thresholds {
		if _, err := ParseScore(string(s)); err != nil {
			return fmt.Errorf("thresholds has an entry for the unknown score %q, want only %v", s, Scores)
		}
	}
	return nil
}

func finite(x []float64) bool {
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
