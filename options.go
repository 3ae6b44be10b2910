package eigenscore

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/method"
	"github.com/eigenscore/eigenscore/schedule"
	"github.com/eigenscore/eigenscore/spectrum"
)

// Options configure Fit. The zero value (or a nil *Options) is a sensible
// configuration: the recommended method, method.EigenScore (the paper's
// score, chosen by the rule in docs/results.md on the shipped models;
// method.Combined has the higher mean AUROC there and the lower worst
// pair), the fast estimator
// preset (k = 3, forward differences, 2 draws, 3 iterations: 100 NFEs per
// image), the noise levels of DDPM timesteps 100, 150, …, 300, the mean over
// draws, thresholds at 95% ID acceptance and seed 0.
type Options struct {
	// Method is the detection method; "" means method.EigenScore, the
	// recommended one.
	Method method.Method
	// Preset names the estimator settings, optionally with overrides
	// (NAME+key=value+…, see LookupPreset); "" means "fast".
	Preset string
	// Estimator, when not nil, replaces the preset's estimator settings
	// (its zero fields are the reference defaults, see spectrum.Config).
	Estimator *spectrum.Config
	// Draws is the number of noise draws per image and σ; 0 means the
	// preset's.
	Draws int
	// Sigmas are the noise levels of the spectra (and of the trace); nil
	// means DefaultSigmas.
	Sigmas []float64
	// Aggregation reduces an image's draws at one σ; "" means mean.
	Aggregation features.Aggregation
	// Probes is the number of Hutchinson probes per image and σ of the
	// trace method; 0 means 4.
	Probes int
	// Acceptance is the share of ID images the threshold accepts; 0 means
	// 0.95.
	Acceptance float64
	// Seed seeds every random draw (package noise); the same seed gives
	// the same scores.
	Seed uint64

	// Progress, when not nil, reports progress of long computations.
	Progress method.Progress
	// CacheDir, when not empty, keeps per-image features on disk there, so
	// that a killed run resumes where it stopped.
	CacheDir string
}

// DefaultSigmas are the noise levels used when Options.Sigmas is nil: the
// linear-β DDPM schedule's σ at timesteps 100, 150, …, 300, the window of
// the paper's reference protocol for 28×28 and 32×32 images.
func DefaultSigmas() []float64 {
	s, err := schedule.DDPM.Sigmas([]int{100, 150, 200, 250, 300})
	if err != nil {
		panic(err) // fixed, valid timesteps
	}
	return s
}

// Validate reports the first invalid option, naming the field. A nil
// *Options is valid.
func (o *Options) Validate() error {
	_, _, _, err := o.resolve()
	return err
}

// resolve applies the defaults and validates the result.
func (o *Options) resolve() (method.Method, method.Settings, float64, error) {
	var opt Options
	if o != nil {
		opt = *o
	}
	m := method.EigenScore
	if opt.Method != "" {
		var err error
		if m, err = method.Parse(string(opt.Method)); err != nil {
			return "", method.Settings{}, 0, fmt.Errorf("eigenscore: Options.Method: %w", err)
		}
	}
	preset := "fast"
	if opt.Preset != "" {
		preset = opt.Preset
	}
	p, err := LookupPreset(preset)
	if err != nil {
		return "", method.Settings{}, 0, fmt.Errorf("eigenscore: Options.Preset: %w", err)
	}
	s := method.Settings{Estimator: p.Estimator, Draws: p.Draws, Sigmas: DefaultSigmas(), Aggregation: features.Mean, Probes: 4, Seed: opt.Seed}
	if opt.Estimator != nil {
		if err := method.NonNegative(*opt.Estimator); err != nil {
			return "", method.Settings{}, 0, fmt.Errorf("eigenscore: Options.Estimator.%w", err)
		}
		s.Estimator = opt.Estimator.WithDefaults()
	}
	if opt.Draws != 0 {
		s.Draws = opt.Draws
	}
	if opt.Sigmas != nil {
		s.Sigmas = slices.Clone(opt.Sigmas)
	}
	if opt.Aggregation != "" {
		s.Aggregation = opt.Aggregation
	}
	if opt.Probes != 0 {
		s.Probes = opt.Probes
	}
	acceptance := 0.95
	if opt.Acceptance != 0 {
		acceptance = opt.Acceptance
	}
	if !(acceptance > 0 && acceptance < 1) {
		return "", method.Settings{}, 0, fmt.Errorf("eigenscore: Options.Acceptance = %v, want in (0, 1)", acceptance)
	}
	if err := s.Validate(); err != nil {
		return "", method.Settings{}, 0, fmt.Errorf("eigenscore: Options.%w", err)
	}
	return m, s, acceptance, nil
}

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

// FastBudget is the cost budget of the fast preset in NFEs per image at
// the reference's 5 levels: with fit, ID and OOD sets of 1,000 images each
// and ~1,250 NFE/s on 2 cores (docs/benchmarks.md), 100 NFEs per image
// keeps an evaluation within 5 minutes.
const FastBudget = 100

// Presets returns the estimator configurations offered by name (a fresh
// map: changing it changes nothing else).
func Presets() map[string]Preset {
	ref := spectrum.Config{K: 3, Step: 1, MaxIter: 50, Redraw: 5}
	return map[string]Preset{
		"reference": {Estimator: ref, Draws: 20,
			Note: "the paper's protocol: k=3, 20 draws, ≤50 iterations, overlap rule, redraws"},
		"default": {Estimator: ref, Draws: 5,
			Note: "reference estimator with 5 draws (the paper's ablation: 5 draws within 0.002 AUROC of 20)"},
		// fast is the candidate with the highest ID agreement with the
		// reference among those within FastBudget (docs/benchmarks.md).
		"fast": {Estimator: spectrum.Config{K: 3, Step: 1, MaxIter: 3, Redraw: 1, Forward: true}, Draws: 2,
			Note: "k=3, forward differences, 2 draws, 3 iterations: 100 NFEs per image at 5 levels"},
		// Other candidates, kept for comparison (more are reachable with
		// overrides, e.g. fast+ritz=true or fast-k1+forward=true).
		"fast-k1": {Estimator: spectrum.Config{K: 1, Step: 1, MaxIter: 10, Redraw: 1}, Draws: 3,
			Note: "candidate: power iteration (k=1), central differences, 3 draws, ≤10 iterations"},
		"fast-k3": {Estimator: spectrum.Config{K: 3, Step: 1, MaxIter: 5, Redraw: 1}, Draws: 2,
			Note: "candidate: k=3, central differences, 2 draws, ≤5 iterations"},
		"fast-k3f": {Estimator: spectrum.Config{K: 3, Step: 1, MaxIter: 5, Redraw: 1, Forward: true}, Draws: 3,
			Note: "candidate: k=3, forward differences, 3 draws, ≤5 iterations"},
	}
}

// PresetNames lists the presets, sorted.
func PresetNames() []string { return slices.Sorted(maps.Keys(Presets())) }

// LookupPreset returns a preset by name, with its estimator's zero fields
// set to the reference defaults. The name may carry overrides,
// NAME+key=value+…, with keys draws, k, iters, redraw (positive integers)
// and forward, ritz, shared (true or false), e.g. "fast+draws=4".
func LookupPreset(spec string) (Preset, error) {
	parts := strings.Split(spec, "+")
	p, ok := Presets()[parts[0]]
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
