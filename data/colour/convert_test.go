package colour

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/eigenscore/eigenscore/internal/imagetest"
)

// filled is a w×h NRGBA image of colour c (transparent black by default)
// with rect r of colour in.
func filled(w, h int, c color.NRGBA, r image.Rectangle, in color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Rect, image.NewUniform(c), image.Point{}, draw.Src)
	draw.Draw(img, r, image.NewUniform(in), image.Point{}, draw.Src)
	return img
}

// decodePNG writes img as a PNG and decodes it by the rule (decodeFile).
func decodePNG(t *testing.T, img image.Image) *image.RGBA {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.png")
	imagetest.Write(t, p, img)
	out, err := decodeFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// px returns pixel (x, y) of a stored image.
func px(img []byte, x, y int) [3]byte {
	o := 3 * (y*Size + x)
	return [3]byte{img[o], img[o+1], img[o+2]}
}

func near(a, b [3]byte, tol int) bool {
	for i := range a {
		if d := int(a[i]) - int(b[i]); d > tol || d < -tol {
			return false
		}
	}
	return true
}

func TestAlphaOntoWhite(t *testing.T) {
	// Half-transparent blue over transparent: blue composited onto white,
	// and transparent pixels white.
	src := filled(8, 8, color.NRGBA{}, image.Rect(0, 0, 4, 8), color.NRGBA{0, 0, 255, 128})
	img := decodePNG(t, src)
	got := img.RGBAAt(1, 1)
	if want := (color.RGBA{127, 127, 255, 255}); got != want {
		t.Errorf("half-transparent blue onto white = %v, want %v", got, want)
	}
	if got := img.RGBAAt(6, 6); got != white {
		t.Errorf("transparent pixel = %v, want white", got)
	}
}

func TestObjectBoxPadResize(t *testing.T) {
	// A 40×10 black bar at (10, 5) on a transparent 60×20 image: the box is
	// the bar, padded to a 40×40 square with the bar in rows 15–25, so the
	// 32×32 image is white above and below and black across the middle,
	// edge to edge.
	src := filled(60, 20, color.NRGBA{}, image.Rect(10, 5, 50, 15), color.NRGBA{0, 0, 0, 255})
	out, ok := objectImage(decodePNG(t, src))
	if !ok || len(out) != ImageBytes {
		t.Fatalf("objectImage: ok %v, %d bytes", ok, len(out))
	}
	black, wh := [3]byte{}, [3]byte{255, 255, 255}
	for _, c := range []struct {
		x, y int
		want [3]byte
	}{{0, 16, black}, {31, 16, black}, {16, 14, black}, {16, 0, wh}, {16, 8, wh}, {0, 31, wh}, {16, 23, wh}} {
		if got := px(out, c.x, c.y); !near(got, c.want, 2) {
			t.Errorf("pixel (%d, %d) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
	// A drawing already square fills the frame without padding.
	src = filled(50, 50, color.NRGBA{}, image.Rect(5, 5, 45, 45), color.NRGBA{200, 10, 10, 255})
	out, _ = objectImage(decodePNG(t, src))
	for _, p := range [][2]int{{0, 0}, {31, 31}, {16, 16}} {
		if got := px(out, p[0], p[1]); got != [3]byte{200, 10, 10} {
			t.Errorf("square drawing pixel %v = %v, want the drawing's colour", p, got)
		}
	}
}

func TestObjectBlank(t *testing.T) {
	for _, c := range []color.NRGBA{{}, {255, 255, 255, 255}, {0, 0, 0, 0}} {
		if _, ok := objectImage(decodePNG(t, filled(20, 30, c, image.Rectangle{}, c))); ok {
			t.Errorf("blank image of %v gave an image", c)
		}
	}
}

func TestResizeAntialiases(t *testing.T) {
	// A one-pixel checkerboard reduced 10× averages to mid-grey everywhere;
	// a filter that samples a few source pixels would give black or white.
	src := image.NewRGBA(image.Rect(0, 0, 320, 320))
	for y := range 320 {
		for x := range 320 {
			v := uint8(255 * ((x + y) % 2))
			src.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	out := resize(src, src.Rect)
	for y := range Size {
		for x := range Size {
			if got := px(out, x, y); !near(got, [3]byte{128, 128, 128}, 3) {
				t.Fatalf("pixel (%d, %d) = %v, want mid-grey", x, y, got)
			}
		}
	}
}

func TestPatchImages(t *testing.T) {
	// Left half red, right half blue, 256×128: crops have sides 32–64.
	src := decodePNG(t, filled(256, 128, color.NRGBA{0, 0, 255, 255}, image.Rect(0, 0, 128, 128), color.NRGBA{255, 0, 0, 255}))
	a, err := patchImages(src, "pkg/a.png", 40)
	if err != nil || len(a) != 40 {
		t.Fatalf("patchImages: %d, %v", len(a), err)
	}
	b, _ := patchImages(src, "pkg/a.png", 40)
	c, _ := patchImages(src, "pkg/b.png", 40)
	distinct := map[string]bool{}
	var red, blue int
	for k := range a {
		if !bytes.Equal(a[k], b[k]) {
			t.Fatalf("crop %d differs between two runs", k)
		}
		distinct[string(a[k])] = true
		switch px(a[k], 16, 16) {
		case [3]byte{255, 0, 0}:
			red++
		case [3]byte{0, 0, 255}:
			blue++
		}
	}
	if len(distinct) < 10 || red == 0 || blue == 0 {
		t.Errorf("crops are not spread over the image: %d distinct, %d red, %d blue centres", len(distinct), red, blue)
	}
	if bytes.Equal(bytes.Join(a, nil), bytes.Join(c, nil)) {
		t.Error("another file's key gave the same crops")
	}
	if _, err := patchImages(decodePNG(t, filled(31, 100, color.NRGBA{1, 2, 3, 255}, image.Rectangle{}, color.NRGBA{})), "k", 1); !errors.Is(err, errTooSmall) {
		t.Errorf("31 px wide image: %v, want errTooSmall", err)
	}
}

func TestIsTest(t *testing.T) {
	// The split is fixed by the rule: these answers were computed apart from
	// this code (Python's hashlib) and must not move.
	for key, want := range map[string]bool{
		"openclipart-png/usr/share/openclipart/png/animals/cat.png": false,
		"emoji-datasource-twitter/img/twitter/64/1f600.png":         false,
		"pkg/a.png": false, "pkg/c.png": false, "pkg/h.png": true,
	} {
		if got := isTest(key, 0.2); got != want {
			t.Errorf("isTest(%q, 0.2) = %v, want %v", key, got, want)
		}
	}
	n, test := 20000, 0
	for i := range n {
		if isTest(fmt.Sprintf("pkg/%d.png", i), 0.2) {
			test++
		}
	}
	if f := float64(test) / float64(n); f < 0.19 || f > 0.21 {
		t.Errorf("test share %.3f, want about 0.2", f)
	}
}

func TestDecodeFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.png")
	os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644)
	if _, err := decodeFile(bad); err == nil || errors.Is(err, errTooLarge) {
		t.Errorf("corrupt PNG: %v", err)
	}
	// A header announcing 5000×5000 pixels is refused before decoding.
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 5000, 5000)))
	huge := filepath.Join(dir, "huge.png")
	os.WriteFile(huge, b.Bytes(), 0o644)
	if _, err := decodeFile(huge); !errors.Is(err, errTooLarge) {
		t.Errorf("5000×5000 image: %v, want errTooLarge", err)
	}
	if _, err := decodeFile(filepath.Join(dir, "missing.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
