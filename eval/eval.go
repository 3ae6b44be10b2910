// Package eval runs an OOD evaluation end to end: it loads the ID fit split
// (from the training set) and the ID and OOD test images (from the test
// sets), estimates their posterior spectra, fits the detector on the fit
// split only, and reports metrics.
package eval

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/detector"
	"github.com/eigenscore/eigenscore/metrics"
	"github.com/eigenscore/eigenscore/spectrum"
)

// Config describes one evaluation.
type Config struct {
	ID          string               `json:"id"`
	OOD         string               `json:"ood"`
	N           int                  `json:"n"`     // test images per set
	FitN        int                  `json:"fit_n"` // ID training images the detector is fitted on
	Seed        uint64               `json:"seed"`
	Sigmas      []float64            `json:"sigmas"`
	Timesteps   []int                `json:"timesteps,omitempty"`
	Denoiser    string               `json:"denoiser"`
	Estimator   spectrum.Config      `json:"estimator"`
	Draws       int                  `json:"draws"`
	Aggregation detector.Aggregation `json:"aggregation"`
	Acceptance  float64              `json:"acceptance"`
	Bootstrap   int                  `json:"bootstrap"`
}

// MethodResult is one detector's metrics on the pair.
type MethodResult struct {
	metrics.Report
	CI          map[string]metrics.Interval `json:"ci95"`
	NFEPerImage float64                     `json:"nfe_per_image"`
	Threshold   float64                     `json:"threshold"`
	// IDAccepted is the fraction of ID test images scoring at or below the
	// threshold (the target is Config.Acceptance).
	IDAccepted float64 `json:"id_accepted"`
	// OODFlagged is the fraction of OOD test images above the threshold.
	OODFlagged float64 `json:"ood_flagged"`
	Note       string  `json:"note,omitempty"`
}

// Result is what eval writes as JSON.
type Result struct {
	ID      string                  `json:"id"`
	OOD     string                  `json:"ood"`
	Config  Config                  `json:"config"`
	Methods map[string]MethodResult `json:"methods"`
	// Scores per method, for plots: ID test and OOD test.
	Scores       map[string][2][]float64      `json:"-"`
	Spectra      map[string]*detector.Spectra `json:"-"`
	NotConverged int                          `json:"not_converged"`
	Seconds      float64                      `json:"seconds"`
}

// Progress creates a progress reporter for a stage with total steps; it
// returns the function called with the steps done and one that closes it.
type Progress func(stage string, total int) (update func(done int), finish func())

// Sets are the three image sets of an evaluation.
type Sets struct{ Fit, ID, OOD *data.Dataset }

// LoadSets loads the fit split (FitN images drawn from the ID training set)
// and N test images of each of ID and OOD, drawn with the seed.
func LoadSets(dataDir string, cfg Config) (*Sets, error) {
	idSpec, err := data.ParseSpec(cfg.ID)
	if err != nil {
		return nil, err
	}
	oodSpec, err := data.ParseSpec(cfg.OOD)
	if err != nil {
		return nil, err
	}
	fit, err := data.Load(dataDir, idSpec, data.Train)
	if err != nil {
		return nil, err
	}
	id, err := data.Load(dataDir, idSpec, data.Test)
	if err != nil {
		return nil, err
	}
	ood, err := data.Load(dataDir, oodSpec, data.Test)
	if err != nil {
		return nil, err
	}
	s := &Sets{
		Fit: Sample(fit, cfg.FitN, cfg.Seed, "fit"),
		ID:  Sample(id, cfg.N, cfg.Seed, "id"),
		OOD: Sample(ood, cfg.N, cfg.Seed, "ood"),
	}
	for _, ds := range []*data.Dataset{s.Fit, s.ID, s.OOD} {
		if err := ds.Validate(); err != nil {
			return nil, err
		}
	}
	if s.ID.Dim() != s.OOD.Dim() {
		return nil, fmt.Errorf("eval: ID images are %dx%dx%d but OOD images are %dx%dx%d", s.ID.C, s.ID.H, s.ID.W, s.OOD.C, s.OOD.H, s.OOD.W)
	}
	return s, nil
}

// Sample draws n images without replacement (all when n ≤ 0 or n ≥ Len),
// in a seeded random order, naming the subset after its role so that noise
// draws differ between sets.
func Sample(ds *data.Dataset, n int, seed uint64, role string) *data.Dataset {
	if n <= 0 || n > ds.Len() {
		n = ds.Len()
	}
	rng := rand.New(rand.NewPCG(seed, uint64(len(role))*0x51ED+uint64(role[0])))
	idx := rng.Perm(ds.Len())[:n]
	sort.Ints(idx)
	out := ds.Subset(idx)
	out.Name = ds.Name + "/" + role
	return out
}

// Run evaluates EigenScore on the sets with the denoiser.
func Run(ctx context.Context, cfg Config, den denoise.Denoiser, sets *Sets, progress Progress) (*Result, error) {
	start := time.Now()
	shape := den.Shape()
	if shape.C != sets.ID.C || shape.H != sets.ID.H || shape.W != sets.ID.W {
		return nil, fmt.Errorf("eval: the denoiser takes %v images but %s has %dx%dx%d", shape, sets.ID.Name, sets.ID.C, sets.ID.H, sets.ID.W)
	}
	counter := denoise.NewCounter(den)
	est := &spectrum.Estimator{Denoiser: counter, Config: cfg.Estimator, Seed: cfg.Seed}
	res := &Result{ID: cfg.ID, OOD: cfg.OOD, Config: cfg, Methods: map[string]MethodResult{},
		Scores: map[string][2][]float64{}, Spectra: map[string]*detector.Spectra{}}
	var nfe int64
	for _, role := range []struct {
		name string
		ds   *data.Dataset
	}{{"fit", sets.Fit}, {"id", sets.ID}, {"ood", sets.OOD}} {
		update, finish := progress("spectra "+role.name+" ("+role.ds.Name+")", role.ds.Len()*len(cfg.Sigmas))
		before := counter.NFE()
		sp, err := detector.Estimate(ctx, est, role.ds, cfg.Sigmas, cfg.Draws, update)
		finish()
		if err != nil {
			return nil, err
		}
		if sp.NFE != counter.NFE()-before {
			return nil, fmt.Errorf("eval: estimator reported %d NFEs, the denoiser counted %d", sp.NFE, counter.NFE()-before)
		}
		nfe += sp.NFE
		res.NotConverged += sp.NotConverged
		res.Spectra[role.name] = sp
	}
	names := FeatureNames(cfg.Sigmas, cfg.Aggregation, cfg.Draws)
	det, err := detector.Fit(names, res.Spectra["fit"].Features(cfg.Aggregation), cfg.Acceptance, detector.TwoSided)
	if err != nil {
		return nil, err
	}
	perImage := float64(nfe) / float64(sets.Fit.Len()+sets.ID.Len()+sets.OOD.Len())
	idF := res.Spectra["id"].Features(cfg.Aggregation)
	oodF := res.Spectra["ood"].Features(cfg.Aggregation)
	for _, m := range []struct {
		name  string
		score detector.Score
		note  string
	}{
		{"eigenscore", detector.OneSided, "paper: standardised per-σ features, summed (one-sided)"},
		{"eigenscore-2s", detector.TwoSided, "ours: Mahalanobis distance of log-features (two-sided)"},
	} {
		idS, err := det.ScoreAll(idF, m.score)
		if err != nil {
			return nil, err
		}
		oodS, err := det.ScoreAll(oodF, m.score)
		if err != nil {
			return nil, err
		}
		res.Scores[m.name] = [2][]float64{idS, oodS}
		mr := MethodResult{Report: metrics.Evaluate(idS, oodS), NFEPerImage: perImage, Threshold: det.Thresholds[m.score], Note: m.note}
		if cfg.Bootstrap > 0 {
			mr.CI = metrics.Bootstrap(idS, oodS, cfg.Bootstrap, cfg.Seed)
		}
		mr.IDAccepted = 1 - flagged(idS, mr.Threshold)
		mr.OODFlagged = flagged(oodS, mr.Threshold)
		res.Methods[m.name] = mr
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func flagged(scores []float64, thr float64) float64 {
	n := 0
	for _, s := range scores {
		if s > thr {
			n++
		}
	}
	return float64(n) / float64(len(scores))
}

// FeatureNames names the feature columns: "sigma=0.342" per level, with a
// draw suffix for the "all" aggregation.
func FeatureNames(sigmas []float64, agg detector.Aggregation, draws int) []string {
	var out []string
	for _, s := range sigmas {
		if agg == detector.All {
			for d := 0; d < draws; d++ {
				out = append(out, fmt.Sprintf("sigma=%.4g/draw%d", s, d))
			}
			continue
		}
		out = append(out, fmt.Sprintf("sigma=%.4g", s))
	}
	return out
}
