package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
)

// Tolerance is how far outside [-1, 1] a pixel on the model's scale may lie:
// such values are clamped to the range, anything further is refused. It
// allows for clients that convert bytes to [-1, 1] in float32 and print
// them with 3 or more decimals; a real image never lies further out.
const Tolerance = 1e-3

// InputRange names how a request's pixel values are to be read.
type InputRange string

const (
	// Unit values are on the model's scale, [-1, 1] (within Tolerance).
	Unit InputRange = "unit"
	// Uint8 values are integers 0–255, mapped to [-1, 1] as data.ByteToUnit.
	Uint8 InputRange = "uint8"
)

// tensorReader streams a JSON request body with encoding/json's tokenizer so
// that the limits apply while decoding: at most maxValues numbers are ever
// kept, whatever the body holds.
type tensorReader struct {
	dec       *json.Decoder
	maxValues int
	depth     int
}

func newTensorReader(r io.Reader, maxValues int) *tensorReader {
	return &tensorReader{dec: json.NewDecoder(&compactJSON{r: r}), maxValues: maxValues}
}

// maxToken is the longest number, string or literal a request may hold.
const maxToken = 4096

// compactJSON reads a JSON body, keeping one byte of each run of white space
// between tokens and refusing any number, string or literal longer than
// maxToken bytes. encoding/json's Decoder buffers the token it scans and
// the white space before it, so without this a body of 32 MiB of spaces, or
// one 32 MiB number, would be held whole; with it the decoder holds about
// maxToken bytes whatever the body.
type compactJSON struct {
	r                 io.Reader
	inString, escaped bool
	space             bool // the last byte kept was white space
	run               int  // bytes of the current token so far
}

func (c *compactJSON) Read(p []byte) (int, error) {
	for {
		n, err := c.r.Read(p)
		w := 0
		for _, b := range p[:n] {
			keep, tooLong := c.step(b)
			if tooLong {
				return 0, fmt.Errorf("a number, string or literal longer than %d bytes", maxToken)
			}
			if keep {
				p[w] = b
				w++
			}
		}
		if w > 0 || err != nil || n == 0 {
			return w, err
		}
	}
}

// step advances the scanner over b and says whether to keep it.
func (c *compactJSON) step(b byte) (keep, tooLong bool) {
	if c.inString {
		c.run++
		switch {
		case c.escaped:
			c.escaped = false
		case b == '\\':
			c.escaped = true
		case b == '"':
			c.inString, c.run = false, 0
		}
		return true, c.run > maxToken
	}
	switch b {
	case ' ', '\t', '\n', '\r':
		if c.space {
			return false, false
		}
		c.space, c.run = true, 0
		return true, false
	case '"':
		c.inString, c.run = true, 1
	case '{', '}', '[', ']', ',', ':':
		c.run = 0
	default:
		c.run++
	}
	c.space = false
	return true, c.run > maxToken
}

// errTooMany marks a body that holds more values than allowed (413).
type errTooMany struct{ msg string }

func (e *errTooMany) Error() string { return e.msg }

func (t *tensorReader) delim(want json.Delim, what string) error {
	tok, err := t.dec.Token()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%s: got %v, want %q", what, tok, string(want))
	}
	return nil
}

// object calls field for every key of a JSON object, refusing duplicate
// keys; field must consume the value.
func (t *tensorReader) object(what string, field func(key string) error) error {
	if err := t.delim('{', what); err != nil {
		return err
	}
	seen := map[string]bool{}
	for t.dec.More() {
		tok, err := t.dec.Token()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("%s: duplicate key %q", what, key)
		}
		seen[key] = true
		if err := field(key); err != nil {
			return err
		}
	}
	return t.delim('}', what)
}

// end checks that nothing but white space follows the JSON value.
func (t *tensorReader) end() error {
	if _, err := t.dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the JSON object")
	}
	return nil
}

// str reads a string value.
func (t *tensorReader) str(what string) (string, error) {
	tok, err := t.dec.Token()
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("%s is %v, want a string", what, tok)
	}
	return s, nil
}

// skip consumes one value of any kind without keeping it (nesting at most
// 64 deep).
func (t *tensorReader) skip(what string) error {
	depth := 0
	for {
		tok, err := t.dec.Token()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '[' || d == '{' {
				depth++
				if depth > 64 {
					return fmt.Errorf("%s: nested more than 64 deep", what)
				}
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// numbers reads a possibly nested array of numbers into dst, flattened in
// row-major order, refusing null, strings and more than maxValues values
// in all.
func (t *tensorReader) numbers(dst []float32, what string) ([]float32, error) {
	if err := t.delim('[', what); err != nil {
		return nil, err
	}
	return t.nested(dst, what)
}

// nested reads the rest of an array whose '[' was just read.
func (t *tensorReader) nested(dst []float32, what string) ([]float32, error) {
	t.depth++
	defer func() { t.depth-- }()
	if t.depth > 8 {
		return nil, fmt.Errorf("%s: nested more than 8 deep", what)
	}
	for t.dec.More() {
		tok, err := t.dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		switch v := tok.(type) {
		case float64:
			if len(dst) >= t.maxValues {
				return nil, &errTooMany{fmt.Sprintf("%s has more than %d values", what, t.maxValues)}
			}
			dst = append(dst, float32(v))
		case json.Delim:
			if v != '[' {
				return nil, fmt.Errorf("%s: unexpected %q", what, string(v))
			}
			if dst, err = t.nested(dst, what); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s value %d is %v, want a number", what, len(dst), tok)
		}
	}
	if _, err := t.dec.Token(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return dst, nil
}

// decodeScoreRequest reads POST /v1/score's body,
// {"images": [[C·H·W values], …], "input_range": "unit"|"uint8"}, strictly:
// unknown or duplicate keys, null or non-numeric values and data after the
// object are errors. At most maxImages images are read.
func decodeScoreRequest(r io.Reader, shape denoise.Shape, maxImages int) ([]float32, int, error) {
	dim := shape.Dim()
	t := newTensorReader(r, maxImages*dim)
	var pixels []float32
	var n int
	rng := Unit
	err := t.object("request body", func(key string) error {
		switch key {
		case "images":
			var err error
			pixels, n, err = t.images(shape, maxImages)
			return err
		case "input_range":
			s, err := t.str("input_range")
			rng = InputRange(s)
			return err
		}
		return fmt.Errorf("unknown field %q, want images and optionally input_range", key)
	})
	if err == nil {
		err = t.end()
	}
	if err != nil {
		return nil, 0, err
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("no images: want {\"images\": [[%d pixel values], …]}", dim)
	}
	if err := convert(pixels, dim, rng); err != nil {
		return nil, 0, err
	}
	return pixels, n, nil
}

// images reads the array of images, each a flat array of dim values.
func (t *tensorReader) images(shape denoise.Shape, maxImages int) ([]float32, int, error) {
	dim := shape.Dim()
	if err := t.delim('[', "images"); err != nil {
		return nil, 0, err
	}
	var pixels []float32
	n := 0
	for t.dec.More() {
		if n == maxImages {
			return nil, 0, &errTooMany{fmt.Sprintf("more than %d images; send at most %d per request", maxImages, maxImages)}
		}
		before := len(pixels)
		var err error
		if pixels, err = t.numbers(pixels, fmt.Sprintf("image %d", n)); err != nil {
			var tm *errTooMany
			if errors.As(err, &tm) {
				return nil, 0, fmt.Errorf("image %d has more than %d values, want %d (%v, channel-major)", n, dim, dim, shape)
			}
			return nil, 0, err
		}
		if got := len(pixels) - before; got != dim {
			return nil, 0, fmt.Errorf("image %d has %d values, want %d (%v, channel-major)", n, got, dim, shape)
		}
		n++
	}
	return pixels, n, t.delim(']', "images")
}

// convert checks every value against the input range and maps it to the
// model's scale in place; the error names the image and the value.
func convert(pixels []float32, dim int, rng InputRange) error {
	switch rng {
	case Unit:
		for i, v := range pixels {
			if !(v >= -1-Tolerance && v <= 1+Tolerance) {
				return fmt.Errorf("image %d value %d is %v, want a number in [-1, 1] (or set \"input_range\": \"uint8\" for 0–255)", i/dim, i%dim, v)
			}
			pixels[i] = max(-1, min(1, v))
		}
	case Uint8:
		for i, v := range pixels {
			if !(v >= 0 && v <= 255) || v != float32(math.Round(float64(v))) {
				return fmt.Errorf("image %d value %d is %v, want an integer in 0–255 (input_range uint8)", i/dim, i%dim, v)
			}
			pixels[i] = data.ByteToUnit(byte(v))
		}
	default:
		return fmt.Errorf("input_range %q, want unit or uint8", rng)
	}
	return nil
}
