package pipeline

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"image"
	"math"

	"github.com/eigenscore/eigenscore/internal/imagetest"

	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/models"
)

func TestMain(m *testing.M) { ptest.MainWithDefault(m, "prism") }

// fixture is a detector fitted on 100 Fashion-MNIST training images with
// the shipped network and the default (combined) method, and the model.
var fixture struct {
	once sync.Once
	path string
	det  *eigenscore.Detector
	m    *eigenscore.Model
	err  error
}

func detector(t *testing.T) (string, *eigenscore.Detector, *eigenscore.Model) {
	t.Helper()
	fixture.once.Do(func() {
		m, err := models.Open("fashion-mnist", nil)
		if err != nil {
			fixture.err = err
			return
		}
		fit := testenv.Load(t, "fashion-mnist", data.Train).Head(100)
		det, err := eigenscore.Fit(context.Background(), m, fit, nil)
		if err != nil {
			fixture.err = err
			return
		}
		dir, err := os.MkdirTemp("", "eigenscore-beam-test-")
		if err != nil {
			fixture.err = err
			return
		}
		fixture.path = filepath.Join(dir, "detector.json")
		fixture.det, fixture.m, fixture.err = det, m, det.Save(fixture.path)
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.path, fixture.det, fixture.m
}

// inputs writes two .npy shards of MNIST test images (25 and 15) and three
// PNG files of Fashion-MNIST test images into dir.
func inputs(t *testing.T, dir string) (shards []*data.Dataset, pngDir string) {
	t.Helper()
	mnist := testenv.Load(t, "mnist", data.Test)
	for i, r := range [][2]int{{0, 25}, {25, 40}} {
		idx := make([]int, r[1]-r[0])
		for j := range idx {
			idx[j] = r[0] + j
		}
		ds := mnist.Subset(idx)
		if err := data.SaveNPY(filepath.Join(dir, "shard"+strconv.Itoa(i)+".npy"), ds); err != nil {
			t.Fatal(err)
		}
		shards = append(shards, ds)
	}
	pngDir = filepath.Join(dir, "png")
	if err := os.MkdirAll(pngDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fm := testenv.Load(t, "fashion-mnist", data.Test)
	for i := range 3 {
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		for p, v := range fm.Image(i) {
			img.Pix[p] = uint8((v + 1) * 127.5)
		}
		imagetest.Write(t, filepath.Join(pngDir, "fm"+strconv.Itoa(i)+".png"), img)
	}
	return shards, pngDir
}

// readRows reads every CSV part file listed in the summary, by image id,
// failing on an id seen twice.
func readRows(t *testing.T, output string, sum *Summary) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	for _, part := range sum.Parts {
		f, err := os.Open(filepath.Join(output, part))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", part, err)
		}
		for _, r := range recs[1:] {
			if _, dup := rows[r[0]]; dup {
				t.Fatalf("image %s appears twice in the output", r[0])
			}
			rows[r[0]] = r
		}
	}
	return rows
}

// checkRow compares a CSV row with a Result exactly: the output holds
// every number in a form that reads back to the same float64.
func checkRow(t *testing.T, id string, row []string, want eigenscore.Result) {
	t.Helper()
	got := []float64{}
	for _, s := range append(row[3:5:5], row[6:]...) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		got = append(got, v)
	}
	exp := append([]float64{want.Score, want.PValue}, want.Features...)
	if len(got) != len(exp) {
		t.Fatalf("%s: %d numbers, want %d", id, len(got), len(exp))
	}
	for i := range got {
		if got[i] != exp[i] {
			t.Errorf("%s: column %d = %v, Detector.Score gives %v", id, i, got[i], exp[i])
		}
	}
	if row[5] != strconv.FormatBool(want.Flagged) {
		t.Errorf("%s: flagged %s, want %v", id, row[5], want.Flagged)
	}
}

func seq(lo, hi int) []int {
	out := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		out = append(out, i)
	}
	return out
}

// scoredAlike checks that an image scored within its work item and within
// its whole file agree to float32 rounding. They need not be bit-identical:
// ONNX Runtime's float32 kernels round a row's output differently
// depending on its place in a run (by at most a few units in the last
// place, 2^-23 ≈ 1.2e-7 relative), and the subspace iteration carries that
// into the eigenvalues at the same relative order. 1e-5 is over ten times
// the differences seen (up to 6e-7 on these images)
// while failing on any real difference such as another noise draw (which
// moves features by percents). The p-value may then move by a rank or two
// of the 100 calibration scores.
func scoredAlike(t *testing.T, id string, a, b eigenscore.Result) {
	t.Helper()
	const rel = 1e-5
	close := func(x, y float64) bool { return math.Abs(x-y) <= rel*math.Max(math.Abs(x), math.Abs(y)) }
	if !close(a.Score, b.Score) {
		t.Errorf("%s: score %v in its item, %v in its file", id, a.Score, b.Score)
	}
	for j := range a.Features {
		if !close(a.Features[j], b.Features[j]) {
			t.Errorf("%s: feature %d is %v in its item, %v in its file", id, j, a.Features[j], b.Features[j])
		}
	}
	if math.Abs(a.PValue-b.PValue) > 1.0/50 {
		t.Errorf("%s: p-value %v in its item, %v in its file", id, a.PValue, b.PValue)
	}
}

func TestPipelineEqualsDetectorScore(t *testing.T) {
	path, det, m := detector(t)
	dir := t.TempDir()
	shards, pngDir := inputs(t, dir)
	out := filepath.Join(dir, "out")
	cfg := Config{Inputs: []string{filepath.Join(dir, "*.npy"), pngDir}, Detector: path, Output: out, ItemSize: 10}
	sum, err := Run(context.Background(), "prism", cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 25 → 3 items, 15 → 2 items, 3 PNG files → 1 item.
	if sum.Images != 43 || sum.Items != 6 || sum.Failures != 0 || sum.Resumed != 0 {
		t.Fatalf("summary %+v, want 43 images in 6 items, no failures", sum)
	}
	if sum.NFE <= 0 || sum.Method != string(det.Method()) {
		t.Errorf("summary %+v: want the NFEs spent and method %s", sum, det.Method())
	}
	rows := readRows(t, out, sum)
	if len(rows) != 43 {
		t.Fatalf("%d rows, want 43", len(rows))
	}
	ctx := context.Background()
	// Exactly what Detector.Score gives for the item's images, and, to
	// float32 rounding, what it gives for the whole file (see scoredAlike).
	for i, ds := range shards {
		src := filepath.Join(dir, "shard"+strconv.Itoa(i)+".npy")
		whole, err := det.Score(ctx, m, ds, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ranges(ds.Len(), cfg.ItemSize) {
			res, err := det.Score(ctx, m, ds.Subset(seq(r[0], r[1])), nil)
			if err != nil {
				t.Fatal(err)
			}
			for j, want := range res {
				id := imageID(src, r[0]+j)
				checkRow(t, id, rows[id], want)
				scoredAlike(t, id, want, whole[r[0]+j])
			}
		}
	}
	// The PNG files against `eigenscore score --data FOLDER`'s loader.
	folder, err := data.LoadFor("", data.Spec{Name: pngDir}, data.Test, det.Shape())
	if err != nil {
		t.Fatal(err)
	}
	res, err := det.Score(ctx, m, folder, nil)
	if err != nil {
		t.Fatal(err)
	}
	for j, r := range res {
		id := imageID(filepath.Join(pngDir, "fm"+strconv.Itoa(j)+".png"), 0)
		checkRow(t, id, rows[id], r)
	}

	// A second run of the same job resumes every item and writes nothing new.
	again, err := Run(ctx, "prism", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again.Resumed != 6 || again.Images != 43 || again.NFE != sum.NFE {
		t.Errorf("rerun summary %+v, want all 6 items resumed with the same counts", again)
	}
	// Another job into the same folder is refused.
	other := cfg
	other.ItemSize = 20
	if _, err := Run(ctx, "prism", other); err == nil || !strings.Contains(err.Error(), "another job") {
		t.Errorf("a different job in the same folder: err = %v, want it refused", err)
	}
}

// A worker that dies while writing an item's rows leaves no part of them;
// the rerun scores the item again and the output holds each image once,
// byte for byte what a run without the failure writes.
func TestPipelineRetriedItemsWriteOnce(t *testing.T) {
	path, _, _ := detector(t)
	dir := t.TempDir()
	inputs(t, dir)
	in := []string{filepath.Join(dir, "shard0.npy")}
	clean := Config{Inputs: in, Detector: path, Output: filepath.Join(dir, "clean"), ItemSize: 10}
	want, err := Run(context.Background(), "prism", clean)
	if err != nil {
		t.Fatal(err)
	}

	faults := filepath.Join(dir, "faults")
	if err := os.MkdirAll(faults, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := clean
	cfg.Output, cfg.FaultDir = filepath.Join(dir, "faulty"), faults
	_, err = Run(context.Background(), "prism", cfg)
	if err == nil || !strings.Contains(err.Error(), "injected transient failure") {
		t.Fatalf("err = %v, want the injected failure", err)
	}
	if _, err := ReadSummary(cfg.Output); err == nil {
		t.Fatal("a failed run left a summary: the output reads as complete")
	}
	entries, _ := os.ReadDir(cfg.Output)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("a failed write left %s", e.Name())
		}
	}
	var got *Summary
	for range 3 { // each run fails at most at the items not yet failed once
		if got, err = Run(context.Background(), "prism", cfg); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if got.Images != want.Images || len(got.Parts) != len(want.Parts) {
		t.Fatalf("after retries: %+v, want %+v", got, want)
	}
	rows := readRows(t, cfg.Output, got)
	if len(rows) != 25 {
		t.Errorf("%d rows, want 25", len(rows))
	}
	for _, part := range want.Parts {
		a, err1 := os.ReadFile(filepath.Join(clean.Output, part))
		b, err2 := os.ReadFile(filepath.Join(cfg.Output, part))
		if err1 != nil || err2 != nil || string(a) != string(b) {
			t.Errorf("part %s differs from the clean run's (%v, %v)", part, err1, err2)
		}
	}
}

// Scoring an item twice (a retried bundle on a runner that retries)
// rewrites the same part file with the same bytes.
func TestScoreItemTwice(t *testing.T) {
	path, _, _ := detector(t)
	dir := t.TempDir()
	inputs(t, dir)
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	fn := &scoreFn{Cfg: Config{Detector: path, Output: out, Format: JSONL}}
	if err := fn.Setup(); err != nil {
		t.Fatal(err)
	}
	defer fn.Teardown()
	it := Item{Shard: filepath.Join(dir, "shard1.npy"), Lo: 3, Hi: 9}
	var stats []Stats
	emit := func(s Stats) { stats = append(stats, s) }
	fail := func(f Failure) { t.Errorf("failure %+v", f) }
	if err := fn.ProcessElement(context.Background(), it, emit, fail); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(out, it.Key()+".jsonl")
	first, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(part + ".done") // as if the first attempt died before recording it
	if err := fn.ProcessElement(context.Background(), it, emit, fail); err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(second) {
		t.Error("the retried item wrote different bytes")
	}
	lines := strings.Split(strings.TrimSpace(string(second)), "\n")
	if len(lines) != 6 || len(stats) != 2 || stats[1].Images != 6 {
		t.Fatalf("%d rows and stats %+v, want 6 rows per attempt", len(lines), stats)
	}
	var row Row
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil {
		t.Fatal(err)
	}
	if row.ID != imageID(it.Shard, 3) || row.Index != 3 || len(row.Features) == 0 {
		t.Errorf("first row %+v, want image 3 of %s with its features", row, it.Shard)
	}
}

func TestPipelineBadInput(t *testing.T) {
	path, _, _ := detector(t)
	dir := t.TempDir()
	inputs(t, dir)
	bad := filepath.Join(dir, "bad.npy")
	if err := os.WriteFile(bad, []byte("\x93NUMPY garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	pngDir := filepath.Join(dir, "png")
	if err := os.WriteFile(filepath.Join(pngDir, "broken.png"), []byte("\x89PNG\r\n\x1a\nbroken"), 0o644); err != nil {
		t.Fatal(err)
	}
	imagetest.Write(t, filepath.Join(pngDir, "rgb.png"), image.NewNRGBA(image.Rect(0, 0, 40, 30))) // resized to 28×28 gray
	cfg := Config{Inputs: []string{bad, pngDir, filepath.Join(dir, "missing-*.npy")}, Detector: path,
		Output: filepath.Join(dir, "out"), ItemSize: 10, Format: JSONL}
	_, err := Run(context.Background(), "prism", cfg)
	if err == nil || !(strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), "broken.png") || strings.Contains(err.Error(), "missing-*")) {
		t.Fatalf("err = %v, want it to name a bad input", err)
	}

	cfg.SkipBadInput = true
	sum, err := Run(context.Background(), "prism", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failures != 3 || sum.Images != 4 {
		t.Fatalf("summary %+v, want 3 failures and the 4 good images scored", sum)
	}
	b, err := os.ReadFile(filepath.Join(cfg.Output, failuresFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{bad, "broken.png", "missing-*.npy"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not list %s:\n%s", failuresFile, want, b)
		}
	}

}

func TestConfigValidate(t *testing.T) {
	ok := Config{Inputs: []string{"x/*.npy"}, Detector: "d.json", Output: "out"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, c := range map[string]Config{
		"Inputs":    {Detector: "d.json", Output: "out"},
		"Detector":  {Inputs: []string{"x"}, Output: "out"},
		"Output":    {Inputs: []string{"x"}, Detector: "d.json"},
		"Format":    {Inputs: []string{"x"}, Detector: "d.json", Output: "out", Format: "xml"},
		"ItemSize":  {Inputs: []string{"x"}, Detector: "d.json", Output: "out", ItemSize: -1},
		"Inputs[0]": {Inputs: []string{"x["}, Detector: "d.json", Output: "out"},
	} {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: err = %v, want it named", field, err)
		}
	}
}
