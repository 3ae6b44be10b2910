package report

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"flag"
	"html"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/metrics"
)

// go test ./report -run TestSample -report.sample=/tmp/sample-report.html
var sample = flag.String("report.sample", "", "write a sample report (HTML, and CSV next to it) to this path")

func gaussians(rng *rand.Rand, n int, mu, sd float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = mu + sd*rng.NormFloat64()
	}
	return v
}

func testSuite(protocol string) Suite {
	rng := rand.New(rand.NewPCG(7, 11))
	s := Suite{
		Title:    "EigenScore evaluation <test>",
		Protocol: protocol,
		Machine:  "2 cores, linux/amd64",
		Command:  `eigenscore eval --id fashion-mnist --ood mnist --n 200 --json "out.json"`,
	}
	type spec struct {
		name       string
		shift, sd  float64
		nfe, secs  float64
		usesOOD    bool
		withCI     bool
		roundTo    float64 // quantise scores to create ties
		outlierOOD bool
	}
	specs := []spec{
		{name: "eigenscore", shift: 1.6, sd: 1, nfe: 1500, secs: 42.5, withCI: true},
		{name: "eigenscore-2s", shift: 2.2, sd: 1.3, nfe: 1500, secs: 43.1, withCI: true, outlierOOD: true},
		{name: "recon<&>", shift: 0.7, sd: 1, nfe: 30, secs: 1.2, usesOOD: true, roundTo: 0.5},
	}
	sigmas := []float64{0.1, 0.2, 0.34226, 0.72359, 1.24016, 2.0}
	for pi, pn := range [][3]string{{"fashion-mnist → mnist", "fashion-mnist", "mnist"}, {"fashion-mnist:0-4 → fashion-mnist:5-9", "fashion-mnist:0-4", "fashion-mnist:5-9"}} {
		p := Pair{Name: pn[0], ID: pn[1], OOD: pn[2], Model: "gmm"}
		for mi, sp := range specs {
			if pi == 1 && mi == 2 {
				continue // a method missing from one pair
			}
			id := gaussians(rng, 150, 0, 1)
			ood := gaussians(rng, 120, sp.shift/float64(pi+1), sp.sd)
			if sp.roundTo > 0 {
				for i := range id {
					id[i] = math.Round(id[i]/sp.roundTo) * sp.roundTo
				}
				for i := range ood {
					ood[i] = math.Round(ood[i]/sp.roundTo) * sp.roundTo
				}
			}
			if sp.outlierOOD {
				ood[0] = 400
			}
			m := Method{Name: sp.name, Report: metrics.Evaluate(id, ood), NFEPerImage: sp.nfe, Seconds: sp.secs,
				IDScores: id, OODScores: ood, UsesOOD: sp.usesOOD}
			if sp.withCI {
				m.CI = metrics.Bootstrap(id, ood, 40, uint64(pi*10+mi))
			}
			p.Methods = append(p.Methods, m)
		}
		for _, sg := range sigmas {
			st := SigmaStats{Sigma: sg}
			for k := 0; k < 3; k++ {
				base := sg * sg * math.Pow(0.5, float64(k)) / (1 + sg*sg)
				st.IDMean = append(st.IDMean, base)
				st.IDStd = append(st.IDStd, base*0.3)
				st.OODMean = append(st.OODMean, base*0.7)
				st.OODStd = append(st.OODStd, base*0.5)
			}
			s := strconv.FormatFloat(sg, 'g', 3, 64)
			p.Spectra = append(p.Spectra, st)
			p.PerSigma = append(p.PerSigma, PerSigmaAUROC{Feature: "log λ1 @ σ=" + s, AUROC: 0.25 + 0.2*sg})
		}
		input := make([]float32, 28*28)
		for y := 0; y < 28; y++ {
			for x := 0; x < 28; x++ {
				r := math.Hypot(float64(x)-13.5, float64(y)-13.5)
				input[y*28+x] = float32(math.Max(-1, 1-r/7))
			}
		}
		ex := Example{Label: "ID #3 (score 1.23)", Shape: denoise.Shape{C: 1, H: 28, W: 28}, Input: input}
		for k := 0; k < 3; k++ {
			ex.Vectors = append(ex.Vectors, unitVector(rng, 28*28))
			ex.Values = append(ex.Values, 0.05/float64(k+1))
		}
		p.Examples = append(p.Examples, ex)
		if pi == 0 { // an RGB example
			rgb := make([]float32, 3*8*8)
			for i := range rgb {
				rgb[i] = float32(rng.Float64()*2 - 1)
			}
			p.Examples = append(p.Examples, Example{Label: "OOD #7 (score 4.56)", Shape: denoise.Shape{C: 3, H: 8, W: 8}, Input: rgb,
				Vectors: [][]float64{unitVector(rng, 3*8*8)}, Values: []float64{0.0123}})
		}
		s.Pairs = append(s.Pairs, p)
	}
	return s
}

func unitVector(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	s := 0.0
	for i := range v {
		v[i] = rng.NormFloat64()
		s += v[i] * v[i]
	}
	for i := range v {
		v[i] /= math.Sqrt(s)
	}
	return v
}

// dataURI matches an embedded PNG in an attribute, where html/template
// writes '+' as an entity.
var dataURI = regexp.MustCompile(`src="data:image/png;base64,([^"]+)"`)

func TestWriteHTML(t *testing.T) {
	s := testSuite("deploy")
	var buf bytes.Buffer
	if err := WriteHTML(&buf, s); err != nil {
		t.Fatal(err)
	}
	h := buf.String()
	for _, want := range []string{"<!DOCTYPE html>", "</html>", "<style>", "EigenScore evaluation &lt;test&gt;",
		"fashion-mnist → mnist", "fashion-mnist:0-4 → fashion-mnist:5-9", "eigenscore-2s", "recon&lt;&amp;&gt;",
		"OOD larger", "OOD smaller", "AUROC (95% CI)", "FPR@95TPR", "Mean over pairs", "1 of 2 pairs", "λ = 0.05"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"recon<&>", "<script", "ZgotmplZ", "http://", "https://", PaperLabel} {
		if strings.Contains(h, bad) {
			t.Errorf("HTML contains %q", bad)
		}
	}
	if n := strings.Count(h, "<table"); n != 1+2*2 {
		t.Errorf("%d tables, want 5 (summary + 2 per pair)", n)
	}
	// Per pair: ROC, a histogram per method, 3 spectra panels, example tiles.
	imgs := dataURI.FindAllStringSubmatch(h, -1)
	want := (1 + 3 + 3 + 1 + 3 + 2) + (1 + 2 + 3 + 1 + 3)
	if len(imgs) != want {
		t.Errorf("%d embedded PNGs, want %d", len(imgs), want)
	}
	for i, m := range imgs {
		raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		im, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		b := im.Bounds()
		if i == 0 && (b.Dx() < 600 || b.Dy() < 600 || b.Dx() > 2000 || b.Dy() > 2000) {
			t.Errorf("ROC plot is %d×%d px", b.Dx(), b.Dy())
		}
		if b.Dx() < 32 || b.Dy() < 32 {
			t.Errorf("image %d is %d×%d px", i, b.Dx(), b.Dy())
		}
	}
	// The 28×28 input is upscaled ×4 and a 3-channel vector is three tiles wide.
	if !strings.Contains(h, `width="112" height="112" alt="input ID #3`) {
		t.Error("28×28 input not shown at 112×112")
	}
	if !strings.Contains(h, `width="`+strconv.Itoa((3*8+2)*4)+`" height="32" alt="eigenvector 1 of OOD #7`) {
		t.Error("RGB eigenvector not shown as three channel tiles")
	}
	// The best AUROC of a pair is bold.
	if !regexp.MustCompile(`<span class="best">0\.\d{3}</span>`).MatchString(h) {
		t.Error("no bold best AUROC")
	}
}

func TestPaperProtocolLabel(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, testSuite("paper")); err != nil {
		t.Fatal(err)
	}
	h := buf.String()
	// Every <caption> carries the label.
	caps := regexp.MustCompile(`(?s)<caption>(.*?)</caption>`).FindAllStringSubmatch(h, -1)
	if len(caps) != 5 {
		t.Fatalf("%d captions, want 5", len(caps))
	}
	for _, c := range caps {
		if !strings.HasSuffix(c[1], PaperLabel) {
			t.Errorf("caption %q lacks %q", c[1], PaperLabel)
		}
	}
	for _, h3 := range regexp.MustCompile(`<h3>(.*?)</h3>`).FindAllStringSubmatch(h, -1) {
		if !strings.HasSuffix(h3[1], PaperLabel) {
			t.Errorf("heading %q lacks %q", h3[1], PaperLabel)
		}
	}
	if !strings.Contains(h, "<strong>paper</strong>") {
		t.Error("protocol not shown")
	}
}

func TestEmptySectionsSkipped(t *testing.T) {
	s := Suite{Title: "empty", Protocol: "deploy", Pairs: []Pair{{Name: "a → b", ID: "a", OOD: "b",
		Methods: []Method{{Name: "m", Report: metrics.Report{AUROC: 0.5}}}}}}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, s); err != nil {
		t.Fatal(err)
	}
	h := buf.String()
	for _, bad := range []string{"<h3>", "data:image", "<nav>"} {
		if strings.Contains(h, bad) {
			t.Errorf("empty pair renders %q", bad)
		}
	}
	if strings.Count(h, "<table") != 2 {
		t.Error("want the summary and the metrics table")
	}
}

func TestDegenerateInputs(t *testing.T) {
	nan := math.NaN()
	s := Suite{Title: "odd", Protocol: "paper", Pairs: []Pair{{Name: "p", Methods: []Method{
		{Name: "constant", IDScores: []float64{1, 1, 1}, OODScores: []float64{1, 1}, Report: metrics.Report{AUROC: 0.5}},
		{Name: "nan", IDScores: []float64{nan, 0, 1}, OODScores: []float64{2, math.Inf(1)}, Report: metrics.Report{AUROC: nan}},
		{Name: "ood-only", OODScores: []float64{3}},
	},
		Spectra: []SigmaStats{ // one σ, signed means, no sd, OOD shorter
			{Sigma: 0.5, IDMean: []float64{-1, 2}, OODMean: []float64{0.5}},
		},
		PerSigma: []PerSigmaAUROC{{Feature: "f", AUROC: nan}, {Feature: "g", AUROC: 0.5}},
		Examples: []Example{{Label: "zero", Shape: denoise.Shape{C: 2, H: 3, W: 5}, Input: make([]float32, 30), Vectors: [][]float64{make([]float64, 30)}}},
	}, {Name: "q", Spectra: []SigmaStats{{Sigma: 0.1, IDMean: []float64{1}, IDStd: []float64{5}}, {Sigma: 1, IDMean: []float64{2}, IDStd: []float64{0.1}}}}}}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, s); err != nil {
		t.Fatal(err)
	}
	h := buf.String()
	// ROC (two curves), three histograms, λ1 and λ2 of p, λ1 of q, two example tiles.
	if n := len(dataURI.FindAllString(h, -1)); n != 1+3+2+1+2 {
		t.Errorf("%d images", n)
	}
	if !strings.Contains(h, "no separation") {
		t.Error("AUROC ½ should read no separation")
	}
}

func TestBadExample(t *testing.T) {
	s := Suite{Pairs: []Pair{{Name: "p", Examples: []Example{{Label: "x", Shape: denoise.Shape{C: 1, H: 4, W: 4}, Input: make([]float32, 16),
		Vectors: [][]float64{make([]float64, 15)}}}}}}
	if err := WriteHTML(&bytes.Buffer{}, s); err == nil || !strings.Contains(err.Error(), "vector 1") {
		t.Errorf("err = %v, want a vector length error", err)
	}
}

func TestWriteCSV(t *testing.T) {
	s := testSuite("paper")
	var buf bytes.Buffer
	if err := WriteCSV(&buf, s); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+3+2 {
		t.Fatalf("%d rows, want header + 5", len(rows))
	}
	head := "pair,id,ood,model,method,auroc,auroc_lo,auroc_hi,aupr_in,aupr_out,fpr95,nfe_per_image,seconds,uses_ood"
	if got := strings.Join(rows[0], ","); got != head {
		t.Errorf("header %q", got)
	}
	k := 1
	for _, p := range s.Pairs {
		for _, m := range p.Methods {
			r := rows[k]
			k++
			if r[0] != p.Name || r[4] != m.Name || r[3] != "gmm" {
				t.Errorf("row %d = %q", k, r)
			}
			if v, err := strconv.ParseFloat(r[5], 64); err != nil || v != m.Report.AUROC {
				t.Errorf("row %d auroc %q, want %v", k, r[5], m.Report.AUROC)
			}
			if (r[6] == "") != (m.CI == nil) {
				t.Errorf("row %d auroc_lo %q with CI %v", k, r[6], m.CI)
			}
			for _, f := range append([]string{r[8], r[9], r[10], r[11], r[12]}, r[6:8]...) {
				if f == "" {
					continue
				}
				if _, err := strconv.ParseFloat(f, 64); err != nil {
					t.Errorf("row %d: %v", k, err)
				}
			}
			if r[13] != strconv.FormatBool(m.UsesOOD) {
				t.Errorf("row %d uses_ood %q", k, r[13])
			}
		}
	}
}

func TestROCAreaIsAUROC(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for trial := 0; trial < 30; trial++ {
		n, m := 1+rng.IntN(80), 1+rng.IntN(80)
		id, ood := gaussians(rng, n, 0, 1), gaussians(rng, m, rng.Float64()*2-0.5, 1+rng.Float64())
		if trial%2 == 0 { // heavy ties, across and within classes
			q := []float64{0.25, 1, 3}[trial%3]
			for i := range id {
				id[i] = math.Round(id[i]*q) / q
			}
			for i := range ood {
				ood[i] = math.Round(ood[i]*q) / q
			}
		}
		fpr, tpr := ROC(id, ood)
		if fpr[0] != 0 || tpr[0] != 0 || fpr[len(fpr)-1] != 1 || tpr[len(tpr)-1] != 1 {
			t.Fatalf("trial %d: ROC ends (%v,%v)…(%v,%v)", trial, fpr[0], tpr[0], fpr[len(fpr)-1], tpr[len(tpr)-1])
		}
		for i := 1; i < len(fpr); i++ {
			if fpr[i] < fpr[i-1] || tpr[i] < tpr[i-1] {
				t.Fatalf("trial %d: ROC not monotone at %d", trial, i)
			}
		}
		if got, want := AUC(fpr, tpr), metrics.AUROC(id, ood); math.Abs(got-want) > 1e-9 {
			t.Errorf("trial %d (n=%d m=%d): trapezoid %v, Mann–Whitney %v", trial, n, m, got, want)
		}
	}
	// All scores equal: one step from (0,0) to (1,1), area ½.
	fpr, tpr := ROC([]float64{1, 1}, []float64{1})
	if len(fpr) != 2 || AUC(fpr, tpr) != 0.5 {
		t.Errorf("all tied: %v %v", fpr, tpr)
	}
	if f, _ := ROC(nil, []float64{1}); f != nil {
		t.Error("empty ID side should give no curve")
	}
}

func TestLogTicks(t *testing.T) {
	for _, r := range [][2]float64{{0.09, 1.8}, {0.02, 0.08}, {0.3, 0.45}, {1e-6, 10}, {0.0101, 0.0109}} {
		n := 0
		for _, tk := range (logTicks{}).Ticks(r[0], r[1]) {
			if tk.Label != "" {
				n++
				if tk.Value < r[0]*(1-1e-9) || tk.Value > r[1]*(1+1e-9) {
					t.Errorf("range %v: labelled tick %v outside", r, tk.Value)
				}
			}
		}
		if n < 2 {
			t.Errorf("range %v: %d labelled ticks", r, n)
		}
	}
}

func TestDiverging(t *testing.T) {
	if c := diverging(0); c.R != 247 || c.G != 247 || c.B != 247 {
		t.Errorf("0 → %v", c)
	}
	if c := diverging(-1); c.B <= c.R {
		t.Errorf("−1 → %v, want blue", c)
	}
	if c := diverging(1); c.R <= c.B {
		t.Errorf("+1 → %v, want red", c)
	}
}

// TestSample writes a sample report for a look in a browser; it runs only
// with -report.sample.
func TestSample(t *testing.T) {
	if *sample == "" {
		t.Skip("no -report.sample")
	}
	for _, out := range []struct{ path, protocol string }{{*sample, "deploy"}, {strings.TrimSuffix(*sample, ".html") + "-paper.html", "paper"}} {
		f, err := os.Create(out.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteHTML(f, testSuite(out.protocol)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(strings.TrimSuffix(*sample, ".html") + ".csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WriteCSV(f, testSuite("deploy")); err != nil {
		t.Fatal(err)
	}
}
