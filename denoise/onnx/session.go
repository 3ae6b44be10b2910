package onnx

import (
	"fmt"

	"github.com/eigenscore/eigenscore/denoise"
	ort "github.com/yalue/onnxruntime_go"
)

// session is one ORT session with input and output buffers for up to max
// images, used by one goroutine at a time.
type session struct {
	sess  *ort.DynamicAdvancedSession
	shape denoise.Shape
	max   int  // images per run at most
	fixed bool // the model's batch dimension is max: runs are padded to it

	xd, sd, yd []float32 // buffers of max images, shared by every run size
	// runs[m] runs exactly m images: tensors over the front m images of the
	// buffers, bound to the session's inputs and output. Each is made on
	// the first run of its size, so steady-state runs allocate nothing:
	// IoBinding runs take no Go slices, unlike DynamicAdvancedSession.Run
	// (5 allocations per run), and an AdvancedSession binds one size only.
	runs []*binding
}

type binding struct {
	x, s, y *ort.Tensor[float32]
	io      *ort.IoBinding
}

func (b *binding) destroy() {
	if b.io != nil {
		b.io.Destroy()
	}
	for _, t := range []*ort.Tensor[float32]{b.x, b.s, b.y} {
		if t != nil {
			t.Destroy()
		}
	}
}

// sessionOptions are the ORT settings of a session with the given number
// of intra-op threads. Each was measured on the shipped Fashion-MNIST UNet
// (docs/onnxruntime.md, "Session options"); only those that won are set,
// the others stay at ORT's defaults:
//
//   - graph optimisation: all levels (ORT's default, set explicitly). The
//     last level converts the convolutions to the blocked NCHWc layout:
//     1.6× the throughput of the "extended" level, 2× of "basic".
//   - execution mode: sequential. The parallel mode ran 2.6× slower (its
//     inter-op threads compete with the sessions running side by side).
//   - thread spinning, for sessions with more than one thread: on (the
//     default) while a run lasts, 1.3× the throughput of no spinning at
//     one image per run, but stopped when the run ends
//     (session.force_spinning_stop), so that an idle pool does not take
//     cycles from the single-threaded sessions. Single-threaded sessions
//     run on the calling thread and have no pool.
//   - memory pattern and CPU arena: left on (the defaults); turning either
//     off changed nothing beyond the noise (±3%).
//   - denormals as zero: left off. No measurable gain on these networks,
//     and ORT would set the flush-to-zero mode of the thread that creates
//     the session, a Go runtime thread.
func sessionOptions(threads int) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	set := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("session options: %s: %w", what, err)
		}
		return nil
	}
	for _, e := range []error{
		set(fmt.Sprintf("%d intra-op threads", threads), so.SetIntraOpNumThreads(threads)),
		set("inter-op threads", so.SetInterOpNumThreads(1)),
		set("graph optimisation level", so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll)),
		set("execution mode", so.SetExecutionMode(ort.ExecutionModeSequential)),
	} {
		if e != nil {
			so.Destroy()
			return nil, e
		}
	}
	if threads > 1 {
		if err := set("force_spinning_stop", so.AddSessionConfigEntry("session.force_spinning_stop", "1")); err != nil {
			so.Destroy()
			return nil, err
		}
	}
	return so, nil
}

func newSession(path string, data []byte, shape denoise.Shape, threads, max int, fixed bool) (s *session, err error) {
	so, err := sessionOptions(threads)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	s = &session{shape: shape, max: max, fixed: fixed, runs: make([]*binding, max+1)}
	names, outNames := []string{InputX, InputSigma}, []string{OutputName}
	if data != nil {
		s.sess, err = ort.NewDynamicAdvancedSessionWithONNXData(data, names, outNames, so)
	} else {
		s.sess, err = ort.NewDynamicAdvancedSession(path, names, outNames, so)
	}
	if err != nil {
		return nil, err
	}
	dim := shape.Dim()
	s.xd = make([]float32, max*dim)
	s.sd = make([]float32, max)
	s.yd = make([]float32, max*dim)
	return s, nil
}

// binding returns the tensors and binding that run m images.
func (s *session) binding(m int) (b *binding, err error) {
	if b = s.runs[m]; b != nil {
		return b, nil
	}
	b = &binding{}
	defer func() {
		if err != nil {
			b.destroy()
		}
	}()
	dim := s.shape.Dim()
	img := ort.NewShape(int64(m), int64(s.shape.C), int64(s.shape.H), int64(s.shape.W))
	if b.x, err = ort.NewTensor(img, s.xd[:m*dim]); err != nil {
		return nil, err
	}
	if b.s, err = ort.NewTensor(ort.NewShape(int64(m)), s.sd[:m]); err != nil {
		return nil, err
	}
	if b.y, err = ort.NewTensor(img, s.yd[:m*dim]); err != nil {
		return nil, err
	}
	if b.io, err = s.sess.CreateIoBinding(); err != nil {
		return nil, err
	}
	if err = b.io.BindInput(InputX, b.x); err != nil {
		return nil, err
	}
	if err = b.io.BindInput(InputSigma, b.s); err != nil {
		return nil, err
	}
	if err = b.io.BindOutput(OutputName, b.y); err != nil {
		return nil, err
	}
	s.runs[m] = b
	return b, nil
}

// runSize is the number of images ORT evaluates for a run of m images.
func (s *session) runSize(m int) int {
	if s.fixed {
		return s.max
	}
	return m
}

// run evaluates the m = len(sigma) ≤ max images of x into out.
func (s *session) run(x, sigma, out []float32) error {
	m := len(sigma)
	size := s.runSize(m)
	b, err := s.binding(size)
	if err != nil {
		return err
	}
	dim := s.shape.Dim()
	copy(s.xd, x)
	copy(s.sd, sigma)
	if size > m {
		clear(s.xd[m*dim : size*dim])
		for i := m; i < size; i++ {
			s.sd[i] = 1
		}
	}
	if err := s.sess.RunWithBinding(b.io); err != nil {
		return err
	}
	copy(out, s.yd[:m*dim])
	return nil
}

func (s *session) destroy() {
	for _, b := range s.runs {
		if b != nil {
			b.destroy()
		}
	}
	s.runs = nil
	if s.sess != nil {
		s.sess.Destroy()
	}
}
