package detector

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore/metrics"
)

func lognormalRows(rng *rand.Rand, n int, shift float64) [][]float64 {
	rows := make([][]float64, n)
	for i := range rows {
		common := rng.NormFloat64()
		r := make([]float64, 3)
		for j := range r {
			r[j] = math.Exp(shift + 0.3*common + 0.1*rng.NormFloat64() + float64(j))
		}
		rows[i] = r
	}
	return rows
}

func TestScoresAndThreshold(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	names := []string{"a", "b", "c"}
	det, err := Fit(names, lognormalRows(rng, 2000, 0), 0.95, TwoSided)
	if err != nil {
		t.Fatal(err)
	}
	idTest := lognormalRows(rng, 2000, 0)
	small := lognormalRows(rng, 500, -1) // spectra smaller than ID
	large := lognormalRows(rng, 500, 1)
	for _, s := range Scores {
		id, _ := det.ScoreAll(idTest, s)
		// Held-out ID acceptance at the 95% threshold: binomial sd with
		// n=2000 is 0.5%, so 2% is four standard deviations.
		acc := 0
		for _, v := range id {
			if !det.Flag(v, s) {
				acc++
			}
		}
		if rate := float64(acc) / 2000; math.Abs(rate-0.95) > 0.02 {
			t.Errorf("%s: held-out ID acceptance %.3f, want 0.95 ± 0.02", s, rate)
		}
		lo, _ := det.ScoreAll(small, s)
		hi, _ := det.ScoreAll(large, s)
		aSmall, aLarge := metrics.AUROC(id, lo), metrics.AUROC(id, hi)
		t.Logf("%s: AUROC smaller-spectrum OOD %.3f, larger %.3f", s, aSmall, aLarge)
		if aLarge < 0.95 {
			t.Errorf("%s misses larger spectra: AUROC %.3f", s, aLarge)
		}
		if s == TwoSided && aSmall < 0.95 {
			t.Errorf("two-sided misses smaller spectra: AUROC %.3f", aSmall)
		}
		if s == OneSided && aSmall > 0.05 {
			t.Errorf("one-sided should rank smaller spectra as ID, got AUROC %.3f", aSmall)
		}
	}
	path := filepath.Join(t.TempDir(), "det.json")
	if err := det.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := det.Score(idTest[0], TwoSided)
	b, _ := back.Score(idTest[0], TwoSided)
	if a != b {
		t.Errorf("loaded detector scores %v, want %v", b, a)
	}
	if _, err := det.Score([]float64{1, 2}, OneSided); err == nil {
		t.Error("wrong feature count accepted")
	}
	if _, err := det.Score([]float64{1, math.NaN(), 2}, OneSided); err == nil {
		t.Error("NaN feature accepted")
	}
}

// fitted returns a detector fitted on a small synthetic positive data set
// and its JSON as written by Save.
func fitted(t testing.TB) (*Detector, []byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	det, err := Fit([]string{"a", "b", "c"}, lognormalRows(rng, 50, 0), 0.9, TwoSided)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(det)
	if err != nil {
		t.Fatal(err)
	}
	return det, b
}

// withField returns the JSON of det with one top-level field replaced by
// value (deleted when value is nil).
func withField(t testing.TB, js []byte, field string, value any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	if value == nil {
		delete(m, field)
	} else {
		m[field] = value
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidateRejectsTampered(t *testing.T) {
	_, good := fitted(t)
	if _, err := Decode(good); err != nil {
		t.Fatalf("fitted detector rejected: %v", err)
	}
	m := 3
	prec := func(f func(p []float64)) func(*Detector) {
		return func(d *Detector) { f(d.LogPrec) }
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Detector) // applied to a decoded copy; checked with Validate and, if JSON can hold it, Decode
		raw    func([]byte) []byte
		want   string
	}{
		{name: "std zero", mutate: func(d *Detector) { d.Std = make([]float64, m) }, want: "std[0]"},
		{name: "std one zero", mutate: func(d *Detector) { d.Std[2] = 0 }, want: "std[2]"},
		{name: "std negative", mutate: func(d *Detector) { d.Std[1] = -d.Std[1] }, want: "std[1]"},
		{name: "NaN mean", mutate: func(d *Detector) { d.Mean[0] = math.NaN() }, want: "mean[0]"},
		{name: "Inf std", mutate: func(d *Detector) { d.Std[0] = math.Inf(1) }, want: "std[0]"},
		{name: "NaN log mean", mutate: func(d *Detector) { d.LogMean[1] = math.NaN() }, want: "log_mean[1]"},
		{name: "Inf precision", mutate: prec(func(p []float64) { p[4] = math.Inf(1) }), want: "log_precision[4]"},
		{name: "Inf threshold", mutate: func(d *Detector) { d.Thresholds[OneSided] = math.Inf(1) }, want: "thresholds[one-sided]"},
		{name: "NaN threshold", mutate: func(d *Detector) { d.Thresholds[TwoSided] = math.NaN() }, want: "thresholds[two-sided]"},
		{name: "asymmetric precision", mutate: prec(func(p []float64) { p[0*m+1] *= 1.5 }), want: "log_precision is not symmetric"},
		{name: "slightly asymmetric precision", mutate: prec(func(p []float64) { p[1*m+2] += 1e-6 * math.Sqrt(p[1*m+1]*p[2*m+2]) }), want: "log_precision is not symmetric"},
		{name: "non-PD precision", mutate: prec(func(p []float64) { p[1*m+1] = -p[1*m+1] }), want: "log_precision is not positive definite"},
		{name: "singular precision", mutate: prec(func(p []float64) {
			for i := range p {
				p[i] = 1
			}
		}), want: "log_precision is not positive definite"},
		{name: "zero precision", mutate: prec(func(p []float64) { clear(p) }), want: "log_precision is not positive definite"},
		{name: "acceptance 1.5", mutate: func(d *Detector) { d.Acceptance = 1.5 }, want: "acceptance"},
		{name: "acceptance 0", mutate: func(d *Detector) { d.Acceptance = 0 }, want: "acceptance"},
		{name: "acceptance 1", mutate: func(d *Detector) { d.Acceptance = 1 }, want: "acceptance"},
		{name: "default bogus", mutate: func(d *Detector) { d.Default = "bogus" }, want: "default_score"},
		{name: "default empty", mutate: func(d *Detector) { d.Default = "" }, want: "default_score"},
		{name: "fit_size 1", mutate: func(d *Detector) { d.FitSize = 1 }, want: "fit_size"},
		{name: "fit_size negative", mutate: func(d *Detector) { d.FitSize = -5 }, want: "fit_size"},
		{name: "missing threshold", mutate: func(d *Detector) { delete(d.Thresholds, TwoSided) }, want: "thresholds has no entry for the two-sided"},
		{name: "no thresholds", mutate: func(d *Detector) { d.Thresholds = nil }, want: "thresholds"},
		{name: "unknown threshold", mutate: func(d *Detector) { d.Thresholds["bogus"] = 1 }, want: "thresholds has an entry for the unknown score"},
		{name: "empty feature name", mutate: func(d *Detector) { d.Features[1] = "" }, want: "features[1]"},
		{name: "short std", mutate: func(d *Detector) { d.Std = d.Std[:2] }, want: "inconsistent dimensions"},
		{name: "short precision", mutate: func(d *Detector) { d.LogPrec = d.LogPrec[:8] }, want: "inconsistent dimensions"},
		{name: "missing features", mutate: func(d *Detector) { d.Features = nil }, want: "inconsistent dimensions"},
		{name: "empty", mutate: func(d *Detector) { *d = Detector{} }, want: "inconsistent dimensions"},
		{name: "unknown JSON field", raw: func(b []byte) []byte { return withField(t, b, "sigma", 3) }, want: `unknown field "sigma"`},
		{name: "missing std field", raw: func(b []byte) []byte { return withField(t, b, "std", nil) }, want: "inconsistent dimensions"},
		{name: "trailing garbage", raw: func(b []byte) []byte { return append(b, " xyz"...) }, want: "data after the detector object"},
		{name: "trailing object", raw: func(b []byte) []byte { return append(b, "\n{}"...) }, want: "data after the detector object"},
		{name: "NaN literal", raw: func(b []byte) []byte { return bytes.Replace(b, []byte(`"mean":[`), []byte(`"mean":[NaN,`), 1) }, want: "not a detector file"},
		{name: "overflowing number", raw: func(b []byte) []byte { return bytes.Replace(b, []byte(`"std":[`), []byte(`"std":[1e999,`), 1) }, want: "not a detector file"},
		{name: "truncated", raw: func(b []byte) []byte { return b[:len(b)/2] }, want: "not a detector file"},
		{name: "null", raw: func([]byte) []byte { return []byte("null") }, want: "inconsistent dimensions"},
		{name: "empty input", raw: func([]byte) []byte { return nil }, want: "not a detector file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in []byte
			if tc.mutate != nil {
				d, err := Decode(good)
				if err != nil {
					t.Fatal(err)
				}
				tc.mutate(d)
				err = d.Validate()
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Validate: %v, want an error mentioning %q", err, tc.want)
				}
				if err := d.Save(filepath.Join(t.TempDir(), "det.json")); err == nil {
					t.Error("Save wrote an invalid detector")
				}
				if in, err = json.Marshal(d); err != nil {
					return // NaN/Inf: JSON cannot hold it
				}
			} else {
				in = tc.raw(good)
			}
			d, err := Decode(in)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "detector: ") {
				t.Fatalf("Decode: %v, want an error beginning with \"detector: \" and mentioning %q", err, tc.want)
			}
			if d != nil {
				t.Error("Decode returned a detector with its error")
			}
			path := filepath.Join(t.TempDir(), "det.json")
			if err := os.WriteFile(path, in, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(path); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Load: %v, want an error naming %s and mentioning %q", err, path, tc.want)
			}
		})
	}
}

func TestValidateSymmetryTolerance(t *testing.T) {
	d, _ := fitted(t)
	// A rounding-level asymmetry, as from a tool printing 12 significant
	// digits, is accepted.
	m := len(d.Mean)
	d.LogPrec[0*m+1] *= 1 + 1e-12
	if err := d.Validate(); err != nil {
		t.Errorf("rounding-level asymmetry rejected: %v", err)
	}
	var nilDet *Detector
	if err := nilDet.Validate(); err == nil {
		t.Error("nil detector accepted")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"a", "b", "c"}
	det, err := Fit(names, lognormalRows(rng, 200, 0), 0.95, OneSided)
	if err != nil {
		t.Fatal(err)
	}
	det.Meta = map[string]any{"sigmas": []any{0.1, 0.2}, "draws": 4.0, "denoiser": "gmm"}
	path := filepath.Join(t.TempDir(), "det.json")
	if err := det.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, det) {
		t.Errorf("loaded detector differs:\n got %+v\nwant %+v", back, det)
	}
	rows := append(lognormalRows(rng, 20, 0), lognormalRows(rng, 20, -2)...)
	for _, s := range Scores {
		want, err := det.ScoreAll(rows, s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := back.ScoreAll(rows, s)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got[i] != want[i] || back.Flag(got[i], s) != det.Flag(want[i], s) {
				t.Errorf("%s row %d: loaded detector scores %v, fitted %v", s, i, got[i], want[i])
			}
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := Decode(b)
	if err != nil || !reflect.DeepEqual(dec, det) {
		t.Errorf("Decode of the saved file: %v, %+v", err, dec)
	}
}

func TestScoreOverflow(t *testing.T) {
	d, _ := fitted(t)
	for _, tc := range []struct {
		name string
		f    []float64
		s    Score
	}{
		{"huge one-sided", []float64{1e300, 1e300, 1e300}, OneSided},
		{"opposite huge one-sided", []float64{math.MaxFloat64, 1, 1}, OneSided},
	} {
		// Make the one-sided terms overflow: a tiny std is valid.
		d.Std[0] = 1e-300
		v, err := d.Score(tc.f, tc.s)
		if err == nil || !strings.Contains(err.Error(), "not finite") || !strings.Contains(err.Error(), "1e+300") && !strings.Contains(err.Error(), "1.7976931348623157e+308") {
			t.Errorf("%s: score %v, %v; want an error naming the features", tc.name, v, err)
		}
	}
	// Two-sided with a valid but huge precision.
	d, _ = fitted(t)
	for i := range d.LogPrec {
		d.LogPrec[i] *= 1e306
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Score([]float64{1e300, 1e-300, 1e300}, TwoSided); err == nil {
		t.Errorf("two-sided overflow scored %v", v)
	}
	// Extreme but representable features on a fitted detector stay finite
	// or are an error, never NaN/Inf.
	d, _ = fitted(t)
	for _, f := range [][]float64{{1e300, 1e300, 1e300}, {1e-300, 1e-300, 1e-300}, {math.MaxFloat64, math.SmallestNonzeroFloat64, 1}} {
		for _, s := range Scores {
			if v, err := d.Score(f, s); err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
				t.Errorf("%s score of %v is %v", s, f, v)
			}
		}
	}
	if _, err := d.Score([]float64{1, 0, 1}, TwoSided); err == nil {
		t.Error("two-sided accepted a zero feature")
	}
	if _, err := d.Score([]float64{1, 0, -1}, OneSided); err != nil {
		t.Errorf("one-sided rejected finite non-positive features: %v", err)
	}
	if _, err := d.Score([]float64{1, 2, 3}, "bogus"); err == nil {
		t.Error("unknown score accepted")
	}
}

func TestFitRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	rows := lognormalRows(rng, 20, 0)
	if _, err := Fit([]string{"a", "b", "c"}, rows, 0.9, "bogus"); err == nil {
		t.Error("unknown default score accepted")
	}
	if _, err := Fit([]string{"a", "", "c"}, rows, 0.9, OneSided); err == nil || !strings.Contains(err.Error(), "features[1]") {
		t.Errorf("empty feature name: %v", err)
	}
	names := []string{"a", "b", "c"}
	d, err := Fit(names, rows, 0.9, OneSided)
	if err != nil {
		t.Fatal(err)
	}
	names[0] = ""
	if err := d.Validate(); err != nil {
		t.Errorf("Fit kept the caller's names slice: %v", err)
	}
}
