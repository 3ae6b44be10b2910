package eval

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/detector"
	"github.com/eigenscore/eigenscore/metrics"
)

// MethodResult is one detector's metrics on the pair.
type MethodResult struct {
	metrics.Report
	CI          map[string]metrics.Interval `json:"ci95,omitempty"`
	NFEPerImage float64                     `json:"nfe_per_image"`
	Seconds     float64                     `json:"seconds"`
	Threshold   float64                     `json:"threshold"`
	// IDAccepted is the fraction of ID test images scoring at or below the
	// threshold (the target is Config.Acceptance); OODFlagged the fraction
	// of OOD test images above it.
	IDAccepted float64 `json:"id_accepted"`
	OODFlagged float64 `json:"ood_flagged"`
	UsesOOD    bool    `json:"uses_ood_data"`
	Note       string  `json:"note,omitempty"`
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
	ID           string                  `json:"id"`
	OOD          string                  `json:"ood"`
	Denoiser     string                  `json:"denoiser"`
	Config       Config                  `json:"config"`
	Methods      map[string]MethodResult `json:"methods"`
	PerFeature   []FeatureAUROC          `json:"per_feature_auroc"`
	NotConverged int                     `json:"not_converged"`
	Seconds      float64                 `json:"seconds"`
	// NFE counts per provider as the denoiser's counter saw them, and per
	// image (fit, ID and OOD images together).
	ProviderNFE map[string]int64 `json:"provider_nfe"`
	Images      int              `json:"images"`

	Features map[string]map[string]*Features `json:"-"` // provider → set role → features
	Examples []Example                       `json:"examples,omitempty"`
}

// Run evaluates the configured methods on the sets with the denoiser.
// modelID identifies the denoiser in cache keys.
func Run(ctx context.Context, cfg Config, den denoise.Denoiser, modelID string, sets *Sets, cache Cache, progress Progress) (*Result, error) {
	start := time.Now()
	shape := den.Shape()
	if shape.C != sets.ID.C || shape.H != sets.ID.H || shape.W != sets.ID.W {
		return nil, fmt.Errorf("eval: the denoiser takes %v images but %s has %dx%dx%d", shape, sets.ID.Name, sets.ID.C, sets.ID.H, sets.ID.W)
	}
	dets, err := selectDetectors(cfg.Methods)
	if err != nil {
		return nil, err
	}
	providers := Providers(cfg)
	res := &Result{ID: cfg.ID, OOD: cfg.OOD, Denoiser: modelID, Config: cfg, Methods: map[string]MethodResult{},
		Features: map[string]map[string]*Features{}, ProviderNFE: map[string]int64{},
		Images: sets.Fit.Len() + sets.ID.Len() + sets.OOD.Len()}
	seconds := map[string]float64{}
	roles := []struct {
		name string
		ds   *data.Dataset
	}{{"fit", sets.Fit}, {"id", sets.ID}, {"ood", sets.OOD}}
	needed := []string{}
	for _, d := range dets {
		needed = append(needed, d.Providers...)
	}
	if cfg.Protocol == "paper" {
		needed = append(needed, "spectrum-paper")
	}
	for _, pn := range needed {
		if res.Features[pn] != nil {
			continue
		}
		p := providers[pn]
		res.Features[pn] = map[string]*Features{}
		for _, r := range roles {
			f, err := computeCached(ctx, p, den, modelID, r.ds, cache, progress)
			if err != nil {
				return nil, fmt.Errorf("%s features of %s: %w", pn, r.ds.Name, err)
			}
			clampPositive(f.Rows)
			res.Features[pn][r.name] = f
			res.ProviderNFE[pn] += f.NFE
			res.NotConverged += f.NotConverged
			seconds[pn] += f.Seconds
		}
	}
	// Test images: all of them (deploy), or the test halves (paper).
	idTest, oodTest := seq(sets.ID.Len()), seq(sets.OOD.Len())
	if cfg.Protocol == "paper" {
		var idVal, oodVal []int
		idVal, idTest = halves(sets.ID.Len(), cfg.Seed, "id")
		oodVal, oodTest = halves(sets.OOD.Len(), cfg.Seed, "ood")
		pf := res.Features["spectrum-paper"]
		a, b, agg, valAUROC := paperSelect(cfg, pf["fit"].Sums, pick3(pf["id"].Sums, idVal), pick3(pf["ood"].Sums, oodVal))
		paperSig := PaperSigmas()
		names := FeatureNames("eig", paperSig[a:b+1], agg, 1)
		d := Detector{Name: PaperMethod, Score: detector.OneSided, UsesOOD: true,
			Note: "paper protocol: timestep window and aggregation chosen by AUROC on OOD validation data"}
		mr, err := score(cfg, d, names, window(pf["fit"].Sums, a, b, agg), window(pick3(pf["id"].Sums, idTest), a, b, agg), window(pick3(pf["ood"].Sums, oodTest), a, b, agg))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", PaperMethod, err)
		}
		mr.NFEPerImage = float64(res.ProviderNFE["spectrum-paper"]) / float64(res.Images)
		mr.Seconds = seconds["spectrum-paper"]
		mr.Selected = map[string]any{"timesteps": [2]int{100 + 50*a, 100 + 50*b}, "aggregation": agg, "validation_auroc": valAUROC,
			"validation_images": map[string]int{"id": len(idVal), "ood": len(oodVal)}}
		res.Methods[d.Name] = *mr
	}
	for _, d := range dets {
		var fit, id, ood []*Features
		var nfe int64
		secs := 0.0
		for _, pn := range d.Providers {
			f, i, o := res.Features[pn]["fit"], res.Features[pn]["id"], res.Features[pn]["ood"]
			if d.Collapse[pn] {
				f, i, o = collapse(f, pn), collapse(i, pn), collapse(o, pn)
			}
			fit, id, ood = append(fit, f), append(id, i), append(ood, o)
			nfe += res.ProviderNFE[pn]
			secs += seconds[pn]
		}
		fitRows, names := join(fit)
		idRows, _ := join(id)
		oodRows, _ := join(ood)
		idRows, oodRows = pick(idRows, idTest), pick(oodRows, oodTest)
		mr, err := score(cfg, d, names, fitRows, idRows, oodRows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Name, err)
		}
		mr.NFEPerImage = float64(nfe) / float64(res.Images)
		mr.Seconds = secs
		res.Methods[d.Name] = *mr
	}
	for _, pn := range []string{"spectrum", "recon", "scorenorm", "trace", "diffpath"} {
		f := res.Features[pn]
		if f == nil {
			continue
		}
		for j, name := range f["id"].Names {
			res.PerFeature = append(res.PerFeature, FeatureAUROC{Feature: name, AUROC: metrics.AUROC(column(f["id"].Rows, j), column(f["ood"].Rows, j))})
		}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func pick3(x [][][]float64, idx []int) [][][]float64 {
	out := make([][][]float64, len(idx))
	for i, j := range idx {
		out[i] = x[j]
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

func selectDetectors(names []string) ([]Detector, error) {
	if len(names) == 0 {
		return Detectors, nil
	}
	var out []Detector
	for _, n := range names {
		found := false
		for _, d := range Detectors {
			if d.Name == n {
				out = append(out, d)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("eval: unknown method %q; known: %v", n, MethodNames())
		}
	}
	return out, nil
}

// MethodNames lists the methods in table order.
func MethodNames() []string {
	var out []string
	for _, d := range Detectors {
		out = append(out, d.Name)
	}
	return out
}

// PaperMethod names the method the paper protocol adds.
const PaperMethod = "eigenscore-paper"

// ResultOrder lists every method a result can hold, in table order.
func ResultOrder() []string { return append(MethodNames(), PaperMethod) }

// score fits the detector on the fit rows and evaluates it on the test rows.
func score(cfg Config, d Detector, names []string, fit, id, ood [][]float64) (*MethodResult, error) {
	det, err := detector.Fit(names, fit, cfg.Acceptance, d.Score)
	if err != nil {
		return nil, err
	}
	idS, err := det.ScoreAll(id, d.Score)
	if err != nil {
		return nil, err
	}
	oodS, err := det.ScoreAll(ood, d.Score)
	if err != nil {
		return nil, err
	}
	mr := &MethodResult{Report: metrics.Evaluate(idS, oodS), Threshold: det.Thresholds[d.Score], Note: d.Note,
		UsesOOD: d.UsesOOD, IDScores: idS, OODScores: oodS}
	if cfg.Bootstrap > 0 {
		mr.CI = metrics.Bootstrap(idS, oodS, cfg.Bootstrap, cfg.Seed)
	}
	mr.IDAccepted = 1 - flagged(idS, mr.Threshold)
	mr.OODFlagged = flagged(oodS, mr.Threshold)
	return mr, nil
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

// computeCached computes a provider's features chunk by chunk, loading
// chunks already in the cache. The NFE count is what the denoiser's counter
// saw for chunks computed now and what it saw when cached chunks were made.
func computeCached(ctx context.Context, p *Provider, den denoise.Denoiser, modelID string, ds *data.Dataset, cache Cache, progress Progress) (*Features, error) {
	total := p.tasks(ds.Len())
	update, finish := progress(p.Name+" "+ds.Name, total)
	defer finish()
	out := &Features{}
	done := 0
	hits := 0
	for _, c := range chunks(ds) {
		key := Key(p.Name, p.Params, modelID, ds.Name, c.ds.Pixels)
		var f Features
		if cache.Load(key, &f) && len(f.Rows) == c.ds.Len() {
			hits++
		} else {
			counter := denoise.NewCounter(den)
			t0 := time.Now()
			base := done
			got, err := p.compute(ctx, counter, c.ds, func(n int) { update(base + n) })
			if err != nil {
				return nil, err
			}
			got.NFE = counter.NFE()
			got.Seconds = time.Since(t0).Seconds()
			f = *got
			if err := cache.Store(key, &f); err != nil {
				slog.Warn("feature cache write failed", "err", err)
			}
		}
		done += p.tasks(c.ds.Len())
		update(done)
		out.Rows = append(out.Rows, f.Rows...)
		out.Eigen = append(out.Eigen, f.Eigen...)
		out.Sums = append(out.Sums, f.Sums...)
		out.Names = f.Names
		out.NFE += f.NFE
		out.Seconds += f.Seconds
		out.NotConverged += f.NotConverged
	}
	if hits > 0 {
		slog.Debug("feature cache", "provider", p.Name, "set", ds.Name, "chunks_cached", hits)
	}
	return out, nil
}

// SpectrumFeatures computes the spectral features of ds with cfg's estimator,
// σ levels and draws, chunk by chunk through the cache like Run.
func SpectrumFeatures(ctx context.Context, cfg Config, den denoise.Denoiser, modelID string, ds *data.Dataset, cache Cache, progress Progress) (*Features, error) {
	return computeCached(ctx, Providers(cfg)["spectrum"], den, modelID, ds, cache, progress)
}
