package serve

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/method"
	"github.com/eigenscore/eigenscore/report"
)

// MaxExplainImages is the most images a request may ask to explain
// (?explain=1): an explanation of a 28×28 image at 5 noise levels is about
// 18 KB (11 maps of about 1.6 KB of base64 PNG), so a response stays near
// 300 KB (about 4 times that for 32×32 colour images).
const MaxExplainImages = 16

// Result is one image's outcome in a ScoreResponse: the library's Result,
// with its explanation as images when the request asked for one.
type Result struct {
	eigenscore.Result
	Explanation *Explanation `json:"explanation,omitempty"`
}

// Explanation is an eigenscore.Explanation for the wire: per noise level
// the eigenvalues and the uncertainty maps as base64 PNGs at one image
// pixel per value (channels side by side, one pixel apart), with the value
// each map's colour scale ends at. The eigenvectors are not sent.
type Explanation struct {
	Sigmas []float64 `json:"sigmas"`
	// Eigenvalues[j] are the top-k eigenvalues of Cov[x|y] at Sigmas[j],
	// each the mean over the noise draws.
	Eigenvalues [][]float64 `json:"eigenvalues"`
	// MapPNG[j] is the uncertainty map Σ_i λ_i·v_i² at Sigmas[j], white
	// at 0 to red at MapMax[j].
	MapPNG []string  `json:"map_png"`
	MapMax []float64 `json:"map_max"`
	// StandardisedMapPNG[j] is the map standardised against the fit
	// images, blue at −StandardisedMax[j], white at 0, red at
	// +StandardisedMax[j].
	StandardisedMapPNG []string  `json:"standardised_map_png"`
	StandardisedMax    []float64 `json:"standardised_max"`
	// CombinedPNG is the mean of the standardised maps over levels, on
	// the same colours up to ±CombinedMax; Peak is where it is largest.
	CombinedPNG string  `json:"combined_png"`
	CombinedMax float64 `json:"combined_max"`
	Peak        Pixel   `json:"peak"`
	Caveat      string  `json:"caveat,omitempty"`
}

// Pixel is a channel, row and column.
type Pixel struct {
	C int `json:"c"`
	Y int `json:"y"`
	X int `json:"x"`
}

// wantExplain reads the explain query parameter: "1" or "true" ask for
// explanations, "", "0" or "false" do not; anything else is a 400.
func (s *Server) wantExplain(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("explain")
	switch v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
	default:
		return false, statusError(http.StatusBadRequest, "explain=%q, want 1 or 0", v)
	}
	if !slices.Contains(s.det.Method().Info().Providers, method.Spectra) {
		return false, statusError(http.StatusBadRequest, "explain=1: method %s has no spectra to explain", s.det.Method())
	}
	return true, nil
}

// wireExplanation renders an explanation's maps as PNGs.
func wireExplanation(e *eigenscore.Explanation) (*Explanation, error) {
	if e == nil {
		return nil, fmt.Errorf("serve: no explanation to send")
	}
	png := func(v []float64, signed bool) (string, float64, error) {
		b, scale, err := report.MapPNG(v, e.Shape, signed)
		return base64.StdEncoding.EncodeToString(b), scale, err
	}
	out := &Explanation{Caveat: e.Caveat}
	for _, l := range e.Levels {
		mean := make([]float64, len(l.Values[0]))
		for _, draw := range l.Values {
			for i, v := range draw {
				mean[i] += v / float64(len(l.Values))
			}
		}
		m, mmax, err := png(l.Map, false)
		if err != nil {
			return nil, err
		}
		z, zmax, err := png(l.Standardised, true)
		if err != nil {
			return nil, err
		}
		out.Sigmas, out.Eigenvalues = append(out.Sigmas, l.Sigma), append(out.Eigenvalues, mean)
		out.MapPNG, out.MapMax = append(out.MapPNG, m), append(out.MapMax, mmax)
		out.StandardisedMapPNG, out.StandardisedMax = append(out.StandardisedMapPNG, z), append(out.StandardisedMax, zmax)
	}
	var err error
	if out.CombinedPNG, out.CombinedMax, err = png(e.Combined, true); err != nil {
		return nil, err
	}
	out.Peak.C, out.Peak.Y, out.Peak.X = e.Peak()
	return out, nil
}

// wireResults wraps the library's results, rendering their explanations.
func wireResults(res []eigenscore.Result) ([]Result, error) {
	out := make([]Result, len(res))
	for i, r := range res {
		out[i].Result = r
		if r.Explanation == nil {
			continue
		}
		e, err := wireExplanation(r.Explanation)
		if err != nil {
			return nil, err
		}
		out[i].Explanation = e
		out[i].Result.Explanation = nil
	}
	return out, nil
}
