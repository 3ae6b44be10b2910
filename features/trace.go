package features

import (
	"context"
	"fmt"
	"math"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/noise"
)

// Trace estimates tr Cov[x|y] = σ²·tr J at y = x + σn with Hutchinson's
// estimator: for Rademacher probes v (entries ±1), E[vᵀJv] = tr J, and
// J·v is taken by central differences with the same step as the spectrum
// estimator, ‖h·v‖ = step. Returns the mean over probes per image and σ;
// every probe of an image at a level is taken at draw 0's noisy image.
// Cost: 2·probes NFEs per image and σ.
func Trace(ctx context.Context, den denoise.Denoiser, ds *data.Dataset, sigmas []float64, probes int, step float64, seed uint64, progress func(int)) ([][]float64, error) {
	d := ds.Dim()
	h := step / math.Sqrt(float64(d))
	out := make([][]float64, ds.Len())
	type item struct{ img, sig, probe int }
	var items []item
	for i := range out {
		out[i] = make([]float64, len(sigmas))
		for j := range sigmas {
			for p := 0; p < probes; p++ {
				items = append(items, item{i, j, p})
			}
		}
	}
	keys := LevelKeys(ds, len(sigmas))
	scratch := make([]float64, d)
	half := Batch / 2
	in := make([]float32, Batch*d)
	res := make([]float32, Batch*d)
	sig := make([]float32, Batch)
	y := make([]float32, d)
	vs := make([][]float32, half)
	for b := range vs {
		vs[b] = make([]float32, d)
	}
	for start := 0; start < len(items); start += half {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		chunk := items[start:min(start+half, len(items))]
		m := len(chunk)
		for b, it := range chunk {
			key := keys[it.img][it.sig]
			noisy(y, scratch, ds.Image(it.img), sigmas[it.sig], seed, key, 0)
			rng := noise.Stream(seed, noise.Probes, key, uint64(it.probe))
			v := vs[b]
			for j := range v {
				v[j] = float32(2*int(rng.Uint64()&1) - 1)
			}
			plus, minus := in[b*d:(b+1)*d], in[(m+b)*d:(m+b+1)*d]
			for j := range y {
				plus[j] = y[j] + float32(h)*v[j]
				minus[j] = y[j] - float32(h)*v[j]
			}
			sig[b], sig[m+b] = float32(sigmas[it.sig]), float32(sigmas[it.sig])
		}
		if err := den.Denoise(ctx, in[:2*m*d], sig[:2*m], res[:2*m*d]); err != nil {
			return nil, fmt.Errorf("features: %w", err)
		}
		for b, it := range chunk {
			plus, minus := res[b*d:(b+1)*d], res[(m+b)*d:(m+b+1)*d]
			q := 0.0
			for j, vj := range vs[b] {
				q += float64(vj) * (float64(plus[j]) - float64(minus[j]))
			}
			s := sigmas[it.sig]
			out[it.img][it.sig] += s * s * q / (2 * h) / float64(probes)
		}
		if progress != nil {
			progress(start + m)
		}
	}
	return out, nil
}
