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
