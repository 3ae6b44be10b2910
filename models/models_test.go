package models_test

import (
	"context"
	"math"
	"testing"

	"github.com/eigenscore/eigenscore/denoise/onnx"
	"github.com/eigenscore/eigenscore/eval"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/metrics"
	"github.com/eigenscore/eigenscore/models"
)

// Each shipped network must denoise better than the Gaussian-mixture
// denoiser fitted to the same training data at every reference σ in
// 0.3–1.3, on its own test split. Both see the same images and noise, so
// the comparison is paired: the network must be better by more than three
// standard errors of the paired difference (a chance pass of a worse
// network has probability below 0.15%).
func TestShippedModelsBeatMixture(t *testing.T) {
	for _, spec := range []string{"fashion-mnist", "mnist", "fashion-mnist:0-4"} {
		beatsMixture(t, spec)
	}
}

// beatsMixture runs the comparison for the model shipped for spec.
func beatsMixture(t *testing.T, spec string) {
	sigmas := []float64{0.34226, 0.52197, 0.72359, 0.95803, 1.24016}
	name, ok := models.ForDataset(spec)
	if !ok {
		t.Errorf("no shipped model for %s", spec)
		return
	}
	t.Run(name, func(t *testing.T) {
		ds := eval.Sample(testenv.Load(t, spec, "test"), 200, 1, "quality")
		net, err := models.Open(name, &onnx.Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer net.Close()
		mix := testenv.Mixture(t, spec, 0)
		ctx := context.Background()
		_, a, err := eval.Quality(ctx, net.Denoiser(), ds, sigmas, 7)
		if err != nil {
			t.Fatal(err)
		}
		_, b, err := eval.Quality(ctx, mix, ds, sigmas, 7)
		if err != nil {
			t.Fatal(err)
		}
		for j, s := range sigmas {
			diff := make([]float64, len(a))
			ma, mb := 0.0, 0.0
			for i := range a {
				diff[i] = a[i][j] - b[i][j]
				ma += a[i][j] / float64(len(a))
				mb += b[i][j] / float64(len(a))
			}
			mu, sd := metrics.MeanStd(diff)
			se := sd / math.Sqrt(float64(len(diff)))
			t.Logf("σ=%.3f: network MSE %.5f, mixture %.5f (diff %.5f ± %.5f)", s, ma, mb, mu, se)
			if mu > -3*se {
				t.Errorf("σ=%.3f: network MSE %.5f does not beat the mixture's %.5f by 3 standard errors", s, ma, mb)
			}
		}
	})
}

func TestUnknownModel(t *testing.T) {
	if _, err := models.Model("cifar10"); err == nil {
		t.Error("unknown model accepted")
	}
	if _, ok := models.ForDataset("svhn"); ok {
		t.Error("svhn has no shipped model")
	}
}
