package report

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/denoise"
)

// Explanation is one image's explanation, to draw as a panel (Panel): the
// image, where the model is uncertain about it and along which directions,
// at each noise level σ.
type Explanation struct {
	Title string // the panel's first line, e.g. "image 17 · score 4.2 · p 0.01 · flagged"
	denoise.Shape
	Input []float32 // the image, in [−1, 1], C·H·W (channel-major)
	// Combined is the mean over levels of the standardised maps, drawn
	// next to the input with its largest value marked.
	Combined []float64
	Levels   []ExplanationLevel
	Caveat   string // printed under the title when not empty
}

// ExplanationLevel is the explanation at one σ.
type ExplanationLevel struct {
	Sigma float64
	// Map is the per-pixel uncertainty Σ_i λ_i·v_i², drawn from white (0)
	// to red (its maximum); Standardised is the map against ID images,
	// drawn blue (−s) to white (0) to red (+s), s its largest |value|.
	Map, Standardised []float64
	// Vectors are unit eigenvectors, each drawn on the diverging colormap
	// scaled by its largest |value|; Values are their eigenvalues.
	Vectors [][]float64
	Values  []float64
}

// Panel layout, in pixels: text in the 7×13 fixed font.
const (
	panelMargin = 10
	panelGap    = 10
	charW       = 7
	lineH       = 14
	labelLines  = 2  // lines of text under a tile
	labelChars  = 20 // the narrowest column holds this many characters
)

// Panel draws an explanation as one image: a header (title, caveat,
// colour key), then a row with the input and the combined standardised
// map (its peak outlined), then one row per σ with the uncertainty map,
// the standardised map and the eigenvectors. Every tile states its colour
// scale under it. Tiles show each pixel as a 4×4 square; channels of a
// colour image sit side by side.
func Panel(e Explanation) (*image.RGBA, error) {
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("report: explanation panel: %w", err)
	}
	k := 0
	for _, l := range e.Levels {
		k = max(k, len(l.Vectors))
	}
	sample := valueTile(e.Combined, e.C, e.H, e.W, 1, true, imageScale).Bounds()
	colW := max(sample.Dx(), labelChars*charW)
	rowH := sample.Dy() + labelLines*lineH + panelGap
	sideW := 12 * charW // the σ column
	cols := 2 + k
	width := 2*panelMargin + sideW + cols*(colW+panelGap)
	header := e.header(width - 2*panelMargin)
	height := 2*panelMargin + len(header)*lineH + panelGap + lineH + (1+len(e.Levels))*rowH
	m := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(m, m.Bounds(), image.White, image.Point{}, draw.Src)
	y := panelMargin
	for _, line := range header {
		text(m, panelMargin, y, line)
		y += lineH
	}
	y = colourKey(m, panelMargin, y)
	col := func(i int) int { return panelMargin + sideW + i*(colW+panelGap) }

	text(m, panelMargin, y, "image")
	put(m, inputTile(e.Input, e.C, e.H, e.W), col(0), y, "input", "")
	zs := maxAbs(e.Combined)
	comb := valueTile(e.Combined, e.C, e.H, e.W, zs, true, imageScale)
	outlinePeak(comb, e.Combined, e.Shape)
	put(m, comb, col(1), y, "combined z (peak boxed)", "+/-"+num(zs))
	y += rowH
	for _, l := range e.Levels {
		text(m, panelMargin, y, "sigma="+num(l.Sigma))
		ms := maxAbs(l.Map)
		put(m, valueTile(l.Map, e.C, e.H, e.W, ms, false, imageScale), col(0), y, "map sum lambda v^2", "0 to "+num(ms))
		ss := maxAbs(l.Standardised)
		put(m, valueTile(l.Standardised, e.C, e.H, e.W, ss, true, imageScale), col(1), y, "standardised z", "+/-"+num(ss))
		for i, v := range l.Vectors {
			tile, s := vectorTile(v, e.C, e.H, e.W)
			label := fmt.Sprintf("v%d", i+1)
			if i < len(l.Values) {
				label += " lambda=" + num(l.Values[i])
			}
			put(m, tile, col(2+i), y, label, "+/-"+num(s))
		}
		y += rowH
	}
	return m, nil
}

// check validates the explanation's sizes, so that drawing never indexes
// out of range.
func (e Explanation) check() error {
	n := e.C * e.H * e.W
	if e.C <= 0 || e.H <= 0 || e.W <= 0 {
		return fmt.Errorf("bad shape %d×%d×%d", e.C, e.H, e.W)
	}
	if len(e.Input) != n || len(e.Combined) != n {
		return fmt.Errorf("input has %d values and the combined map %d, want C·H·W = %d", len(e.Input), len(e.Combined), n)
	}
	for j, l := range e.Levels {
		if len(l.Map) != n || len(l.Standardised) != n {
			return fmt.Errorf("level %d: maps of %d and %d values, want %d", j, len(l.Map), len(l.Standardised), n)
		}
		for i, v := range l.Vectors {
			if len(v) != n {
				return fmt.Errorf("level %d: vector %d has %d values, want %d", j, i+1, len(v), n)
			}
		}
	}
	return nil
}

// header is the title and the caveat, wrapped to width pixels.
func (e Explanation) header(width int) []string {
	lines := wrap(ascii.Replace(e.Title), width/charW)
	if e.Caveat != "" {
		lines = append(lines, wrap(ascii.Replace("Caveat: "+e.Caveat), width/charW)...)
	}
	return lines
}

// wrap breaks s into lines of at most n characters at spaces.
func wrap(s string, n int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len([]rune(line))+1+len([]rune(w)) > n {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// colourKey draws the diverging colour bar with its end labels at (x, y)
// and returns the y below it.
func colourKey(m *image.RGBA, x, y int) int {
	text(m, x, y, "colours:")
	x0 := x + 9*charW
	const barW = 160
	for i := 0; i < barW; i++ {
		c := diverging(2*float64(i)/float64(barW-1) - 1)
		for yy := y + 2; yy < y+lineH-3; yy++ {
			m.SetRGBA(x0+i, yy, c)
		}
	}
	text(m, x0+barW+charW, y, "-s ... 0 ... +s (s under each tile; maps: white 0 ... red max)")
	return y + lineH + panelGap
}

// put draws a tile at (x, y) with two lines of label under it.
func put(m *image.RGBA, tile *image.RGBA, x, y int, label, scale string) {
	b := tile.Bounds()
	draw.Draw(m, b.Add(image.Pt(x, y)), tile, b.Min, draw.Src)
	text(m, x, y+b.Dy()+2, label)
	text(m, x, y+b.Dy()+2+lineH, scale)
}

// outlinePeak draws a black square around the block of v's largest value.
func outlinePeak(tile *image.RGBA, v []float64, sh denoise.Shape) {
	best := 0
	for p, x := range v {
		if x > v[best] {
			best = p
		}
	}
	hw := sh.H * sh.W
	ch, py, px := best/hw, best%hw/sh.W, best%sh.W
	x0, y0 := (ch*(sh.W+1)+px)*imageScale-1, py*imageScale-1
	black := color.RGBA{A: 255}
	for i := 0; i <= imageScale+1; i++ {
		for _, p := range [][2]int{{x0 + i, y0}, {x0 + i, y0 + imageScale + 1}, {x0, y0 + i}, {x0 + imageScale + 1, y0 + i}} {
			if image.Pt(p[0], p[1]).In(tile.Bounds()) {
				tile.SetRGBA(p[0], p[1], black)
			}
		}
	}
}

// text draws s with its top-left corner at (x, y). The fixed font has
// ASCII glyphs only, so the symbols of titles and caveats are spelled out.
func text(m *image.RGBA, x, y int, s string) {
	d := font.Drawer{Dst: m, Src: image.Black, Face: basicfont.Face7x13, Dot: fixed.P(x, y+basicfont.Face7x13.Ascent)}
	d.DrawString(ascii.Replace(s))
}

var ascii = strings.NewReplacer("σ", "sigma", "λ", "lambda", "Σ", "sum ", "−", "-", "…", "...", "±", "+/-", "·", "*", "≤", "<=", "≥", ">=", "×", "x", "—", "-", "–", "-")

// num formats a value with three significant digits.
func num(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

// WritePanel encodes the explanation's panel as PNG. It favours speed
// over size (about 15% larger than the default compression, in half the
// time), since a run may write one per image.
func WritePanel(w io.Writer, e Explanation) error {
	m, err := Panel(e)
	if err != nil {
		return err
	}
	return (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(w, m)
}

// MapPNG encodes C×H×W values as a PNG at one image pixel per value,
// channels side by side one pixel apart, on the panel's colours: with
// signed, blue (−s) to white (0) to red (+s); without, white (0) to red
// (s); s is the largest |value|, returned with the PNG.
func MapPNG(v []float64, sh denoise.Shape, signed bool) ([]byte, float64, error) {
	if sh.C <= 0 || sh.H <= 0 || sh.W <= 0 || len(v) != sh.Dim() {
		return nil, 0, fmt.Errorf("report: map of %d values for shape %v", len(v), sh)
	}
	s := maxAbs(v)
	var b bytes.Buffer
	if err := png.Encode(&b, valueTile(v, sh.C, sh.H, sh.W, s, signed, 1)); err != nil {
		return nil, 0, fmt.Errorf("report: %w", err)
	}
	return b.Bytes(), s, nil
}

// ExplanationOf is the panel of a scored image: its title line says where
// the image came from, the detector's verdict and where the combined map
// peaks. The CLI, the service's tools and the report draw every panel from
// this, so a panel looks the same wherever it is opened.
func ExplanationOf(source string, index int, method string, img []float32, r eigenscore.Result) (Explanation, error) {
	e := r.Explanation
	if e == nil {
		return Explanation{}, fmt.Errorf("report: image %d has no explanation", index)
	}
	c, y, x := e.Peak()
	z := e.Combined[(c*e.Shape.H+y)*e.Shape.W+x]
	verdict := "not flagged"
	if r.Flagged {
		verdict = "FLAGGED"
	}
	title := fmt.Sprintf("%s #%d | %s | score %.4g | p-value %.3g | %s | most unusual uncertainty at row %d, column %d (z = %.3g)",
		source, index, method, r.Score, r.PValue, verdict, y, x, z)
	panel := Explanation{Title: title, Shape: e.Shape, Input: img, Combined: e.Combined, Caveat: e.Caveat}
	for _, l := range e.Levels {
		pl := ExplanationLevel{Sigma: l.Sigma, Map: l.Map, Standardised: l.Standardised, Vectors: l.Vectors}
		if len(l.Values) > 0 {
			pl.Values = l.Values[0] // the draw the vectors come from
		}
		panel.Levels = append(panel.Levels, pl)
	}
	return panel, nil
}

// Tail is an image from a histogram tail of a pair, with its panel.
type Tail struct {
	Label string // e.g. "OOD #17, most OOD (score 12.3, p 0.002)"
	Panel Explanation
}
