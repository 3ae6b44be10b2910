package eval

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/internal/featcache"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/method"
	"github.com/eigenscore/eigenscore/schedule"
	"github.com/eigenscore/eigenscore/spectrum"
)

func smallConfig() Config {
	sig, _ := schedule.DDPM.Sigmas([]int{100, 200})
	return Config{ID: "fashion-mnist", OOD: "mnist", N: 12, FitN: 12, Seed: 3, Sigmas: sig,
		Estimator: spectrum.Config{K: 2, MaxIter: 8}.WithDefaults(), Draws: 1, Aggregation: features.Mean,
		Acceptance: 0.9, Probes: 1, Protocol: Deploy}
}

var fmShape = denoise.Shape{C: 1, H: 28, W: 28}

func key(img []float32) string { return featcache.Key(img) }

func mixtureModel(t *testing.T) *eigenscore.Model {
	return eigenscore.NewModel(testenv.FashionMixture(t), "gmm:fashion-mnist", "test-gmm")
}

// No image used to fit the detector is a test image: the fit split comes
// from the training set, the test images from the test sets, and they share
// no image content.
func TestSplitsAreDisjoint(t *testing.T) {
	cfg := smallConfig()
	cfg.N, cfg.FitN = 300, 300
	sets, err := LoadSets(testenv.DataDir(), cfg, fmShape)
	if err != nil {
		t.Fatal(err)
	}
	fit := map[string]bool{}
	for i := 0; i < sets.Fit.Len(); i++ {
		fit[key(sets.Fit.Image(i))] = true
	}
	for _, ds := range []*data.Dataset{sets.ID, sets.OOD} {
		for i := 0; i < ds.Len(); i++ {
			if fit[key(ds.Image(i))] {
				t.Fatalf("%s image %d is also in the fit split", ds.Name, i)
			}
		}
	}
	if sets.Fit.Len() != 300 || sets.ID.Len() != 300 || sets.OOD.Len() != 300 {
		t.Errorf("set sizes %d %d %d", sets.Fit.Len(), sets.ID.Len(), sets.OOD.Len())
	}
	// Paper protocol: validation and test halves are disjoint and cover all.
	val, test := halves(301, 1, "ood")
	seen := map[int]bool{}
	for _, i := range append(val, test...) {
		if seen[i] {
			t.Fatalf("index %d in both halves", i)
		}
		seen[i] = true
	}
	if len(seen) != 301 {
		t.Errorf("halves cover %d of 301", len(seen))
	}
}

// With FitSplit test, fit and ID test images both come from the ID set's
// test split, disjoint: none is a training image of the shipped denoiser.
func TestFitOnHeldOutImages(t *testing.T) {
	cfg := smallConfig()
	cfg.N, cfg.FitN, cfg.FitSplit = 200, 150, data.Test
	sets, err := LoadSets(testenv.DataDir(), cfg, fmShape)
	if err != nil {
		t.Fatal(err)
	}
	inSplit := func(split data.Split) map[string]bool {
		ds, err := data.Load(testenv.DataDir(), data.Spec{Name: cfg.ID}, split)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for i := 0; i < ds.Len(); i++ {
			m[key(ds.Image(i))] = true
		}
		return m
	}
	test, train := inSplit(data.Test), inSplit(data.Train)
	fit := map[string]bool{}
	for i := 0; i < sets.Fit.Len(); i++ {
		k := key(sets.Fit.Image(i))
		if !test[k] || train[k] {
			t.Fatalf("fit image %d is not a held-out test image", i)
		}
		fit[k] = true
	}
	for i := 0; i < sets.ID.Len(); i++ {
		if k := key(sets.ID.Image(i)); fit[k] || !test[k] {
			t.Fatalf("ID test image %d is a fit image or not from the test split", i)
		}
	}
	if sets.Fit.Len() != 150 || sets.ID.Len() != 200 {
		t.Errorf("set sizes %d %d", sets.Fit.Len(), sets.ID.Len())
	}
	cfg.FitSplit = "validation"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "FitSplit") {
		t.Errorf("FitSplit validation: %v", err)
	}
}

// Every method's NFE count must match what the model's counter saw, and
// a second run must come from the cache with the same numbers.
func TestNFEAccountingAndCache(t *testing.T) {
	cfg := smallConfig()
	sets, err := LoadSets(testenv.DataDir(), cfg, fmShape)
	if err != nil {
		t.Fatal(err)
	}
	m := mixtureModel(t)
	cache := featcache.Cache{Dir: t.TempDir()}
	res, err := Run(context.Background(), cfg, m, sets, cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, n := range res.ProviderNFE {
		sum += n
	}
	if sum != m.NFE() {
		t.Errorf("providers report %d NFEs, the counter saw %d", sum, m.NFE())
	}
	images := float64(res.Images)
	for _, meth := range method.All() {
		var want int64
		for _, p := range meth.Info().Providers {
			want += res.ProviderNFE[p]
		}
		if got := res.Methods[meth].NFEPerImage; got != float64(want)/images {
			t.Errorf("%s: %v NFE/image, providers sum to %v", meth, got, float64(want)/images)
		}
	}
	// DiffPath is 10 NFEs per image, exactly.
	if res.ProviderNFE[method.DiffPaths] != int64(10*res.Images) {
		t.Errorf("diffpath used %d NFEs for %d images", res.ProviderNFE[method.DiffPaths], res.Images)
	}
	before := m.NFE()
	again, err := Run(context.Background(), cfg, m, sets, cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := m.NFE() - before; n != 0 {
		t.Errorf("second run evaluated the denoiser %d times despite the cache", n)
	}
	for name, mr := range res.Methods {
		if again.Methods[name].AUROC != mr.AUROC || again.Methods[name].NFEPerImage != mr.NFEPerImage {
			t.Errorf("%s differs when read from the cache", name)
		}
	}
}

// cancelAfter cancels a context once its denoiser has been called n times.
type cancelAfter struct {
	denoise.Denoiser
	n      atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Denoise(ctx context.Context, x, sigma, out []float32) error {
	if c.n.Add(-1) == 0 {
		c.cancel()
	}
	return c.Denoiser.Denoise(ctx, x, sigma, out)
}

// A run cancelled midway fails cleanly and leaves the cache readable:
// chunks it finished are read back, the others are computed, and the
// result equals a run without any cache.
func TestCancelledRunLeavesCacheReadable(t *testing.T) {
	cfg := smallConfig()
	cfg.N, cfg.FitN = 60, 60 // two cache chunks per set
	cfg.Methods = []method.Method{method.EigenScore, method.ReconError}
	sets, err := LoadSets(testenv.DataDir(), cfg, fmShape)
	if err != nil {
		t.Fatal(err)
	}
	cache := featcache.Cache{Dir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel during the spectra of the ID set, after the fit set's chunks.
	slow := &cancelAfter{Denoiser: testenv.FashionMixture(t), cancel: cancel}
	slow.n.Store(100)
	if _, err := Run(ctx, cfg, eigenscore.NewModel(slow, "gmm", "test-gmm"), sets, cache, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v, want context.Canceled (%d calls left)", err, slow.n.Load())
	}

	m := mixtureModel(t)
	resumed, err := Run(context.Background(), cfg, m, sets, cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.NFE() == 0 || m.NFE() >= resumed.ProviderNFE[method.Spectra]+resumed.ProviderNFE[method.DenoisingErrors] {
		t.Errorf("resumed run spent %d NFEs; want some chunks from the cache (%d NFEs in all)", m.NFE(), resumed.ProviderNFE[method.Spectra]+resumed.ProviderNFE[method.DenoisingErrors])
	}
	fresh, err := Run(context.Background(), cfg, mixtureModel(t), sets, featcache.Cache{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, meth := range cfg.Methods {
		if !slices.Equal(resumed.Methods[meth].IDScores, fresh.Methods[meth].IDScores) || !slices.Equal(resumed.Methods[meth].OODScores, fresh.Methods[meth].OODScores) {
			t.Errorf("%s: scores after resuming from the cache differ from a run without it", meth)
		}
	}
}

func TestPaperProtocolLabelsOODUse(t *testing.T) {
	cfg := smallConfig()
	cfg.Protocol = Paper
	cfg.Methods = []method.Method{method.EigenScore}
	cfg.N = 10
	sets, err := LoadSets(testenv.DataDir(), cfg, fmShape)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), cfg, mixtureModel(t), sets, featcache.Cache{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := res.Methods[PaperMethod]
	if !ok || !p.UsesOOD || p.Selected["timesteps"] == nil {
		t.Fatalf("paper method missing or unlabelled: %+v", p)
	}
	if len(p.IDScores) != 5 || len(res.Methods[method.EigenScore].OODScores) != 5 {
		t.Errorf("paper protocol should report on test halves of 5, got %d and %d", len(p.IDScores), len(res.Methods[method.EigenScore].OODScores))
	}
}

// Reliability on synthetic log-normal draws: between-image sd 1, within
// sd 1, 4 draws, so the per-image mean's variance is 1 + 1/4 and
// R = 1 − (1/4)/(5/4) = 0.8. With 4000 images the estimate's sd is about
// 0.005; the test allows 0.03.
func TestReliability(t *testing.T) {
	rng := newRand(4)
	sums := make([][][]float64, 4000)
	for i := range sums {
		mu := rng.NormFloat64()
		d := make([]float64, 4)
		for r := range d {
			d[r] = math.Exp(mu + rng.NormFloat64())
		}
		sums[i] = [][]float64{d}
	}
	if r := Reliability(sums); math.Abs(r-0.8) > 0.03 {
		t.Errorf("reliability %.3f, want 0.8", r)
	}
	if r := Reliability([][][]float64{{{1}}, {{2}}}); !math.IsNaN(r) {
		t.Errorf("one draw gave %v, want NaN", r)
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

func TestAgreement(t *testing.T) {
	ref := [][]float64{{1, 10}, {2, 30}, {3, 25}, {4, 40}}
	// Features scaled per column standardise to the same scores.
	same := [][]float64{{2, 100}, {4, 300}, {6, 250}, {8, 400}}
	if a, err := Agreement(same, ref); err != nil || math.Abs(a-1) > 1e-12 {
		t.Errorf("scaled copy: agreement %v (%v), want 1", a, err)
	}
	rev := [][]float64{{4, 40}, {3, 25}, {2, 30}, {1, 10}}
	if a, _ := Agreement(rev, ref); math.Abs(a+1) > 1e-12 {
		t.Errorf("reversed: agreement %v, want -1", a)
	}
	if _, err := Agreement(ref[:2], ref[:2]); err == nil {
		t.Error("two images accepted")
	}
	if _, err := Agreement(ref, ref[:3]); err == nil {
		t.Error("different image counts accepted")
	}
}

// A zero or damaged configuration is an error naming the field, never a
// panic.
func TestRunValidatesConfig(t *testing.T) {
	sets, err := LoadSets(testenv.DataDir(), smallConfig(), fmShape)
	if err != nil {
		t.Fatal(err)
	}
	m := mixtureModel(t)
	noSigmas := smallConfig()
	noSigmas.Sigmas = nil
	negIter := smallConfig()
	negIter.Estimator.MaxIter = -1
	badMethod := smallConfig()
	badMethod.Methods = []method.Method{"magic"}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Config.N"},
		{noSigmas, "Config.Sigmas"},
		{negIter, "Config.Estimator.MaxIter"},
		{badMethod, "Config.Methods"},
	} {
		if _, err := Run(context.Background(), c.cfg, m, sets, featcache.Cache{}, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to name %s", err, c.want)
		}
	}
}

// A file as the ID source has no splits: fit and ID test images are drawn
// disjointly from it.
func TestOneFileSplitsDisjointly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.npy")
	if err := data.SaveNPY(path, testenv.Load(t, "fashion-mnist", "test").Head(40)); err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig()
	cfg.ID, cfg.FitN, cfg.N = path, 20, 15
	sets, err := LoadSets(testenv.DataDir(), cfg, fmShape)
	if err != nil {
		t.Fatal(err)
	}
	fit := map[string]bool{}
	for i := range sets.Fit.Len() {
		fit[key(sets.Fit.Image(i))] = true
	}
	for i := range sets.ID.Len() {
		if fit[key(sets.ID.Image(i))] {
			t.Fatalf("ID test image %d is also a fit image", i)
		}
	}
	if sets.Fit.Len() != 20 || sets.ID.Len() != 15 {
		t.Errorf("%d fit and %d ID test images, want 20 and 15", sets.Fit.Len(), sets.ID.Len())
	}
	cfg.FitN = 39
	if _, err := LoadSets(testenv.DataDir(), cfg, fmShape); err == nil {
		t.Error("40 images split into 39 fit images and a test set")
	}
}
