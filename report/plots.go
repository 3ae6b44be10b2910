package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// ROC returns the receiver operating characteristic of a detector with OOD
// as the positive class and higher scores meaning more OOD. The thresholds
// sweep the distinct scores from the highest down; the curve starts at
// (0, 0) and ends at (1, 1), and tied ID and OOD scores move both rates in
// one step, so the trapezoid area under it (AUC) equals the Mann–Whitney
// AUROC with ties counting one half. NaN scores are ignored. It returns nil
// when either side has no scores.
func ROC(id, ood []float64) (fpr, tpr []float64) {
	a, b := sortedDesc(id), sortedDesc(ood)
	if len(a) == 0 || len(b) == 0 {
		return nil, nil
	}
	fpr, tpr = []float64{0}, []float64{0}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		// The next threshold is the largest score not yet passed.
		var t float64
		switch {
		case i == len(a):
			t = b[j]
		case j == len(b):
			t = a[i]
		default:
			t = math.Max(a[i], b[j])
		}
		for i < len(a) && a[i] == t {
			i++
		}
		for j < len(b) && b[j] == t {
			j++
		}
		fpr = append(fpr, float64(i)/float64(len(a)))
		tpr = append(tpr, float64(j)/float64(len(b)))
	}
	return fpr, tpr
}

// AUC is the trapezoid area under the piecewise-linear curve through
// (x[i], y[i]), x non-decreasing.
func AUC(x, y []float64) float64 {
	s := 0.0
	for i := 1; i < len(x) && i < len(y); i++ {
		s += (x[i] - x[i-1]) * (y[i] + y[i-1]) / 2
	}
	return s
}

func sortedDesc(v []float64) []float64 {
	s := finite(v, true)
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	return s
}

// finite copies v without NaN, and without ±Inf unless keepInf.
func finite(v []float64, keepInf bool) []float64 {
	s := make([]float64, 0, len(v))
	for _, x := range v {
		if math.IsNaN(x) || (!keepInf && math.IsInf(x, 0)) {
			continue
		}
		s = append(s, x)
	}
	return s
}

// Rendering scale: plots are laid out in points (1/72 in), rasterised at
// plotDPI and displayed at their physical size (96 CSS px per inch), so
// images are drawn at 2× the CSS resolution and stay sharp on HiDPI screens.
const plotDPI = 192

// img is an image embedded in the page.
type img struct {
	Src  template.URL // data:image/png;base64,…
	W, H int          // display size in CSS pixels
	Alt  string
}

func pngURL(m image.Image) (template.URL, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())), nil
}

// render rasterises p at w×h points.
func render(p *plot.Plot, w, h vg.Length, alt string) (img, error) {
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(plotDPI))
	p.Draw(draw.New(c))
	src, err := pngURL(c.Image())
	if err != nil {
		return img{}, err
	}
	b := c.Image().Bounds()
	return img{Src: src, W: b.Dx() * 96 / plotDPI, H: b.Dy() * 96 / plotDPI, Alt: alt}, nil
}

var (
	idColor   = color.NRGBA{R: 31, G: 119, B: 180, A: 255} // blue
	oodColor  = color.NRGBA{R: 214, G: 39, B: 40, A: 255}  // red
	gridColor = color.Gray{Y: 225}
	// methodColors is the Tableau 10 palette.
	methodColors = []color.NRGBA{
		{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
		{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
		{188, 189, 34, 255}, {23, 190, 207, 255},
	}
)

func withAlpha(c color.NRGBA, a uint8) color.NRGBA { c.A = a; return c }

// newPlot returns a plot with a light grid and font sizes suited to the
// report; small plots get smaller type.
func newPlot(title, xlabel, ylabel string, small bool) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	tsz, lsz, ksz := vg.Points(12), vg.Points(10), vg.Points(9)
	if small {
		tsz, lsz, ksz = vg.Points(10), vg.Points(9), vg.Points(8)
	}
	// Sans-serif like the page, without touching plot.DefaultFont.
	sans := func(f *font.Font, size vg.Length) { f.Typeface, f.Variant, f.Size = "Liberation", "Sans", size }
	sans(&p.Title.TextStyle.Font, tsz)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		sans(&a.Label.TextStyle.Font, lsz)
		sans(&a.Tick.Label.Font, ksz)
		a.Tick.Length = vg.Points(4)
		a.LineStyle.Color = color.Gray{Y: 110}
		a.Tick.LineStyle.Color = color.Gray{Y: 110}
		a.Padding = vg.Points(2)
	}
	sans(&p.Legend.TextStyle.Font, ksz)
	p.Legend.ThumbnailWidth = vg.Points(16)
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = gridColor, gridColor
	g.Vertical.Width, g.Horizontal.Width = vg.Points(0.5), vg.Points(0.5)
	p.Add(g)
	return p
}

// plotROC draws the ROC curves of every method with scores on both sides.
func plotROC(title string, methods []Method) (img, bool, error) {
	p := newPlot(title, "false positive rate (ID flagged)", "true positive rate (OOD flagged)", false)
	diag, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return img{}, false, err
	}
	diag.Color = color.Gray{Y: 150}
	diag.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	diag.Width = vg.Points(1)
	p.Add(diag)
	n := 0
	for k, m := range methods {
		fpr, tpr := ROC(m.IDScores, m.OODScores)
		if fpr == nil {
			continue
		}
		xy := make(plotter.XYs, len(fpr))
		for i := range fpr {
			xy[i] = plotter.XY{X: fpr[i], Y: tpr[i]}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return img{}, false, err
		}
		l.Color = methodColors[k%len(methodColors)]
		l.Width = vg.Points(1.6)
		if k >= len(methodColors) {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(2)}
		}
		p.Add(l)
		// Quote the table's AUROC when it is this curve's area, so that the
		// two agree to the last digit (they may round differently).
		a := AUC(fpr, tpr)
		if math.Abs(m.Report.AUROC-a) < 1e-9 {
			a = m.Report.AUROC
		}
		p.Legend.Add(fmt.Sprintf("%s (AUROC %s)", m.Name, f3(a)), l)
		n++
	}
	if n == 0 {
		return img{}, false, nil
	}
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(6), vg.Points(6)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	im, err := render(p, 340, 320, "ROC curves: "+title)
	return im, true, err
}

// plotHist draws the ID and OOD score histograms of one method on shared
// bins, normalised to unit area. When a few outliers would squash the bulk
// of the scores, the bins span the 0.5–99.5% quantiles of all scores and
// the outliers land in the edge bins; clipped reports whether that happened.
func plotHist(title string, m Method) (im img, ok, clipped bool, err error) {
	id, ood := finite(m.IDScores, false), finite(m.OODScores, false)
	all := append(append([]float64(nil), id...), ood...)
	if len(id) == 0 && len(ood) == 0 {
		return img{}, false, false, nil
	}
	sort.Float64s(all)
	lo, hi := all[0], all[len(all)-1]
	qlo, qhi := quantileSorted(all, 0.005), quantileSorted(all, 0.995)
	if qhi > qlo && hi-lo > 4*(qhi-qlo) {
		lo, hi, clipped = qlo, qhi, true
	}
	if !(hi > lo) {
		d := math.Max(math.Abs(lo)*0.05, 0.5)
		lo, hi = lo-d, hi+d
	}
	nb := int(math.Round(math.Sqrt(float64(len(all)))))
	nb = min(max(nb, 10), 50)
	width := (hi - lo) / float64(nb)
	p := newPlot(title, "score (higher = more OOD)", "density", true)
	var hists []*plotter.Histogram
	for _, side := range []struct {
		name string
		v    []float64
		c    color.NRGBA
	}{{"ID", id, idColor}, {"OOD", ood, oodColor}} {
		if len(side.v) == 0 {
			continue
		}
		bins := make([]plotter.HistogramBin, nb)
		for i := range bins {
			bins[i] = plotter.HistogramBin{Min: lo + float64(i)*width, Max: lo + float64(i+1)*width}
		}
		bins[nb-1].Max = hi
		for _, x := range side.v {
			k := int(math.Floor((x - lo) / width))
			bins[min(max(k, 0), nb-1)].Weight++
		}
		for i := range bins {
			bins[i].Weight /= float64(len(side.v)) * width
		}
		h := &plotter.Histogram{Bins: bins, Width: width, FillColor: withAlpha(side.c, 90)}
		h.LineStyle = draw.LineStyle{Color: withAlpha(side.c, 200), Width: vg.Points(0.6)}
		p.Add(h)
		hists = append(hists, h)
		p.Legend.Add(fmt.Sprintf("%s (n=%d)", side.name, len(side.v)), h)
	}
	p.Legend.Top = true
	p.X.Min, p.X.Max = lo, hi
	top := 0.0
	for _, pl := range hists {
		for _, b := range pl.Bins {
			top = math.Max(top, b.Weight)
		}
	}
	p.Y.Min, p.Y.Max = 0, top*1.3 // headroom for the legend
	im, err = render(p, 210, 155, "score histograms: "+title)
	return im, true, clipped, err
}

func quantileSorted(s []float64, q float64) float64 {
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// maxSpectrumPanels bounds the eigenvalue indices plotted per pair.
const maxSpectrumPanels = 8

// plotSpectra draws one small panel per eigenvalue index: the mean over
// images against σ with a ±1 sd band, ID in blue and OOD in red. σ is on a
// log axis when positive, and λ when every mean is positive (band edges
// that would reach zero are clamped to a tenth of the smallest mean).
func plotSpectra(suffix string, stats []SigmaStats) (panels []img, total int, err error) {
	st := make([]SigmaStats, 0, len(stats))
	for _, s := range stats {
		if !math.IsNaN(s.Sigma) && !math.IsInf(s.Sigma, 0) {
			st = append(st, s)
		}
	}
	sort.SliceStable(st, func(i, j int) bool { return st[i].Sigma < st[j].Sigma })
	for _, s := range st {
		total = max(total, len(s.IDMean), len(s.OODMean))
	}
	if len(st) == 0 || total == 0 {
		return nil, 0, nil
	}
	for k := 0; k < min(total, maxSpectrumPanels); k++ {
		sides := spectrumSides(st, k)
		logY, minMean, have := true, math.Inf(1), false
		for _, d := range sides {
			for _, v := range d.m {
				have = true
				logY = logY && v > 0
				minMean = math.Min(minMean, v)
			}
		}
		if !have {
			continue
		}
		title := fmt.Sprintf("λ%d vs σ", k+1) + suffix
		p := newPlot(title, "σ", fmt.Sprintf("λ%d", k+1), true)
		ylo, yhi := math.Inf(1), math.Inf(-1)
		for _, d := range sides {
			lo, hi, err := d.add(p, logY, minMean/10)
			if err != nil {
				return nil, 0, err
			}
			ylo, yhi = math.Min(ylo, lo), math.Max(yhi, hi)
		}
		setSpectrumAxes(p, st[0].Sigma, st[len(st)-1].Sigma, ylo, yhi, logY)
		im, err := render(p, 230, 170, title)
		if err != nil {
			return nil, 0, err
		}
		panels = append(panels, im)
	}
	return panels, total, nil
}

// spectrumSeries is one side's (ID or OOD) mean and standard deviation of
// one eigenvalue over σ.
type spectrumSeries struct {
	c       color.NRGBA
	x, m, s []float64
}

// spectrumSides collects eigenvalue k of the ID and the OOD side from st,
// leaving out levels where its mean is missing or not finite.
func spectrumSides(st []SigmaStats, k int) []*spectrumSeries {
	sides := []*spectrumSeries{{c: idColor}, {c: oodColor}}
	for _, s := range st {
		for i, pr := range [][2][]float64{{s.IDMean, s.IDStd}, {s.OODMean, s.OODStd}} {
			if k >= len(pr[0]) || math.IsNaN(pr[0][k]) || math.IsInf(pr[0][k], 0) {
				continue
			}
			sd := math.NaN()
			if k < len(pr[1]) {
				sd = pr[1][k]
			}
			d := sides[i]
			d.x, d.m, d.s = append(d.x, s.Sigma), append(d.m, pr[0][k]), append(d.s, sd)
		}
	}
	return sides
}

// add draws the series on p: its ±sd band (or a single error bar) first,
// so that the line lies on top, then the line and its points. On a log
// y axis the band's lower edge is kept above floor. It returns the y range
// drawn (+Inf, −Inf for an empty series).
func (d *spectrumSeries) add(p *plot.Plot, logY bool, floor float64) (ylo, yhi float64, err error) {
	ylo, yhi = math.Inf(1), math.Inf(-1)
	if len(d.x) == 0 {
		return ylo, yhi, nil
	}
	var up, down plotter.XYs
	var at []int // index in d of each band point
	for i := range d.x {
		if math.IsNaN(d.s[i]) || math.IsInf(d.s[i], 0) {
			continue
		}
		a, b := d.m[i]-d.s[i], d.m[i]+d.s[i]
		if logY {
			a = math.Max(a, floor)
		}
		at = append(at, i)
		up = append(up, plotter.XY{X: d.x[i], Y: b})
		down = append(down, plotter.XY{X: d.x[i], Y: a})
		ylo, yhi = math.Min(ylo, a), math.Max(yhi, b)
	}
	if len(up) > 1 {
		ring := append(plotter.XYs{}, up...)
		for i := len(down) - 1; i >= 0; i-- {
			ring = append(ring, down[i])
		}
		band, err := plotter.NewPolygon(ring)
		if err != nil {
			return 0, 0, err
		}
		band.Color = withAlpha(d.c, 45)
		band.LineStyle.Width = 0
		p.Add(band)
	} else if len(up) == 1 {
		eb, err := plotter.NewYErrorBars(errPoints{x: up[0].X, y: d.m[at[0]], lo: d.m[at[0]] - down[0].Y, hi: up[0].Y - d.m[at[0]]})
		if err != nil {
			return 0, 0, err
		}
		eb.LineStyle.Color = d.c
		p.Add(eb)
	}
	xy := make(plotter.XYs, len(d.x))
	for i := range d.x {
		xy[i] = plotter.XY{X: d.x[i], Y: d.m[i]}
		ylo, yhi = math.Min(ylo, d.m[i]), math.Max(yhi, d.m[i])
	}
	l, sc, err := plotter.NewLinePoints(xy)
	if err != nil {
		return 0, 0, err
	}
	l.Color, l.Width = d.c, vg.Points(1.4)
	sc.Color, sc.Shape, sc.Radius = d.c, draw.CircleGlyph{}, vg.Points(2)
	p.Add(l, sc)
	return ylo, yhi, nil
}

// setSpectrumAxes sets the axis ranges with a margin: σ on a log scale when
// all levels are positive (xlo > 0), the eigenvalue on a log scale when
// logY.
func setSpectrumAxes(p *plot.Plot, xlo, xhi, ylo, yhi float64, logY bool) {
	if xlo > 0 {
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, logTicks{}
		if xhi > xlo {
			p.X.Min, p.X.Max = xlo/1.12, xhi*1.12
		} else {
			p.X.Min, p.X.Max = xlo/1.5, xhi*1.5
		}
	} else {
		d := math.Max((xhi-xlo)*0.05, 0.05)
		p.X.Min, p.X.Max = xlo-d, xhi+d
	}
	if logY {
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, logTicks{}
		if yhi > ylo {
			p.Y.Min, p.Y.Max = ylo/1.15, yhi*1.15
		} else {
			p.Y.Min, p.Y.Max = ylo/1.5, yhi*1.5
		}
	} else if yhi > ylo {
		d := (yhi - ylo) * 0.05
		p.Y.Min, p.Y.Max = ylo-d, yhi+d
	}
}

// errPoints is one point with an asymmetric y error, for plotter.YErrorBars.
type errPoints struct{ x, y, lo, hi float64 }

func (e errPoints) Len() int                       { return 1 }
func (e errPoints) XY(int) (float64, float64)      { return e.x, e.y }
func (e errPoints) YError(int) (low, high float64) { return e.lo, e.hi }

// logTicks labels a log axis: powers of ten when the range spans two
// decades or more, else 1-2-5 multiples, else 1…9 multiples, so that a
// narrow range still gets at least two labels. Unlabelled powers of ten
// and integer multiples are minor ticks.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) {
		return []plot.Tick{{Value: lo, Label: tickLabel(lo)}}
	}
	d0, d1 := int(math.Floor(math.Log10(lo))), int(math.Ceil(math.Log10(hi)))
	in := func(v float64) bool { return v >= lo*(1-1e-9) && v <= hi*(1+1e-9) }
	for _, mult := range [][]int{{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}} {
		labelled := map[int]bool{}
		for _, m := range mult {
			labelled[m] = true
		}
		var ticks []plot.Tick
		n := 0
		for d := d0; d <= d1; d++ {
			p := math.Pow(10, float64(d))
			for m := 1; m <= 9; m++ {
				v := float64(m) * p
				if !in(v) {
					continue
				}
				t := plot.Tick{Value: v}
				if labelled[m] {
					t.Label = tickLabel(v)
					n++
				}
				ticks = append(ticks, t)
			}
		}
		if n >= 2 || len(mult) == 9 {
			if n >= 2 && len(mult) == 1 && d1-d0 > 6 {
				// Many decades: label every other one.
				k := 0
				for i := range ticks {
					if ticks[i].Label != "" {
						if k%2 == 1 {
							ticks[i].Label = ""
						}
						k++
					}
				}
			}
			if n < 2 { // within one ninth of a decade: fall back to the ends
				return []plot.Tick{{Value: lo, Label: tickLabel(lo)}, {Value: hi, Label: tickLabel(hi)}}
			}
			return ticks
		}
	}
	return nil
}

func tickLabel(v float64) string {
	s := strconv.FormatFloat(v, 'g', 3, 64)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		s = strconv.FormatFloat(f, 'g', -1, 64)
	}
	return s
}

// f3 formats a metric with three decimals, or "—" when undefined.
func f3(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// diverging maps t ∈ [−1, 1] to a blue–white–red colour (ColorBrewer RdBu,
// reversed: negative blue, zero white, positive red).
func diverging(t float64) color.RGBA {
	stops := [...][3]float64{{5, 48, 97}, {67, 147, 195}, {247, 247, 247}, {214, 96, 77}, {103, 0, 31}}
	if math.IsNaN(t) {
		t = 0
	}
	t = math.Max(-1, math.Min(1, t))
	u := (t + 1) * 2 // 0..4
	i := min(int(u), 3)
	f := u - float64(i)
	var c [3]uint8
	for k := range c {
		c[k] = uint8(math.Round(stops[i][k] + f*(stops[i+1][k]-stops[i][k])))
	}
	return color.RGBA{R: c[0], G: c[1], B: c[2], A: 255}
}

// imageScale is the nearest-neighbour upscaling of example images.
const imageScale = 4

// inputTile renders a C×H×W image in [−1, 1]: RGB when C = 3, else the
// channel mean in grayscale; upscaled imageScale× by nearest neighbour.
func inputTile(x []float32, c, h, w int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w*imageScale, h*imageScale))
	to8 := func(v float64) uint8 {
		if math.IsNaN(v) {
			v = 0
		}
		return uint8(math.Round(math.Max(0, math.Min(1, (v+1)/2)) * 255))
	}
	for y := 0; y < h; y++ {
		for xx := 0; xx < w; xx++ {
			var px color.RGBA
			if c == 3 {
				px = color.RGBA{to8(float64(x[y*w+xx])), to8(float64(x[h*w+y*w+xx])), to8(float64(x[2*h*w+y*w+xx])), 255}
			} else {
				s := 0.0
				for ch := 0; ch < c; ch++ {
					s += float64(x[ch*h*w+y*w+xx])
				}
				g := to8(s / float64(c))
				px = color.RGBA{g, g, g, 255}
			}
			fillBlock(m, xx*imageScale, y*imageScale, px)
		}
	}
	return m
}

// vectorTile renders a C×H×W vector with the diverging colormap scaled by
// its largest |value|; channels sit side by side, one source pixel apart.
// It returns the tile and that scale.
func vectorTile(v []float64, c, h, w int) (*image.RGBA, float64) {
	scale := maxAbs(v)
	return valueTile(v, c, h, w, scale, true, imageScale), scale
}

// maxAbs is the largest finite |value| of v, 0 when none.
func maxAbs(v []float64) float64 {
	scale := 0.0
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			scale = math.Max(scale, math.Abs(x))
		}
	}
	return scale
}

// valueTile renders C×H×W values, channels side by side one source pixel
// apart, each pixel a block×block square: with signed, value/scale on the
// diverging colormap (−scale blue, 0 white, +scale red); without, on its
// upper half (0 white, scale red, negative values white). Values beyond
// the scale take the end colour; a zero scale draws everything white.
func valueTile(v []float64, c, h, w int, scale float64, signed bool, block int) *image.RGBA {
	gap := 1
	m := image.NewRGBA(image.Rect(0, 0, (c*w+(c-1)*gap)*block, h*block))
	for i := range m.Pix {
		m.Pix[i] = 255 // white gaps
	}
	for ch := 0; ch < c; ch++ {
		x0 := ch * (w + gap)
		for y := 0; y < h; y++ {
			for xx := 0; xx < w; xx++ {
				t := 0.0
				if scale > 0 {
					t = v[ch*h*w+y*w+xx] / scale
				}
				if !signed {
					t = math.Max(t, 0)
				}
				fillSquare(m, (x0+xx)*block, y*block, block, diverging(t))
			}
		}
	}
	return m
}

func fillBlock(m *image.RGBA, x0, y0 int, c color.RGBA) { fillSquare(m, x0, y0, imageScale, c) }

func fillSquare(m *image.RGBA, x0, y0, size int, c color.RGBA) {
	for y := y0; y < y0+size; y++ {
		for x := x0; x < x0+size; x++ {
			m.SetRGBA(x, y, c)
		}
	}
}

// tileImg embeds a tile at its pixel size.
func tileImg(m *image.RGBA, alt string) (img, error) {
	src, err := pngURL(m)
	b := m.Bounds()
	return img{Src: src, W: b.Dx(), H: b.Dy(), Alt: alt}, err
}
