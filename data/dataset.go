// Package data loads image datasets into the layout the pipeline uses:
// float32 values in [-1, 1], N×C×H×W, with optional integer labels.
package data

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/eigenscore/eigenscore/denoise"
)

// Dataset is a set of images of one shape, stored contiguously.
type Dataset struct {
	Name string
	denoise.Shape
	// Pixels holds N·C·H·W values in [-1, 1], image-major.
	Pixels []float32
	// Labels holds one class per image, or is nil when the source has none.
	Labels []int
}

// Len is the number of images.
func (d *Dataset) Len() int {
	if d.Dim() == 0 {
		return 0
	}
	return len(d.Pixels) / d.Dim()
}

// Image returns image i as a slice aliasing the dataset.
func (d *Dataset) Image(i int) []float32 {
	n := d.Dim()
	return d.Pixels[i*n : (i+1)*n]
}

// Subset returns the images at the given indices, in that order, copied.
func (d *Dataset) Subset(idx []int) *Dataset {
	out := &Dataset{Name: d.Name, Shape: d.Shape, Pixels: make([]float32, 0, len(idx)*d.Dim())}
	if d.Labels != nil {
		out.Labels = make([]int, 0, len(idx))
	}
	for _, i := range idx {
		out.Pixels = append(out.Pixels, d.Image(i)...)
		if d.Labels != nil {
			out.Labels = append(out.Labels, d.Labels[i])
		}
	}
	return out
}

// Head returns the first n images (all when n <= 0 or n >= Len).
func (d *Dataset) Head(n int) *Dataset {
	if n <= 0 || n >= d.Len() {
		return d
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return d.Subset(idx)
}

// Sample returns n images drawn without replacement with rng, in their
// order in d (all of them, in order, when n ≤ 0 or n ≥ Len).
func (d *Dataset) Sample(n int, rng *rand.Rand) *Dataset {
	if n <= 0 || n >= d.Len() {
		return d.Head(0)
	}
	idx := rng.Perm(d.Len())[:n]
	sort.Ints(idx)
	return d.Subset(idx)
}

// FilterClasses keeps the images whose label is in classes. It fails when the
// dataset has no labels or when nothing is left.
func (d *Dataset) FilterClasses(classes []int) (*Dataset, error) {
	if len(classes) == 0 {
		return d, nil
	}
	if d.Labels == nil {
		return nil, fmt.Errorf("data: %s has no labels to filter classes %v by", d.Name, classes)
	}
	keep := make(map[int]bool, len(classes))
	for _, c := range classes {
		keep[c] = true
	}
	var idx []int
	for i, l := range d.Labels {
		if keep[l] {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("data: %s has no images of classes %v", d.Name, classes)
	}
	out := d.Subset(idx)
	out.Name = fmt.Sprintf("%s[classes %s]", d.Name, FormatClasses(classes))
	return out, nil
}

// Validate checks that the shape is positive and at most maxImageValues
// values an image (so that Dim cannot overflow), that the pixel count
// matches it and that every value is finite.
func (d *Dataset) Validate() error {
	if d.C <= 0 || d.H <= 0 || d.W <= 0 {
		return fmt.Errorf("data: %s has invalid shape %dx%dx%d", d.Name, d.C, d.H, d.W)
	}
	if err := checkImageShape(d.Shape); err != nil {
		return fmt.Errorf("data: %s has %w", d.Name, err)
	}
	if len(d.Pixels)%d.Dim() != 0 {
		return fmt.Errorf("data: %s has %d values, not a multiple of the image size %d", d.Name, len(d.Pixels), d.Dim())
	}
	if d.Labels != nil && len(d.Labels) != d.Len() {
		return fmt.Errorf("data: %s has %d labels for %d images", d.Name, len(d.Labels), d.Len())
	}
	for i, v := range d.Pixels {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("data: %s image %d has a non-finite value %v at offset %d", d.Name, i/d.Dim(), v, i%d.Dim())
		}
	}
	return nil
}

// FormatClasses writes classes compactly, e.g. "0-4" or "1,3,7".
func FormatClasses(classes []int) string {
	contiguous := len(classes) > 1
	for i := 1; i < len(classes); i++ {
		if classes[i] != classes[i-1]+1 {
			contiguous = false
		}
	}
	if contiguous {
		return fmt.Sprintf("%d-%d", classes[0], classes[len(classes)-1])
	}
	s := ""
	for i, c := range classes {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(c)
	}
	return s
}

// ByteToUnit maps a byte pixel 0..255 to [-1, 1].
func ByteToUnit(b byte) float32 { return float32(b)/127.5 - 1 }

// maxImageValues bounds C·H·W of one image read from a file. It is far above
// any real dataset (MNIST 784, CIFAR and SVHN 3072, 3×512×512 = 786432) and
// low enough that Dim cannot overflow and one image fits in 256 MiB of
// float32, so a corrupt header announcing zero images of 2³¹×2³¹ pixels is
// refused instead of making later code allocate one such image.
const maxImageValues = 1 << 26

// checkImageShape reports a shape that is not positive or whose images hold
// more than maxImageValues values; the error reads "images of shape …".
func checkImageShape(s denoise.Shape) error {
	if s.C <= 0 || s.H <= 0 || s.W <= 0 {
		return fmt.Errorf("images of shape %dx%dx%d (C×H×W) are empty, expected positive sizes", s.C, s.H, s.W)
	}
	if s.H > maxImageValues/s.C || s.W > maxImageValues/(s.C*s.H) {
		return fmt.Errorf("images of shape %dx%dx%d (C×H×W) are too large, expected at most %d values per image", s.C, s.H, s.W, maxImageValues)
	}
	return nil
}

// readGrowFirst is the first buffer readFullGrow allocates.
const readGrowFirst = 64 << 10

// readFullGrow reads exactly n bytes from r, with io.ReadFull's errors (EOF
// when nothing was read, io.ErrUnexpectedEOF when some was), returning what
// it read. It allocates as the bytes arrive, doubling from 64 KiB and never
// past n, so that a header announcing more bytes than follow costs about
// twice what really follows rather than n.
func readFullGrow(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, readGrowFirst))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = append(make([]byte, 0, min(n, 2*cap(buf))), buf...)
		}
		m, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
	return buf, nil
}
