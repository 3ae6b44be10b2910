package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/metrics"
)

// cacheDir is the tests' cache directory: fresh for each run of the test
// binary, holding only the mixture fixture (testenv.Mixture, which is
// refitted when package gmm changes) where `--denoiser gmm` looks for it.
var (
	cacheDir    string
	mixtureOnce sync.Once
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eigenscore-cli-test-")
	if err != nil {
		panic(err)
	}
	cacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func cacheWithMixture(t *testing.T) string {
	t.Helper()
	mixtureOnce.Do(func() { saveMixture(t, cacheDir) })
	return cacheDir
}

func saveMixture(t *testing.T, dir string) {
	m := testenv.Mixture(t, "fashion-mnist", 0)
	if err := os.MkdirAll(filepath.Join(dir, "gmm"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(filepath.Join(dir, "gmm", "fashion-mnist-r64.gob.gz")); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--data-dir", testenv.DataDir(), "--cache-dir", cacheWithMixture(t), "-q"}, args...))
	err := root.Execute()
	return out.String(), err
}

// The estimated top-3 eigenvalues match the mixture's exact ones. The
// bound: the value rule stops with a relative error of about
// ValueTol/(2(1−r)) for an eigenvalue ratio r (spectrum.Config.ValueTol),
// 0.1% at ValueTol 1e-5 for r up to 0.995, and float32 differences at step
// 1e-3 add about 1e-7/1e-3 = 1e-4; 0.5% leaves room for both.
func TestSpectrumExact(t *testing.T) {
	out, err := run(t, "spectrum", "--denoiser", "gmm", "--data", "fashion-mnist", "--n", "1", "--sigma", "0.724",
		"--exact", "--step", "1e-3", "--value-tol", "1e-5", "--iters", "2000")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(out, "max_rel_err=")
	if !ok || !strings.Contains(out, "exact [") {
		t.Fatalf("output lacks the exact comparison:\n%s", out)
	}
	rel, err := strconv.ParseFloat(strings.TrimSpace(after), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("max relative error %.3g", rel)
	if !(rel <= 5e-3) {
		t.Errorf("max relative error %.3g against the exact spectrum, want ≤ 0.5%%:\n%s", rel, out)
	}
}

func TestEvalShippedModel(t *testing.T) {
	out, err := run(t, "eval", "--id", "fashion-mnist", "--ood", "mnist", "--n", "6", "--acceptance", "0.8", "--preset", "fast",
		"--methods", "eigenscore,recon-error-2s", "--bootstrap", "0", "--no-cache")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"eigenscore ", "recon-error-2s", "NFE/image"} {
		if !strings.Contains(out, want) {
			t.Errorf("eval output lacks %q:\n%s", want, out)
		}
	}
}

func TestBadInputErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--id", "cifar-11", "--n", "5"}, `unknown dataset "cifar-11"`},
		{[]string{"eval", "--ood", "mnist:3-1", "--n", "5"}, "bad class range"},
		{[]string{"eval", "--denoiser", "/nonexistent.onnx", "--n", "5"}, "/nonexistent.onnx"},
		{[]string{"eval", "--preset", "turbo"}, `unknown preset "turbo"`},
		{[]string{"eval", "--sigmas", "0.3,-1"}, "bad sigma"},
		{[]string{"eval", "--id", "svhn", "--n", "5"}, "unknown dataset"},
		{[]string{"spectrum", "--denoiser", "", "--exact"}, "--exact needs --denoiser gmm"},
	}
	for _, c := range cases {
		_, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to mention %q", c.args, err, c.want)
		}
	}
}

// fit then score: Fashion-MNIST test images score lower than MNIST digits
// on average; the same images give the same scores
// from another file (.npy); a detector is refused for another model or
// when its file is damaged.
func TestFitAndScore(t *testing.T) {
	dir := t.TempDir()
	det := filepath.Join(dir, "det.json")
	if _, err := run(t, "fit", "--id", "fashion-mnist", "--n", "30", "--preset", "fast", "--out", det, "--no-cache"); err != nil {
		t.Fatal(err)
	}
	score := func(data string) []float64 {
		t.Helper()
		csvPath := filepath.Join(dir, "s.csv")
		if _, err := run(t, "score", "--detector", det, "--data", data, "--n", "20", "--csv", csvPath, "--no-cache"); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(csvPath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 21 || rows[0][2] != "score" {
			t.Fatalf("want a header and 20 rows with the score third, got %d rows: %v", len(rows), rows[0])
		}
		var out []float64
		for _, r := range rows[1:] {
			v, err := strconv.ParseFloat(r[2], 64)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	id, ood := score("fashion-mnist"), score("mnist")
	if mean(ood) <= mean(id) {
		t.Errorf("mean one-sided score of MNIST %.3f not above Fashion-MNIST's %.3f", mean(ood), mean(id))
	}

	// The same 20 images from a .npy file score the same.
	ds, err := data.Load(testenv.DataDir(), data.Spec{Name: "fashion-mnist"}, data.Test)
	if err != nil {
		t.Fatal(err)
	}
	npy := filepath.Join(dir, "imgs.npy")
	if err := data.SaveNPY(npy, ds.Head(20)); err != nil {
		t.Fatal(err)
	}
	again := score(npy)
	for i := range id {
		if again[i] != id[i] {
			t.Fatalf("image %d: %v from the .npy file, %v from the IDX set", i, again[i], id[i])
		}
	}

	// Another model's hash, or a damaged file, is refused.
	b, _ := os.ReadFile(det)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(strings.Replace(string(b), `"id": "shipped:`, `"id": "shipped:x`, 1)), 0o644)
	if _, err := run(t, "score", "--detector", bad, "--data", "mnist", "--n", "3", "--no-cache"); err == nil || !strings.Contains(err.Error(), "fitted with") {
		t.Errorf("model mismatch: %v", err)
	}
	os.WriteFile(bad, b[:len(b)/2], 0o644)
	if _, err := run(t, "score", "--detector", bad, "--data", "mnist", "--n", "3"); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("truncated detector file: %v", err)
	}
}

func mean(x []float64) float64 {
	m, _ := metrics.MeanStd(x)
	return m
}

// The report explains the histogram tails: each of the most and least OOD
// test images of each set opens to its panel.
func TestReportExplainsTails(t *testing.T) {
	html := filepath.Join(t.TempDir(), "r.html")
	if _, err := run(t, "eval", "--id", "fashion-mnist", "--ood", "mnist", "--n", "12", "--acceptance", "0.8", "--preset", "fast",
		"--methods", "eigenscore", "--bootstrap", "0", "--examples", "0", "--tails", "1", "--report", html, "--no-cache"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if !strings.Contains(page, "Histogram tails, explained") || strings.Count(page, `<details class="tail">`) != 4 ||
		strings.Count(page, "alt=\"explanation panel of") != 4 {
		t.Errorf("the report does not open 4 tail images (ID and OOD, most and least) to their panels")
	}
}

// writePNGs writes the first n images of a 1×28×28 dataset as 8-bit grey
// PNG files, which decode back to the same pixels.
func writePNGs(t *testing.T, dir string, ds *data.Dataset, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		g := image.NewGray(image.Rect(0, 0, 28, 28))
		for j, v := range ds.Image(i) {
			g.Pix[j] = uint8(math.Round((float64(v) + 1) * 127.5))
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%03d.png", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, g); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

// Image folders work as --id, --ood and --data; a folder's images score as
// the same images from the data set, and a folder used as --id is split
// into disjoint fit and test images.
func TestImageFolders(t *testing.T) {
	dir := t.TempDir()
	fm, mn := filepath.Join(dir, "fm"), filepath.Join(dir, "mn")
	fmTest := testenv.Load(t, "fashion-mnist", "test")
	writePNGs(t, fm, fmTest, 30)
	writePNGs(t, mn, testenv.Load(t, "mnist", "test"), 10)
	model := filepath.Join(testenv.Root(), "models", "fashion-mnist", "model.onnx")
	out, err := run(t, "eval", "--id", fm, "--ood", mn, "--denoiser", model, "--n", "10", "--fit-n", "20", "--acceptance", "0.8",
		"--preset", "fast", "--methods", "eigenscore", "--bootstrap", "0", "--no-cache")
	if err != nil || !strings.Contains(out, "eigenscore ") {
		t.Fatalf("eval on folders: %v\n%s", err, out)
	}
	det := filepath.Join(dir, "det.json")
	if _, err := run(t, "fit", "--id", fm, "--denoiser", model, "--n", "20", "--acceptance", "0.8", "--preset", "fast", "--method", "eigenscore", "--out", det, "--no-cache"); err != nil {
		t.Fatal(err)
	}
	npy := filepath.Join(dir, "fm.npy")
	if err := data.SaveNPY(npy, fmTest.Head(30)); err != nil {
		t.Fatal(err)
	}
	scores := func(spec string) []string {
		csvPath := filepath.Join(dir, "s.csv")
		if _, err := run(t, "score", "--detector", det, "--data", spec, "--csv", csvPath, "--no-cache"); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(csvPath)
		var col []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
			col = append(col, strings.Split(line, ",")[2])
		}
		return col
	}
	if a, b := scores(fm), scores(npy); !slices.Equal(a, b) || len(a) != 30 {
		t.Errorf("the folder's %d scores differ from the same images' from a .npy file:\n%v\n%v", len(a), a, b)
	}
	if _, err := run(t, "score", "--detector", det, "--data", filepath.Join(dir, "nothing"), "--no-cache"); err == nil {
		t.Error("a missing folder was accepted")
	}
}

// bench runs a preset end to end and reports its cost.
func TestBench(t *testing.T) {
	out, err := run(t, "bench", "--denoiser", "gmm", "--id", "fashion-mnist", "--ood", "mnist", "--n", "19", "--preset", "fast")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "fast ") || !strings.Contains(out, "efficiency") {
		t.Errorf("bench output lacks the preset row:\n%s", out)
	}
}
