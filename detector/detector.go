package detector

import (
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
// sets thresholds at the given ID acceptance rate (e.g. 0.95).
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
	return d, nil
}

// Score scores one feature row with rule s; higher means more OOD.
func (d *Detector) Score(f []float64, s Score) (float64, error) {
	m := len(d.Mean)
	if len(f) != m {
		return 0, fmt.Errorf("detector: %d features, the detector was fitted on %d (%v)", len(f), m, d.Features)
	}
	if !finite(f) {
		return 0, fmt.Errorf("detector: non-finite feature in %v", f)
	}
	switch s {
	case OneSided:
		z := 0.0
		for j, v := range f {
			z += (v - d.Mean[j]) / d.Std[j]
		}
		return z, nil
	case TwoSided:
		diff := make([]float64, m)
		for j, v := range f {
			if !(v > 0) {
				return 0, fmt.Errorf("detector: feature %s = %v, want positive", d.Features[j], v)
			}
			diff[j] = math.Log(v) - d.LogMean[j]
		}
		q := 0.0
		for j := 0; j < m; j++ {
			for l := 0; l < m; l++ {
				q += diff[j] * d.LogPrec[j*m+l] * diff[l]
			}
		}
		return q, nil
	}
	return 0, fmt.Errorf("detector: unknown score %q", s)
}

// ScoreAll scores every row.
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

// Save writes the detector as JSON.
func (d *Detector) Save(path string) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
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

// Load reads a detector written by Save and checks its consistency.
func Load(path string) (*Detector, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("detector: %w", err)
	}
	var d Detector
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("detector: %s is not a detector file: %w", path, err)
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("detector: %s: %w", path, err)
	}
	return &d, nil
}

// Validate checks that the statistics have consistent dimensions and that
// every score has a threshold.
func (d *Detector) Validate() error {
	m := len(d.Mean)
	if m == 0 || len(d.Std) != m || len(d.LogMean) != m || len(d.LogPrec) != m*m || len(d.Features) != m {
		return fmt.Errorf("inconsistent dimensions")
	}
	for _, s := range Scores {
		if _, ok := d.Thresholds[s]; !ok {
			return fmt.Errorf("no threshold for the %s score", s)
		}
	}
	return nil
}
