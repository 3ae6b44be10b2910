// Package features computes per-image features from a denoiser: the
// posterior spectra of EigenScore (Estimate) and the features of the
// methods it is combined or compared with (method.md §6): denoising errors,
// score norms, the Hutchinson trace of Cov[x|y] and DiffPath statistics.
// Every feature is positive, so detector.Fit's two-sided score (a Gaussian
// on the log-features) applies to each; the one-sided score is the sum of
// standardised features.
//
// Noise follows package noise's rule: draw r of an image at the j-th level
// is evaluated at the same y = x + σ·n in every function here and in the
// spectrum estimator, given the same seed, set name and levels.
//
// NFE costs per image: denoising error and score norm, draws·|σ|;
// Hutchinson trace, 2·probes·|σ|; DiffPath, steps.
package features

import (
	"context"
	"fmt"
	"math"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/noise"
)

// Batch is the number of images per denoiser call in these methods.
const Batch = 64

// noisy fills y with draw r's noisy image x + σ·n for the image at level
// key (noise.NoisyImage), rounded to float32 as the spectrum estimator
// rounds it; scratch holds d float64 values.
func noisy(y []float32, scratch []float64, x []float32, sigma float64, seed, key uint64, draw int) {
	noise.Noisy(scratch, x, sigma, noise.Stream(seed, noise.NoisyImage, key, uint64(draw)))
	for j, v := range scratch {
		y[j] = float32(v)
	}
}

// LevelKeys returns the noise key of every image of ds at each of levels
// noise levels (noise.LevelKey of noise.ImageKey), hashing each image once.
func LevelKeys(ds *data.Dataset, levels int) [][]uint64 {
	keys := make([][]uint64, ds.Len())
	for i := range keys {
		k := noise.ImageKey(ds.Name, ds.Image(i))
		keys[i] = make([]uint64, levels)
		for j := range keys[i] {
			keys[i][j] = noise.LevelKey(k, j)
		}
	}
	return keys
}

// perNoise evaluates the denoiser on y_i = x_i + σ·n for every image, σ and
// draw, and reduces each (x, y, D(y)) to one value with f; the feature of
// (image, σ) is the mean over draws.
func perNoise(ctx context.Context, den denoise.Denoiser, ds *data.Dataset, sigmas []float64, draws int, seed uint64,
	f func(x, y, dy []float32, sigma float64) float64, progress func(int)) ([][]float64, error) {
	d := ds.Dim()
	n := ds.Len()
	out := make([][]float64, n)
	for i := range out {
		out[i] = make([]float64, len(sigmas))
	}
	type item struct{ img, sig, draw int }
	var items []item
	for i := 0; i < n; i++ {
		for j := range sigmas {
			for r := 0; r < draws; r++ {
				items = append(items, item{i, j, r})
			}
		}
	}
	keys := LevelKeys(ds, len(sigmas))
	scratch := make([]float64, d)
	in := make([]float32, Batch*d)
	res := make([]float32, Batch*d)
	sig := make([]float32, Batch)
	for start := 0; start < len(items); start += Batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		chunk := items[start:min(start+Batch, len(items))]
		for b, it := range chunk {
			noisy(in[b*d:(b+1)*d], scratch, ds.Image(it.img), sigmas[it.sig], seed, keys[it.img][it.sig], it.draw)
			sig[b] = float32(sigmas[it.sig])
		}
		m := len(chunk)
		if err := den.Denoise(ctx, in[:m*d], sig[:m], res[:m*d]); err != nil {
			return nil, fmt.Errorf("features: %w", err)
		}
		for b, it := range chunk {
			v := f(ds.Image(it.img), in[b*d:(b+1)*d], res[b*d:(b+1)*d], sigmas[it.sig])
			out[it.img][it.sig] += v / float64(draws)
		}
		if progress != nil {
			progress(start + m)
		}
	}
	return out, nil
}

// DenoisingError returns, per image and σ, the mean over draws of the
// squared error ‖x − D(x + σn)‖² (DDPM-OOD and DDOS use reconstruction
// errors of this kind). Its expectation over ID images is E tr Cov[x|y].
func DenoisingError(ctx context.Context, den denoise.Denoiser, ds *data.Dataset, sigmas []float64, draws int, seed uint64, progress func(int)) ([][]float64, error) {
	return perNoise(ctx, den, ds, sigmas, draws, seed, func(x, _, dy []float32, _ float64) float64 {
		s := 0.0
		for j := range x {
			e := float64(x[j]) - float64(dy[j])
			s += e * e
		}
		return s
	}, progress)
}

// ScoreNorm returns, per image and σ, the mean over draws of the score norm
// ‖∇ log p_σ(y)‖ = ‖D(y) − y‖/σ² at y = x + σn (MSMA's feature).
func ScoreNorm(ctx context.Context, den denoise.Denoiser, ds *data.Dataset, sigmas []float64, draws int, seed uint64, progress func(int)) ([][]float64, error) {
	return perNoise(ctx, den, ds, sigmas, draws, seed, func(_, y, dy []float32, sigma float64) float64 {
		s := 0.0
		for j := range y {
			e := float64(dy[j]) - float64(y[j])
			s += e * e
		}
		return math.Sqrt(s) / (sigma * sigma)
	}, progress)
}
