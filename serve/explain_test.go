package serve_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/serve"
)

// ?explain=1 adds each image's explanation: the library's eigenvalues
// (mean over draws) and maps as PNGs of the image's size whose darkest red
// pixel is where the map is largest; the scores are the same as without
// it. It is off by default, refused for more than MaxExplainImages images
// and for values other than 0 and 1.
func TestScoreExplain(t *testing.T) {
	f := newFixture(t)
	_, ts := f.server(t, serve.Options{MaxImages: 32})
	imgs := [][]float32{f.fm.Image(0), f.mn.Image(0)}
	var all []float32
	for _, im := range imgs {
		all = append(all, im...)
	}
	want, err := f.det.Score(context.Background(), f.m, &data.Dataset{Name: "x", Shape: f.det.Shape(), Pixels: all}, &eigenscore.ScoreOptions{Explain: true})
	if err != nil {
		t.Fatal(err)
	}
	code, _, b := post(t, ts.URL+"/v1/score?explain=1", "application/json", strings.NewReader(imagesJSON(imgs...)))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, b)
	}
	var resp serve.ScoreResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	checkResults(t, resp.Results, want)
	sh := f.det.Shape()
	for i, r := range resp.Results {
		e, lib := r.Explanation, want[i].Explanation
		if e == nil || len(e.Sigmas) != len(lib.Levels) || len(e.MapPNG) != len(lib.Levels) || len(e.StandardisedMapPNG) != len(lib.Levels) {
			t.Fatalf("image %d: explanation %+v", i, e)
		}
		for j, l := range lib.Levels {
			for q := range e.Eigenvalues[j] {
				mean := 0.0
				for _, d := range l.Values {
					mean += d[q] / float64(len(l.Values))
				}
				if math.Abs(e.Eigenvalues[j][q]-mean) > 1e-12*mean {
					t.Errorf("image %d σ %v λ%d: %v, library mean %v", i, l.Sigma, q+1, e.Eigenvalues[j][q], mean)
				}
			}
			raw, err := base64.StdEncoding.DecodeString(e.MapPNG[j])
			if err != nil {
				t.Fatal(err)
			}
			m, err := png.Decode(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if b := m.Bounds(); b.Dx() != sh.W || b.Dy() != sh.H {
				t.Fatalf("map PNG %v, want %d×%d", b, sh.W, sh.H)
			}
			// The largest value is drawn in the scale's end colour.
			top := 0
			for p, v := range l.Map {
				if v > l.Map[top] {
					top = p
				}
			}
			if r, g, _, _ := m.At(top%sh.W, top/sh.W).RGBA(); r>>8 != 103 || g>>8 != 0 {
				t.Errorf("image %d σ %v: the map's peak is drawn (%d, %d, ·), want the colour scale's end (103, 0, 31)", i, l.Sigma, r>>8, g>>8)
			}
			var mx float64
			for _, v := range l.Map {
				mx = math.Max(mx, v)
			}
			if e.MapMax[j] != mx {
				t.Errorf("map_max %v, the map's largest value %v", e.MapMax[j], mx)
			}
		}
		if c, y, x := lib.Peak(); e.Peak != (serve.Pixel{C: c, Y: y, X: x}) {
			t.Errorf("image %d: peak %+v, library (%d, %d, %d)", i, e.Peak, c, y, x)
		}
	}

	// Off by default.
	code, _, b = post(t, ts.URL+"/v1/score", "application/json", strings.NewReader(imagesJSON(imgs...)))
	if code != http.StatusOK || bytes.Contains(b, []byte(`"explanation"`)) {
		t.Errorf("without explain=1: status %d, explanation in the body: %v", code, bytes.Contains(b, []byte(`"explanation"`)))
	}
	many := make([][]float32, serve.MaxExplainImages+1)
	for i := range many {
		many[i] = f.fm.Image(0)
	}
	for _, c := range []struct{ query, body, want string }{
		{"?explain=1", imagesJSON(many...), "at most 16 images"},
		{"?explain=yes", imagesJSON(imgs...), "want 1 or 0"},
	} {
		code, _, b := post(t, ts.URL+"/v1/score"+c.query, "application/json", strings.NewReader(c.body))
		if code != http.StatusBadRequest || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: status %d %s, want 400 mentioning %q", c.query, code, b, c.want)
		}
	}
}
