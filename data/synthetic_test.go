package data

import (
	"slices"
	"testing"

	"github.com/eigenscore/eigenscore/denoise"
)

func TestGeneratedAtModelShape(t *testing.T) {
	dir := t.TempDir() // generated sets read nothing
	rgb := denoise.Shape{C: 3, H: 32, W: 32}
	for _, name := range []string{"uniform-noise", "constant"} {
		a, err := LoadFor(dir, Spec{Name: name}, Test, rgb)
		if err != nil {
			t.Fatal(err)
		}
		checkShape(t, a, syntheticSize, 3, 32, 32)
		if err := a.Validate(); err != nil || a.Name != name {
			t.Errorf("%s: %v, named %q", name, err, a.Name)
		}
		b, _ := LoadFor(dir, Spec{Name: name}, Test, rgb)
		train, _ := LoadFor(dir, Spec{Name: name}, Train, rgb)
		if !slices.Equal(a.Pixels, b.Pixels) || slices.Equal(a.Pixels, train.Pixels) {
			t.Errorf("%s: the test split is not reproducible or equals the train split", name)
		}
		for _, v := range a.Pixels {
			if v < -1 || v > 1 {
				t.Fatalf("%s: value %v outside [-1, 1]", name, v)
			}
		}
		// Gray sets at the shipped shape are those Load makes, as before.
		gray, err := LoadFor(dir, Spec{Name: name}, Test, grayShape)
		if err != nil {
			t.Fatal(err)
		}
		old, _ := Load(dir, Spec{Name: name}, Test)
		if !slices.Equal(gray.Pixels, old.Pixels) || gray.Shape != grayShape {
			t.Errorf("%s: gray set at the model's shape differs from Load's", name)
		}
	}
	if _, err := LoadFor(dir, Spec{Name: "constant", Classes: []int{1}}, Test, rgb); err == nil {
		t.Error("constant:1 accepted")
	}
}

func TestConstantColour(t *testing.T) {
	ds, err := LoadFor(t.TempDir(), Spec{Name: "constant"}, Test, denoise.Shape{C: 3, H: 8, W: 8})
	if err != nil {
		t.Fatal(err)
	}
	grey := 0
	for i := range ds.Len() {
		img := ds.Image(i)
		for c := range 3 {
			plane := img[c*64 : (c+1)*64]
			if slices.Min(plane) != slices.Max(plane) {
				t.Fatalf("image %d channel %d is not constant", i, c)
			}
		}
		if img[0] == img[64] && img[64] == img[128] {
			grey++
		}
	}
	if grey > 0 {
		t.Errorf("%d of %d constant colour images are grey: the channels should be drawn apart", grey, ds.Len())
	}
}
