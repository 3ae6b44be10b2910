package eigenscore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/method"
	"github.com/eigenscore/eigenscore/spectrum"
)

// A cheap estimator for tests: the serving path is the same for any preset.
func cheap() *eigenscore.Options {
	return &eigenscore.Options{Preset: "fast+iters=1", Sigmas: []float64{0.342, 0.724, 1.24}, Acceptance: 0.8, Seed: 3}
}

func mixture(t *testing.T) *eigenscore.Model {
	return eigenscore.NewModel(testenv.FashionMixture(t), "gmm:fashion-mnist", "test-gmm")
}

func TestOptionsValidate(t *testing.T) {
	var nilOpts *eigenscore.Options
	if err := nilOpts.Validate(); err != nil {
		t.Errorf("nil options: %v", err)
	}
	if err := (&eigenscore.Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	for _, c := range []struct {
		opts eigenscore.Options
		want string
	}{
		{eigenscore.Options{Method: "magic"}, "Options.Method"},
		{eigenscore.Options{Preset: "turbo"}, "Options.Preset"},
		{eigenscore.Options{Preset: "fast+draws=0"}, "Options.Preset"},
		{eigenscore.Options{Draws: -1}, "Options.Draws"},
		{eigenscore.Options{Sigmas: []float64{}}, "Options.Sigmas"},
		{eigenscore.Options{Sigmas: []float64{0.3, -1}}, "Options.Sigmas[1]"},
		{eigenscore.Options{Sigmas: []float64{math.NaN()}}, "Options.Sigmas[0]"},
		{eigenscore.Options{Sigmas: []float64{math.Inf(1)}}, "Options.Sigmas[0]"},
		{eigenscore.Options{Aggregation: "mode"}, "Options.Aggregation"},
		{eigenscore.Options{Probes: -2}, "Options.Probes"},
		{eigenscore.Options{Acceptance: 1}, "Options.Acceptance"},
		{eigenscore.Options{Acceptance: -0.5}, "Options.Acceptance"},
		{eigenscore.Options{Estimator: &spectrum.Config{K: -1}}, "Options.Estimator.K"},
		{eigenscore.Options{Estimator: &spectrum.Config{K: 1000}}, "Options.Estimator.K"},
		{eigenscore.Options{Estimator: &spectrum.Config{MaxIter: -5}}, "Options.Estimator.MaxIter"},
		{eigenscore.Options{Estimator: &spectrum.Config{Step: math.NaN()}}, "Options.Estimator.Step"},
		{eigenscore.Options{Estimator: &spectrum.Config{Overlap: 2}}, "Options.Estimator.Overlap"},
		{eigenscore.Options{Estimator: &spectrum.Config{Batch: 1 << 20}}, "Options.Estimator.Batch"},
	} {
		err := c.opts.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want it to name %s", c.opts, err, c.want)
		}
	}
}

// Fit refuses bad input with an error naming it, never a panic.
func TestFitRejectsBadInput(t *testing.T) {
	m := mixture(t)
	ctx := context.Background()
	good := testenv.Load(t, "fashion-mnist", "train").Head(12)
	nan := good.Subset([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	nan.Pixels[7] = float32(math.NaN())
	small := &data.Dataset{Name: "small", Shape: good.Shape, Pixels: good.Pixels[:2*good.Dim()]}
	wrong := &data.Dataset{Name: "wrong", Pixels: make([]float32, 3*27*27)}
	wrong.C, wrong.H, wrong.W = 1, 27, 27
	for _, c := range []struct {
		images *data.Dataset
		opts   *eigenscore.Options
		want   string
	}{
		{nil, nil, "no images"},
		{nan, cheap(), "non-finite"},
		{small, cheap(), "at least 10 ID images"},
		{good, &eigenscore.Options{Preset: "fast+iters=1"}, "at least 19 ID images at 0.95"},
		{wrong, cheap(), "1x27x27"},
		{good, &eigenscore.Options{Sigmas: []float64{-1}}, "Sigmas[0]"},
	} {
		if _, err := eigenscore.Fit(ctx, m, c.images, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to mention %q", err, c.want)
		}
	}
}

// Every method can be fitted, saved and loaded, and the loaded detector
// scores exactly as the fitted one; an image's score does not depend on the
// images scored with it; the same seed gives the same scores.
func TestEveryMethodRoundTrips(t *testing.T) {
	m := mixture(t)
	ctx := context.Background()
	fit := testenv.Load(t, "fashion-mnist", "train").Head(12)
	test := testenv.Load(t, "mnist", "test").Head(4)
	for _, meth := range method.All() {
		t.Run(string(meth), func(t *testing.T) {
			opts := cheap()
			opts.Method, opts.Probes = meth, 1
			det, err := eigenscore.Fit(ctx, m, fit, opts)
			if err != nil {
				t.Fatal(err)
			}
			want, err := det.Score(ctx, m, test, nil)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "det.json")
			if err := det.Save(path); err != nil {
				t.Fatal(err)
			}
			loaded, err := eigenscore.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if loaded.Method() != meth || !slices.Equal(loaded.FeatureNames(), det.FeatureNames()) || loaded.Threshold() != det.Threshold() {
				t.Fatalf("loaded detector differs: %s %v %v", loaded.Method(), loaded.FeatureNames(), loaded.Threshold())
			}
			got, err := loaded.Score(ctx, m, test, nil)
			if err != nil {
				t.Fatal(err)
			}
			one, err := loaded.Score(ctx, m, test.Subset([]int{2}), nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i].Score != want[i].Score || got[i].Flagged != want[i].Flagged || !slices.Equal(got[i].Features, want[i].Features) {
					t.Errorf("image %d: loaded detector scores %v, fitted %v", i, got[i], want[i])
				}
			}
			if one[0].Score != want[2].Score {
				t.Errorf("image 2 alone scores %v, with the others %v", one[0].Score, want[2].Score)
			}
		})
	}
}

func TestScoreRefusesAnotherModel(t *testing.T) {
	m := mixture(t)
	ctx := context.Background()
	det, err := eigenscore.Fit(ctx, m, testenv.Load(t, "fashion-mnist", "train").Head(12), cheap())
	if err != nil {
		t.Fatal(err)
	}
	other := eigenscore.NewModel(testenv.FashionMixture(t), "gmm:other", "other-gmm")
	if _, err := det.Score(ctx, other, testenv.Load(t, "mnist", "test").Head(2), nil); err == nil || !strings.Contains(err.Error(), "fitted with test-gmm") {
		t.Errorf("another model: %v", err)
	}
	var zero eigenscore.Detector
	if _, err := zero.Score(ctx, m, testenv.Load(t, "mnist", "test").Head(2), nil); err == nil {
		t.Error("the zero detector scored")
	}
}

// fitted returns a small detector's file.
func fitted(t testing.TB) []byte {
	m := eigenscore.NewModel(testenv.FashionMixture(t), "gmm:fashion-mnist", "test-gmm")
	det, err := eigenscore.Fit(context.Background(), m, testenv.Load(t, "fashion-mnist", "train").Head(12), cheap())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := det.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// edit applies f to the detector file's JSON as a generic map.
func edit(t *testing.T, b []byte, f func(map[string]any)) []byte {
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	f(v)
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeRejectsDamage(t *testing.T) {
	good := fitted(t)
	if _, err := eigenscore.Decode(good); err != nil {
		t.Fatalf("a saved detector was rejected: %v", err)
	}
	sub := func(v map[string]any, keys ...string) map[string]any {
		for _, k := range keys {
			if k == "part" {
				v = v["parts"].([]any)[0].(map[string]any)
				continue
			}
			v = v[k].(map[string]any)
		}
		return v
	}
	for _, c := range []struct {
		name string
		f    func(map[string]any)
		want string
	}{
		{"version", func(v map[string]any) { v["version"] = 99 }, "version 99"},
		{"method", func(v map[string]any) { v["method"] = "magic" }, "magic"},
		{"model id", func(v map[string]any) { sub(v, "model")["id"] = "" }, "model.id"},
		{"shape", func(v map[string]any) { sub(v, "shape")["C"] = 0 }, "shape"},
		{"huge shape", func(v map[string]any) { sub(v, "shape")["H"] = 1 << 40 }, "shape"},
		{"negative max_iter", func(v map[string]any) { sub(v, "settings", "estimator")["max_iter"] = -1 }, "MaxIter"},
		{"batch 0", func(v map[string]any) { sub(v, "settings", "estimator")["batch"] = 0 }, "Batch"},
		{"k beyond the image", func(v map[string]any) {
			sub(v, "shape")["H"], sub(v, "shape")["W"] = 1, 2
			sub(v, "settings", "estimator")["k"] = 3
		}, "exceeds the image dimension"},
		{"draws", func(v map[string]any) { sub(v, "settings")["draws"] = 0 }, "Draws"},
		{"sigma", func(v map[string]any) { sub(v, "settings")["sigmas"] = []any{0.3, -1, 2} }, "Sigmas[1]"},
		{"std zero", func(v map[string]any) { sub(v, "part", "statistics")["std"] = []any{0, 0, 0} }, "std"},
		{"unsorted calibration", func(v map[string]any) { sub(v, "calibration")["scores"] = []any{3, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12} }, "not sorted"},
		{"calibration of other size", func(v map[string]any) { sub(v, "calibration")["scores"] = []any{1, 2, 3, 4, 5, 6} }, "calibration has 6 scores"},
		{"part of another method", func(v map[string]any) { sub(v, "part")["method"] = "msma" }, "parts[0] is msma"},
		{"features of other settings", func(v map[string]any) { sub(v, "settings")["sigmas"] = []any{0.3, 0.5, 2} }, "do not match"},
		{"acceptance", func(v map[string]any) { v["acceptance"] = 0.5 }, "acceptance"},
		{"no parts", func(v map[string]any) { delete(v, "parts") }, "0 parts"},
		{"no statistics", func(v map[string]any) { delete(sub(v, "part"), "statistics") }, "statistics missing"},
		{"unknown field", func(v map[string]any) { v["extra"] = 1 }, "unknown field"},
		{"no map statistics", func(v map[string]any) { delete(v, "explain") }, "explain missing"},
		{"map statistics at other σ", func(v map[string]any) { sub(v, "explain")["sigmas"] = []any{0.3, 0.5, 2} }, "explain.sigmas"},
		{"negative map spread", func(v map[string]any) { sub(v, "explain")["sd"].([]any)[1].([]any)[5] = -1 }, "explain.sd[1][5] = -1"},
		{"short map", func(v map[string]any) { sub(v, "explain")["mean"].([]any)[2] = []any{1, 2} }, "explain.mean[2] has 2 values"},
		{"map levels", func(v map[string]any) { sub(v, "explain")["sd"] = []any{[]any{1}} }, "explain.sd has 1 levels"},
		{"map statistic not a number", func(v map[string]any) { sub(v, "explain")["mean"].([]any)[0].([]any)[0] = "NaN" }, "not a detector file"},
	} {
		_, err := eigenscore.Decode(edit(t, good, c.f))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
	}
	for _, bad := range [][]byte{nil, good[:len(good)/2], append(slices.Clone(good), "{}"...), []byte("null")} {
		if _, err := eigenscore.Decode(bad); err == nil {
			t.Errorf("%.40q accepted", bad)
		}
	}
}

// The README's library section shows Example verbatim.
func TestREADMEShowsExample(t *testing.T) {
	ex, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, fn, ok := strings.Cut(string(ex), "\n// Fit a detector on Fashion-MNIST")
	if !ok {
		t.Fatal("example_test.go lacks the Example")
	}
	if !strings.Contains(string(readme), "```go\n// Fit a detector on Fashion-MNIST"+fn+"```") {
		t.Error("README.md's library section differs from Example in example_test.go; copy it over")
	}
}
