package schedule

import (
	"math"
	"testing"
)

// The reference values in method.md are quoted to 5 decimals, so a 1e-5
// absolute tolerance checks every printed digit.
func TestDDPMSigmas(t *testing.T) {
	want := map[int]float64{100: 0.34226, 150: 0.52197, 200: 0.72359, 250: 0.95803, 300: 1.24016, 700: 12.0248}
	for ts, w := range want {
		got := DDPM.Sigma(ts)
		tol := 1e-5
		if w > 10 {
			tol = 1e-4 // quoted to 4 decimals
		}
		if math.Abs(got-w) > tol {
			t.Errorf("sigma(%d) = %.6f, want %.5f", ts, got, w)
		}
	}
}

func TestParseTimesteps(t *testing.T) {
	ts, err := ParseTimesteps("100:300:50")
	if err != nil || len(ts) != 5 || ts[0] != 100 || ts[4] != 300 {
		t.Fatalf("got %v, %v", ts, err)
	}
	if _, err := ParseTimesteps("100:x:50"); err == nil {
		t.Error("bad range accepted")
	}
	if _, err := DDPM.Sigmas([]int{1000}); err == nil {
		t.Error("out-of-range timestep accepted")
	}
	if _, err := ParseSigmas("0.3,-1"); err == nil {
		t.Error("negative sigma accepted")
	}
}
