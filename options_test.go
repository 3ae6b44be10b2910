package eigenscore_test

import (
	"testing"

	"github.com/eigenscore/eigenscore"
)

func TestLookupPresetOverrides(t *testing.T) {
	p, err := eigenscore.LookupPreset("fast-k3f+draws=2+iters=3+ritz=true")
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
		if _, err := eigenscore.LookupPreset(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// Presets returns a fresh map: changing it changes nothing else.
	eigenscore.Presets()["fast"] = eigenscore.Preset{Draws: 99}
	if p, _ := eigenscore.LookupPreset("fast"); p.Draws == 99 {
		t.Error("a caller's change to Presets() leaked into LookupPreset")
	}
}

// The fast preset stays within its cost budget, far below the reference's
// 30,000 NFEs per image (5 levels × 20 draws × 50 iterations × 2k, before
// redraws).
func TestFastPresetBudget(t *testing.T) {
	fast := eigenscore.Presets()["fast"]
	if b := fast.NFEBound(5); b > eigenscore.FastBudget {
		t.Errorf("fast: %d NFEs per image at 5 levels, budget %d", b, eigenscore.FastBudget)
	}
	ref := eigenscore.Presets()["reference"]
	ref.Estimator.Redraw = 1
	if r := ref.NFEBound(5); r != 30000 {
		t.Errorf("reference bound without redraws %d, want 30,000", r)
	}
}
