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
// N must be dynamic (or equal to the session batch size). Open checks names,
// ranks, element types and that C,H,W match the metadata shape.
//
// # Execution
//
// Each session has a fixed batch size (Options.BatchSize) and input/output
// tensors allocated once. Denoise splits a request into chunks of that size,
// padding the last chunk with zero images and σ = 1, so a request of n images
// costs ceil(n/BatchSize)·BatchSize network evaluations: choose a batch size
// that matches the typical request. Concurrency: a Denoiser holds a pool of
// Options.Sessions sessions (default 1). A request of several chunks is split
// into up to Sessions contiguous parts that run at once, each on a session of
// its own; concurrent calls share the pool and wait while no session is
// free. Each session runs on Options.Threads intra-op threads.
package onnx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"

	"github.com/eigenscore/eigenscore/denoise"
	ort "github.com/yalue/onnxruntime_go"
)

// DefaultBatchSize is the session batch size used when Options.BatchSize is 0.
const DefaultBatchSize = 64

// Options configures Open and OpenBytes.
type Options struct {
	// LibPath is the ONNX Runtime shared library; "" means $ONNXRUNTIME_LIB
	// or the default cache path (see LibraryPath).
	LibPath string
	// Threads is the number of intra-op threads of each session; 0 means
	// runtime.NumCPU().
	Threads int
	// BatchSize is the fixed batch of each session run; 0 means
	// DefaultBatchSize. Requests are split into chunks of this size and the
	// last chunk is padded.
	BatchSize int
	// Sessions is the number of sessions in the pool, i.e. how many chunks
	// run at once; 0 means 1. Each session uses Threads threads, so
	// Sessions·Threads should not exceed the number of cores.
	Sessions int
}

func (o Options) withDefaults() (Options, error) {
	if o.Threads < 0 || o.BatchSize < 0 || o.Sessions < 0 {
		return o, fmt.Errorf("onnx: negative option in %+v", o)
	}
	if o.Threads == 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Sessions == 0 {
		o.Sessions = 1
	}
	return o, nil
}

// Denoiser is a denoise.Denoiser backed by an ONNX model. It is safe for
// concurrent use.
type Denoiser struct {
	name  string
	meta  Metadata
	shape denoise.Shape
	opts  Options

	pool   chan *session
	all    []*session
	mu     sync.RWMutex // read-held by Denoise, write-held by Close
	closed bool
}

var _ denoise.Denoiser = (*Denoiser)(nil)

// session is one ORT session with its pre-allocated tensors.
type session struct {
	sess    *ort.AdvancedSession
	x, s, y *ort.Tensor[float32]
	xd, sd  []float32 // views of the input tensors' memory
	yd      []float32 // view of the output tensor's memory
	run     *ort.RunOptions
}

func (s *session) destroy() {
	if s.sess != nil {
		s.sess.Destroy()
	}
	for _, t := range []*ort.Tensor[float32]{s.x, s.s, s.y} {
		if t != nil {
			t.Destroy()
		}
	}
	if s.run != nil {
		s.run.Destroy()
	}
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
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := Init(opts.LibPath); err != nil {
		return nil, err
	}

	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(opts.Threads); err != nil {
		return nil, fmt.Errorf("onnx: setting %d intra-op threads: %w", opts.Threads, err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("onnx: setting inter-op threads: %w", err)
	}

	var ins, outs []ort.InputOutputInfo
	var md *ort.ModelMetadata
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
	if err := checkIO(name, meta.Shape, opts.BatchSize, ins, outs); err != nil {
		return nil, err
	}

	d := &Denoiser{
		name:  name,
		meta:  meta,
		shape: meta.Shape,
		opts:  opts,
		pool:  make(chan *session, opts.Sessions),
	}
	for range opts.Sessions {
		s, err := newSession(path, data, meta.Shape, opts.BatchSize, so)
		if err != nil {
			d.destroyAll()
			return nil, fmt.Errorf("onnx: model %s: %w", name, err)
		}
		d.all = append(d.all, s)
		d.pool <- s
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

func newSession(path string, data []byte, shape denoise.Shape, batch int, so *ort.SessionOptions) (s *session, err error) {
	s = &session{}
	defer func() {
		if err != nil {
			s.destroy()
		}
	}()
	b := int64(batch)
	img := ort.NewShape(b, int64(shape.C), int64(shape.H), int64(shape.W))
	if s.x, err = ort.NewEmptyTensor[float32](img); err != nil {
		return nil, err
	}
	if s.s, err = ort.NewEmptyTensor[float32](ort.NewShape(b)); err != nil {
		return nil, err
	}
	if s.y, err = ort.NewEmptyTensor[float32](img); err != nil {
		return nil, err
	}
	if s.run, err = ort.NewRunOptions(); err != nil {
		return nil, err
	}
	in := []ort.Value{s.x, s.s}
	out := []ort.Value{s.y}
	names := []string{InputX, InputSigma}
	outNames := []string{OutputName}
	if data != nil {
		s.sess, err = ort.NewAdvancedSessionWithONNXData(data, names, outNames, in, out, so)
	} else {
		s.sess, err = ort.NewAdvancedSession(path, names, outNames, in, out, so)
	}
	if err != nil {
		return nil, err
	}
	s.xd, s.sd, s.yd = s.x.GetData(), s.s.GetData(), s.y.GetData()
	return s, nil
}

// Shape returns the C×H×W image shape from the model's metadata.
func (d *Denoiser) Shape() denoise.Shape { return d.shape }

// Metadata returns the model's metadata.
func (d *Denoiser) Metadata() Metadata { return d.meta }

// Name is the model's path, or the name given to OpenBytes.
func (d *Denoiser) Name() string { return d.name }

// BatchSize is the fixed batch of each session run.
func (d *Denoiser) BatchSize() int { return d.opts.BatchSize }

// ErrClosed is returned by Denoise after Close.
var ErrClosed = errors.New("onnx: denoiser is closed")

// Denoise writes D(x_i, σ_i) into out for the n = len(sigma) images in x.
// It checks lengths (denoise.CheckBatch), rejects NaN/±Inf inputs, and
// returns ctx's error when ctx is cancelled (checked between chunks; a
// running chunk is asked to terminate early).
func (d *Denoiser) Denoise(ctx context.Context, x, sigma, out []float32) error {
	if err := denoise.CheckBatch(d.shape, x, sigma, out); err != nil {
		return err
	}
	if err := checkFinite(d.shape, x, sigma); err != nil {
		return err
	}
	if len(sigma) == 0 {
		return nil
	}

	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	// With several sessions, a request of several chunks is split into
	// contiguous parts of whole chunks that run at once, one per session:
	// on a small network, single-threaded sessions side by side use the
	// cores better than one session with several intra-op threads.
	dim := d.shape.Dim()
	b := d.opts.BatchSize
	n := len(sigma)
	chunks := (n + b - 1) / b
	parts := min(d.opts.Sessions, chunks)
	if parts <= 1 {
		return d.denoisePart(ctx, 0, x, sigma, out)
	}
	per := (chunks + parts - 1) / parts * b
	errs := make(chan error, parts)
	for start := 0; start < n; start += per {
		end := min(start+per, n)
		go func() {
			errs <- d.denoisePart(ctx, start, x[start*dim:end*dim], sigma[start:end], out[start*dim:end*dim])
		}()
	}
	var first error
	for start := 0; start < n; start += per {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// denoisePart runs one contiguous part of a request on one session from the
// pool; offset is the part's first image in the request, for messages.
func (d *Denoiser) denoisePart(ctx context.Context, offset int, x, sigma, out []float32) error {
	var s *session
	select {
	case s = <-d.pool:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { d.pool <- s }()

	// Ask ORT to abandon a running chunk when ctx is cancelled. If the
	// callback started, wait for it and clear the flag before the session is
	// reused.
	if ctx.Done() != nil {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			s.run.Terminate()
			close(fired)
		})
		defer func() {
			if !stop() {
				<-fired
				s.run.UnsetTerminate()
			}
		}()
	}

	dim := d.shape.Dim()
	b := d.opts.BatchSize
	n := len(sigma)
	for start := 0; start < n; start += b {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := min(b, n-start)
		copy(s.xd, x[start*dim:(start+m)*dim])
		copy(s.sd, sigma[start:start+m])
		if m < b {
			clear(s.xd[m*dim:])
			for i := m; i < b; i++ {
				s.sd[i] = 1
			}
		}
		if err := s.sess.RunWithOptions(s.run); err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return fmt.Errorf("onnx: model %s: images %d..%d: %w", d.name, offset+start, offset+start+m-1, err)
		}
		copy(out[start*dim:(start+m)*dim], s.yd[:m*dim])
	}
	return nil
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

func (d *Denoiser) destroyAll() {
	for _, s := range d.all {
		s.destroy()
	}
	d.all = nil
}
