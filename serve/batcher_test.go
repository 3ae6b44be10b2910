package serve

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/internal/testenv"
)

// gated is a denoiser that counts calls and blocks each until released.
type gated struct {
	denoise.Denoiser
	calls   atomic.Int64
	release chan struct{}
}

func (g *gated) Denoise(ctx context.Context, x, sigma, out []float32) error {
	g.calls.Add(1)
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Denoiser.Denoise(ctx, x, sigma, out)
}

func fitted(t *testing.T, den denoise.Denoiser) (*eigenscore.Detector, *eigenscore.Model) {
	t.Helper()
	m := eigenscore.NewModel(den, "gmm", "test-gmm")
	opts := &eigenscore.Options{Preset: "fast+iters=1", Sigmas: []float64{0.5}, Acceptance: 0.8, Seed: 1}
	det, err := eigenscore.Fit(context.Background(), eigenscore.NewModel(testenv.FashionMixture(t), "gmm", "test-gmm"), testenv.Load(t, "fashion-mnist", "train").Head(10), opts)
	if err != nil {
		t.Fatal(err)
	}
	return det, m
}

// Concurrent jobs are scored together, each gets its own images' results,
// and they equal scoring each alone; the jobs that ask for explanations
// (the odd ones) get them, the others do not.
func TestBatcherCombinesJobs(t *testing.T) {
	mix := testenv.FashionMixture(t)
	det, m := fitted(t, mix)
	ds := testenv.Load(t, "fashion-mnist", "test").Head(6)
	alone, err := det.Score(context.Background(), m, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newBatcher(det, m, 64, 64, 50*time.Millisecond)
	defer b.close()
	var wg sync.WaitGroup
	got := make([][]eigenscore.Result, 6)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if got[i], err = b.submit(context.Background(), ds.Image(i), 1, i%2 == 1); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) != 1 || got[i][0].Score != alone[i].Score {
			t.Fatalf("job %d: %v, alone %v", i, got[i], alone[i].Score)
		}
		if (got[i][0].Explanation != nil) != (i%2 == 1) {
			t.Errorf("job %d (explain %v) has explanation %v", i, i%2 == 1, got[i][0].Explanation != nil)
		}
	}
	if b.throughput() <= 0 {
		t.Error("no throughput recorded")
	}
}

// The queue refuses what does not fit; a job whose client has gone is
// dropped from the queue without being computed; a batch whose clients have
// all gone is cancelled; close lets queued jobs finish and then refuses.
func TestBatcherAdmissionAndCancellation(t *testing.T) {
	g := &gated{Denoiser: testenv.FashionMixture(t), release: make(chan struct{})}
	det, m := fitted(t, g)
	ds := testenv.Load(t, "fashion-mnist", "test").Head(3)
	b := newBatcher(det, m, 1, 2, 0)

	// Job A occupies the worker (blocked in the denoiser); job B waits.
	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() { _, err := b.submit(ctxA, ds.Image(0), 1, false); errA <- err }()
	for g.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctxB, cancelB := context.WithCancel(context.Background())
	errB := make(chan error, 1)
	go func() { _, err := b.submit(ctxB, ds.Image(1), 1, false); errB <- err }()
	for b.queued() < 2 {
		time.Sleep(time.Millisecond)
	}
	if _, err := b.submit(context.Background(), ds.Image(2), 1, false); !errors.Is(err, errQueueFull) {
		t.Errorf("third job: %v, want errQueueFull", err)
	}
	// B's client goes away while queued: it is never computed. A's client
	// goes away while computing: its batch is cancelled.
	cancelB()
	if err := <-errB; !errors.Is(err, context.Canceled) {
		t.Errorf("B: %v", err)
	}
	callsBefore := g.calls.Load()
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Errorf("A: %v", err)
	}
	close(g.release) // let everything run from now on
	deadline := time.Now().Add(5 * time.Second)
	for b.queued() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if b.queued() != 0 {
		t.Fatalf("%d images still queued", b.queued())
	}
	if n := g.calls.Load() - callsBefore; n > 1 {
		t.Errorf("%d denoiser calls after both clients left; the cancelled jobs kept computing", n)
	}
	// A job with a deadline the queue cannot meet is refused at once.
	b.rate.Store(1000) // 1 image/s
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := b.submit(ctx, ds.Image(2), 1, false); !errors.Is(err, errOverloaded) {
		t.Errorf("job that cannot meet its deadline: %v, want errOverloaded", err)
	}
	b.close()
	if _, err := b.submit(context.Background(), ds.Image(2), 1, false); !errors.Is(err, errClosing) {
		t.Errorf("after close: %v, want errClosing", err)
	}
}
