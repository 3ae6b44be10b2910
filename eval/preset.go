package eval

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/eigenscore/eigenscore/metrics"
	"github.com/eigenscore/eigenscore/spectrum"
)

// Preset is a named estimator configuration.
type Preset struct {
	Estimator spectrum.Config
	Draws     int
	Note      string
}

// NFEBound is the worst-case spectrum cost per image at the given number
// of noise levels: levels × draws × redraw × iterations × 2k, or with
// forward differences levels × draws × redraw × (iterations × k + 1).
func (p Preset) NFEBound(levels int) int {
	e := p.Estimator.WithDefaults()
	perDraw := e.MaxIter * 2 * e.K
	if e.Forward {
		perDraw = e.MaxIter*e.K + 1
	}
	return levels * p.Draws * e.Redraw * perDraw
}

// Presets are the estimator configurations offered by name.
var Presets = map[string]Preset{
	"reference": {
		Estimator: spectrum.Config{K: 3, Step: 1, MaxIter: 50, Redraw: 5},
		Draws:     20,
		Note:      "the paper's protocol: k=3, 20 draws, ≤50 iterations, overlap rule, redraws",
	},
	"default": {
		Estimator: spectrum.Config{K: 3, Step: 1, MaxIter: 50, Redraw: 5},
		Draws:     5,
		Note:      "reference estimator with 5 draws (the paper's ablation: 5 draws within 0.002 AUROC of 20)",
	},
	// fast is the candidate with the highest ID agreement with the
	// reference among those within the cost budget of 100 NFEs per image at
	// 5 levels (FastBudget; measurements in docs/benchmarks.md).
	"fast": {
		Estimator: spectrum.Config{K: 3, Step: 1, MaxIter: 3, Redraw: 1, Forward: true},
		Draws:     2,
		Note:      "k=3, forward differences, 2 draws, 3 iterations: 100 NFEs per image at 5 levels",
	},
	// Other candidates, kept for comparison (more are reachable with
	// overrides, e.g. fast+ritz=true or fast-k1+forward=true).
	"fast-k1": {
		Estimator: spectrum.Config{K: 1, Step: 1, MaxIter: 10, Redraw: 1},
		Draws:     3,
		Note:      "candidate: power iteration (k=1), central differences, 3 draws, ≤10 iterations",
	},
	"fast-k3": {
		Estimator: spectrum.Config{K: 3, Step: 1, MaxIter: 5, Redraw: 1},
		Draws:     2,
		Note:      "candidate: k=3, central differences, 2 draws, ≤5 iterations",
	},
	"fast-k3f": {
		Estimator: spectrum.Config{K: 3, Step: 1, MaxIter: 5, Redraw: 1, Forward: true},
		Draws:     3,
		Note:      "candidate: k=3, forward differences, 3 draws, ≤5 iterations",
	},
}

// FastBudget is the cost budget of the fast preset in NFEs per image at
// the reference's 5 levels: with fit, ID and OOD sets of 1,000 images each
// and ~1,250 NFE/s on 2 cores (docs/benchmarks.md), 100 NFEs per image
// keeps an evaluation within 5 minutes.
const FastBudget = 100

// Reliability measures, on ID images alone, how much of the spread of the
// per-σ spectral features is between images rather than estimator noise:
// for each level, with s_ir the log eigenvalue sum of image i and draw r,
// R = 1 − (mean_i Var_r s_ir / draws) / Var_i mean_r s_ir, averaged over
// levels. R near 1 means the draws agree and the features rank images
// reliably; a cheaper estimator that keeps R high loses little. Needs at
// least 2 draws; returns NaN otherwise.
func Reliability(sums [][][]float64) float64 {
	if len(sums) < 2 || len(sums[0]) == 0 || len(sums[0][0]) < 2 {
		return math.NaN()
	}
	levels := len(sums[0])
	total := 0.0
	for j := 0; j < levels; j++ {
		means := make([]float64, len(sums))
		within := 0.0
		var draws int
		for i, per := range sums {
			logs := make([]float64, len(per[j]))
			for r, v := range per[j] {
				logs[r] = math.Log(math.Max(v, 1e-300))
			}
			m, sd := metrics.MeanStd(logs)
			means[i] = m
			within += sd * sd / float64(len(sums))
			draws = len(logs)
		}
		_, between := metrics.MeanStd(means)
		total += 1 - within/float64(draws)/(between*between)
	}
	return total / float64(levels)
}

// PresetNames lists the presets.
func PresetNames() []string { return slices.Sorted(maps.Keys(Presets)) }

// LookupPreset returns a preset by name. The name may carry overrides,
// NAME+key=value+…, with keys draws, k, iters, redraw (integers) and
// forward, ritz, shared (true or false), e.g. "fast+draws=2+iters=3".
func LookupPreset(spec string) (Preset, error) {
	parts := strings.Split(spec, "+")
	p, ok := Presets[parts[0]]
	if !ok {
		return Preset{}, fmt.Errorf("unknown preset %q, want one of %s", parts[0], strings.Join(PresetNames(), ", "))
	}
	e := &p.Estimator
	ints := map[string]*int{"draws": &p.Draws, "k": &e.K, "iters": &e.MaxIter, "redraw": &e.Redraw}
	bools := map[string]*bool{"forward": &e.Forward, "ritz": &e.Ritz, "shared": &e.SharedNoise}
	for _, kv := range parts[1:] {
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			return Preset{}, fmt.Errorf("preset %q: override %q, want key=value", spec, kv)
		}
		var err error
		if n, isInt := ints[key]; isInt {
			if *n, err = strconv.Atoi(val); err == nil && *n < 1 {
				err = fmt.Errorf("want a positive integer")
			}
		} else if b, isBool := bools[key]; isBool {
			*b, err = strconv.ParseBool(val)
		} else {
			err = fmt.Errorf("unknown key, want draws, k, iters, redraw, forward, ritz or shared")
		}
		if err != nil {
			return Preset{}, fmt.Errorf("preset %q: override %q: %v", spec, kv, err)
		}
	}
	p.Estimator = p.Estimator.WithDefaults()
	return p, nil
}

// Agreement measures, on ID images alone, how closely a candidate
// estimator's spectral features follow the reference estimator's on the same
// images: the Spearman rank correlation of their one-sided EigenScores, each
// standardised over these images, s_i = Σ_j (f_ij − mean_j)/sd_j. The
// reference's own estimator noise caps it below 1, equally for every
// candidate, so it orders candidates by how much of the reference's ranking
// they keep. Rows are images, columns noise levels.
func Agreement(cand, ref [][]float64) (float64, error) {
	if len(cand) != len(ref) || len(cand) < 3 {
		return 0, fmt.Errorf("eval: agreement needs the same ≥ 3 images in both (have %d and %d)", len(cand), len(ref))
	}
	return metrics.Spearman(standardisedSum(cand), standardisedSum(ref)), nil
}

func standardisedSum(rows [][]float64) []float64 {
	out := make([]float64, len(rows))
	for j := range rows[0] {
		col := make([]float64, len(rows))
		for i, r := range rows {
			col[i] = r[j]
		}
		m, sd := metrics.MeanStd(col)
		if sd == 0 {
			continue
		}
		for i, v := range col {
			out[i] += (v - m) / sd
		}
	}
	return out
}
