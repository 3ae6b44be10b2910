package report

import (
	"bytes"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore/denoise"
)

// testExplanation is a 2×3 two-channel explanation with two levels of two
// vectors each.
func testExplanation() Explanation {
	sh := denoise.Shape{C: 2, H: 2, W: 3}
	ramp := func(scale float64) []float64 {
		v := make([]float64, sh.Dim())
		for i := range v {
			v[i] = scale * float64(i-4)
		}
		return v
	}
	lvl := func(sigma float64) ExplanationLevel {
		m := ramp(0.01)
		for i := range m {
			m[i] = math.Abs(m[i])
		}
		return ExplanationLevel{Sigma: sigma, Map: m, Standardised: ramp(1), Vectors: [][]float64{ramp(0.1), ramp(-0.1)}, Values: []float64{2, 1}}
	}
	return Explanation{Title: "image 3 · σ-test", Shape: sh, Input: make([]float32, sh.Dim()), Combined: ramp(2),
		Levels: []ExplanationLevel{lvl(0.5), lvl(1)}, Caveat: strings.Repeat("a long caveat ", 30)}
}

// The panel has a row of tiles per level, below the header and the image
// row; a map's largest value takes the colour scale's end, its zero white.
func TestPanel(t *testing.T) {
	e := testExplanation()
	m, err := Panel(e)
	if err != nil {
		t.Fatal(err)
	}
	header := len(e.header(m.Bounds().Dx()-2*panelMargin)) * lineH
	if len(e.header(m.Bounds().Dx()-2*panelMargin)) < 3 {
		t.Errorf("the caveat was not wrapped: %q", e.header(m.Bounds().Dx()-2*panelMargin))
	}
	tileH := e.H * imageScale
	rowH := tileH + labelLines*lineH + panelGap
	if want := 2*panelMargin + header + panelGap + lineH + 3*rowH; m.Bounds().Dy() != want {
		t.Errorf("panel height %d, want %d (header, image row and 2 levels)", m.Bounds().Dy(), want)
	}
	// The first level's map tile: column 0 of the row after the image row.
	x0 := panelMargin + 12*charW
	y0 := panelMargin + header + lineH + panelGap + rowH
	at := func(ch, y, x int) color.RGBA {
		return m.RGBAAt(x0+(ch*(e.W+1)+x)*imageScale+1, y0+y*imageScale+1)
	}
	// Map values |i−4|·0.01: largest (0.07) at channel 1, row 1, column 2;
	// zero at channel 0, row 1, column 1.
	if c := at(1, 1, 2); c != diverging(1) {
		t.Errorf("the map's largest value is drawn %v, want %v", c, diverging(1))
	}
	if c := at(0, 1, 1); c != diverging(0) {
		t.Errorf("the map's zero is drawn %v, want white", c)
	}
	for _, bad := range []func(*Explanation){
		func(e *Explanation) { e.Combined = e.Combined[:3] },
		func(e *Explanation) { e.Levels[1].Vectors[0] = nil },
		func(e *Explanation) { e.C = 0 },
	} {
		e := testExplanation()
		bad(&e)
		if _, err := Panel(e); err == nil {
			t.Errorf("a malformed explanation was drawn")
		}
	}
}

// MapPNG draws one pixel per value: signed maps on the whole diverging
// scale up to their largest |value|, unsigned ones on its upper half.
func TestMapPNG(t *testing.T) {
	sh := denoise.Shape{C: 1, H: 1, W: 3}
	for _, c := range []struct {
		v      []float64
		signed bool
		scale  float64
		want   []color.RGBA
	}{
		{[]float64{-2, 0, 1}, true, 2, []color.RGBA{diverging(-1), diverging(0), diverging(0.5)}},
		{[]float64{-2, 0, 4}, false, 4, []color.RGBA{diverging(0), diverging(0), diverging(1)}},
	} {
		b, scale, err := MapPNG(c.v, sh, c.signed)
		if err != nil {
			t.Fatal(err)
		}
		m, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if scale != c.scale || m.Bounds().Dx() != 3 || m.Bounds().Dy() != 1 {
			t.Fatalf("scale %v, size %v", scale, m.Bounds())
		}
		for x, want := range c.want {
			if got := color.RGBAModel.Convert(m.At(x, 0)).(color.RGBA); got != want {
				t.Errorf("%v signed %v pixel %d: %v, want %v", c.v, c.signed, x, got, want)
			}
		}
	}
	if _, _, err := MapPNG([]float64{1}, sh, true); err == nil {
		t.Error("a map of the wrong size was drawn")
	}
}
