package data

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"path/filepath"
	"testing"

	"github.com/eigenscore/eigenscore/denoise"
)

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// setPNGSize returns a copy of a PNG whose IHDR announces w×h (with a
// valid CRC), the data left as it is.
func setPNGSize(t testing.TB, p []byte, w, h uint32) []byte {
	t.Helper()
	// 8-byte signature, then IHDR: length, "IHDR", width, height, …, CRC.
	if len(p) < 33 || string(p[12:16]) != "IHDR" {
		t.Fatal("not a PNG starting with IHDR")
	}
	p = bytes.Clone(p)
	binary.BigEndian.PutUint32(p[16:], w)
	binary.BigEndian.PutUint32(p[20:], h)
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

// setJPEGSize returns a copy of a baseline JPEG whose SOF0 announces w×h.
func setJPEGSize(t testing.TB, j []byte, w, h uint16) []byte {
	t.Helper()
	i := bytes.Index(j, []byte{0xff, 0xc0})
	if i < 0 || len(j) < i+9 {
		t.Fatal("no SOF0 marker in the JPEG")
	}
	j = bytes.Clone(j)
	// Marker, length (2), precision (1), height (2), width (2).
	binary.BigEndian.PutUint16(j[i+5:], h)
	binary.BigEndian.PutUint16(j[i+7:], w)
	return j
}

func TestDecodeImagePNG(t *testing.T) {
	col := color.RGBA{30, 140, 220, 255}
	flat := encodePNG(t, uniform(7, 5, col))
	for _, shape := range []denoise.Shape{{C: 3, H: 4, W: 4}, {C: 3, H: 5, W: 5}, {C: 3, H: 9, W: 6}} {
		px, err := DecodeImage(bytes.NewReader(flat), shape)
		if err != nil {
			t.Fatalf("%v: %v", shape, err)
		}
		if len(px) != shape.Dim() {
			t.Fatalf("%v: %d values", shape, len(px))
		}
		plane := shape.H * shape.W
		for i, v := range px {
			if want := ByteToUnit([]uint8{col.R, col.G, col.B}[i/plane]); v != want {
				t.Fatalf("%v: value %d = %v, want %v", shape, i, v, want)
			}
		}
	}
	// A grey image gives its grey level in both channel counts; a colour
	// image gives its ITU-R 601 luma in one channel.
	grey := encodePNG(t, uniform(6, 6, color.Gray{Y: 77}))
	wantLuma := color.GrayModel.Convert(col).(color.Gray).Y
	for _, tc := range []struct {
		img  []byte
		c    int
		want uint8
	}{{grey, 1, 77}, {grey, 3, 77}, {flat, 1, wantLuma}} {
		px, err := DecodeImage(bytes.NewReader(tc.img), denoise.Shape{C: tc.c, H: 3, W: 3})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range px {
			if v != ByteToUnit(tc.want) {
				t.Fatalf("C=%d: value %d = %v, want ByteToUnit(%d)", tc.c, i, v, tc.want)
			}
		}
	}
	// Half-transparent white on black: composited, 255·128/255 = 128.
	px, err := DecodeImage(bytes.NewReader(encodePNG(t, uniform(4, 4, color.NRGBA{255, 255, 255, 128}))), denoise.Shape{C: 1, H: 2, W: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range px {
		if v != ByteToUnit(128) {
			t.Fatalf("half-transparent value %d = %v, want ByteToUnit(128)", i, v)
		}
	}
}

func TestDecodeImageJPEG(t *testing.T) {
	// Tolerance: a flat 16×16 grey image is four 8×8 blocks holding only a
	// DC coefficient, 8·(Y−128). At quality 90 the luminance DC
	// quantiser step is 3, so the DC is off by at most 1.5, a grey level off
	// by at most 1.5/8 < 0.5 before the decoder's integer IDCT and YCbCr→RGB
	// rounding, each of which may add half a level: at most one grey level,
	// 2/255 in [-1, 1]. Chroma is 128 for grey, so R = G = B = Y.
	const tol = 2.0/255 + 1e-6
	for _, level := range []uint8{0, 77, 200, 255} {
		j := encodeJPEG(t, uniform(16, 16, color.Gray{Y: level}), 90)
		for _, shape := range []denoise.Shape{{C: 1, H: 4, W: 4}, {C: 3, H: 16, W: 16}} {
			px, err := DecodeImage(bytes.NewReader(j), shape)
			if err != nil {
				t.Fatalf("grey %d %v: %v", level, shape, err)
			}
			if len(px) != shape.Dim() {
				t.Fatalf("grey %d %v: %d values", level, shape, len(px))
			}
			want := ByteToUnit(level)
			for i, v := range px {
				if math.Abs(float64(v-want)) > tol || v != px[0] {
					t.Fatalf("grey %d %v: value %d = %v, value 0 = %v, want all %v ± one level", level, shape, i, v, px[0], want)
				}
			}
		}
	}
}

// bands returns a w×h image cut into vertical thirds (horizontal thirds
// when tall) of the given grey levels, first third first.
func bands(w, h int, tall bool, levels [3]uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			k := 3 * x / w
			if tall {
				k = 3 * y / h
			}
			img.SetGray(x, y, color.Gray{Y: levels[k]})
		}
	}
	return img
}

func TestDecodeImageCentreCrop(t *testing.T) {
	white, black, grey := uint8(255), uint8(0), uint8(128)
	for _, tc := range []struct {
		name   string
		img    image.Image
		levels [3]uint8
	}{
		// Left third white, the rest black: squashing the whole width would
		// bring white into the left third, a crop from the left would be
		// all white.
		{"wide", bands(30, 10, false, [3]uint8{white, black, black}), [3]uint8{white, black, black}},
		// White, black, grey thirds: a crop from the right would be grey.
		{"wide3", bands(30, 10, false, [3]uint8{white, black, grey}), [3]uint8{white, black, grey}},
		{"tall3", bands(10, 30, true, [3]uint8{white, black, grey}), [3]uint8{white, black, grey}},
	} {
		p := encodePNG(t, tc.img)
		// 10×10 copies the centre square; 5×5 resizes it.
		for _, shape := range []denoise.Shape{{C: 1, H: 10, W: 10}, {C: 3, H: 5, W: 5}} {
			px, err := DecodeImage(bytes.NewReader(p), shape)
			if err != nil {
				t.Fatalf("%s %v: %v", tc.name, shape, err)
			}
			for i, v := range px {
				if v != -1 {
					t.Fatalf("%s %v: value %d = %v, want all -1 (the black centre third)", tc.name, shape, i, v)
				}
			}
		}
	}
	// A 10×30 (H×W) shape has the aspect of the wide image: all of it.
	p := encodePNG(t, bands(30, 10, false, [3]uint8{white, black, grey}))
	px, err := DecodeImage(bytes.NewReader(p), denoise.Shape{C: 1, H: 10, W: 30})
	if err != nil {
		t.Fatal(err)
	}
	for y := range 10 {
		for x := range 30 {
			if got, want := px[y*30+x], ByteToUnit([3]uint8{white, black, grey}[x/10]); got != want {
				t.Fatalf("10×30 (%d,%d) = %v, want %v", x, y, got, want)
			}
		}
	}
}

func TestDecodeImageErrors(t *testing.T) {
	shape := denoise.Shape{C: 3, H: 4, W: 4}
	p := encodePNG(t, uniform(8, 8, color.Gray{Y: 3}))
	j := encodeJPEG(t, uniform(8, 8, color.Gray{Y: 3}), 90)
	// Noise, so that most of the file is scan data, past the header.
	noise := image.NewGray(image.Rect(0, 0, 32, 32))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(i * i * 2654435761 >> 13)
	}
	noisy := encodeJPEG(t, noise, 90)
	var g bytes.Buffer
	if err := gif.Encode(&g, uniform(4, 4, color.Black), nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		b     []byte
		shape denoise.Shape
		want  []string
	}{
		{"garbage", []byte("this is not an image at all"), shape, []string{"not a PNG or JPEG image"}},
		{"empty", nil, shape, []string{"not a PNG or JPEG image"}},
		// image/gif is registered by this test's import: refused anyway.
		{"gif", g.Bytes(), shape, []string{"not a PNG or JPEG image (found gif)"}},
		{"hugepng", setPNGSize(t, p, 10000, 10000), shape, []string{"png image is 10000×10000", "at most 16777216 pixels (4096×4096)"}},
		{"hugejpeg", setJPEGSize(t, j, 10000, 10000), shape, []string{"jpeg image is 10000×10000", "at most 16777216 pixels (4096×4096)"}},
		{"widepng", setPNGSize(t, p, 1<<31-1, 1), shape, []string{"png image is 2147483647×1", "at most"}},
		{"cutpng", p[:len(p)-12], shape, []string{"corrupt png image"}},
		{"cutjpeg", noisy[:len(noisy)-100], shape, []string{"corrupt jpeg image"}},
		{"jpegheader", j[:len(j)/2], shape, []string{"bad jpeg header"}},
		{"header", p[:20], shape, []string{"bad png header"}},
		{"channels", p, denoise.Shape{C: 2, H: 4, W: 4}, []string{"2 channels", "expected 1 (gray) or 3 (RGB)"}},
		{"noheight", p, denoise.Shape{C: 1, H: 0, W: 4}, []string{"empty"}},
	} {
		px, err := DecodeImage(bytes.NewReader(tc.b), tc.shape)
		if px != nil {
			t.Errorf("%s: values with the error", tc.name)
		}
		wantErrMention(t, err, tc.want...)
	}
	// The limit is on width × height: exactly at it decodes, one more
	// pixel does not.
	if _, err := decodeImage(bytes.NewReader(encodePNG(t, uniform(4, 4, color.Black))), shape, 16); err != nil {
		t.Errorf("4×4 under a 16-pixel limit: %v", err)
	}
	wantErrMention(t, loaderErr2(decodeImage(bytes.NewReader(encodePNG(t, uniform(17, 1, color.Black))), shape, 16)), "17×1", "at most 16 pixels (4×4)")
}

func loaderErr2(_ []float32, err error) error { return err }

// TestDecodeImageMatchesFolder checks that DecodeImage gives exactly the
// values LoadImageFolder gives for the same file: same crop, resize, alpha
// and luma rule.
func TestDecodeImageMatchesFolder(t *testing.T) {
	// Non-square, every pixel different, alpha varying from 0 to 255.
	img := image.NewNRGBA(image.Rect(0, 0, 13, 9))
	for y := range 9 {
		for x := range 13 {
			img.SetNRGBA(x, y, color.NRGBA{uint8(19 * x), uint8(27 * y), uint8(7*x + 11*y), uint8(255 - 2*(x*9+y))})
		}
	}
	files := map[string][]byte{
		"a.png": encodePNG(t, img),
		"b.jpg": encodeJPEG(t, img, 75),
	}
	dir := t.TempDir()
	for name, b := range files {
		writeTemp(t, dir, name, b)
	}
	for _, size := range []int{4, 9, 16} { // down, copied, up
		for _, gray := range []bool{false, true} {
			d, err := LoadImageFolder(dir, size, FolderOptions{Gray: gray})
			if err != nil {
				t.Fatal(err)
			}
			for i, name := range []string{"a.png", "b.jpg"} {
				px, err := DecodeImage(bytes.NewReader(files[name]), d.Shape)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				want := d.Image(i)
				for k := range want {
					if px[k] != want[k] {
						t.Fatalf("%s size %d gray %v: value %d = %v, image folder gives %v", filepath.Base(name), size, gray, k, px[k], want[k])
					}
				}
			}
		}
	}
	// The alpha rule is exercised: the centre 9×9 crop starts at x = 2, so
	// its bottom-right pixel is source (10, 8), red 190 at alpha 59,
	// composited on black to 190·59/255 ≈ 44.
	px, err := DecodeImage(bytes.NewReader(files["a.png"]), denoise.Shape{C: 3, H: 9, W: 9})
	if err != nil {
		t.Fatal(err)
	}
	if got := unitToByte(px[8*9+8]); got < 43 || got > 45 {
		t.Errorf("bottom-right red %d, want about 44 (190 at alpha 59 on black)", got)
	}
}
