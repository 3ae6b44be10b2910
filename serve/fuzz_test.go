package serve

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore/denoise"
)

var fuzzShape = denoise.Shape{C: 1, H: 2, W: 2}

func checkDecoded(t *testing.T, pixels []float32, n, maxImages int) {
	if n < 1 || n > maxImages || len(pixels) != n*fuzzShape.Dim() {
		t.Fatalf("%d images of %d values accepted (at most %d images of %d)", n, len(pixels), maxImages, fuzzShape.Dim())
	}
	for _, v := range pixels {
		if !(v >= -1 && v <= 1) {
			t.Fatalf("pixel %v outside [-1, 1] accepted", v)
		}
	}
}

// Decoding any body never panics, and what it accepts is within the limits
// and on the model's scale.
func FuzzDecodeScoreRequest(f *testing.F) {
	for _, s := range []string{
		`{"images": [[0, 0.5, -1, 1]]}`,
		`{"images": [[0, 128, 255, 3]], "input_range": "uint8"}`,
		`{"images": [[0, 0.5, -1, 1], [1, 1, 1, 1], [0, 0, 0, 0]]}`,
		`{"images": [[0, null, -1, 1]]}`,
		`{"images": [[[0, 0.5], [-1, 1]]]}`,
		`{"images": [[0, 0.5, -1, 1e39]]}`,
		`{"images": [], "images": []}`,
		`{"images": [[0, 0.5, -1, 1]]} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pixels, n, err := decodeScoreRequest(bytes.NewReader(b), fuzzShape, 3)
		if err == nil {
			checkDecoded(t, pixels, n, 3)
		}
	})
}

func FuzzDecodeInferRequest(f *testing.F) {
	for _, s := range []string{
		`{"inputs": [{"name": "images", "shape": [1, 1, 2, 2], "datatype": "FP32", "data": [0, 0.5, -1, 1]}]}`,
		`{"id": "x", "inputs": [{"name": "images", "shape": [2, 1, 2, 2], "datatype": "UINT8", "data": [[0, 1, 2, 3], [4, 5, 6, 255]]}], "outputs": [{"name": "score"}]}`,
		`{"inputs": [{"name": "images", "shape": [1, 1, 2, 2], "datatype": "FP32", "parameters": {"a": [1, {"b": 2}]}, "data": [0, 0.5, -1, 1]}]}`,
		`{"inputs": [{"name": "images", "shape": [9, 1, 2, 2], "datatype": "FP32", "data": [0]}]}`,
		`{"inputs": [{"name": "images", "shape": [1.5, 1, 2, 2], "datatype": "FP32", "data": [0, 0, 0, 0]}]}`,
		`{"inputs": [{"name": "images", "shape": [-1, 1, 2, 2], "datatype": "FP32", "data": []}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeInferRequest(bytes.NewReader(b), fuzzShape, 3)
		if err == nil {
			checkDecoded(t, req.Pixels, req.N, 3)
		}
	})
}

// Deep nesting is refused, not recursed into without bound.
func TestDecodeDeepNesting(t *testing.T) {
	body := `{"images": [` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `]}`
	if _, _, err := decodeScoreRequest(strings.NewReader(body), fuzzShape, 3); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("deep nesting: %v", err)
	}
	body = `{"inputs": [{"parameters": ` + strings.Repeat("[", 100_000) + `]}]}`
	if _, err := decodeInferRequest(strings.NewReader(body), fuzzShape, 3); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("deep nesting in parameters: %v", err)
	}
}

// compactJSON keeps the meaning of a body (strings untouched, white space
// outside them squeezed), decodes a body padded with 32 MiB of spaces, and
// refuses an over-long token.
func TestCompactJSON(t *testing.T) {
	in := `{ "a" :  [1,   2.5e3 ,"x  \"  y\\"],` + "\n\t" + `"b": null }`
	out, err := io.ReadAll(&compactJSON{r: strings.NewReader(in)})
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal([]byte(in), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &b); err != nil || !reflect.DeepEqual(a, b) {
		t.Errorf("compacted %q means %v, the original %v (%v)", out, b, a, err)
	}
	padded := `{"images":` + strings.Repeat(" ", 32<<20) + `[[0, 0.5, -1, 1]]}`
	if _, n, err := decodeScoreRequest(strings.NewReader(padded), fuzzShape, 3); err != nil || n != 1 {
		t.Errorf("padded body: %d images, %v", n, err)
	}
	long := `{"images": [[0, 0.5, -1, 1` + strings.Repeat("0", 5000) + `]]}`
	if _, _, err := decodeScoreRequest(strings.NewReader(long), fuzzShape, 3); err == nil || !strings.Contains(err.Error(), "longer than 4096 bytes") {
		t.Errorf("long number: %v", err)
	}
}
