package features

import (
	"context"
	"fmt"
	"math"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
)

// DiffPathSigmas is the σ grid of the probability-flow path: 11 levels
// geometric from 0.02 to 20, so 10 Euler steps and 10 NFEs per image.
func DiffPathSigmas() []float64 {
	const n = 11
	out := make([]float64, n)
	for i := range out {
		out[i] = 0.02 * math.Pow(1000, float64(i)/float64(n-1))
	}
	return out
}

// DiffPath follows the variance-exploding probability-flow ODE
// dx/dσ = ε(x, σ) = (x − D(x, σ))/σ from the clean image toward noise with
// Euler steps over sigmas (DDIM for this parametrisation), and summarises
// the path as in DiffPath-6D: the power sums Σ_t ‖ε_t‖^p and Σ_t ‖∂ε/∂ln σ‖^p
// for p = 1, 2, 3, with norms divided by √d so the values stay of order one.
// The path is deterministic (no noise draws). Cost: len(sigmas)−1 NFEs.
func DiffPath(ctx context.Context, den denoise.Denoiser, ds *data.Dataset, sigmas []float64, progress func(int)) ([][]float64, error) {
	d := ds.Dim()
	steps := len(sigmas) - 1
	if steps < 2 {
		return nil, fmt.Errorf("features: DiffPath needs at least 3 noise levels, got %d", len(sigmas))
	}
	out := make([][]float64, ds.Len())
	scale := 1 / math.Sqrt(float64(d))
	for start := 0; start < ds.Len(); start += Batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m := min(Batch, ds.Len()-start)
		x := append([]float32(nil), ds.Pixels[start*d:(start+m)*d]...)
		res := make([]float32, m*d)
		sig := make([]float32, m)
		prev := make([][]float64, m) // ε at the previous level
		feats := make([][]float64, m)
		for i := range feats {
			feats[i] = make([]float64, 6)
			prev[i] = make([]float64, d)
		}
		eps := make([]float64, d)
		for t := 0; t < steps; t++ {
			s := sigmas[t]
			for i := range sig {
				sig[i] = float32(s)
			}
			if err := den.Denoise(ctx, x, sig, res); err != nil {
				return nil, fmt.Errorf("features: %w", err)
			}
			for i := 0; i < m; i++ {
				e2, c2 := 0.0, 0.0
				for j := 0; j < d; j++ {
					eps[j] = (float64(x[i*d+j]) - float64(res[i*d+j])) / s
					e2 += eps[j] * eps[j]
					if t > 0 {
						dc := (eps[j] - prev[i][j]) / math.Log(s/sigmas[t-1])
						c2 += dc * dc
					}
				}
				en := math.Sqrt(e2) * scale
				for p := 1; p <= 3; p++ {
					feats[i][p-1] += math.Pow(en, float64(p))
				}
				if t > 0 {
					cn := math.Sqrt(c2) * scale
					for p := 1; p <= 3; p++ {
						feats[i][2+p] += math.Pow(cn, float64(p))
					}
				}
				// Euler step to the next level.
				ds := sigmas[t+1] - s
				for j := 0; j < d; j++ {
					x[i*d+j] += float32(ds * eps[j])
				}
				copy(prev[i], eps)
			}
		}
		copy(out[start:], feats)
		if progress != nil {
			progress(start + m)
		}
	}
	return out, nil
}
