package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"io"
	"math"

	"github.com/eigenscore/eigenscore/denoise"
	"golang.org/x/image/draw"
)

// MaxImagePixels is the largest image, in pixels (width × height), that
// DecodeImage decodes: 4096×4096, 64 MiB as RGBA.
const MaxImagePixels = 4096 * 4096

// DecodeImage decodes one PNG or JPEG image from r into shape.C×shape.H×
// shape.W float32 values in [-1, 1], C-major (the layout of a Dataset
// image), by the rule LoadImageFolder uses, with the same code, so that an
// image gives identical values either way:
//
//   - The image size is read first (image.DecodeConfig), and an image over
//     MaxImagePixels pixels is refused before it is decoded.
//   - The largest centred region with the aspect ratio of H×W is cropped: a
//     centred square for the square shapes the pipeline uses.
//   - The crop is resized to H×W with Catmull-Rom (golang.org/x/image/draw,
//     up or down), or copied when it is already H×W, drawn over transparent
//     black: alpha is composited onto black (0, which maps to -1).
//   - C = 3 keeps R, G and B; C = 1 takes the luma of the composited RGB with
//     the ITU-R 601 weights 0.299, 0.587, 0.114 (image/color.GrayModel).
//     Gray source images give their grey level exactly for both.
//   - Bytes 0–255 map to [-1, 1] by ByteToUnit.
//
// Errors name the problem: not a PNG or JPEG image, a corrupt image, an
// image larger than MaxImagePixels, or a shape other than C 1 or 3 with
// positive H and W. The header bytes read for the size check are kept to
// decode from; bound r (e.g. http.MaxBytesReader) to bound them.
func DecodeImage(r io.Reader, shape denoise.Shape) ([]float32, error) {
	return decodeImage(r, shape, MaxImagePixels)
}

// decodeImage is DecodeImage with a pixel limit.
func decodeImage(r io.Reader, shape denoise.Shape, maxPixels int) ([]float32, error) {
	if shape.C != 1 && shape.C != 3 {
		return nil, fmt.Errorf("data: decode image: shape %v has %d channels, expected 1 (gray) or 3 (RGB)", shape, shape.C)
	}
	if err := checkImageShape(shape); err != nil {
		return nil, fmt.Errorf("data: decode image: %w", err)
	}
	src, format, err := decodeLimited(r, maxPixels)
	if err != nil {
		return nil, err
	}
	out := make([]float32, shape.Dim())
	dst := image.NewRGBA(image.Rect(0, 0, shape.W, shape.H))
	if err := imageToCHW(src, dst, out, shape.C == 1); err != nil {
		return nil, fmt.Errorf("data: decode image: %s %w", format, err)
	}
	return out, nil
}

// ErrImageTooLarge is wrapped by the error for an image over the pixel
// limit, which is refused from its header, before decoding.
var ErrImageTooLarge = errors.New("image too large")

// ReadImage decodes a PNG or JPEG image as it is, refusing one over
// MaxImagePixels pixels from its header (ErrImageTooLarge) and naming the
// problem otherwise, as DecodeImage does before it converts the image.
func ReadImage(r io.Reader) (image.Image, error) {
	img, _, err := decodeLimited(r, MaxImagePixels)
	return img, err
}

// decodeLimited decodes a PNG or JPEG image from r after checking, from its
// header, that it has at most maxPixels pixels.
func decodeLimited(r io.Reader, maxPixels int) (image.Image, string, error) {
	// DecodeConfig reads the header; keep those bytes to decode from the
	// start again.
	var head bytes.Buffer
	cfg, format, err := image.DecodeConfig(io.TeeReader(r, &head))
	switch {
	case errors.Is(err, image.ErrFormat):
		return nil, "", errors.New("data: decode image: not a PNG or JPEG image")
	case format != "png" && format != "jpeg":
		// Another decoder registered elsewhere in the program.
		return nil, "", fmt.Errorf("data: decode image: not a PNG or JPEG image (found %s)", format)
	case err != nil:
		return nil, "", fmt.Errorf("data: decode image: bad %s header: %w", format, err)
	}
	w, h := cfg.Width, cfg.Height
	if w <= 0 || h <= 0 {
		return nil, "", fmt.Errorf("data: decode image: %s image is %d×%d, empty", format, w, h)
	}
	if w > maxPixels/h {
		return nil, "", fmt.Errorf("data: decode image: %s image is %d×%d, at most %d pixels (%s) allowed: %w",
			format, w, h, maxPixels, squareDesc(maxPixels), ErrImageTooLarge)
	}
	img, format, err := image.Decode(io.MultiReader(&head, r))
	if err != nil {
		return nil, "", fmt.Errorf("data: decode image: corrupt %s image: %w", format, err)
	}
	return img, format, nil
}

// squareDesc writes n pixels as the square "s×s" when n is one.
func squareDesc(n int) string {
	if s := int(math.Sqrt(float64(n))); s*s == n {
		return fmt.Sprintf("%d×%d", s, s)
	}
	return fmt.Sprintf("%d pixels", n)
}

// imageToCHW crops src to the largest centred region with dst's aspect ratio
// (a square for a square dst), draws it into dst resized with Catmull-Rom
// (copied when already dst's size) over transparent black, and writes dst as
// C×H×W values in [-1, 1] to out: luma by image/color.GrayModel when gray,
// else R, G and B planes. dst is scratch; out has len C·H·W.
func imageToCHW(src image.Image, dst *image.RGBA, out []float32, gray bool) error {
	b := src.Bounds()
	w, h := dst.Rect.Dx(), dst.Rect.Dy()
	cw, ch := b.Dx(), b.Dy()
	if cw*h > ch*w {
		cw = ch * w / h
	} else {
		ch = cw * h / w
	}
	if cw == 0 || ch == 0 {
		return fmt.Errorf("image is %d×%d, too small to crop to the aspect of %d×%d", b.Dx(), b.Dy(), w, h)
	}
	crop := image.Rect(0, 0, cw, ch).Add(b.Min).Add(image.Pt((b.Dx()-cw)/2, (b.Dy()-ch)/2))
	// Drawing Over the cleared (transparent black) scratch leaves each pixel
	// premultiplied by its alpha: composited on black.
	clear(dst.Pix)
	if cw == w && ch == h {
		draw.Copy(dst, dst.Rect.Min, src, crop, draw.Over, nil)
	} else {
		draw.CatmullRom.Scale(dst, dst.Rect, src, crop, draw.Over, nil)
	}

	plane := w * h
	for y := range h {
		for x := range w {
			o := dst.PixOffset(dst.Rect.Min.X+x, dst.Rect.Min.Y+y)
			r, g, bl := dst.Pix[o], dst.Pix[o+1], dst.Pix[o+2]
			i := y*w + x
			if gray {
				out[i] = ByteToUnit(color.GrayModel.Convert(color.RGBA{r, g, bl, 255}).(color.Gray).Y)
				continue
			}
			out[i] = ByteToUnit(r)
			out[plane+i] = ByteToUnit(g)
			out[2*plane+i] = ByteToUnit(bl)
		}
	}
	return nil
}
