// Package report writes the results of an OOD-detection evaluation suite as
// one self-contained HTML page (inline CSS, PNG plots embedded as data
// URIs, no scripts, nothing fetched) and as CSV.
//
// Per ID/OOD pair the page shows a metrics table, the ROC curves of every
// method, ID-vs-OOD score histograms, eigenvalue spectra against σ, per-σ
// feature AUROCs and the top eigenvectors of a few images; at the top, a
// summary of AUROC over all pairs. Conventions are those of package metrics:
// OOD is the positive class and a higher score means more OOD.
package report

import (
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"

	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/metrics"
)

// Suite is a set of evaluations to report.
type Suite struct {
	Title string
	// Protocol is "deploy" (hyper-parameters chosen on ID data only) or
	// "paper" (chosen on OOD validation data); under "paper" every table
	// and plot title says "(uses OOD validation data)".
	Protocol string
	Machine  string // e.g. "2 cores, linux/amd64"
	Command  string // the command line that produced the results
	Pairs    []Pair
}

// Pair is the evaluation of one ID/OOD pair.
type Pair struct {
	Name     string // e.g. "fashion-mnist → mnist"
	ID, OOD  string
	Model    string // denoiser name
	Methods  []Method
	Spectra  []SigmaStats    // eigenvalue spectra vs σ
	Examples []Example       // top eigenvectors shown as images
	PerSigma []PerSigmaAUROC // per-σ feature AUROC and direction
	// Tails are the most and least OOD test images of each set, each with
	// its explanation panel; TailMethod names the detector that ranked them.
	Tails      []Tail
	TailMethod string
}

// Method is one detector's result on a pair.
type Method struct {
	Name        string
	Report      metrics.Report
	CI          map[string]metrics.Interval // keys as metrics.Bootstrap; may be nil
	NFEPerImage float64
	Seconds     float64 // wall time of the method on this pair
	// IDScores and OODScores are the test scores (higher = more OOD).
	IDScores, OODScores []float64
	UsesOOD             bool // hyper-parameters chosen on OOD validation data
}

// SigmaStats summarises the top-k eigenvalues at one noise level σ.
type SigmaStats struct {
	Sigma float64
	// Means and standard deviations over images, per eigenvalue index
	// (λ1..λk). OOD and either Std may be empty.
	IDMean, IDStd, OODMean, OODStd []float64
}

// PerSigmaAUROC is the AUROC of one feature on its own; AUROC > 0.5 means
// the feature is larger on OOD images.
type PerSigmaAUROC struct {
	Feature string
	AUROC   float64
}

// Example is one image with its top eigenvectors.
type Example struct {
	Label string // e.g. "ID #3 (score 1.2)"
	denoise.Shape
	Input []float32 // the clean image, in [−1, 1], C*H*W (CHW order)
	// Vectors are the top eigenvectors (unit norm), each C*H*W, drawn
	// with a blue–white–red colormap scaled by each vector's max |value|.
	Vectors [][]float64
	Values  []float64 // their eigenvalues
}

// PaperLabel marks every table and plot title under the "paper" protocol.
const PaperLabel = "(uses OOD validation data)"

// WriteCSV writes a header and one row per (pair, method): pair, id, ood,
// model, method, auroc, auroc_lo, auroc_hi, aupr_in, aupr_out, fpr95,
// nfe_per_image, seconds, uses_ood. Missing intervals are empty fields.
func WriteCSV(w io.Writer, s Suite) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"pair", "id", "ood", "model", "method", "auroc", "auroc_lo", "auroc_hi",
		"aupr_in", "aupr_out", "fpr95", "nfe_per_image", "seconds", "uses_ood"}); err != nil {
		return err
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for _, p := range s.Pairs {
		for _, m := range p.Methods {
			lo, hi := "", ""
			if ci, ok := m.CI["auroc"]; ok {
				lo, hi = num(ci.Lo), num(ci.Hi)
			}
			if err := cw.Write([]string{p.Name, p.ID, p.OOD, p.Model, m.Name,
				num(m.Report.AUROC), lo, hi, num(m.Report.AUPRIn), num(m.Report.AUPROut), num(m.Report.FPR95),
				num(m.NFEPerImage), num(m.Seconds), strconv.FormatBool(m.UsesOOD)}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteHTML writes the report as one self-contained HTML page.
func WriteHTML(w io.Writer, s Suite) error {
	pg, err := build(s)
	if err != nil {
		return err
	}
	return page.Execute(w, pg)
}

// View models of the page.
type (
	pageView struct {
		Suite
		Paper     bool
		Suffix    string // " (uses OOD validation data)" under "paper", else ""
		Summary   summaryView
		PairViews []pairView
		AnyOOD    bool // some method has UsesOOD
	}
	summaryView struct {
		Caption string
		Pairs   []string
		Rows    []summaryRow
	}
	summaryRow struct {
		Method  string
		UsesOOD bool
		Cells   []cell // one per pair
		Mean    cell
		Note    string // e.g. "1 of 2 pairs"
	}
	cell struct {
		Text string
		Best bool
	}
	pairView struct {
		Pair
		Anchor       string
		TableCaption string
		Rows         []methodRow
		ROC          *img
		ROCCaption   string
		Hists        []img
		HistCaption  string
		HistClipped  bool
		Spectra      []img
		SpecCaption  string
		SpecTotal    int // eigenvalue indices in the data
		SigmaCaption string
		Sigma        []sigmaRow
		ExCaption    string
		Examples     []exampleView
		TailViews    []tailView
	}
	tailView struct {
		Label        string
		Thumb, Panel img
	}
	methodRow struct {
		Name                         string
		UsesOOD                      bool
		AUROC                        cell
		AUROCCI                      string
		AUPRIn, AUPROut, FPR95       string
		AUPRInCI, AUPROutCI, FPR95CI string
		NFE, Seconds                 string
	}
	sigmaRow struct {
		Feature   string
		AUROC     string
		Direction string
		OODLarger bool
		Bar       int // separation max(A, 1−A) mapped to 0..100
	}
	exampleView struct {
		Label  string
		Input  img
		Tiles  []vectorView
		Layout string
	}
	vectorView struct {
		Tile  img
		Index int
		Value string
		Scale string
	}
)

func build(s Suite) (*pageView, error) {
	pg := &pageView{Suite: s, Paper: s.Protocol == "paper"}
	if pg.Paper {
		pg.Suffix = " " + PaperLabel
	}
	pg.Summary = summarize(s, pg.Suffix)
	for i, p := range s.Pairs {
		pv, err := buildPair(i, p, pg.Suffix)
		if err != nil {
			return nil, fmt.Errorf("report: pair %q: %w", p.Name, err)
		}
		pg.PairViews = append(pg.PairViews, pv)
		for _, m := range p.Methods {
			pg.AnyOOD = pg.AnyOOD || m.UsesOOD
		}
	}
	return pg, nil
}

// summarize tabulates AUROC per (method, pair), methods in order of first
// appearance, with the mean over the pairs each method ran on.
func summarize(s Suite, suffix string) summaryView {
	sv := summaryView{Caption: "AUROC per pair (OOD positive, higher score = more OOD)" + suffix}
	var names []string
	index := map[string]int{}
	usesOOD := map[string]bool{}
	for _, p := range s.Pairs {
		sv.Pairs = append(sv.Pairs, p.Name)
		for _, m := range p.Methods {
			if _, ok := index[m.Name]; !ok {
				index[m.Name] = len(names)
				names = append(names, m.Name)
			}
			usesOOD[m.Name] = usesOOD[m.Name] || m.UsesOOD
		}
	}
	vals := make([][]float64, len(names)) // [method][pair], NaN when absent
	for i := range vals {
		vals[i] = make([]float64, len(s.Pairs))
		for j := range vals[i] {
			vals[i][j] = math.NaN()
		}
	}
	for j, p := range s.Pairs {
		for _, m := range p.Methods {
			vals[index[m.Name]][j] = m.Report.AUROC
		}
	}
	means := make([]float64, len(names))
	for i, name := range names {
		row := summaryRow{Method: name, UsesOOD: usesOOD[name]}
		sum, n := 0.0, 0
		for j := range s.Pairs {
			v := vals[i][j]
			row.Cells = append(row.Cells, cell{Text: f3(v), Best: isBest(v, column(vals, j))})
			if !math.IsNaN(v) {
				sum, n = sum+v, n+1
			}
		}
		means[i] = math.NaN()
		if n > 0 {
			means[i] = sum / float64(n)
		}
		if n < len(s.Pairs) {
			row.Note = fmt.Sprintf("%d of %d pairs", n, len(s.Pairs))
		}
		sv.Rows = append(sv.Rows, row)
	}
	for i := range sv.Rows {
		sv.Rows[i].Mean = cell{Text: f3(means[i]), Best: isBest(means[i], means)}
	}
	return sv
}

func column(v [][]float64, j int) []float64 {
	c := make([]float64, len(v))
	for i := range v {
		c[i] = v[i][j]
	}
	return c
}

// isBest reports whether v is the largest finite value of all.
func isBest(v float64, all []float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	for _, x := range all {
		if x > v && !math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

func buildPair(i int, p Pair, suffix string) (pairView, error) {
	pv := pairView{Pair: p, Anchor: fmt.Sprintf("pair-%d", i+1)}
	pv.TableCaption = "Metrics: " + p.Name + suffix
	aurocs := make([]float64, len(p.Methods))
	for k, m := range p.Methods {
		aurocs[k] = m.Report.AUROC
	}
	ci := func(m Method, key string) string {
		if c, ok := m.CI[key]; ok {
			return "[" + f3(c.Lo) + ", " + f3(c.Hi) + "]"
		}
		return ""
	}
	for _, m := range p.Methods {
		pv.Rows = append(pv.Rows, methodRow{
			Name: m.Name, UsesOOD: m.UsesOOD,
			AUROC:   cell{Text: f3(m.Report.AUROC), Best: isBest(m.Report.AUROC, aurocs)},
			AUROCCI: ci(m, "auroc"),
			AUPRIn:  f3(m.Report.AUPRIn), AUPRInCI: ci(m, "aupr_in"),
			AUPROut: f3(m.Report.AUPROut), AUPROutCI: ci(m, "aupr_out"),
			FPR95: f3(m.Report.FPR95), FPR95CI: ci(m, "fpr95"),
			NFE: fmtNFE(m.NFEPerImage), Seconds: fmtSeconds(m.Seconds),
		})
	}

	rocTitle := "ROC: " + p.Name + suffix
	if roc, ok, err := plotROC(rocTitle, p.Methods); err != nil {
		return pv, err
	} else if ok {
		pv.ROC = &roc
		pv.ROCCaption = "ROC curves, OOD positive; thresholds sweep every distinct test score; dashed: chance"
	}

	small := ""
	if suffix != "" {
		small = "\n" + PaperLabel
	}
	for _, m := range p.Methods {
		h, ok, clipped, err := plotHist(m.Name+small, m)
		if err != nil {
			return pv, err
		}
		if ok {
			pv.Hists = append(pv.Hists, h)
			pv.HistClipped = pv.HistClipped || clipped
		}
	}
	pv.HistCaption = "Test-score histograms, ID (blue) vs OOD (red), shared bins, each of unit area"

	spec, total, err := plotSpectra(small, p.Spectra)
	if err != nil {
		return pv, err
	}
	pv.Spectra, pv.SpecTotal = spec, total
	pv.SpecCaption = "Eigenvalue spectra vs σ: mean (line) ± 1 sd (band) over images"

	pv.SigmaCaption = "Per-σ feature AUROC (each feature alone as the score)" + suffix
	for _, f := range p.PerSigma {
		r := sigmaRow{Feature: f.Feature, AUROC: f3(f.AUROC), OODLarger: f.AUROC > 0.5}
		switch {
		case math.IsNaN(f.AUROC):
			r.Direction = "—"
		case f.AUROC > 0.5:
			r.Direction = "OOD larger"
		case f.AUROC < 0.5:
			r.Direction = "OOD smaller"
		default:
			r.Direction = "no separation"
		}
		if !math.IsNaN(f.AUROC) {
			r.Bar = int(math.Round(math.Abs(f.AUROC-0.5) * 200))
		}
		pv.Sigma = append(pv.Sigma, r)
	}

	for k, t := range p.Tails {
		tv, err := buildTail(t)
		if err != nil {
			return pv, fmt.Errorf("tail image %d (%q): %w", k, t.Label, err)
		}
		pv.TailViews = append(pv.TailViews, tv)
	}
	pv.ExCaption = "Top eigenvectors of the posterior covariance, blue < 0 < red, each scaled by its max |value|"
	for k, e := range p.Examples {
		ev, err := buildExample(e)
		if err != nil {
			return pv, fmt.Errorf("example %d (%q): %w", k, e.Label, err)
		}
		pv.Examples = append(pv.Examples, ev)
	}
	return pv, nil
}

// buildTail draws a tail image's thumbnail and its panel (Panel, the same
// drawing as `eigenscore explain`).
func buildTail(t Tail) (tailView, error) {
	thumb, err := tileImg(inputTile(t.Panel.Input, t.Panel.C, t.Panel.H, t.Panel.W), "thumbnail of "+t.Label)
	if err != nil {
		return tailView{}, err
	}
	m, err := Panel(t.Panel)
	if err != nil {
		return tailView{}, err
	}
	src, err := pngURL(m)
	if err != nil {
		return tailView{}, err
	}
	b := m.Bounds()
	return tailView{Label: t.Label, Thumb: thumb, Panel: img{Src: src, W: b.Dx(), H: b.Dy(), Alt: "explanation panel of " + t.Label}}, nil
}

func buildExample(e Example) (exampleView, error) {
	n := e.C * e.H * e.W
	if e.C <= 0 || e.H <= 0 || e.W <= 0 {
		return exampleView{}, fmt.Errorf("bad shape %d×%d×%d", e.C, e.H, e.W)
	}
	if len(e.Input) != n {
		return exampleView{}, fmt.Errorf("input has %d values, want C*H*W = %d", len(e.Input), n)
	}
	in, err := tileImg(inputTile(e.Input, e.C, e.H, e.W), "input "+e.Label)
	if err != nil {
		return exampleView{}, err
	}
	ev := exampleView{Label: e.Label, Input: in}
	for k, v := range e.Vectors {
		if len(v) != n {
			return exampleView{}, fmt.Errorf("vector %d has %d values, want %d", k+1, len(v), n)
		}
		tile, scale := vectorTile(v, e.C, e.H, e.W)
		t, err := tileImg(tile, fmt.Sprintf("eigenvector %d of %s", k+1, e.Label))
		if err != nil {
			return exampleView{}, err
		}
		vv := vectorView{Tile: t, Index: k + 1, Scale: strconv.FormatFloat(scale, 'g', 2, 64)}
		if k < len(e.Values) {
			vv.Value = strconv.FormatFloat(e.Values[k], 'g', 4, 64)
		}
		ev.Tiles = append(ev.Tiles, vv)
	}
	return ev, nil
}

func fmtNFE(v float64) string {
	switch {
	case math.IsNaN(v) || v <= 0:
		return "—"
	case v == math.Trunc(v) && v < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
}

func fmtSeconds(v float64) string {
	switch {
	case math.IsNaN(v) || v <= 0:
		return "—"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 0.01:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
}

var page = template.Must(template.New("page").Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root { --fg: #1d1d1f; --muted: #6b6b73; --line: #dcdce0; --head: #f5f5f7; --id: #1f77b4; --ood: #d62728; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 64px; }
h1 { font-size: 26px; margin: 0 0 12px; }
h2 { font-size: 21px; margin: 44px 0 4px; padding-top: 12px; border-top: 2px solid var(--line); }
h3 { font-size: 16px; margin: 26px 0 8px; }
a { color: #0b62b5; text-decoration: none; }
a:hover { text-decoration: underline; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0 0 18px; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; }
code, pre { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--head); border: 1px solid var(--line); border-radius: 4px; padding: 8px 10px;
  margin: 0; white-space: pre-wrap; word-break: break-all; }
.banner { border-left: 4px solid #e69500; background: #fff6e5; padding: 8px 12px; margin: 12px 0 18px; }
.sub { color: var(--muted); margin: 0 0 8px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-variant-numeric: tabular-nums; }
table.summary { width: 100%; table-layout: fixed; }
table.summary th { white-space: normal; overflow-wrap: anywhere; font-size: 0.9em; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0 0 6px; }
th, td { border: 1px solid var(--line); padding: 4px 10px; }
th { background: var(--head); font-weight: 600; text-align: left; }
td.num, th.num { text-align: right; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafafb; }
.ci { color: var(--muted); font-size: 12px; margin-left: 4px; }
.best { font-weight: 700; }
.note { color: var(--muted); font-size: 13px; }
.dag { color: #e69500; font-weight: 700; }
figure { margin: 8px 0 14px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.grid { display: flex; flex-wrap: wrap; gap: 10px 14px; align-items: flex-start; }
.grid img, figure img { display: block; max-width: 100%; height: auto; }
.bar { display: inline-block; height: 9px; vertical-align: middle; border-radius: 2px; }
.bar.up { background: var(--ood); }
.bar.down { background: var(--id); }
.dir-up { color: var(--ood); }
.dir-down { color: var(--id); }
.example { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; margin: 10px 0 16px; }
.example .lbl { width: 100%; font-weight: 600; margin-bottom: -4px; }
.tile { text-align: center; font-size: 12px; color: var(--muted); }
.tile img { display: block; image-rendering: pixelated; border: 1px solid var(--line); margin-bottom: 3px; }
.cbar { display: inline-block; width: 160px; height: 10px; vertical-align: middle; border: 1px solid var(--line);
  background: linear-gradient(to right, rgb(5,48,97), rgb(67,147,195), rgb(247,247,247), rgb(214,96,77), rgb(103,0,31)); }
nav ol { margin: 4px 0 0; padding-left: 22px; }
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<dl class="meta">
<dt>Protocol</dt><dd>{{if .Paper}}<strong>paper</strong> — hyper-parameters chosen on OOD validation data{{else if eq .Protocol "deploy"}}<strong>deploy</strong> — hyper-parameters chosen on ID data only{{else}}{{.Protocol}}{{end}}</dd>
{{- with .Machine}}
<dt>Machine</dt><dd>{{.}}</dd>{{end}}
{{- with .Command}}
<dt>Command</dt><dd><pre>{{.}}</pre></dd>{{end}}
<dt>Conventions</dt><dd>OOD is the positive class; a higher score means more OOD. AUROC counts ties as ½; AUPR-In/Out are average precision with ID/OOD positive; FPR@95TPR is the ID rate flagged at the threshold that flags 95% of OOD.</dd>
</dl>
{{- if .Paper}}
<div class="banner">Paper protocol: hyper-parameters were chosen on OOD validation data, so these results are optimistic compared with a deployment, where no OOD data are seen.</div>
{{- end}}

{{- if .Summary.Rows}}
<h2 id="summary">Summary</h2>
<table class="summary">
<caption>{{.Summary.Caption}}</caption>
<thead><tr><th>Method</th>{{range .Summary.Pairs}}<th class="num">{{.}}</th>{{end}}<th class="num">Mean over pairs</th></tr></thead>
<tbody>
{{- range .Summary.Rows}}
<tr><td>{{.Method}}{{if .UsesOOD}} <span class="dag" title="hyper-parameters chosen on OOD validation data">†</span>{{end}}</td>
{{- range .Cells}}<td class="num{{if .Best}} best{{end}}">{{.Text}}</td>{{end}}<td class="num{{if .Mean.Best}} best{{end}}">{{.Mean.Text}}{{with .Note}} <span class="ci">({{.}})</span>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- if .AnyOOD}}
<p class="note"><span class="dag">†</span> hyper-parameters chosen on OOD validation data.</p>
{{- end}}
{{- end}}

{{- if gt (len .PairViews) 1}}
<nav><strong>Pairs</strong><ol>{{range .PairViews}}<li><a href="#{{.Anchor}}">{{.Name}}</a></li>{{end}}</ol></nav>
{{- end}}

{{- $sfx := .Suffix}}
{{- range .PairViews}}
<h2 id="{{.Anchor}}">{{.Name}}</h2>
<p class="sub">ID: <strong>{{.ID}}</strong> · OOD: <strong>{{.OOD}}</strong>{{with .Model}} · denoiser: <strong>{{.}}</strong>{{end}}</p>

{{- if .Rows}}
<table>
<caption>{{.TableCaption}}</caption>
<thead><tr><th>Method</th><th class="num">AUROC (95% CI)</th><th class="num">AUPR-In</th><th class="num">AUPR-Out</th><th class="num">FPR@95TPR</th><th class="num">NFE/image</th><th class="num">Wall time (s)</th></tr></thead>
<tbody>
{{- range .Rows}}
<tr><td>{{.Name}}{{if .UsesOOD}} <span class="dag" title="hyper-parameters chosen on OOD validation data">†</span>{{end}}</td>
<td class="num"><span class="{{if .AUROC.Best}}best{{end}}">{{.AUROC.Text}}</span>{{with .AUROCCI}}<span class="ci">{{.}}</span>{{end}}</td>
<td class="num">{{.AUPRIn}}{{with .AUPRInCI}}<span class="ci">{{.}}</span>{{end}}</td>
<td class="num">{{.AUPROut}}{{with .AUPROutCI}}<span class="ci">{{.}}</span>{{end}}</td>
<td class="num">{{.FPR95}}{{with .FPR95CI}}<span class="ci">{{.}}</span>{{end}}</td>
<td class="num">{{.NFE}}</td><td class="num">{{.Seconds}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}

{{- if or .ROC .Hists}}
<h3>Scores{{$sfx}}</h3>
<div class="grid">
{{- with .ROC}}
<figure><img src="{{.Src}}" width="{{.W}}" height="{{.H}}" alt="{{.Alt}}"></figure>
{{- end}}
{{- if .Hists}}
<div class="grid" style="flex: 1 1 520px">
{{- range .Hists}}<img src="{{.Src}}" width="{{.W}}" height="{{.H}}" alt="{{.Alt}}">{{end}}
</div>
{{- end}}
</div>
<p class="note">{{if .ROC}}{{.ROCCaption}}. {{end}}{{if .Hists}}{{.HistCaption}}{{if .HistClipped}}; where a few outliers would squash the rest, the bins span the 0.5–99.5% quantiles and outliers fall in the edge bins{{end}}.{{end}}</p>
{{- end}}

{{- if .Spectra}}
<h3>Eigenvalue spectra{{$sfx}}</h3>
<div class="grid">
{{- range .Spectra}}<img src="{{.Src}}" width="{{.W}}" height="{{.H}}" alt="{{.Alt}}">{{end}}
</div>
<p class="note">{{.SpecCaption}}; <span class="dir-down">■ ID</span> <span class="dir-up">■ OOD</span>.{{if gt .SpecTotal (len .Spectra)}} Showing λ1–λ{{len .Spectra}} of {{.SpecTotal}}.{{end}}</p>
{{- end}}

{{- if .Sigma}}
<table>
<caption>{{.SigmaCaption}}</caption>
<thead><tr><th>Feature</th><th class="num">AUROC</th><th>Direction</th><th>Separation |AUROC − ½|</th></tr></thead>
<tbody>
{{- range .Sigma}}
<tr><td><code>{{.Feature}}</code></td><td class="num">{{.AUROC}}</td><td class="{{if .OODLarger}}dir-up{{else}}dir-down{{end}}">{{.Direction}}</td><td><span class="bar {{if .OODLarger}}up{{else}}down{{end}}" style="width: {{.Bar}}px"></span></td></tr>
{{- end}}
</tbody>
</table>
{{- end}}

{{- if .TailViews}}
<h3>Histogram tails, explained{{$sfx}}</h3>
<p class="note">The most and least OOD test images of each set under {{.TailMethod}}; open one for its explanation panel (the same panel as <code>eigenscore explain</code>).</p>
{{- range .TailViews}}
<details class="tail"><summary><img src="{{.Thumb.Src}}" width="{{.Thumb.W}}" height="{{.Thumb.H}}" alt="{{.Thumb.Alt}}"> {{.Label}}</summary>
<img src="{{.Panel.Src}}" width="{{.Panel.W}}" height="{{.Panel.H}}" alt="{{.Panel.Alt}}">
</details>
{{- end}}
{{- end}}

{{- if .Examples}}
<h3>Eigenvectors{{$sfx}}</h3>
<p class="note">{{.ExCaption}}: <span class="cbar"></span> −max|v| … 0 … +max|v|. Inputs ×4, nearest neighbour.</p>
{{- range .Examples}}
<div class="example">
<div class="lbl">{{.Label}}</div>
<div class="tile"><img src="{{.Input.Src}}" width="{{.Input.W}}" height="{{.Input.H}}" alt="{{.Input.Alt}}">input</div>
{{- range .Tiles}}
<div class="tile"><img src="{{.Tile.Src}}" width="{{.Tile.W}}" height="{{.Tile.H}}" alt="{{.Tile.Alt}}">v{{.Index}}{{with .Value}} · λ = {{.}}{{end}}<br>max|v| {{.Scale}}</div>
{{- end}}
</div>
{{- end}}
{{- end}}
{{- end}}
</main>
</body>
</html>
`
