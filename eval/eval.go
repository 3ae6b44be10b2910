// Package eval is the evaluation harness: it loads an ID fit split (from
// the training set) and ID and OOD test images (from the test sets),
// computes every provider's features once per set with a model, fits each
// method on the fit split only, and reports metrics. It is built on the
// root package's Model and on package method, so a method measured here is
// the method `eigenscore fit` deploys.
package eval

import (
	"fmt"
	"slices"

	"github.com/eigenscore/eigenscore/conformal"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/method"
	"github.com/eigenscore/eigenscore/noise"
	"github.com/eigenscore/eigenscore/spectrum"
)

// Protocol says how an evaluation may use OOD data.
type Protocol string

const (
	// Deploy uses no OOD data for any choice: every setting is fixed in
	// advance and the detectors are fitted on ID training images.
	Deploy Protocol = "deploy"
	// Paper is the paper's protocol: EigenScore's timestep window and
	// aggregation are chosen by AUROC on OOD validation data (labelled).
	Paper Protocol = "paper"
)

// ParseProtocol checks a protocol name.
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(s); p {
	case Deploy, Paper:
		return p, nil
	}
	return "", fmt.Errorf("eval: unknown protocol %q, want deploy or paper", s)
}

// Role names an image set of an evaluation. Sets are named by role, so the
// noise an image sees (package noise) depends on its pixels, the seed and
// its role only; the fit role matches eigenscore.Fit's.
type Role string

const (
	Fit Role = "fit" // ID training images the detectors are fitted on
	ID  Role = "id"  // ID test images
	OOD Role = "ood" // OOD test images
)

// Roles lists the roles in order.
func Roles() []Role { return []Role{Fit, ID, OOD} }

// Config describes one evaluation.
type Config struct {
	ID   string `json:"id"`
	OOD  string `json:"ood"`
	N    int    `json:"n"`     // test images per set
	FitN int    `json:"fit_n"` // ID training images the detector is fitted on
	// FitSplit is the split of a named ID set that the fit images come
	// from: data.Train (or "", the default), or data.Test to fit on
	// held-out images, drawn disjointly from the ID test images. A
	// detector's conformal guarantee needs fit and test images that are
	// exchangeable for the model; images the denoiser was trained on are
	// not, once it has memorised them (docs/results.md, "The RGB suite").
	FitSplit    data.Split           `json:"fit_split,omitempty"`
	Seed        uint64               `json:"seed"`
	Sigmas      []float64            `json:"sigmas"`
	Timesteps   []int                `json:"timesteps,omitempty"`
	Denoiser    string               `json:"denoiser"`
	Estimator   spectrum.Config      `json:"estimator"`
	Draws       int                  `json:"draws"`
	Aggregation features.Aggregation `json:"aggregation"`
	Acceptance  float64              `json:"acceptance"`
	Bootstrap   int                  `json:"bootstrap"`
	Probes      int                  `json:"probes"` // Hutchinson probes per image and σ
	Methods     []method.Method      `json:"methods"`
	Protocol    Protocol             `json:"protocol"`
	Examples    int                  `json:"examples"` // images per set shown with eigenvectors in reports
	Tails       int                  `json:"tails"`    // most and least OOD images per set explained in reports
}

// Validate checks the configuration; the error names the field. Zero
// estimator fields are the reference defaults (spectrum.Config).
func (c Config) Validate() error {
	switch {
	case c.N < 3:
		return fmt.Errorf("eval: Config.N = %d, want at least 3 test images per set", c.N)
	case !(c.Acceptance > 0 && c.Acceptance < 1):
		return fmt.Errorf("eval: Config.Acceptance = %v, want in (0, 1)", c.Acceptance)
	case c.FitN < max(3, conformal.MinScores(c.Acceptance)):
		return fmt.Errorf("eval: Config.FitN = %d, want at least %d fit images for conformal thresholds at %.4g acceptance", c.FitN, max(3, conformal.MinScores(c.Acceptance)), c.Acceptance)
	case c.FitSplit != "" && c.FitSplit != data.Train && c.FitSplit != data.Test:
		return fmt.Errorf("eval: Config.FitSplit = %q, want %q or %q", c.FitSplit, data.Train, data.Test)
	case c.Bootstrap < 0 || c.Examples < 0 || c.Tails < 0:
		return fmt.Errorf("eval: Config.Bootstrap = %d, Config.Examples = %d and Config.Tails = %d, want ≥ 0", c.Bootstrap, c.Examples, c.Tails)
	}
	if _, err := ParseProtocol(string(c.Protocol)); err != nil {
		return fmt.Errorf("eval: Config.Protocol: %w", err)
	}
	for _, m := range c.Methods {
		if _, err := method.Parse(string(m)); err != nil {
			return fmt.Errorf("eval: Config.Methods: %w", err)
		}
	}
	if err := method.NonNegative(c.Estimator); err != nil {
		return fmt.Errorf("eval: Config.Estimator.%w", err)
	}
	if err := c.Settings().Validate(); err != nil {
		return fmt.Errorf("eval: Config.%w", err)
	}
	return nil
}

// CheckData reports an unknown ID or OOD dataset before anything is
// loaded or opened.
func (c Config) CheckData() error {
	for _, spec := range []string{c.ID, c.OOD} {
		sp, err := data.ParseSpec(spec)
		if err != nil {
			return err
		}
		if err := sp.Check(); err != nil {
			return err
		}
	}
	return nil
}

// Settings are the feature settings of the configuration.
func (c Config) Settings() method.Settings {
	return method.Settings{Estimator: c.Estimator.WithDefaults(), Sigmas: c.Sigmas, Draws: c.Draws, Aggregation: c.Aggregation, Probes: c.Probes, Seed: c.Seed}
}

// Sets are the three image sets of an evaluation, named by role.
type Sets struct{ Fit, ID, OOD *data.Dataset }

// ByRole returns the set of a role.
func (s *Sets) ByRole(r Role) *data.Dataset {
	switch r {
	case Fit:
		return s.Fit
	case ID:
		return s.ID
	}
	return s.OOD
}

// LoadSets loads, as images of the model's shape, the fit split (FitN
// images drawn from the ID training set) and N test images of each of ID
// and OOD, drawn with the seed. An ID source without separate splits (a
// file or a folder) gives disjoint fit and ID test images: both are drawn
// from one seeded permutation, fit first.
func LoadSets(dataDir string, cfg Config, shape denoise.Shape) (*Sets, error) {
	load := func(spec string, split data.Split) (*data.Dataset, data.Spec, error) {
		sp, err := data.ParseSpec(spec)
		if err != nil {
			return nil, sp, err
		}
		ds, err := data.LoadFor(dataDir, sp, split, shape)
		return ds, sp, err
	}
	train, idSpec, err := load(cfg.ID, data.Train)
	if err != nil {
		return nil, err
	}
	s := &Sets{}
	if idSpec.HasSplits() && cfg.FitSplit == data.Test {
		test, _, err := load(cfg.ID, data.Test)
		if err != nil {
			return nil, err
		}
		if s.Fit, s.ID, err = splitOne(test, cfg); err != nil {
			return nil, err
		}
	} else if idSpec.HasSplits() {
		test, _, err := load(cfg.ID, data.Test)
		if err != nil {
			return nil, err
		}
		s.Fit, s.ID = Sample(train, cfg.FitN, cfg.Seed, Fit), Sample(test, cfg.N, cfg.Seed, ID)
	} else if s.Fit, s.ID, err = splitOne(train, cfg); err != nil {
		return nil, err
	}
	ood, _, err := load(cfg.OOD, data.Test)
	if err != nil {
		return nil, err
	}
	s.OOD = Sample(ood, cfg.N, cfg.Seed, OOD)
	for _, ds := range []*data.Dataset{s.Fit, s.ID, s.OOD} {
		if err := ds.Validate(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// splitOne draws disjoint fit and ID test sets from one set of images.
func splitOne(ds *data.Dataset, cfg Config) (fit, id *data.Dataset, err error) {
	if ds.Len() < cfg.FitN+3 {
		return nil, nil, fmt.Errorf("eval: %s has %d images, too few for %d fit images and ID test images", ds.Name, ds.Len(), cfg.FitN)
	}
	perm := noise.Stream(cfg.Seed, noise.Sample, noise.RoleKey("fit+id"), 0).Perm(ds.Len())
	nID := min(cfg.N, ds.Len()-cfg.FitN)
	fitIdx, idIdx := slices.Clone(perm[:cfg.FitN]), slices.Clone(perm[cfg.FitN:cfg.FitN+nID])
	slices.Sort(fitIdx)
	slices.Sort(idIdx)
	fit, id = ds.Subset(fitIdx), ds.Subset(idIdx)
	fit.Name, id.Name = string(Fit), string(ID)
	return fit, id, nil
}

// Sample draws n images without replacement (all when n ≤ 0 or n ≥ Len),
// with the seed's stream for the role (noise.Sample), kept in their order
// in ds and named after the role.
func Sample(ds *data.Dataset, n int, seed uint64, role Role) *data.Dataset {
	out := *ds.Sample(n, noise.Stream(seed, noise.Sample, noise.RoleKey(string(role)), 0))
	out.Name = string(role)
	return &out
}
