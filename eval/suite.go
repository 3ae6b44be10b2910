package eval

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/internal/featcache"
	"github.com/eigenscore/eigenscore/method"
	"github.com/eigenscore/eigenscore/noise"
	"github.com/eigenscore/eigenscore/spectrum"
)

// Pair is one ID/OOD comparison of a suite.
type Pair struct{ ID, OOD string }

// Suites returns the named sets of pairs `eval --suite` runs. Each pair
// uses the denoiser trained on its ID data unless one is forced.
func Suites() map[string][]Pair {
	return map[string][]Pair{"grayscale": {
		{"fashion-mnist", "mnist"},
		{"mnist", "fashion-mnist"},
		{"fashion-mnist:0-4", "fashion-mnist:5-9"},
		{"fashion-mnist", "uniform-noise"},
		{"fashion-mnist", "constant"},
		{"fashion-mnist", "fashion-mnist@invert"},
		{"fashion-mnist", "fashion-mnist@vflip"},
	}, "rgb": {
		// 3×32×32 colour sets of scripts/setup-rgb.sh (docs/data-rgb.md):
		// clip art (ID); emoji from two other sources and styles (near
		// OOD); photo and texture crops (far OOD); the synthetic shifts.
		{"clipart", "emoji"},
		{"clipart", "emoji-noto"},
		{"clipart", "photos"},
		{"clipart", "textures"},
		{"clipart", "uniform-noise"},
		{"clipart", "constant"},
		{"clipart", "clipart@invert"},
		{"clipart", "clipart@vflip"},
	}}
}

// SuiteNames lists the suites.
func SuiteNames() []string { return slices.Sorted(maps.Keys(Suites())) }

// Opener opens the model for an ID dataset; the suite closes it after the
// pair.
type Opener func(idSpec string) (*eigenscore.Model, error)

// SuiteResult is what `eval --suite` writes as JSON.
type SuiteResult struct {
	Suite    string    `json:"suite"`
	Protocol Protocol  `json:"protocol"`
	Pairs    []*Result `json:"pairs"`
	// MeanAUROC is each method's AUROC averaged over the pairs.
	MeanAUROC map[method.Method]float64 `json:"mean_auroc"`
}

// RunSuite evaluates every pair of the suite with cfg's settings (cfg.ID and
// cfg.OOD are replaced per pair).
func RunSuite(ctx context.Context, name string, cfg Config, dataDir string, open Opener, cache featcache.Cache, progress method.Progress) (*SuiteResult, error) {
	pairs, ok := Suites()[name]
	if !ok {
		return nil, fmt.Errorf("eval: unknown suite %q, want one of %s", name, strings.Join(SuiteNames(), ", "))
	}
	out := &SuiteResult{Suite: name, Protocol: cfg.Protocol, MeanAUROC: map[method.Method]float64{}}
	for _, p := range pairs {
		c := cfg
		c.ID, c.OOD = p.ID, p.OOD
		if err := c.CheckData(); err != nil {
			return nil, fmt.Errorf("pair %s → %s: %w", p.ID, p.OOD, err)
		}
		m, err := open(p.ID)
		if err != nil {
			return nil, fmt.Errorf("pair %s → %s: %w", p.ID, p.OOD, err)
		}
		c.Denoiser = m.Source()
		sets, err := LoadSets(dataDir, c, m.Shape())
		var res *Result
		if err == nil {
			res, err = Run(ctx, c, m, sets, cache, progress)
		}
		if err == nil && c.Examples > 0 {
			res.Examples, err = Examples(ctx, c, m.Denoiser(), sets)
		}
		if err == nil && c.Tails > 0 {
			res.Tails, err = ExplainTails(ctx, c, m, sets, res, c.Tails)
		}
		m.Close()
		if err != nil {
			return nil, fmt.Errorf("pair %s → %s: %w", p.ID, p.OOD, err)
		}
		out.Pairs = append(out.Pairs, res)
	}
	for _, r := range out.Pairs {
		for m, mr := range r.Methods {
			out.MeanAUROC[m] += mr.AUROC / float64(len(out.Pairs))
		}
	}
	return out, nil
}

// Example is an input with its estimated top posterior eigenvectors.
type Example struct {
	Role          Role    `json:"role"` // ID or OOD
	Index         int     `json:"index"`
	Sigma         float64 `json:"sigma"`
	denoise.Shape `json:"-"`
	Image         []float32   `json:"-"`
	Vectors       [][]float64 `json:"-"`
	Values        []float64   `json:"values"`
}

// Examples estimates, for the first cfg.Examples ID and OOD test images, the
// top eigenvectors at the middle noise level of cfg.Sigmas (one draw), for
// the report's pictures.
func Examples(ctx context.Context, cfg Config, den denoise.Denoiser, sets *Sets) ([]Example, error) {
	sigma := cfg.Sigmas[len(cfg.Sigmas)/2]
	// The pictures show the top three eigenvectors whatever the preset, with
	// the reference iteration budget, since a cheap preset may estimate one.
	ec := cfg.Estimator
	ec.K, ec.MaxIter, ec.KeepVectors = max(ec.K, 3), max(ec.MaxIter, 50), true
	est := &spectrum.Estimator{Denoiser: den, Config: ec, Seed: cfg.Seed}
	var tasks []spectrum.Task
	var ex []Example
	for _, r := range []Role{ID, OOD} {
		ds := sets.ByRole(r)
		for i := 0; i < min(cfg.Examples, ds.Len()); i++ {
			key := noise.LevelKey(noise.ImageKey(ds.Name, ds.Image(i)), 0)
			tasks = append(tasks, spectrum.Task{Image: ds.Image(i), Sigma: sigma, Key: key})
			ex = append(ex, Example{Role: r, Index: i, Sigma: sigma, Shape: ds.Shape, Image: ds.Image(i)})
		}
	}
	res, err := est.Run(ctx, tasks, 1, nil)
	if err != nil {
		return nil, err
	}
	for i := range ex {
		ex[i].Vectors, ex[i].Values = res[i].Draws[0].Vectors, res[i].Draws[0].Values
	}
	return ex, nil
}
