package main

import (
	"encoding/csv"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/internal/testenv"
)

// readExplanation reads an explanation's JSON and checks its panel decodes.
func readExplanation(t *testing.T, base string) explainFile {
	t.Helper()
	b, err := os.ReadFile(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var e explainFile
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(base + ".png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s.png: %v", base, err)
	}
	if b := m.Bounds(); b.Dx() < 600 || b.Dy() < 600 {
		t.Errorf("%s.png is %v, too small for a row per σ", base, b)
	}
	if e.Explanation == nil || len(e.Explanation.Levels) != 5 || len(e.Features) != 5 { // eigenscore, the default: one eigenvalue per level
		t.Fatalf("%s.json: %d features, explanation %+v", base, len(e.Features), e.Explanation)
	}
	return e
}

// score --explain writes a panel and a JSON per flagged image, or per
// image with --explain-all, with the scores of the CSV; explain IMAGE does
// the same for a PNG file (the same pixels give the same score) and for an
// NPY file of several images; bad requests are clear errors.
func TestExplainCommands(t *testing.T) {
	dir := t.TempDir()
	det := filepath.Join(dir, "det.json")
	if _, err := run(t, "fit", "--id", "fashion-mnist", "--n", "30", "--preset", "fast", "--out", det, "--no-cache"); err != nil {
		t.Fatal(err)
	}
	csvPath, all, flaggedDir := filepath.Join(dir, "s.csv"), filepath.Join(dir, "all"), filepath.Join(dir, "flagged")
	out, err := run(t, "score", "--detector", det, "--data", "mnist", "--n", "6", "--csv", csvPath, "--explain", all, "--explain-all", "--no-cache")
	if err != nil || !strings.Contains(out, "wrote 6 explanations") {
		t.Fatalf("score --explain-all: %v\n%s", err, out)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	flagged := 0
	for i, r := range rows[1:] {
		e := readExplanation(t, filepath.Join(all, r[0]))
		if e.Index != i || e.Image != "mnist" || r[4] != strconv.FormatBool(e.Flagged) {
			t.Errorf("image %d: JSON says index %d of %s, flagged %v; CSV %v", i, e.Index, e.Image, e.Flagged, r)
		}
		if e.Flagged {
			flagged++
		}
	}
	if _, err := run(t, "score", "--detector", det, "--data", "mnist", "--n", "6", "--explain", flaggedDir, "--no-cache"); err != nil {
		t.Fatal(err)
	}
	if pngs, _ := filepath.Glob(filepath.Join(flaggedDir, "*.png")); len(pngs) != flagged {
		t.Errorf("without --explain-all: %d panels for %d flagged images", len(pngs), flagged)
	}

	// A Fashion-MNIST test image as a PNG file scores as in the data set.
	fm := testenv.Load(t, "fashion-mnist", "test").Head(2)
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for p, v := range fm.Image(0) {
		img.Pix[p] = uint8(math.Round(float64(v+1) * 127.5))
	}
	pngPath := filepath.Join(dir, "shirt.png")
	w, err := os.Create(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(w, img); err != nil {
		t.Fatal(err)
	}
	w.Close()
	expl := filepath.Join(dir, "one")
	if _, err := run(t, "explain", pngPath, "--detector", det, "--out", expl); err != nil {
		t.Fatal(err)
	}
	one := readExplanation(t, filepath.Join(expl, "shirt"))
	ref := filepath.Join(dir, "ref")
	if _, err := run(t, "score", "--detector", det, "--data", "fashion-mnist", "--n", "1", "--explain", ref, "--explain-all", "--no-cache"); err != nil {
		t.Fatal(err)
	}
	if want := readExplanation(t, filepath.Join(ref, "0")); one.Score != want.Score || one.Peak != want.Peak {
		t.Errorf("the image from a PNG file: score %v peak %+v; from the data set %v %+v", one.Score, one.Peak, want.Score, want.Peak)
	}
	npy := filepath.Join(dir, "two.npy")
	if err := data.SaveNPY(npy, fm); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "explain", npy, "--detector", det, "--out", expl); err != nil {
		t.Fatal(err)
	}
	readExplanation(t, filepath.Join(expl, "two-0"))
	readExplanation(t, filepath.Join(expl, "two-1"))

	recon := filepath.Join(dir, "recon.json")
	if _, err := run(t, "fit", "--id", "fashion-mnist", "--n", "30", "--method", "recon-error", "--out", recon, "--no-cache"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"score", "--detector", det, "--data", "mnist", "--explain-all"}, "--explain-all needs --explain DIR"},
		{[]string{"explain", filepath.Join(dir, "s.csv"), "--detector", det, "--out", expl}, "want a .png, .jpg, .jpeg or .npy file"},
		{[]string{"explain", pngPath, "--detector", recon, "--out", expl}, "no spectra to explain"},
		{[]string{"explain", pngPath, "--detector", det}, `"out" not set`},
	} {
		if _, err := run(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to mention %q", c.args, err, c.want)
		}
	}
}
