package data

import (
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/eigenscore/eigenscore/internal/imagetest"
)

// testColor is the colour of pixel (x, y) in the test PNGs, seed s.
func testColor(s, x, y int) color.RGBA {
	return color.RGBA{uint8(10*x + 100*y + s), uint8(50 + x + s), uint8(200 - 3*y - s), 255}
}

func writePNG(t *testing.T, path string, w, h, seed int) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, testColor(seed, x, y))
		}
	}
	imagetest.Write(t, path, img)
}

func uniform(w, h int, c color.Color) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	return img
}

// rgbAt returns pixel (x, y) of image i as bytes, from the [-1,1] values.
func rgbAt(d *Dataset, i, x, y int) [3]int {
	img := d.Image(i)
	var out [3]int
	for c := range d.C {
		out[c] = int(math.Round(float64(img[(c*d.H+y)*d.W+x]+1) * 127.5))
	}
	return out
}

func TestLoadImageFolderCropAndOrder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "faces")
	writePNG(t, filepath.Join(dir, "b_wide.png"), 4, 2, 1) // crop x 1-2
	writePNG(t, filepath.Join(dir, "a_tall.PNG"), 2, 4, 2) // crop y 1-2; upper-case extension
	writePNG(t, filepath.Join(dir, "sub", "c.png"), 2, 2, 3)
	writePNG(t, filepath.Join(dir, ".hidden.png"), 2, 2, 4)
	writeTemp(t, dir, "notes.txt", []byte("not an image"))

	d, err := LoadImageFolder(dir, 2, FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "faces" || d.C != 3 || d.H != 2 || d.W != 2 || d.Len() != 2 || d.Labels != nil {
		t.Fatalf("got %q %d images %dx%dx%d labels %v", d.Name, d.Len(), d.C, d.H, d.W, d.Labels)
	}
	for y := range 2 {
		for x := range 2 {
			// a_tall sorts first ('a' < 'b'); its crop starts at row 1.
			if got, c := rgbAt(d, 0, x, y), testColor(2, x, y+1); got != [3]int{int(c.R), int(c.G), int(c.B)} {
				t.Errorf("tall image (%d,%d) = %v, want %v", x, y, got, c)
			}
			if got, c := rgbAt(d, 1, x, y), testColor(1, x+1, y); got != [3]int{int(c.R), int(c.G), int(c.B)} {
				t.Errorf("wide image (%d,%d) = %v, want %v", x, y, got, c)
			}
		}
	}

	d, err = LoadImageFolder(dir, 2, FolderOptions{Recursive: true, Gray: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 || d.C != 1 {
		t.Fatalf("recursive gray: %d images of %d channels, want 3 of 1", d.Len(), d.C)
	}
	c := testColor(3, 1, 0) // sub/c.png sorts last
	want := ByteToUnit(color.GrayModel.Convert(c).(color.Gray).Y)
	if got := d.Image(2)[1]; got != want {
		t.Errorf("gray pixel = %v, want %v", got, want)
	}

	d, err = LoadImageFolder(dir, 2, FolderOptions{Recursive: true, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 {
		t.Errorf("Limit 2: %d images", d.Len())
	}
}

func TestLoadImageFolderResize(t *testing.T) {
	dir := t.TempDir()
	col := color.RGBA{30, 140, 220, 255}
	imagetest.Write(t, filepath.Join(dir, "flat.png"), uniform(12, 9, col))
	// A gray JPEG: lossy, but a flat field decodes to within a step or two.
	imagetest.Write(t, filepath.Join(dir, "flat.jpg"), uniform(16, 16, color.Gray{Y: 77}))
	// Fully transparent: composited on black.
	imagetest.Write(t, filepath.Join(dir, "glass.png"), uniform(6, 6, color.NRGBA{200, 100, 50, 0}))

	// Left half red, right half blue, downscaled 4×: mostly red on the
	// left, mostly blue on the right, a little of each blended in.
	split := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			split.SetRGBA(x, y, map[bool]color.RGBA{true: {255, 0, 0, 255}, false: {0, 0, 255, 255}}[x < 8])
		}
	}
	imagetest.Write(t, filepath.Join(dir, "split.png"), split)

	d, err := LoadImageFolder(dir, 4, FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 4 || d.H != 4 || d.W != 4 {
		t.Fatalf("%d images of %dx%d, want 4 of 4x4", d.Len(), d.H, d.W)
	}
	for y := range 4 {
		left, right := rgbAt(d, 3, 0, y), rgbAt(d, 3, 3, y)
		if left != [3]int{255, 0, 0} || right != [3]int{0, 0, 255} {
			t.Errorf("split row %d: edges %v %v, want pure red and blue", y, left, right)
		}
		inL, inR := rgbAt(d, 3, 1, y), rgbAt(d, 3, 2, y)
		if inL[0] < 200 || inL[2] == 0 || inR[2] < 200 || inR[0] == 0 {
			t.Errorf("split row %d: centre %v %v, want mostly red then mostly blue, blended", y, inL, inR)
		}
	}
	for y := range 4 {
		for x := range 4 {
			// Sorted: flat.jpg, flat.png, glass.png.
			if got := rgbAt(d, 0, x, y); abs(got[0]-77) > 2 || abs(got[1]-77) > 2 || abs(got[2]-77) > 2 {
				t.Errorf("jpeg (%d,%d) = %v, want about 77", x, y, got)
			}
			if got := rgbAt(d, 1, x, y); got != [3]int{30, 140, 220} {
				t.Errorf("png (%d,%d) = %v, want [30 140 220]", x, y, got)
			}
			if got := rgbAt(d, 2, x, y); got != [3]int{0, 0, 0} {
				t.Errorf("transparent (%d,%d) = %v, want black", x, y, got)
			}
		}
	}
}

func abs(v int) int { return max(v, -v) }

func TestLoadImageFolderClasses(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "cat", "x.png"), 2, 2, 0)
	writePNG(t, filepath.Join(dir, "dog", "y.png"), 2, 2, 1)
	writePNG(t, filepath.Join(dir, "dog", "deep", "z.png"), 2, 2, 2)
	if err := os.MkdirAll(filepath.Join(dir, "emu"), 0o755); err != nil { // a class with no images
		t.Fatal(err)
	}
	writePNG(t, filepath.Join(dir, "zebra", "w.png"), 2, 2, 3)
	writeTemp(t, dir, "README", []byte("classes"))

	d, err := LoadImageFolder(dir, 2, FolderOptions{Classes: true})
	if err != nil {
		t.Fatal(err)
	}
	// Paths sorted within classes: cat/x, dog/deep/z, dog/y, zebra/w.
	wantLabels := []int{0, 1, 1, 3}
	wantSeeds := []int{0, 2, 1, 3}
	if len(d.Labels) != 4 {
		t.Fatalf("labels %v, want %v", d.Labels, wantLabels)
	}
	for i, l := range wantLabels {
		c := testColor(wantSeeds[i], 0, 0)
		if d.Labels[i] != l || rgbAt(d, i, 0, 0) != [3]int{int(c.R), int(c.G), int(c.B)} {
			t.Fatalf("image %d: label %d pixel %v, want %d %v", i, d.Labels[i], rgbAt(d, i, 0, 0), l, c)
		}
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}

	writePNG(t, filepath.Join(dir, "stray.png"), 2, 2, 0)
	wantErrMention(t, loaderErr(LoadImageFolder(dir, 2, FolderOptions{Classes: true})), "stray.png", "not in a class subfolder")
}

func TestLoadImageFolderErrors(t *testing.T) {
	dir := t.TempDir()
	wantErrMention(t, loaderErr(LoadImageFolder(dir, 4, FolderOptions{})), dir, "no images found")
	writePNG(t, filepath.Join(dir, "sub", "a.png"), 2, 2, 0)
	wantErrMention(t, loaderErr(LoadImageFolder(dir, 4, FolderOptions{})), dir, "no images found", "Recursive")
	wantErrMention(t, loaderErr(LoadImageFolder(filepath.Join(dir, "nope"), 4, FolderOptions{})), "nope")
	wantErrMention(t, loaderErr(LoadImageFolder(dir, 0, FolderOptions{})), "size 0")

	writePNG(t, filepath.Join(dir, "a.png"), 2, 2, 0)
	writeTemp(t, dir, "b.png", []byte("\x89PNG\r\n\x1a\nthis is not really a png"))
	writeTemp(t, dir, "c.jpg", []byte("garbage"))
	wantErrMention(t, loaderErr(LoadImageFolder(dir, 4, FolderOptions{})), "b.png", "cannot decode")
	// Limit stops before the bad files.
	if d, err := LoadImageFolder(dir, 4, FolderOptions{Limit: 1}); err != nil || d.Len() != 1 {
		t.Errorf("Limit 1: %v", err)
	}
}
