package data

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/noise"
)

// Synthetic OOD sets. Generated sets ("uniform-noise", "constant") have the
// shape of the model they are scored with (LoadFor; Load makes them 1×28×28)
// and a fixed seed, so every run sees the same images; transforms
// ("NAME@invert", "NAME@vflip") apply to a named dataset's split, gray or
// colour.
var transforms = map[string]func(*Dataset){
	// invert maps v to −v in every channel: dark background becomes
	// bright, a colour its complement.
	"invert": func(d *Dataset) {
		for i, v := range d.Pixels {
			d.Pixels[i] = -v
		}
	},
	// vflip turns each image upside down, every channel alike.
	"vflip": func(d *Dataset) {
		for n := 0; n < d.Len(); n++ {
			img := d.Image(n)
			for c := 0; c < d.C; c++ {
				plane := img[c*d.H*d.W : (c+1)*d.H*d.W]
				for r := 0; r < d.H/2; r++ {
					a := plane[r*d.W : (r+1)*d.W]
					b := plane[(d.H-1-r)*d.W : (d.H-r)*d.W]
					for x := range a {
						a[x], b[x] = b[x], a[x]
					}
				}
			}
		}
	},
}

// generators make n images of shape c×h×w from a seeded stream.
var generators = map[string]func(rng *rand.Rand, n, c, h, w int) *Dataset{
	// uniform-noise: every pixel uniform in [-1, 1].
	"uniform-noise": func(rng *rand.Rand, n, c, h, w int) *Dataset {
		d := &Dataset{Shape: denoise.Shape{C: c, H: h, W: w}, Pixels: make([]float32, n*c*h*w)}
		for i := range d.Pixels {
			d.Pixels[i] = float32(2*rng.Float64() - 1)
		}
		return d
	},
	// constant: every image one uniform colour, each channel's level
	// uniform in [-1, 1] (a grey level for one channel).
	"constant": func(rng *rand.Rand, n, c, h, w int) *Dataset {
		d := &Dataset{Shape: denoise.Shape{C: c, H: h, W: w}, Pixels: make([]float32, n*c*h*w)}
		for i := 0; i < n; i++ {
			img := d.Image(i)
			for ch := range c {
				v := float32(2*rng.Float64() - 1)
				plane := img[ch*h*w : (ch+1)*h*w]
				for j := range plane {
					plane[j] = v
				}
			}
		}
		return d
	},
}

// syntheticSize is the number of images a generated set has, like a test split.
const syntheticSize = 10000

// grayShape is the shape Load gives generated sets: that of the grayscale
// datasets shipped here.
var grayShape = denoise.Shape{C: 1, H: 28, W: 28}

// isSynthetic reports whether name is a generated set or a transform of a
// named dataset or a file.
func isSynthetic(name string) bool {
	base, _, ok := strings.Cut(name, "@")
	if ok {
		return isNamed(base) || fileExists(base)
	}
	return isGenerated(name)
}

// isGenerated reports whether name is a generated set.
func isGenerated(name string) bool {
	_, gen := generators[name]
	return gen
}

// loadSynthetic builds a transformed set, or a generated one of the given
// shape.
func loadSynthetic(dir string, spec Spec, split Split, shape denoise.Shape) (*Dataset, error) {
	if base, tr, ok := strings.Cut(spec.Name, "@"); ok {
		f, known := transforms[tr]
		if !known {
			return nil, fmt.Errorf("data: unknown transform %q in %q: want invert or vflip", tr, spec.Name)
		}
		ds, err := Load(dir, Spec{Name: base, Classes: spec.Classes}, split)
		if err != nil {
			return nil, err
		}
		f(ds)
		ds.Name = spec.Name
		return ds, nil
	}
	// Fixed data, not the user's seed: a named set is the same set in every
	// run; the split picks one of two independent streams.
	index := uint64(0)
	if split == Train {
		index = 1
	}
	ds := generators[spec.Name](noise.Stream(0x5EED, noise.Synthetic, noise.RoleKey(spec.Name), index), syntheticSize, shape.C, shape.H, shape.W)
	ds.Name = spec.Name
	return ds, nil
}
