package eigenscore_test

import (
	"context"
	"testing"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/models"
)

// BenchmarkScoreOneImage is the compute time of scoring one image alone
// with the shipped Fashion-MNIST network and the default (fast) options:
// the floor of a one-image request's latency in the service.
func BenchmarkScoreOneImage(b *testing.B) {
	m, err := models.Open("fashion-mnist", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	det, err := eigenscore.Fit(ctx, m, testenv.Load(b, "fashion-mnist", "train").Head(20), nil)
	if err != nil {
		b.Fatal(err)
	}
	img := testenv.Load(b, "fashion-mnist", "test").Head(1)
	b.ResetTimer()
	for range b.N {
		if _, err := det.Score(ctx, m, img, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScoreExplain is the time of scoring 100 Fashion-MNIST test
// images with the shipped network (fast preset), without and with
// explanations, and the NFEs per image of each: explaining keeps the
// eigenvectors the estimator computes anyway, so the NFEs are equal and
// the time differs by building the maps.
//
//	go test -run '^$' -bench ScoreExplain -count 5 .
func BenchmarkScoreExplain(b *testing.B) {
	m, err := models.Open("fashion-mnist", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	det, err := eigenscore.Fit(ctx, m, testenv.Load(b, "fashion-mnist", "train").Head(20), nil)
	if err != nil {
		b.Fatal(err)
	}
	imgs := testenv.Load(b, "fashion-mnist", "test").Head(100)
	for _, explain := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "explain"}[explain], func(b *testing.B) {
			n0 := m.NFE()
			for range b.N {
				if _, err := det.Score(ctx, m, imgs, &eigenscore.ScoreOptions{Explain: explain}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(m.NFE()-n0)/float64(b.N*imgs.Len()), "NFE/image")
		})
	}
}
