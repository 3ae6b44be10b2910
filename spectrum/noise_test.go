package spectrum_test

import (
	"context"
	"testing"

	"github.com/eigenscore/eigenscore/noise"
	"github.com/eigenscore/eigenscore/spectrum"
)

// Attempt r of a task evaluates y = x + σ·n with n from
// noise.Stream(seed, NoisyImage, key, r), the y every other method uses for
// draw r, with key the task's, or σ's with SharedNoise; redraws continue the
// attempt count.
func TestNoisyImageFollowsNoiseRule(t *testing.T) {
	img := make([]float32, 50)
	for j := range img {
		img[j] = float32(j) / 50
	}
	tasks := []spectrum.Task{{Image: img, Sigma: 0.5, Key: 11}, {Image: img, Sigma: 0.7, Key: 12}}
	for _, shared := range []bool{false, true} {
		// MaxIter 1 never converges, so every attempt of the budget is made
		// and the first two are reported.
		est := spectrum.Estimator{Denoiser: &linear{s: separated(50)}, Seed: 5,
			Config: spectrum.Config{KeepVectors: true, MaxIter: 1, Redraw: 2, SharedNoise: shared}}
		res, err := est.Run(context.Background(), tasks, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		for ti, task := range tasks {
			if res[ti].Attempts != 4 || len(res[ti].Draws) != 2 {
				t.Fatalf("shared %v task %d: %d attempts, %d draws, want 4 and 2", shared, ti, res[ti].Attempts, len(res[ti].Draws))
			}
			key := task.Key
			if shared {
				key = noise.SigmaKey(task.Sigma)
			}
			for r, dr := range res[ti].Draws {
				if dr.Attempt != r {
					t.Fatalf("shared %v task %d: draw %d is attempt %d", shared, ti, r, dr.Attempt)
				}
				want := make([]float64, len(img))
				noise.Noisy(want, img, task.Sigma, noise.Stream(5, noise.NoisyImage, key, uint64(r)))
				for j := range want {
					if dr.Input[j] != want[j] {
						t.Fatalf("shared %v task %d draw %d: y[%d] = %v, want %v", shared, ti, r, j, dr.Input[j], want[j])
					}
				}
			}
		}
	}
}
