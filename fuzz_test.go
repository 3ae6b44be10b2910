package eigenscore_test

import (
	"math"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/method"
	"github.com/eigenscore/eigenscore/spectrum"
)

// Decoding any bytes never panics, and a detector that decodes writes a
// file that decodes to the same detector.
func FuzzDecode(f *testing.F) {
	good := fitted(f)
	f.Add(good)
	f.Add([]byte(strings.Replace(string(good), `"k": 3`, `"k": 0`, 1)))
	f.Add([]byte(strings.Replace(string(good), `"method": "eigenscore"`, `"method": "eigenscore+1d"`, 1)))
	f.Add([]byte(`{"format":"eigenscore-detector","version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := eigenscore.Decode(b)
		if err != nil {
			return
		}
		var buf strings.Builder
		if _, err := d.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		again, err := eigenscore.Decode([]byte(buf.String()))
		if err != nil {
			t.Fatalf("a decoded detector's own file is rejected: %v", err)
		}
		if again.Threshold() != d.Threshold() && !math.IsNaN(d.Threshold()) {
			t.Fatalf("threshold changed from %v to %v", d.Threshold(), again.Threshold())
		}
	})
}

// Validate never panics, gives the same answer twice, and never accepts a
// non-positive or non-finite noise level or an acceptance outside (0, 1).
func FuzzOptions(f *testing.F) {
	f.Add("", "", 0, 0.0, "", 0, 0.0, 0, 0, 0.0, false)
	f.Add("eigenscore+1d", "fast+draws=4", 3, 0.5, "median", 2, 0.9, 3, 10, 1.0, true)
	f.Add("trace", "reference+k=2", -1, -1.0, "all", -3, 1.5, -1, -1, math.NaN(), true)
	f.Fuzz(func(t *testing.T, meth, preset string, draws int, sigma float64, agg string, probes int, acceptance float64, k, iters int, step float64, withEstimator bool) {
		o := &eigenscore.Options{Method: method.Method(meth), Preset: preset, Draws: draws, Sigmas: []float64{sigma},
			Aggregation: features.Aggregation(agg), Probes: probes, Acceptance: acceptance}
		if withEstimator {
			o.Estimator = &spectrum.Config{K: k, MaxIter: iters, Step: step}
		}
		err := o.Validate()
		if again := o.Validate(); (err == nil) != (again == nil) {
			t.Fatalf("Validate changed its answer: %v, then %v", err, again)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "eigenscore: Options.") {
				t.Fatalf("error %q does not name the field", err)
			}
			return
		}
		if !(sigma > 0) || math.IsInf(sigma, 0) {
			t.Fatalf("σ = %v accepted", sigma)
		}
		if acceptance != 0 && !(acceptance > 0 && acceptance < 1) {
			t.Fatalf("acceptance %v accepted", acceptance)
		}
	})
}
