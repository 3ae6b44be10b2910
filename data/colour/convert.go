package colour

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"math"
	"os"
	"strconv"

	"golang.org/x/image/draw"

	"github.com/eigenscore/eigenscore/data"
)

// ImageBytes is the size of one stored image: Size×Size pixels of R, G, B.
const ImageBytes = Size * Size * 3

// Reasons a source file gives no image; the manifest counts each.
var (
	errTooLarge = errors.New("over data.MaxImagePixels pixels")
	errTooSmall = fmt.Errorf("shorter side under %d pixels", Size)
)

var white = color.RGBA{255, 255, 255, 255}

// decodeFile decodes the PNG or JPEG image at path by data.ReadImage,
// which refuses from its header one over data.MaxImagePixels pixels
// (errTooLarge here), and composites it onto white, as an RGBA image whose
// bounds start at (0, 0).
func decodeFile(path string) (*image.RGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := data.ReadImage(f)
	if errors.Is(err, data.ErrImageTooLarge) {
		return nil, fmt.Errorf("%w: %w", errTooLarge, err)
	}
	if err != nil {
		return nil, err
	}
	return onWhite(src), nil
}

// onWhite composites src onto an opaque white image of its size.
func onWhite(src image.Image) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, image.NewUniform(white), image.Point{}, draw.Src)
	draw.Draw(dst, dst.Rect, src, b.Min, draw.Over)
	return dst
}

// objectImage is the Object rule on an image composited onto white: the
// bounding box of its non-white pixels, padded with white to a centred
// square, resized to Size×Size. ok is false when every pixel is white.
func objectImage(img *image.RGBA) (out []byte, ok bool) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	x0, y0, x1, y1 := w, h, 0, 0
	for y := range h {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := range w {
			if row[4*x] != 255 || row[4*x+1] != 255 || row[4*x+2] != 255 {
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x+1), max(y1, y+1)
			}
		}
	}
	if x0 >= x1 {
		return nil, false
	}
	box := image.Rect(x0, y0, x1, y1)
	side := max(box.Dx(), box.Dy())
	if box.Dx() == box.Dy() {
		return resize(img, box), true
	}
	sq := image.NewRGBA(image.Rect(0, 0, side, side))
	draw.Draw(sq, sq.Rect, image.NewUniform(white), image.Point{}, draw.Src)
	at := image.Pt((side-box.Dx())/2, (side-box.Dy())/2)
	draw.Draw(sq, box.Sub(box.Min).Add(at), img, box.Min, draw.Src)
	return resize(sq, sq.Rect), true
}

// patchImages is the Patches rule: n square crops of img, the k-th placed
// by SHA-256(key + "#" + k), each resized to Size×Size. It fails with
// errTooSmall when img's shorter side is under Size.
func patchImages(img *image.RGBA, key string, n int) ([][]byte, error) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	short := min(w, h)
	if short < Size {
		return nil, fmt.Errorf("%d×%d: %w", w, h, errTooSmall)
	}
	lo := max(Size, short/8)
	hi := max(lo, short/2)
	out := make([][]byte, n)
	for k := range n {
		sum := sha256.Sum256([]byte(key + "#" + strconv.Itoa(k)))
		side := lo + int(binary.BigEndian.Uint64(sum[0:8])%uint64(hi-lo+1))
		x := int(binary.BigEndian.Uint64(sum[8:16]) % uint64(w-side+1))
		y := int(binary.BigEndian.Uint64(sum[16:24]) % uint64(h-side+1))
		out[k] = resize(img, image.Rect(x, y, x+side, y+side))
	}
	return out, nil
}

// resize scales region r of the opaque img to Size×Size with Catmull-Rom
// and returns its pixels as rows of R, G, B bytes.
func resize(img *image.RGBA, r image.Rectangle) []byte {
	dst := image.NewRGBA(image.Rect(0, 0, Size, Size))
	draw.CatmullRom.Scale(dst, dst.Rect, img, r, draw.Src, nil)
	out := make([]byte, 0, ImageBytes)
	for i := 0; i < len(dst.Pix); i += 4 {
		out = append(out, dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2])
	}
	return out
}

// isTest reports whether the images of the file with this key belong to the
// test split: the first 8 bytes of SHA-256(key), big-endian, below
// fraction·2⁶⁴ (fraction in (0, 1)).
func isTest(key string, fraction float64) bool {
	sum := sha256.Sum256([]byte(key))
	return binary.BigEndian.Uint64(sum[:8]) < uint64(math.Ldexp(fraction, 64))
}
