package data

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/eigenscore/eigenscore/denoise"
)

// writeRGBSet writes a colour set as scripts/setup-rgb.sh lays it out:
// dir/rgb/<name>/{train,test}.npy, uint8 [N,32,32,3], with n images per
// split whose byte at (image i, row y, column x, channel c) is pixel(i, y,
// x, c) (train images first in the numbering).
func writeRGBSet(t *testing.T, dir, name string, n int, pixel func(i, y, x, c int) byte) {
	t.Helper()
	sub := filepath.Join(dir, "rgb", name)
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for s, split := range []Split{Train, Test} {
		raw := make([]byte, 0, n*32*32*3)
		for i := range n {
			for y := range 32 {
				for x := range 32 {
					for c := range 3 {
						raw = append(raw, pixel(s*n+i, y, x, c))
					}
				}
			}
		}
		writeTemp(t, sub, string(split)+".npy", npyBytes(npyDict("|u1", n, 32, 32, 3), raw))
	}
}

// rgbPixel is a test image byte: distinct per image, row, column and channel.
func rgbPixel(i, y, x, c int) byte { return byte(7*i + 5*y + 3*x + 80*c) }

func TestRGBSets(t *testing.T) {
	dir := t.TempDir()
	rgb := denoise.Shape{C: 3, H: 32, W: 32}
	for _, name := range []string{"clipart", "emoji", "emoji-noto", "photos", "textures"} {
		if !slices.Contains(Names(), name) {
			t.Errorf("Names() = %v lacks %s", Names(), name)
		}
		sp := Spec{Name: name}
		if sp.Check() != nil || !sp.HasSplits() {
			t.Errorf("%s: Check %v, HasSplits %v", name, sp.Check(), sp.HasSplits())
		}
		_, err := Load(dir, sp, Test)
		wantErrMention(t, err, name, "scripts/setup-rgb.sh", filepath.Join("rgb", name, "test.npy"))
	}

	writeRGBSet(t, dir, "clipart", 4, rgbPixel)
	for s, split := range []Split{Train, Test} {
		ds, err := LoadFor(dir, Spec{Name: "clipart"}, split, rgb)
		if err != nil {
			t.Fatal(err)
		}
		checkShape(t, ds, 4, 3, 32, 32)
		if ds.Name != "clipart" || ds.Labels != nil {
			t.Errorf("%s: name %q, labels %v", split, ds.Name, ds.Labels)
		}
		// Channels last on disk, channel planes in memory.
		i, y, x, c := 2, 5, 9, 1
		if got, want := ds.Image(i)[c*32*32+y*32+x], ByteToUnit(rgbPixel(s*4+i, y, x, c)); got != want {
			t.Errorf("%s: pixel = %v, want %v", split, got, want)
		}
	}
	// A model of another shape refuses the set, and it has no classes.
	_, err := LoadFor(dir, Spec{Name: "clipart"}, Test, denoise.Shape{C: 1, H: 28, W: 28})
	wantErrMention(t, err, "clipart", "3x32x32", "1x28x28")
	_, err = Load(dir, Spec{Name: "clipart", Classes: []int{1}}, Test)
	wantErrMention(t, err, "no labels")
	_, err = Load(dir, Spec{Name: "clipart"}, Split("validation"))
	wantErrMention(t, err, "unknown split")
}

func TestRGBTransforms(t *testing.T) {
	dir := t.TempDir()
	writeRGBSet(t, dir, "emoji", 3, rgbPixel)
	base, err := Load(dir, Spec{Name: "emoji"}, Test)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Load(dir, Spec{Name: "emoji@invert"}, Test)
	if err != nil {
		t.Fatal(err)
	}
	flip, err := LoadFor(dir, Spec{Name: "emoji@vflip"}, Test, denoise.Shape{C: 3, H: 32, W: 32})
	if err != nil {
		t.Fatal(err)
	}
	if !(Spec{Name: "emoji@vflip"}).HasSplits() || inv.Name != "emoji@invert" {
		t.Errorf("emoji@vflip has no splits, or the invert set is named %q", inv.Name)
	}
	for i := range base.Len() {
		for c := range 3 {
			for y := range 32 {
				for x := range 32 {
					o := c*32*32 + y*32 + x
					if inv.Image(i)[o] != -base.Image(i)[o] {
						t.Fatalf("invert: image %d channel %d (%d, %d) not negated", i, c, x, y)
					}
					if flip.Image(i)[o] != base.Image(i)[c*32*32+(31-y)*32+x] {
						t.Fatalf("vflip: image %d channel %d (%d, %d) is not row %d of the original", i, c, x, y, 31-y)
					}
				}
			}
		}
	}
}
