// Package denoise defines the boundary between the EigenScore pipeline and a
// denoiser D(y, σ) ≈ E[x | y] for y = x + σ·n, n ~ N(0, I).
//
// Every backend (the closed-form Gaussian mixture, ONNX Runtime networks)
// implements Denoiser. Images are flat float32 slices laid out N×C×H×W on the
// data scale [-1, 1]; one σ is given per image.
package denoise

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Shape is the C×H×W shape of one image.
type Shape struct{ C, H, W int }

// Dim is the number of values in one image, C·H·W.
func (s Shape) Dim() int { return s.C * s.H * s.W }

func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.C, s.H, s.W) }

// Denoiser maps a batch of noisy images to their denoised estimates.
//
// Denoise reads n = len(sigma) images from x (len(x) == n·Shape().Dim()) and
// writes D(x_i, σ_i) into out (same length as x). It must not retain x or
// out. Implementations must be safe for concurrent use.
type Denoiser interface {
	Shape() Shape
	Denoise(ctx context.Context, x, sigma, out []float32) error
}

// Denoiser64 is implemented by denoisers that can evaluate in float64, which
// the spectrum estimator uses in its float64 mode.
type Denoiser64 interface {
	Denoiser
	Denoise64(ctx context.Context, x, sigma, out []float64) error
}

// CheckBatch validates the lengths of a batch against shape; backends call it
// first so that every backend reports the same clear error.
func CheckBatch[T float32 | float64](shape Shape, x, sigma, out []T) error {
	d := shape.Dim()
	n := len(sigma)
	if len(x) != n*d {
		return fmt.Errorf("denoise: input has %d values, want %d (%d images of %v)", len(x), n*d, n, shape)
	}
	if len(out) != len(x) {
		return fmt.Errorf("denoise: output has %d values, want %d", len(out), len(x))
	}
	for i, s := range sigma {
		if !(s > 0) {
			return fmt.Errorf("denoise: sigma[%d] = %v, want a positive finite value", i, s)
		}
	}
	return nil
}

// Counter wraps a Denoiser and counts network function evaluations (NFEs):
// one per image evaluated.
type Counter struct {
	Denoiser
	n atomic.Int64
}

// NewCounter wraps d.
func NewCounter(d Denoiser) *Counter { return &Counter{Denoiser: d} }

// Denoise forwards to the wrapped denoiser and counts len(sigma) NFEs.
func (c *Counter) Denoise(ctx context.Context, x, sigma, out []float32) error {
	c.n.Add(int64(len(sigma)))
	return c.Denoiser.Denoise(ctx, x, sigma, out)
}

// Denoise64 forwards to the wrapped denoiser's float64 path when it has one.
func (c *Counter) Denoise64(ctx context.Context, x, sigma, out []float64) error {
	d64, ok := c.Denoiser.(Denoiser64)
	if !ok {
		return fmt.Errorf("denoise: %T has no float64 path", c.Denoiser)
	}
	c.n.Add(int64(len(sigma)))
	return d64.Denoise64(ctx, x, sigma, out)
}

// NFE returns the evaluations counted so far.
func (c *Counter) NFE() int64 { return c.n.Load() }

// Reset sets the count to zero.
func (c *Counter) Reset() { c.n.Store(0) }
