// Package onnx runs neural-network denoisers exported to ONNX through ONNX
// Runtime (via github.com/yalue/onnxruntime_go, which loads libonnxruntime.so
// at run time with dlopen).
//
// # Library
//
// The shared library is found by LibraryPath: an explicit path
// (Options.LibPath), else $ONNXRUNTIME_LIB, else the cache path that
// scripts/install-onnxruntime.sh installs to. ONNX Runtime's environment is
// process-global, so every model in a process must use the same library.
//
// # Model contract
//
//	inputs:   x        float32 [N,C,H,W]  noisy images, data scale [-1, 1]
//	          sigma    float32 [N]        noise level per image
//	output:   denoised float32 [N,C,H,W]  D(x, σ) ≈ E[x0 | x]
//	metadata: dataset, shape ("CxHxW", e.g. "1x28x28"), sigma_min,
//	          sigma_max, recipe, producer
//
// N should be dynamic; a model with a fixed N is run in batches of exactly
// N, padded. Open checks names, ranks, element types and that C,H,W match
// the metadata shape.
//
// # Execution
//
// The backend decides how to run each call; Options only override it (see
// docs/onnxruntime.md for the measurements behind every default):
//
//   - No padding. A run carries exactly the images it was given: each
//     session keeps input and output buffers for BatchSize images and, per
//     run size m, tensors of m images over the front of those buffers (made
//     on the first run of that size, kept until Close), so a call allocates
//     nothing and evaluates exactly len(sigma) images.
//   - Every core works. A call is cut into runs of at most BatchSize images,
//     a multiple of the number of sessions when it is large enough, of
//     sizes that differ by at most one, dealt round-robin to the sessions
//     (by default one single-threaded session per core, each served by a
//     goroutine that keeps its OS thread), so a call of n ≥ 2 images keeps
//     min(n, Sessions) cores busy, and concurrent calls share the sessions
//     run by run.
//   - One image alone. A single image cannot be split; when the call has
//     one image and no run is in progress, it runs either on a session with
//     one intra-op thread per core (1.3× the speed of one thread, or 15%
//     slower, depending on how the OS places its threads) or on a
//     single-threaded one, whichever has been faster so far in this
//     process, while it holds every core.
//
// Cancelling the context stops a call before its next run; a run that has
// started finishes (runs are short: BatchSize images, about 8 ms for the
// shipped networks).
package onnx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eigenscore/eigenscore/denoise"
	ort "github.com/yalue/onnxruntime_go"
)

// DefaultBatchSize is the most images one session run carries when
// Options.BatchSize is 0. On the shipped 338k-parameter UNet one thread
// runs 4 to 16 images per run equally fast, 32 about 3% and 96 about 8%
// slower (presumably as a run's activations outgrow the core's L2 cache); a run of
// 16 takes about 8 ms, which bounds how long a cancelled call waits.
const DefaultBatchSize = 16

// numCPU is the number of cores the automatic layout plans for (a variable
// so that tests can plan for other machines).
var numCPU = runtime.NumCPU

// Options configures Open and OpenBytes. The zero value lets the backend
// choose everything (see Layout).
type Options struct {
	// LibPath is the ONNX Runtime shared library; "" means $ONNXRUNTIME_LIB
	// or the default cache path (see LibraryPath).
	LibPath string
	// Threads is the number of intra-op threads of each session. 0 means 1
	// when Sessions is 0 too, else max(1, NumCPU/Sessions).
	Threads int
	// BatchSize is the most images one session run carries; 0 means
	// DefaultBatchSize. Runs are not padded: a call of n images evaluates n
	// images. A model with a fixed batch dimension N runs batches of
	// exactly N (padded), and BatchSize must then be 0 or N.
	BatchSize int
	// Sessions is the number of sessions that run at once, each on its own
	// share of the calls' images. 0 means max(1, NumCPU/Threads), i.e. one
	// session per core when Threads is 0 too. Sessions·Threads should not
	// exceed the number of cores.
	Sessions int
}

// Layout is how a Denoiser runs: Sessions sessions of Threads intra-op
// threads run the calls' images in runs of at most BatchSize, and, when
// WideThreads > 0, a one-image call with nothing else running may go to a
// session of WideThreads threads instead (see Denoiser.lone).
type Layout struct {
	Sessions, Threads, BatchSize int
	WideThreads                  int
	// FixedBatch is the model's fixed batch dimension, 0 when it is dynamic
	// (then nothing is padded).
	FixedBatch int
}

// layout resolves the options for a machine of cpus cores and a model
// whose batch dimension is fixed (> 0) or dynamic (0).
func (o Options) layout(cpus, fixed int) (Layout, error) {
	if o.Threads < 0 || o.BatchSize < 0 || o.Sessions < 0 {
		return Layout{}, fmt.Errorf("onnx: negative option in %+v", o)
	}
	cpus = max(cpus, 1)
	l := Layout{Sessions: o.Sessions, Threads: o.Threads, BatchSize: o.BatchSize, FixedBatch: fixed}
	switch {
	case l.Threads == 0 && l.Sessions == 0:
		// One single-threaded session per core: on these small networks
		// ORT parallelises one run over two threads poorly (one session
		// with 2 threads runs 1.2–1.8× as fast as one thread at 8–96
		// images per run, two sessions side by side 1.9–2×), but a lone
		// image can only use more cores through intra-op threads.
		l.Threads, l.Sessions = 1, cpus
		if cpus > 1 {
			l.WideThreads = cpus
		}
	case l.Threads == 0:
		l.Threads = max(1, cpus/l.Sessions)
	case l.Sessions == 0:
		l.Sessions = max(1, cpus/l.Threads)
	}
	switch {
	case fixed > 0 && l.BatchSize != 0 && l.BatchSize != fixed:
		return Layout{}, fmt.Errorf("onnx: batch size %d asked for a model whose batch dimension is fixed at %d", l.BatchSize, fixed)
	case fixed > 0:
		l.BatchSize = fixed
		l.WideThreads = 0 // a padded run of N images is no lone image
	case l.BatchSize == 0:
		l.BatchSize = DefaultBatchSize
	}
	return l, nil
}

// Denoiser is a denoise.Denoiser backed by an ONNX model. It is safe for
// concurrent use.
type Denoiser struct {
	name   string
	meta   Metadata
	shape  denoise.Shape
	layout Layout

	lanes []*session // the sessions that serve the runs of calls
	wide  *session   // one-image session with a thread per core, or nil
	// cores is read-held by a lane while it runs and write-held by the wide
	// session, so that the wide session only runs with every core to itself
	// and nothing waits for it longer than one image.
	cores sync.RWMutex
	// queues[i] feeds lanes[i]; Close closes them to stop the lanes.
	queues  []chan *chunk
	next    atomic.Uint32 // the lane that gets the next call's first run
	workers sync.WaitGroup
	calls   sync.Pool // *call, so that Denoise does not allocate

	// picker chooses where lone images run (see lone); only touched with
	// cores write-locked.
	picker struct {
		calls int
		ns    [2]float64 // average run time: wide session, single thread
	}

	evaluated atomic.Int64 // images run through ORT, padding included (tests)

	mu     sync.RWMutex // read-held by Denoise, write-held by Close
	closed bool
}

var _ denoise.Denoiser = (*Denoiser)(nil)

// chunk is one run of a call, queued for a lane.
type chunk struct {
	ctx           context.Context
	x, sigma, out []float32
	offset        int // the chunk's first image in the call, for messages
	err           error
	done          *sync.WaitGroup
}

// call holds the chunks of one Denoise call; calls are pooled.
type call struct {
	wg     sync.WaitGroup
	chunks []chunk
}

// Open loads the ONNX model at path.
func Open(path string, opts Options) (*Denoiser, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("onnx: model %s: %w", path, err)
	}
	return open(path, path, nil, opts)
}

// OpenBytes loads an in-memory ONNX model (e.g. one embedded with go:embed);
// name identifies it in errors. The bytes are not retained after OpenBytes
// returns.
func OpenBytes(name string, model []byte, opts Options) (*Denoiser, error) {
	if len(model) == 0 {
		return nil, fmt.Errorf("onnx: model %s is empty", name)
	}
	return open(name, "", model, opts)
}

func open(name, path string, data []byte, opts Options) (*Denoiser, error) {
	if _, err := opts.layout(1, 0); err != nil {
		return nil, err
	}
	if _, err := Init(opts.LibPath); err != nil {
		return nil, err
	}

	var ins, outs []ort.InputOutputInfo
	var md *ort.ModelMetadata
	var err error
	if data != nil {
		ins, outs, err = ort.GetInputOutputInfoWithONNXData(data)
		if err == nil {
			md, err = ort.GetModelMetadataWithONNXData(data)
		}
	} else {
		// The inspection sessions skip graph optimisation: they only read
		// the model's signature and metadata.
		io, err2 := inspectOptions()
		if err2 != nil {
			return nil, err2
		}
		ins, outs, err = ort.GetInputOutputInfoWithOptions(path, io)
		if err == nil {
			md, err = ort.GetModelMetadataWithOptions(path, io)
		}
		io.Destroy()
	}
	if err != nil {
		return nil, fmt.Errorf("onnx: loading model %s: %w", name, err)
	}
	raw, err := readMetadata(md)
	md.Destroy()
	if err != nil {
		return nil, fmt.Errorf("onnx: model %s: reading metadata: %w", name, err)
	}
	meta, err := parseMetadata(name, raw)
	if err != nil {
		return nil, err
	}
	fixed, err := checkIO(name, meta.Shape, opts.BatchSize, ins, outs)
	if err != nil {
		return nil, err
	}
	lay, err := opts.layout(numCPU(), fixed)
	if err != nil {
		return nil, fmt.Errorf("onnx: model %s: %w", name, err)
	}

	d := &Denoiser{
		name:   name,
		meta:   meta,
		shape:  meta.Shape,
		layout: lay,
	}
	d.calls.New = func() any { return new(call) }
	fail := func(err error) (*Denoiser, error) {
		d.destroyAll()
		return nil, fmt.Errorf("onnx: model %s: %w", name, err)
	}
	for range lay.Sessions {
		s, err := newSession(path, data, meta.Shape, lay.Threads, lay.BatchSize, fixed > 0)
		if err != nil {
			return fail(err)
		}
		d.lanes = append(d.lanes, s)
	}
	if lay.WideThreads > 0 {
		if d.wide, err = newSession(path, data, meta.Shape, lay.WideThreads, 1, false); err != nil {
			return fail(err)
		}
	}
	for _, s := range d.lanes {
		q := make(chan *chunk, 64)
		d.queues = append(d.queues, q)
		d.workers.Add(1)
		go d.serve(s, q)
	}
	return d, nil
}

func inspectOptions() (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err == nil {
		err = so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll)
	}
	if err == nil {
		err = so.SetIntraOpNumThreads(1)
	}
	if err != nil {
		if so != nil {
			so.Destroy()
		}
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	return so, nil
}

// Shape returns the C×H×W image shape from the model's metadata.
func (d *Denoiser) Shape() denoise.Shape { return d.shape }

// Metadata returns the model's metadata.
func (d *Denoiser) Metadata() Metadata { return d.meta }

// Name is the model's path, or the name given to OpenBytes.
func (d *Denoiser) Name() string { return d.name }

// BatchSize is the most images one session run carries.
func (d *Denoiser) BatchSize() int { return d.layout.BatchSize }

// Layout says how the Denoiser runs calls: the options as resolved.
func (d *Denoiser) Layout() Layout { return d.layout }

// ErrClosed is returned by Denoise after Close.
var ErrClosed = errors.New("onnx: denoiser is closed")

// Denoise writes D(x_i, σ_i) into out for the n = len(sigma) images in x.
// It checks lengths (denoise.CheckBatch), rejects NaN/±Inf inputs, and
// returns ctx's error when ctx is cancelled (checked before every run). It
// does not allocate once each run size has been seen.
func (d *Denoiser) Denoise(ctx context.Context, x, sigma, out []float32) error {
	if err := denoise.CheckBatch(d.shape, x, sigma, out); err != nil {
		return err
	}
	if err := checkFinite(d.shape, x, sigma); err != nil {
		return err
	}
	n := len(sigma)
	if n == 0 {
		return nil
	}

	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if n == 1 && d.wide != nil && d.cores.TryLock() {
		err := d.lone(x, sigma, out)
		d.cores.Unlock()
		d.evaluated.Add(1)
		return d.runError(ctx, 0, 1, err)
	}

	runs, q, r := d.split(n)
	c := d.calls.Get().(*call)
	if cap(c.chunks) < runs {
		c.chunks = make([]chunk, runs)
	}
	c.chunks = c.chunks[:runs]
	dim := d.shape.Dim()
	c.wg.Add(runs)
	start := 0
	for i := range c.chunks {
		m := q
		if i < r {
			m++
		}
		m = min(m, n-start)
		c.chunks[i] = chunk{
			ctx:    ctx,
			x:      x[start*dim : (start+m)*dim],
			sigma:  sigma[start : start+m],
			out:    out[start*dim : (start+m)*dim],
			offset: start,
			done:   &c.wg,
		}
		start += m
	}
	lane := int(d.next.Add(uint32(runs)) - uint32(runs))
	for i := range c.chunks {
		d.queues[(lane+i)%len(d.queues)] <- &c.chunks[i]
	}
	c.wg.Wait()
	var first error
	for i := range c.chunks {
		if first == nil {
			first = c.chunks[i].err
		}
		c.chunks[i] = chunk{} // drop references to the caller's slices
	}
	d.calls.Put(c)
	if first != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// lone runs one image while the caller holds every core (cores
// write-locked), on the wide session or on a single-threaded one, whichever
// has been faster. A lone image took 0.42 ms with two intra-op threads
// against 0.54 ms with one on the shipped network for an hour, then 0.62
// ms against 0.53 ms for the next on the same idle 2-core virtual machine,
// so no fixed choice is right. The choice is measured as it goes: the
// average time of each kind of run is kept (an exponential moving average
// over about 8 runs), the faster kind runs, and every 32nd lone image
// runs on the other kind to notice when the order changes. Holding every
// core makes the first lane's session free to use here, on the caller's
// thread.
func (d *Denoiser) lone(x, sigma, out []float32) error {
	p := &d.picker
	k := 0 // 0: the wide session, 1: a single-threaded one
	switch {
	case p.calls < 4:
		k = p.calls % 2
	case p.ns[1] < p.ns[0]:
		k = 1
	}
	if p.calls >= 4 && p.calls%32 == 0 {
		k = 1 - k
	}
	p.calls++
	s := d.wide
	if k == 1 {
		s = d.lanes[0]
	}
	start := time.Now()
	err := s.run(x, sigma, out)
	t := float64(time.Since(start))
	if p.ns[k] == 0 {
		p.ns[k] = t
	} else {
		p.ns[k] += (t - p.ns[k]) / 8
	}
	return err
}

// split cuts a call of n images into runs: the first r of them carry q+1
// images, the others q (the last one fewer when the batch dimension is
// fixed). With a dynamic batch dimension the runs are a multiple of the
// number of sessions when n allows it (so that every session gets the same
// share), as few as BatchSize permits, and their sizes differ by at most
// one: 40 images on 2 sessions of at most 16 run as 4 × 10, 192 as 12 × 16,
// 3 as 2 + 1. A fixed batch dimension N gives ⌈n/N⌉ runs of N images, the
// last one padded.
func (d *Denoiser) split(n int) (runs, q, r int) {
	b := d.layout.BatchSize
	if d.layout.FixedBatch > 0 {
		return (n + b - 1) / b, b, 0
	}
	lanes := d.layout.Sessions
	runs = min(n, lanes*((n+lanes*b-1)/(lanes*b)))
	return runs, n / runs, n % runs
}

// serve runs queued chunks on one lane until Close closes the queue.
//
// The goroutine keeps its OS thread, so that the session's weights and
// buffers stay in the caches of the core that thread runs on: one session
// fed by a goroutine that moved between threads ran 5% slower at 16
// images per run.
func (d *Denoiser) serve(s *session, queue <-chan *chunk) {
	defer d.workers.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for c := range queue {
		if c.err = c.ctx.Err(); c.err == nil {
			d.cores.RLock()
			err := s.run(c.x, c.sigma, c.out)
			d.cores.RUnlock()
			d.evaluated.Add(int64(s.runSize(len(c.sigma))))
			c.err = d.runError(c.ctx, c.offset, len(c.sigma), err)
		}
		c.done.Done()
	}
}

// runError wraps the error of a run of m images starting at image offset,
// or returns nil for none.
func (d *Denoiser) runError(ctx context.Context, offset, m int, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return fmt.Errorf("onnx: model %s: images %d..%d: %w", d.name, offset, offset+m-1, err)
}

// checkFinite rejects NaN and ±Inf in x and sigma.
func checkFinite(shape denoise.Shape, x, sigma []float32) error {
	for i, v := range sigma {
		if math.IsInf(float64(v), 0) || v != v {
			return fmt.Errorf("onnx: sigma[%d] = %v, want a positive finite value", i, v)
		}
	}
	for i, v := range x {
		if v != v || v > math.MaxFloat32 || v < -math.MaxFloat32 {
			dim := shape.Dim()
			return fmt.Errorf("onnx: input x[%d] (image %d, value %d) = %v, want finite values", i, i/dim, i%dim, v)
		}
	}
	return nil
}

// Close releases the sessions and tensors, after any running Denoise calls
// finish. Later Denoise calls return ErrClosed. Close is idempotent.
func (d *Denoiser) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	d.destroyAll()
	return nil
}

// destroyAll stops the lanes' goroutines (no call is in progress: Close
// holds the write lock, and open has not returned) and frees every session.
func (d *Denoiser) destroyAll() {
	for _, q := range d.queues {
		close(q)
	}
	d.queues = nil
	d.workers.Wait()
	for _, s := range d.lanes {
		s.destroy()
	}
	d.lanes = nil
	if d.wide != nil {
		d.wide.destroy()
		d.wide = nil
	}
}
