package serve

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
)

// Errors of admission. Handlers map them to status codes.
var (
	errQueueFull  = errors.New("serve: the queue is full")
	errOverloaded = errors.New("serve: the queue would not drain before the request's deadline")
	errClosing    = errors.New("serve: the server is shutting down")
)

// job is one request's images waiting for, or in, a scoring batch.
type job struct {
	ctx     context.Context
	pixels  []float32
	n       int
	explain bool // keep the images' explanations
	results []eigenscore.Result
	err     error
	done    chan struct{}
}

// batcher scores the images of concurrent requests together: a single
// worker takes whole jobs from a FIFO queue into one Detector.Score call of
// up to maxBatch images, so the model's batches stay full at any
// concurrency. Scores depend only on each image's pixels (package
// eigenscore), so batching never changes a result. The queue is bounded in
// images (admission control): a job that does not fit is refused at once.
// A job whose context ends while queued is dropped without computing; a
// batch whose jobs have all gone is cancelled.
type batcher struct {
	det      *eigenscore.Detector
	m        *eigenscore.Model
	shape    denoise.Shape
	maxBatch int
	limit    int           // images queued or being scored, at most
	delay    time.Duration // how long a partial batch waits for more jobs

	mu       sync.Mutex
	lastJobs int // jobs in the last batch: 1 means no concurrency to wait for
	queue    []*job
	pending  int // images queued or being scored
	closed   bool
	wake     chan struct{}
	stopped  chan struct{}

	// rate is the recent scoring throughput in images per second (an
	// exponential average), for Retry-After.
	rate atomic.Uint64
}

func newBatcher(det *eigenscore.Detector, m *eigenscore.Model, maxBatch, limit int, delay time.Duration) *batcher {
	b := &batcher{det: det, m: m, shape: det.Shape(), maxBatch: maxBatch, limit: limit, delay: delay,
		wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go b.loop()
	return b
}

// warmUp scores a few blank images once, so that the model's first real
// batch is not slowed by its set-up and admission has a throughput to
// judge deadlines by from the first request (a small batch runs slower per
// image than a full one, so the estimate errs on the side of refusing).
func (b *batcher) warmUp(ctx context.Context, images int) error {
	t0 := time.Now()
	ds := &data.Dataset{Name: "warm-up", Shape: b.shape, Pixels: make([]float32, images*b.shape.Dim())}
	if _, err := b.det.Score(ctx, b.m, ds, nil); err != nil {
		return fmt.Errorf("serve: warming up the model: %w", err)
	}
	b.observe(images, time.Since(t0))
	return nil
}

// submit queues n images and waits for their results, for ctx to end, or
// refuses them at once: errClosing, errQueueFull when the queue has no room,
// errOverloaded when at the recent throughput the queue ahead and these
// images would not be done before ctx's deadline.
func (b *batcher) submit(ctx context.Context, pixels []float32, n int, explain bool) ([]eigenscore.Result, error) {
	j := &job{ctx: ctx, pixels: pixels, n: n, explain: explain, done: make(chan struct{})}
	rate := b.throughput()
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return nil, errClosing
	case b.pending+n > b.limit:
		b.mu.Unlock()
		return nil, errQueueFull
	case late(ctx, float64(b.pending+n), rate):
		b.mu.Unlock()
		return nil, errOverloaded
	}
	b.queue = append(b.queue, j)
	b.pending += n
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	select {
	case <-j.done:
		return j.results, j.err
	case <-ctx.Done():
		// The worker drops the job if it is still queued, and cancels its
		// batch when every job of it has gone.
		return nil, ctx.Err()
	}
}

// late reports whether images at rate images/s would finish after ctx's
// deadline.
func late(ctx context.Context, images, rate float64) bool {
	deadline, ok := ctx.Deadline()
	if !ok || rate <= 0 {
		return false
	}
	return time.Now().Add(time.Duration(images / rate * float64(time.Second))).After(deadline)
}

// throughput is the recent scoring rate in images per second, 0 before the
// first batch.
func (b *batcher) throughput() float64 { return float64(b.rate.Load()) / 1000 }

// queued is the number of images queued or being scored.
func (b *batcher) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending
}

// retryAfter estimates how long the queue takes to drain.
func (b *batcher) retryAfter() time.Duration {
	rate := b.throughput()
	if rate <= 0 {
		return time.Second
	}
	return max(time.Second, time.Duration(float64(b.queued())/rate*float64(time.Second)))
}

// close stops admitting jobs, lets the queued ones finish and waits for the
// worker to stop.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	<-b.stopped
}

func (b *batcher) loop() {
	defer close(b.stopped)
	for {
		batch, ok := b.next()
		if !ok {
			return
		}
		if len(batch) > 0 {
			b.run(batch)
		}
	}
}

// next takes whole jobs from the queue, up to maxBatch images (a larger job
// goes alone), dropping jobs whose context has ended. It waits while the
// queue is empty; when requests arrive concurrently (more than one job
// queued, or in the last batch) it lets a partial batch wait up to delay
// for more jobs, since the clients of the last batch are sending their next
// requests; a lone client never waits. It reports false once closed and
// drained.
func (b *batcher) next() ([]*job, bool) {
	waited := false
	for {
		b.mu.Lock()
		waiting := 0
		for _, j := range b.queue {
			waiting += j.n
		}
		concurrent := len(b.queue) > 1 || b.lastJobs > 1
		if waiting > 0 && waiting < b.maxBatch && concurrent && !b.closed && !waited && b.delay > 0 {
			b.mu.Unlock()
			waited = true
			time.Sleep(b.delay)
			continue
		}
		var batch []*job
		images := 0
		for len(b.queue) > 0 {
			j := b.queue[0]
			if j.ctx.Err() != nil {
				b.queue = b.queue[1:]
				b.pending -= j.n
				continue
			}
			if len(batch) > 0 && images+j.n > b.maxBatch {
				break
			}
			b.queue = b.queue[1:]
			batch = append(batch, j)
			images += j.n
		}
		closed := b.closed
		if len(batch) > 0 {
			b.lastJobs = len(batch)
		}
		b.mu.Unlock()
		if len(batch) > 0 {
			return batch, true
		}
		if closed {
			return nil, false
		}
		<-b.wake
	}
}

// run scores a batch and hands each job its results. If the batch fails
// for a reason other than cancellation, each job is scored alone, so that
// one request's bad image fails only that request.
func (b *batcher) run(batch []*job) {
	defer func() {
		b.mu.Lock()
		for _, j := range batch {
			b.pending -= j.n
		}
		b.mu.Unlock()
	}()
	t0 := time.Now()
	res, err := b.score(batch)
	if err != nil && len(batch) > 1 && !errors.Is(err, context.Canceled) {
		for _, j := range batch {
			j.results, j.err = b.score([]*job{j})
			close(j.done)
		}
		return
	}
	n := 0
	for _, j := range batch {
		if err != nil {
			j.err = err
		} else {
			j.results = res[n : n+j.n]
		}
		n += j.n
		close(j.done)
	}
	if err == nil {
		b.observe(n, time.Since(t0))
	}
}

// score computes the results of the jobs' images in one call, cancelled
// once every job's context has ended. When a job asks for explanations the
// whole batch is explained (explaining changes no score and costs no
// NFEs) and the jobs that did not ask get none.
func (b *batcher) score(jobs []*job) ([]eigenscore.Result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var live atomic.Int64
	live.Store(int64(len(jobs)))
	ds := &data.Dataset{Name: "batch", Shape: b.shape}
	explain := false
	for _, j := range jobs {
		ds.Pixels = append(ds.Pixels, j.pixels...)
		explain = explain || j.explain
		stop := context.AfterFunc(j.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	res, err := b.det.Score(ctx, b.m, ds, &eigenscore.ScoreOptions{Explain: explain})
	if err != nil {
		return nil, err
	}
	n := 0
	for _, j := range jobs {
		if !j.explain {
			for i := n; i < n+j.n; i++ {
				res[i].Explanation = nil
			}
		}
		n += j.n
	}
	return res, nil
}

// observe updates the throughput estimate with a batch of n images.
func (b *batcher) observe(n int, d time.Duration) {
	rate := float64(n) / max(d.Seconds(), 1e-6)
	old := float64(b.rate.Load()) / 1000
	if old > 0 {
		rate = 0.7*old + 0.3*rate
	}
	b.rate.Store(uint64(rate * 1000))
}
