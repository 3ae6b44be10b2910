package eval

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/schedule"
	"github.com/eigenscore/eigenscore/spectrum"
)

func smallConfig() Config {
	sig, _ := schedule.DDPM.Sigmas([]int{100, 200})
	return Config{ID: "fashion-mnist", OOD: "mnist", N: 12, FitN: 12, Seed: 3, Sigmas: sig,
		Estimator: spectrum.Config{K: 2, MaxIter: 8}.WithDefaults(), Draws: 1, Aggregation: "mean",
		Acceptance: 0.9, Probes: 1, Protocol: "deploy"}
}

func key(img []float32) string { return Key(img) }

// No image used to fit the detector is a test image: the fit split comes
// from the training set, the test images from the test sets, and they share
// no image content.
func TestSplitsAreDisjoint(t *testing.T) {
	cfg := smallConfig()
	cfg.N, cfg.FitN = 300, 300
	sets, err := LoadSets(testenv.DataDir(), cfg)
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

// Every method's NFE count must match what the denoiser's counter saw, and
// a second run must come from the cache with the same numbers.
func TestNFEAccountingAndCache(t *testing.T) {
	cfg := smallConfig()
	sets, err := LoadSets(testenv.DataDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := testenv.FashionMixture(t)
	counter := denoise.NewCounter(m)
	cache := Cache{Dir: t.TempDir()}
	res, err := Run(context.Background(), cfg, counter, "test-gmm", sets, cache, NoProgress)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, n := range res.ProviderNFE {
		sum += n
	}
	if sum != counter.NFE() {
		t.Errorf("providers report %d NFEs, the counter saw %d", sum, counter.NFE())
	}
	images := float64(res.Images)
	for _, d := range Detectors {
		var want int64
		for _, p := range d.Providers {
			want += res.ProviderNFE[p]
		}
		if got := res.Methods[d.Name].NFEPerImage; got != float64(want)/images {
			t.Errorf("%s: %v NFE/image, providers sum to %v", d.Name, got, float64(want)/images)
		}
	}
	// DiffPath is 10 NFEs per image, exactly.
	if res.ProviderNFE["diffpath"] != int64(10*res.Images) {
		t.Errorf("diffpath used %d NFEs for %d images", res.ProviderNFE["diffpath"], res.Images)
	}
	counter.Reset()
	again, err := Run(context.Background(), cfg, counter, "test-gmm", sets, cache, NoProgress)
	if err != nil {
		t.Fatal(err)
	}
	if counter.NFE() != 0 {
		t.Errorf("second run evaluated the denoiser %d times despite the cache", counter.NFE())
	}
	for name, m := range res.Methods {
		if again.Methods[name].AUROC != m.AUROC || again.Methods[name].NFEPerImage != m.NFEPerImage {
			t.Errorf("%s differs when read from the cache", name)
		}
	}
	// A cancelled run fails cleanly and leaves the cache readable.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg.Seed = 99
	if _, err := Run(ctx, cfg, m, "test-gmm", sets, cache, NoProgress); err == nil {
		t.Error("cancelled run reported success")
	}
}

func TestPaperProtocolLabelsOODUse(t *testing.T) {
	cfg := smallConfig()
	cfg.Protocol = "paper"
	cfg.Methods = []string{"eigenscore"}
	cfg.N = 10
	sets, err := LoadSets(testenv.DataDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), cfg, testenv.FashionMixture(t), "test-gmm", sets, Cache{}, NoProgress)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := res.Methods["eigenscore-paper"]
	if !ok || !p.UsesOOD || p.Selected["timesteps"] == nil {
		t.Fatalf("paper method missing or unlabelled: %+v", p)
	}
	if len(p.IDScores) != 5 || len(res.Methods["eigenscore"].OODScores) != 5 {
		t.Errorf("paper protocol should report on test halves of 5, got %d and %d", len(p.IDScores), len(res.Methods["eigenscore"].OODScores))
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

func TestCollapseIsGeometricMean(t *testing.T) {
	f := &Features{Rows: [][]float64{{1, 4, 16}, {2, 2, 2}}, Names: []string{"a", "b", "c"}}
	c := collapse(f, "spectrum")
	if len(c.Names) != 1 || math.Abs(c.Rows[0][0]-4) > 1e-12 || math.Abs(c.Rows[1][0]-2) > 1e-12 {
		t.Errorf("collapse gave %v %v, want [[4] [2]]", c.Names, c.Rows)
	}
}

func TestLookupPresetOverrides(t *testing.T) {
	p, err := LookupPreset("fast-k3f+draws=2+iters=3+ritz=true")
	if err != nil {
		t.Fatal(err)
	}
	if p.Draws != 2 || p.Estimator.MaxIter != 3 || !p.Estimator.Ritz || !p.Estimator.Forward || p.Estimator.K != 3 {
		t.Errorf("overrides not applied: %+v", p)
	}
	if got, want := p.NFEBound(5), 5*2*1*(3*3+1); got != want {
		t.Errorf("NFE bound %d, want %d", got, want)
	}
	for _, bad := range []string{"nope", "fast+draws=0", "fast+draws", "fast+color=red", "fast+ritz=maybe"} {
		if _, err := LookupPreset(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The fast preset stays within its cost budget, far below the reference's
// 30,000 NFEs per image (5 levels × 20 draws × 50 iterations × 2k, before
// redraws).
func TestFastPresetBudget(t *testing.T) {
	fast := Presets["fast"]
	if b := fast.NFEBound(5); b > FastBudget {
		t.Errorf("fast: %d NFEs per image at 5 levels, budget %d", b, FastBudget)
	}
	ref := Presets["reference"]
	ref.Estimator.Redraw = 1
	if r := ref.NFEBound(5); r != 30000 {
		t.Errorf("reference bound without redraws %d, want 30,000", r)
	}
}

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
