// Package eval runs an OOD evaluation end to end: it loads the ID fit split
// (from the training set) and the ID and OOD test images (from the test
// sets), estimates their posterior spectra, fits the detector on the fit
// split only, and reports metrics.
package eval

import (
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/detector"
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
	Probes      int                  `json:"probes"` // Hutchinson probes per image and σ
	Methods     []string             `json:"methods"`
	Protocol    string               `json:"protocol"`
	Examples    int                  `json:"examples"` // images per set shown with eigenvectors in reports
}

// Progress creates a progress reporter for a stage with total steps; it
// returns the function called with the steps done and one that closes it.
type Progress func(stage string, total int) (update func(done int), finish func())

// NoProgress reports nothing.
func NoProgress(string, int) (func(int), func()) { return func(int) {}, func() {} }

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
