package eval

import (
	"context"
	"fmt"
	"time"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/conformal"
	"github.com/eigenscore/eigenscore/detector"
	"github.com/eigenscore/eigenscore/internal/featcache"
	"github.com/eigenscore/eigenscore/method"
	"github.com/eigenscore/eigenscore/metrics"
)

// MethodResult is one detector's metrics on the pair.
type MethodResult struct {
	metrics.Report
	CI          map[string]metrics.Interval `json:"ci95,omitempty"`
	NFEPerImage float64                     `json:"nfe_per_image"`
	Seconds     float64                     `json:"seconds"`
	Threshold   float64                     `json:"threshold"`
	// IDAccepted is the fraction of ID test images not flagged (the target
	// is Config.Acceptance); OODFlagged the fraction of OOD test images
	// flagged. Flags are conformal: p-value ≤ 1 − acceptance.
	IDAccepted float64 `json:"id_accepted"`
	OODFlagged float64 `json:"ood_flagged"`
	// IDPValues and OODPValues are the test images' conformal p-values
	// against the fit images' out-of-fold scores (none for the paper
	// protocol's method, whose threshold is in-sample).
	IDPValues  []float64 `json:"id_p_values,omitempty"`
	OODPValues []float64 `json:"ood_p_values,omitempty"`
	UsesOOD    bool      `json:"uses_ood_data"`
	Note       string    `json:"note,omitempty"`
	// Selected records choices made on OOD validation data (paper protocol).
	Selected map[string]any `json:"selected,omitempty"`

	IDScores  []float64 `json:"-"`
	OODScores []float64 `json:"-"`
}

// FeatureAUROC is one feature column's AUROC between ID and OOD test images;
// above 0.5 means the OOD values are larger.
type FeatureAUROC struct {
	Feature string  `json:"feature"`
	AUROC   float64 `json:"auroc"`
}

// Result is what eval writes as JSON.
type Result struct {
	ID           string                         `json:"id"`
	OOD          string                         `json:"ood"`
	Denoiser     string                         `json:"denoiser"`
	Config       Config                         `json:"config"`
	Methods      map[method.Method]MethodResult `json:"methods"`
	PerFeature   []FeatureAUROC                 `json:"per_feature_auroc"`
	NotConverged int                            `json:"not_converged"`
	Seconds      float64                        `json:"seconds"`
	// NFE counts per provider as the model's counter saw them, and per
	// image (fit, ID and OOD images together).
	ProviderNFE map[method.Provider]int64 `json:"provider_nfe"`
	Images      int                       `json:"images"`

	Features map[method.Provider]map[Role]*method.Features `json:"-"`
	// Paper holds the spectra at the paper's 13 levels (paper protocol).
	Paper    map[Role]*method.Features `json:"-"`
	Examples []Example                 `json:"examples,omitempty"`
	Tails    []Tail                    `json:"tails,omitempty"`
}

// PaperMethod names the method the paper protocol adds.
const PaperMethod method.Method = "eigenscore-paper"

// ResultOrder lists every method a result can hold, in table order.
func ResultOrder() []method.Method { return append(method.All(), PaperMethod) }

// Run evaluates the configured methods (all when cfg.Methods is empty) on
// the sets with the model: each provider's features are computed once per
// set, through the cache, and every method is fitted on the fit set.
func Run(ctx context.Context, cfg Config, m *eigenscore.Model, sets *Sets, cache featcache.Cache, progress method.Progress) (*Result, error) {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sets.ID.Shape != m.Shape() {
		return nil, fmt.Errorf("eval: the model takes %v images but %s has %v", m.Shape(), cfg.ID, sets.ID.Shape)
	}
	methods := cfg.Methods
	if len(methods) == 0 {
		methods = method.All()
	}
	res := &Result{ID: cfg.ID, OOD: cfg.OOD, Denoiser: m.ID(), Config: cfg, Methods: map[method.Method]MethodResult{},
		Features: map[method.Provider]map[Role]*method.Features{}, ProviderNFE: map[method.Provider]int64{},
		Images: sets.Fit.Len() + sets.ID.Len() + sets.OOD.Len()}
	seconds := map[method.Provider]float64{}
	s := cfg.Settings()
	for _, meth := range methods {
		for _, p := range meth.Info().Providers {
			if res.Features[p] != nil {
				continue
			}
			f, err := extractRoles(ctx, p, s, m, sets, cache, progress)
			if err != nil {
				return nil, err
			}
			res.Features[p] = f
			for _, rf := range f {
				res.ProviderNFE[p] += rf.NFE
				res.NotConverged += rf.NotConverged
				seconds[p] += rf.Seconds
			}
		}
	}
	idTest, oodTest := seq(sets.ID.Len()), seq(sets.OOD.Len())
	if cfg.Protocol == Paper {
		var err error
		if idTest, oodTest, err = runPaper(ctx, cfg, m, sets, cache, progress, res); err != nil {
			return nil, err
		}
	}
	for _, meth := range methods {
		mr, err := evaluate(cfg, meth, res.Features, idTest, oodTest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", meth, err)
		}
		for _, p := range meth.Info().Providers {
			mr.NFEPerImage += float64(res.ProviderNFE[p]) / float64(res.Images)
			mr.Seconds += seconds[p]
		}
		res.Methods[meth] = *mr
	}
	res.PerFeature = perFeature(res.Features)
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// extractRoles computes a provider's features of the three sets.
func extractRoles(ctx context.Context, p method.Provider, s method.Settings, m *eigenscore.Model, sets *Sets, cache featcache.Cache, progress method.Progress) (map[Role]*method.Features, error) {
	out := map[Role]*method.Features{}
	for _, r := range Roles() {
		f, err := method.Extract(ctx, p, s, m.Denoiser(), m.ID(), sets.ByRole(r), cache, progress)
		if err != nil {
			return nil, fmt.Errorf("%s features of the %s set: %w", p, r, err)
		}
		out[r] = f
	}
	return out, nil
}

// evaluate fits a method on the fit features (statistics and conformal
// calibration, method.Fitted) and scores the test images at the given
// indices.
func evaluate(cfg Config, meth method.Method, feats map[method.Provider]map[Role]*method.Features, idTest, oodTest []int) (*MethodResult, error) {
	byRole := func(r Role) map[method.Provider]*method.Features {
		out := map[method.Provider]*method.Features{}
		for p, f := range feats {
			out[p] = f[r]
		}
		return out
	}
	fitted, err := meth.Fit(byRole(Fit), cfg.Acceptance)
	if err != nil {
		return nil, err
	}
	id, err := fitted.Score(byRole(ID))
	if err != nil {
		return nil, err
	}
	ood, err := fitted.Score(byRole(OOD))
	if err != nil {
		return nil, err
	}
	id, ood = pick(id, idTest), pick(ood, oodTest)
	mr := &MethodResult{Note: meth.Info().Note}
	for _, s := range id {
		mr.IDScores, mr.IDPValues = append(mr.IDScores, s.Score), append(mr.IDPValues, s.PValue)
	}
	for _, s := range ood {
		mr.OODScores, mr.OODPValues = append(mr.OODScores, s.Score), append(mr.OODPValues, s.PValue)
	}
	mr.Report = metrics.Evaluate(mr.IDScores, mr.OODScores)
	if cfg.Bootstrap > 0 {
		mr.CI = metrics.Bootstrap(mr.IDScores, mr.OODScores, cfg.Bootstrap, cfg.Seed)
	}
	if mr.Threshold, err = fitted.Calibration.Threshold(cfg.Acceptance); err != nil {
		return nil, err
	}
	flag := func(p float64) bool { return conformal.Flag(p, cfg.Acceptance) }
	mr.IDAccepted = 1 - fraction(mr.IDPValues, flag)
	mr.OODFlagged = fraction(mr.OODPValues, flag)
	return mr, nil
}

// fraction is the share of xs for which pred holds.
func fraction(xs []float64, pred func(float64) bool) float64 {
	n := 0
	for _, x := range xs {
		if pred(x) {
			n++
		}
	}
	return float64(n) / float64(len(xs))
}

// score evaluates a detector with in-sample thresholds (the paper
// protocol's method) on ID and OOD test rows.
func score(cfg Config, det *detector.Detector, rule detector.Score, id, ood [][]float64) (*MethodResult, error) {
	idS, err := det.ScoreAll(id, rule)
	if err != nil {
		return nil, err
	}
	oodS, err := det.ScoreAll(ood, rule)
	if err != nil {
		return nil, err
	}
	mr := &MethodResult{Report: metrics.Evaluate(idS, oodS), Threshold: det.Thresholds[rule], IDScores: idS, OODScores: oodS}
	if cfg.Bootstrap > 0 {
		mr.CI = metrics.Bootstrap(idS, oodS, cfg.Bootstrap, cfg.Seed)
	}
	above := func(s float64) bool { return s > mr.Threshold }
	mr.IDAccepted = 1 - fraction(idS, above)
	mr.OODFlagged = fraction(oodS, above)
	return mr, nil
}

// perFeature is every feature column's AUROC, providers in a fixed order.
func perFeature(feats map[method.Provider]map[Role]*method.Features) []FeatureAUROC {
	var out []FeatureAUROC
	for _, p := range []method.Provider{method.Spectra, method.DenoisingErrors, method.ScoreNorms, method.Traces, method.DiffPaths} {
		f := feats[p]
		if f == nil {
			continue
		}
		for j, name := range f[ID].Names {
			out = append(out, FeatureAUROC{Feature: name, AUROC: metrics.AUROC(column(f[ID].Rows, j), column(f[OOD].Rows, j))})
		}
	}
	return out
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func column(rows [][]float64, j int) []float64 {
	out := make([]float64, len(rows))
	for i, r := range rows {
		out[i] = r[j]
	}
	return out
}
