package eigenscore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/eigenscore/eigenscore/conformal"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
	"github.com/eigenscore/eigenscore/internal/featcache"
	"github.com/eigenscore/eigenscore/method"
)

// Detector is a detection method fitted on ID images: the settings that
// make an image's features, the ID statistics of those features and the
// threshold above which a score is flagged. It is a value: it holds no
// model, is safe for concurrent use, and is saved and loaded as JSON.
// Detectors come from Fit, Load or Decode; the zero Detector scores nothing.
type Detector struct {
	file file
}

// file is the detector file format.
type file struct {
	Format     string          `json:"format"`
	Version    int             `json:"version"`
	Method     method.Method   `json:"method"`
	Model      ModelRef        `json:"model"`
	Shape      denoise.Shape   `json:"shape"`
	Settings   method.Settings `json:"settings"`
	Acceptance float64         `json:"acceptance"`
	// Parts and Calibration are the method.Fitted: each scored method's
	// statistics and out-of-fold calibration, and the calibration of the
	// detector's own score.
	Parts       []method.Part         `json:"parts"`
	Calibration conformal.Calibration `json:"calibration"`
	// Explain are the fit images' uncertainty-map statistics, for methods
	// whose features include the spectra (see Explanation).
	Explain *explainStats `json:"explain,omitempty"`
}

const (
	fileFormat = "eigenscore-detector"
	// 2: conformal calibrations and combined methods; 3: explain, the ID
	// statistics of the uncertainty maps.
	fileVersion = 3
)

func (f *file) fitted() *method.Fitted {
	return &method.Fitted{Method: f.Method, Parts: f.Parts, Calibration: f.Calibration}
}

// ModelRef names the model a detector was fitted with.
type ModelRef struct {
	Source string `json:"source"` // where it came from (Model.Source)
	ID     string `json:"id"`     // its weights (Model.ID)
}

// Role names of the image sets whose noise keys Fit and Score use (package
// noise): an image's features depend only on its pixels, the seed and
// whether it is being fitted on or scored.
const (
	fitSet   = "fit"
	scoreSet = "score"
)

// Fit computes the features of the ID images with the model, fits the
// method's statistics on all of them and calibrates its score conformally
// on out-of-fold scores (method.Fitted), so that new ID images are flagged
// with probability at most 1 − acceptance. opts may be nil (see Options).
// It needs images of the model's shape with finite pixels, at least
// ⌈1/(1 − acceptance)⌉ − 1 of them (19 at 95%).
func Fit(ctx context.Context, m *Model, images *data.Dataset, opts *Options) (*Detector, error) {
	meth, s, acceptance, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if err := checkImages(m, images, s); err != nil {
		return nil, err
	}
	if need := max(conformal.MinScores(acceptance), 2*method.Folds); images.Len() < need {
		return nil, fmt.Errorf("eigenscore: Fit needs at least %d ID images at %.4g acceptance, have %d", need, acceptance, images.Len())
	}
	named := *images
	named.Name = fitSet
	var progress method.Progress
	var cacheDir string
	if opts != nil {
		progress, cacheDir = opts.Progress, opts.CacheDir
	}
	x, err := extract(ctx, meth, s, m, &named, featcache.Cache{Dir: cacheDir}, progress, fitMaps)
	if err != nil {
		return nil, err
	}
	fitted, err := meth.Fit(x.feats, acceptance)
	if err != nil {
		return nil, fmt.Errorf("eigenscore: %w", err)
	}
	f := file{Format: fileFormat, Version: fileVersion, Method: meth, Model: ModelRef{m.Source(), m.ID()},
		Shape: m.Shape(), Settings: s, Acceptance: acceptance, Parts: fitted.Parts, Calibration: fitted.Calibration}
	if x.stats != nil {
		f.Explain = newExplainStats(s.Sigmas, x.stats)
	}
	return &Detector{f}, nil
}

// extraction says what extract keeps besides the features.
type extraction int

const (
	featuresOnly extraction = iota
	fitMaps                 // the map statistics of the set, for Fit
	explainEach             // every image's explanation, for Score
)

// extracted are the features of a set and, by extraction, the map
// statistics or the explanations that came with the spectra.
type extracted struct {
	feats     map[method.Provider]*method.Features
	stats     *method.MapStats
	explained []method.Explained
}

// extract computes the method's features of ds. The spectra are computed
// the same way whatever the extraction (the same estimator and noise, so
// the same features and NFEs); explanations bypass the cache, which keeps
// no eigenvectors.
func extract(ctx context.Context, meth method.Method, s method.Settings, m *Model, ds *data.Dataset, cache featcache.Cache, progress method.Progress, what extraction) (*extracted, error) {
	x := &extracted{feats: map[method.Provider]*method.Features{}}
	for _, p := range meth.Info().Providers {
		var f *method.Features
		var err error
		switch {
		case p == method.Spectra && what == fitMaps:
			f, x.stats, err = method.ExtractMapStats(ctx, s, m.Denoiser(), m.ID(), ds, cache, progress)
		case p == method.Spectra && what == explainEach:
			f, x.explained, err = method.ExtractExplained(ctx, s, m.Denoiser(), ds, progress)
		default:
			f, err = method.Extract(ctx, p, s, m.Denoiser(), m.ID(), ds, cache, progress)
		}
		if err != nil {
			return nil, fmt.Errorf("eigenscore: %s features: %w", p, err)
		}
		x.feats[p] = f
	}
	return x, nil
}

// checkImages checks that the images fit the model and the settings.
func checkImages(m *Model, images *data.Dataset, s method.Settings) error {
	if images == nil || images.Len() == 0 {
		return fmt.Errorf("eigenscore: no images")
	}
	if err := images.Validate(); err != nil {
		return fmt.Errorf("eigenscore: %w", err)
	}
	if images.Shape != m.Shape() {
		return fmt.Errorf("eigenscore: images of %s are %v, the model takes %v", images.Name, images.Shape, m.Shape())
	}
	if s.Estimator.K > images.Dim() {
		return fmt.Errorf("eigenscore: k = %d exceeds the image dimension %d", s.Estimator.K, images.Dim())
	}
	return nil
}

// Result is one image's outcome.
type Result struct {
	// Score is the method's score; higher is more out-of-distribution.
	Score float64 `json:"score"`
	// PValue is the conformal p-value of Score against the fit images'
	// out-of-fold scores: the share of ID images expected to score as
	// high (see package conformal).
	PValue float64 `json:"p_value"`
	// Flagged reports PValue ≤ 1 − Acceptance() (equivalently, ties aside,
	// Score > Threshold()).
	Flagged bool `json:"flagged"`
	// Parts are the members' scores and p-values of a combined method.
	Parts []method.PartScore `json:"parts,omitempty"`
	// Features are the per-image features behind the score, named by
	// FeatureNames (for EigenScore, the top-k eigenvalue sum of Cov[x|y]
	// at each σ).
	Features []float64 `json:"features"`
	// Explanation says where the model is uncertain about the image, when
	// ScoreOptions.Explain asked for it; nil otherwise.
	Explanation *Explanation `json:"explanation,omitempty"`
}

// ScoreOptions are optional settings of Score that do not change results.
type ScoreOptions struct {
	Progress method.Progress // reports progress, when not nil
	CacheDir string          // keeps per-image features on disk, when not empty
	// Explain fills Result.Explanation, for methods whose features include
	// the spectra. It costs no NFEs: the eigenvectors are those the
	// estimator computes for the features, kept instead of dropped; the
	// scores are the same as without it. The spectra are then computed
	// afresh, not read from CacheDir, which keeps no eigenvectors.
	Explain bool
}

// Score computes the features of the images with m, which must be the model
// the detector was fitted with, and scores them: one Result per image, in
// order. opts may be nil. An image's result depends only on its pixels and
// the detector (seed included), not on the other images. With
// opts.Explain, each Result carries its Explanation; the method must have
// spectra (every eigenscore method and combined does).
func (d *Detector) Score(ctx context.Context, m *Model, images *data.Dataset, opts *ScoreOptions) ([]Result, error) {
	f := &d.file
	if len(f.Parts) == 0 {
		return nil, fmt.Errorf("eigenscore: the detector is empty; get one from Fit, Load or Decode")
	}
	if m.ID() != f.Model.ID {
		return nil, fmt.Errorf("eigenscore: the model is %s but the detector was fitted with %s (%s)", m.ID(), f.Model.ID, f.Model.Source)
	}
	if err := checkImages(m, images, f.Settings); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &ScoreOptions{}
	}
	what := featuresOnly
	if opts.Explain {
		if f.Explain == nil {
			return nil, fmt.Errorf("eigenscore: method %s has no spectra to explain; explanations need a method with eigenscore's features", f.Method)
		}
		what = explainEach
	}
	named := *images
	named.Name = scoreSet
	x, err := extract(ctx, f.Method, f.Settings, m, &named, featcache.Cache{Dir: opts.CacheDir}, opts.Progress, what)
	if err != nil {
		return nil, err
	}
	rows, _, err := f.Method.Join(x.feats)
	if err != nil {
		return nil, fmt.Errorf("eigenscore: %w", err)
	}
	scored, err := f.fitted().Score(x.feats)
	if err != nil {
		return nil, fmt.Errorf("eigenscore: %w", err)
	}
	out := make([]Result, len(rows))
	for i, sc := range scored {
		out[i] = Result{Score: sc.Score, PValue: sc.PValue, Flagged: conformal.Flag(sc.PValue, f.Acceptance), Parts: sc.Parts, Features: rows[i]}
	}
	if x.explained != nil {
		e := f.explainer()
		for i := range out {
			out[i].Explanation = e.explain(x.explained[i])
		}
	}
	return out, nil
}

// Method is the detection method.
func (d *Detector) Method() method.Method { return d.file.Method }

// Model names the model the detector was fitted with; Score needs it.
func (d *Detector) Model() ModelRef { return d.file.Model }

// Threshold is the score above which an image is flagged (ties aside), the
// conformal threshold of the calibration scores.
func (d *Detector) Threshold() float64 {
	t, err := d.file.Calibration.Threshold(d.file.Acceptance)
	if err != nil {
		return math.Inf(1)
	}
	return t
}

// Acceptance is the share of the fit images the threshold accepts.
func (d *Detector) Acceptance() float64 { return d.file.Acceptance }

// FitSize is the number of ID images the detector was fitted on.
func (d *Detector) FitSize() int { return len(d.file.Calibration.Scores) }

// FeatureNames names the columns of Result.Features.
func (d *Detector) FeatureNames() []string { return d.file.Method.FeatureNames(d.file.Settings) }

// Settings are the feature settings the detector computes features with.
func (d *Detector) Settings() method.Settings {
	s := d.file.Settings
	s.Sigmas = slices.Clone(s.Sigmas)
	return s
}

// Shape is the image shape the detector scores.
func (d *Detector) Shape() denoise.Shape { return d.file.Shape }

// WriteTo writes the detector as JSON.
func (d *Detector) WriteTo(w io.Writer) (int64, error) {
	b, err := json.MarshalIndent(&d.file, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("eigenscore: %w", err)
	}
	n, err := w.Write(append(b, '\n'))
	return int64(n), err
}

// Save writes the detector to path atomically: an interrupted Save leaves
// the previous file, never a partial one.
func (d *Detector) Save(path string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := d.WriteTo(w)
		return err
	})
}

// Load reads and validates a detector file written by Save.
func Load(path string) (*Detector, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eigenscore: detector file: %w", err)
	}
	d, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("eigenscore: detector file %s: %w", path, err)
	}
	return d, nil
}

// Decode reads a detector from JSON and validates it: the format and
// version, the method, a model id, the image shape, every setting in range
// (as Options.Validate checks them), finite statistics with positive
// spreads (detector.Validate), feature names that match the method and
// settings, the threshold's acceptance, and the uncertainty-map statistics
// (present exactly for methods with spectra, finite, spreads ≥ 0, levels ×
// C·H·W values). Unknown fields and trailing data are errors.
func Decode(b []byte) (*Detector, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a detector file: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("not a detector file: data after the JSON object")
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &Detector{f}, nil
}

func (f *file) validate() error {
	if f.Format != fileFormat || f.Version != fileVersion {
		return fmt.Errorf("format %q version %d, want %q version %d (refit with this version of eigenscore)", f.Format, f.Version, fileFormat, fileVersion)
	}
	if _, err := method.Parse(string(f.Method)); err != nil {
		return err
	}
	if f.Model.ID == "" {
		return fmt.Errorf("model.id is empty")
	}
	const maxPixels = 1 << 24
	if sh := f.Shape; sh.C < 1 || sh.H < 1 || sh.W < 1 || sh.Dim() > maxPixels || sh.C > maxPixels || sh.H > maxPixels || sh.W > maxPixels {
		return fmt.Errorf("shape %v, want positive dimensions of at most %d values", sh, maxPixels)
	}
	// Save writes every estimator field, so a zero here is damage, not a
	// request for the default: validSettings rejects it.
	if err := f.Settings.Validate(); err != nil {
		return fmt.Errorf("settings.%w", err)
	}
	if f.Settings.Estimator.K > f.Shape.Dim() {
		return fmt.Errorf("settings.estimator.K = %d exceeds the image dimension %d", f.Settings.Estimator.K, f.Shape.Dim())
	}
	if !(f.Acceptance > 0 && f.Acceptance < 1) {
		return fmt.Errorf("acceptance %v, want in (0, 1)", f.Acceptance)
	}
	if err := f.fitted().Validate(); err != nil {
		return err
	}
	for i, p := range f.Parts {
		if want := p.Method.FeatureNames(f.Settings); !slices.Equal(p.Stats.Features, want) {
			return fmt.Errorf("parts[%d].statistics.features %q do not match method %s with these settings (want %q)", i, p.Stats.Features, p.Method, want)
		}
		if f.Acceptance != p.Stats.Acceptance {
			return fmt.Errorf("acceptance %v differs from parts[%d]'s %v", f.Acceptance, i, p.Stats.Acceptance)
		}
	}
	if _, err := f.Calibration.Threshold(f.Acceptance); err != nil {
		return err
	}
	return f.validateExplain()
}
