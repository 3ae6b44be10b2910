package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/detector"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
	"github.com/eigenscore/eigenscore/spectrum"
)

// ScoreSetName names every image set scored with a Calibration in noise
// keys, so that an image's score depends only on its pixels and the seed,
// not on the file it came from.
const ScoreSetName = "score"

// Calibration is an EigenScore detector fitted on ID images together with
// everything needed to compute the same features for new images: the
// denoiser (and the hash of its model, checked when scoring), the
// estimator, the levels, the draws and the seed.
type Calibration struct {
	ID          string               `json:"id"`
	Denoiser    string               `json:"denoiser"` // "" for the shipped model of ID, gmm, or a path
	ModelID     string               `json:"model_id"`
	Shape       denoise.Shape        `json:"shape"`
	Estimator   spectrum.Config      `json:"estimator"`
	Draws       int                  `json:"draws"`
	Sigmas      []float64            `json:"sigmas"`
	Aggregation detector.Aggregation `json:"aggregation"`
	Seed        uint64               `json:"seed"`
	Detector    *detector.Detector   `json:"detector"`
}

// Calibrate computes the spectral features of the fit images and fits the
// detector (both scores; the paper's one-sided one by default) with
// thresholds at cfg.Acceptance of them.
func Calibrate(ctx context.Context, cfg Config, den denoise.Denoiser, modelID string, fit *data.Dataset, cache Cache, progress Progress) (*Calibration, error) {
	if fit.Len() < 3 {
		return nil, fmt.Errorf("eval: calibration needs at least 3 ID images, have %d", fit.Len())
	}
	f, err := SpectrumFeatures(ctx, cfg, den, modelID, fit, cache, progress)
	if err != nil {
		return nil, err
	}
	det, err := detector.Fit(f.Names, f.Rows, cfg.Acceptance, detector.OneSided)
	if err != nil {
		return nil, err
	}
	return &Calibration{ID: cfg.ID, Denoiser: cfg.Denoiser, ModelID: modelID, Shape: den.Shape(),
		Estimator: cfg.Estimator, Draws: cfg.Draws, Sigmas: cfg.Sigmas, Aggregation: cfg.Aggregation,
		Seed: cfg.Seed, Detector: det}, nil
}

// Scored are the scores of a set of images.
type Scored struct {
	Features [][]float64 // per image, the detector's features
	Scores   map[detector.Score][]float64
	Flagged  map[detector.Score][]bool // score above the calibrated threshold
	NFE      int64
}

// Score computes the features of ds with the calibrated settings and scores
// them. den must be the calibrated model (its hash is checked as modelID).
func (c *Calibration) Score(ctx context.Context, den denoise.Denoiser, modelID string, ds *data.Dataset, cache Cache, progress Progress) (*Scored, error) {
	if modelID != c.ModelID {
		return nil, fmt.Errorf("eval: the denoiser is %s but the detector was calibrated with %s", modelID, c.ModelID)
	}
	if sh := den.Shape(); ds.C != sh.C || ds.H != sh.H || ds.W != sh.W {
		return nil, fmt.Errorf("eval: images of %s are %dx%dx%d, the detector's model takes %dx%dx%d", ds.Name, ds.C, ds.H, ds.W, sh.C, sh.H, sh.W)
	}
	named := *ds
	named.Name = ScoreSetName
	cfg := Config{Estimator: c.Estimator, Draws: c.Draws, Sigmas: c.Sigmas, Aggregation: c.Aggregation, Seed: c.Seed}
	f, err := SpectrumFeatures(ctx, cfg, den, modelID, &named, cache, progress)
	if err != nil {
		return nil, err
	}
	out := &Scored{Features: f.Rows, Scores: map[detector.Score][]float64{}, Flagged: map[detector.Score][]bool{}, NFE: f.NFE}
	for _, s := range detector.Scores {
		v, err := c.Detector.ScoreAll(f.Rows, s)
		if err != nil {
			return nil, err
		}
		out.Scores[s] = v
		flags := make([]bool, len(v))
		for i, x := range v {
			flags[i] = c.Detector.Flag(x, s)
		}
		out.Flagged[s] = flags
	}
	return out, nil
}

// Save writes the calibration as JSON, atomically.
func (c *Calibration) Save(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// LoadCalibration reads a calibration written by Save and checks that it is
// complete.
func LoadCalibration(path string) (*Calibration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Calibration
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("eval: detector file %s: %w", path, err)
	}
	if c.Detector == nil || c.ModelID == "" || len(c.Sigmas) == 0 || c.Draws < 1 {
		return nil, fmt.Errorf("eval: detector file %s lacks the detector, or the model, levels or draws it was calibrated with", path)
	}
	if err := c.Detector.Validate(); err != nil {
		return nil, fmt.Errorf("eval: detector file %s: %w", path, err)
	}
	want := len(c.Sigmas)
	if c.Aggregation == detector.All {
		want *= c.Draws
	}
	if got := len(c.Detector.Mean); got != want {
		return nil, fmt.Errorf("eval: detector file %s has %d features, its levels and draws make %d", path, got, want)
	}
	c.Estimator = c.Estimator.WithDefaults()
	return &c, nil
}
