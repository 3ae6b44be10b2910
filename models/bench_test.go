package models_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/denoise/onnx"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/models"
	"github.com/eigenscore/eigenscore/spectrum"
)

func shipped(b *testing.B) (denoise.Denoiser, func()) {
	m, err := models.Open("fashion-mnist", &onnx.Options{BatchSize: 32, Threads: 1, Sessions: runtime.NumCPU()})
	if err != nil {
		b.Fatal(err)
	}
	return m.Denoiser(), func() { m.Close() }
}

// BenchmarkEstimatorShipped reports the spectrum estimator's NFE/s on the
// shipped Fashion-MNIST network with the fast preset (k=3, forward
// differences: calls of 32·2k = 192 images), to compare with
// BenchmarkRawShipped at the same batch size. Both use the CLI's default
// backend settings: one single-threaded session per core, chunks of 32
// images.
func BenchmarkEstimatorShipped(b *testing.B) {
	d, release := shipped(b)
	defer release()
	// 250 images × 2 draws: as many problems as one 50-image cache chunk of
	// eval at 5 levels, so the last, partly filled call weighs as it does
	// there.
	ds := testenv.Load(b, "fashion-mnist", "test").Head(250)
	keys := features.LevelKeys(ds, 1)
	var tasks []spectrum.Task
	for i := 0; i < ds.Len(); i++ {
		tasks = append(tasks, spectrum.Task{Image: ds.Image(i), Sigma: 0.72359, Key: keys[i][0]})
	}
	c := denoise.NewCounter(d)
	pr, _ := eigenscore.LookupPreset("fast")
	est := spectrum.Estimator{Denoiser: c, Config: pr.Estimator, Seed: 1}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := est.Run(context.Background(), tasks, pr.Draws, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.NFE())/b.Elapsed().Seconds(), "NFE/s")
}

// BenchmarkRawShipped calls the network directly on batches of 192 images,
// the fast estimator's call size.
func BenchmarkRawShipped(b *testing.B) {
	const batch = 192
	d, release := shipped(b)
	defer release()
	x := testenv.Load(b, "fashion-mnist", "test").Head(batch).Pixels
	sig := make([]float32, batch)
	for i := range sig {
		sig[i] = 0.72359
	}
	out := make([]float32, len(x))
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.Denoise(ctx, x, sig, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "NFE/s")
}
