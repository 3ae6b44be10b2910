package eigenscore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/denoise/onnx"
)

// Model is an open denoiser D(y, σ) ≈ E[x | y]: a handle that owns its
// resources (ONNX Runtime sessions) until Close, and counts the
// evaluations (NFEs) spent through it. It is safe for concurrent use.
type Model struct {
	den    denoise.Denoiser
	source string
	id     string
	nfe    atomic.Int64

	closeOnce sync.Once
	close     func() error
	closeErr  error
}

// OpenModel opens an ONNX denoiser (the model contract of package
// denoise/onnx) from a file. opts may be nil: the backend's automatic
// layout (one single-threaded ONNX Runtime session per core, runs of at
// most 16 images, no padding, a session with a thread per core for lone
// images), the library from $ONNXRUNTIME_LIB or the path
// scripts/install-onnxruntime.sh installs to.
func OpenModel(path string, opts *onnx.Options) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eigenscore: model %s: %w", path, err)
	}
	return OpenModelBytes(path, "onnx:"+hash(b), b, opts)
}

// OpenModelBytes opens an in-memory ONNX model, such as one embedded in the
// binary (package models). source says where it came from and is recorded
// in detectors; id identifies the weights (detectors refuse other ids).
func OpenModelBytes(source, id string, model []byte, opts *onnx.Options) (*Model, error) {
	var o onnx.Options // zero: the backend chooses (onnx.Layout)
	if opts != nil {
		o = *opts
	}
	d, err := onnx.OpenBytes(source, model, o)
	if err != nil {
		return nil, fmt.Errorf("eigenscore: %w", err)
	}
	return &Model{den: d, source: source, id: id, close: d.Close}, nil
}

// NewModel wraps any denoiser, for example the closed-form Gaussian
// mixture of package denoise/gmm. source says where it came from; id
// identifies it in detectors and cache keys. Close does not close den.
func NewModel(den denoise.Denoiser, source, id string) *Model {
	return &Model{den: den, source: source, id: id}
}

// Source says where the model came from: a file path, "shipped:NAME", or
// what NewModel was given.
func (m *Model) Source() string { return m.source }

// ID identifies the model's weights; a detector scores only with the model
// whose ID it was fitted with.
func (m *Model) ID() string { return m.id }

// Shape is the C×H×W shape of the images the model takes.
func (m *Model) Shape() denoise.Shape { return m.den.Shape() }

// NFE is the number of denoiser evaluations spent through the model so far.
func (m *Model) NFE() int64 { return m.nfe.Load() }

// Denoiser returns the model as a denoise.Denoiser whose evaluations count
// towards NFE.
func (m *Model) Denoiser() denoise.Denoiser { return (*counted)(m) }

// Close releases the model's resources; later evaluations fail. Closing
// twice is harmless.
func (m *Model) Close() error {
	m.closeOnce.Do(func() {
		if m.close != nil {
			m.closeErr = m.close()
		}
	})
	return m.closeErr
}

// counted is a Model seen as a denoiser that counts its evaluations.
type counted Model

func (c *counted) Shape() denoise.Shape { return c.den.Shape() }

func (c *counted) Denoise(ctx context.Context, x, sigma, out []float32) error {
	c.nfe.Add(int64(len(sigma)))
	return c.den.Denoise(ctx, x, sigma, out)
}

// Denoise64 forwards to the float64 path when the model has one.
func (c *counted) Denoise64(ctx context.Context, x, sigma, out []float64) error {
	d64, ok := c.den.(denoise.Denoiser64)
	if !ok {
		return fmt.Errorf("eigenscore: %T has no float64 path", c.den)
	}
	c.nfe.Add(int64(len(sigma)))
	return d64.Denoise64(ctx, x, sigma, out)
}

func hash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}
