package spectrum_test

import (
	"context"
	"testing"

	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/spectrum"
)

// BenchmarkEstimatorGMM reports the estimator's throughput in denoiser
// evaluations per second on the Fashion-MNIST mixture, reference settings.
func BenchmarkEstimatorGMM(b *testing.B) {
	m := testenv.FashionMixture(b)
	ds := testenv.Load(b, "fashion-mnist", "test").Head(16)
	var tasks []spectrum.Task
	for i := 0; i < ds.Len(); i++ {
		tasks = append(tasks, spectrum.Task{Image: ds.Image(i), Sigma: 0.72359, Key: uint64(i)})
	}
	c := denoise.NewCounter(m)
	est := spectrum.Estimator{Denoiser: c, Seed: 1}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := est.Run(context.Background(), tasks, 1, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.NFE())/b.Elapsed().Seconds(), "NFE/s")
	b.ReportMetric(float64(c.NFE())/float64(b.N*len(tasks)), "NFE/draw")
}
