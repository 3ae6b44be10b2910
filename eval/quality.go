package eval

import (
	"context"
	"math"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/metrics"
)

// QualitySigmas are the reference protocol's levels 100…700 plus a small
// and a very large σ, for denoising-quality tables.
func QualitySigmas() []float64 {
	return append([]float64{0.1, 0.2}, PaperSigmas()...)
}

// MSE is a denoiser's per-pixel mean squared error at one σ, with the
// standard error of the mean over images.
type MSE struct {
	Sigma float64 `json:"sigma"`
	MSE   float64 `json:"mse"`
	SE    float64 `json:"se"`
}

// Quality measures per-pixel E‖x − D(x + σn)‖²/d on the images, one noise
// draw per image and σ (seeded).
func Quality(ctx context.Context, den denoise.Denoiser, ds *data.Dataset, sigmas []float64, seed uint64) ([]MSE, [][]float64, error) {
	rows, err := features.DenoisingError(ctx, den, ds, sigmas, 1, seed, nil)
	if err != nil {
		return nil, nil, err
	}
	d := float64(ds.Dim())
	out := make([]MSE, len(sigmas))
	for j, s := range sigmas {
		col := make([]float64, len(rows))
		for i := range rows {
			rows[i][j] /= d
			col[i] = rows[i][j]
		}
		m, sd := metrics.MeanStd(col)
		out[j] = MSE{Sigma: s, MSE: m, SE: sd / math.Sqrt(float64(len(col)))}
	}
	return out, rows, nil
}
