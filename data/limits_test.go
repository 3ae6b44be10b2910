package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/eigenscore/eigenscore/denoise"
)

// Regression tests for what the fuzz targets guard against: headers that
// announce more than the input holds, and shapes whose image size is zero
// or overflows.

// allocated returns the bytes f allocates on the heap (all goroutines; the
// tests here run alone).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// smallAlloc is far above what reading a tiny input needs and far below
// what the headers below announce (1-2 GiB).
const smallAlloc = 16 << 20

func TestReadFullGrow(t *testing.T) {
	data := make([]byte, 3*readGrowFirst+5)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, n := range []int{0, 1, readGrowFirst, len(data)} {
		got, err := readFullGrow(iotest.HalfReader(bytes.NewReader(data)), n)
		if err != nil || !bytes.Equal(got, data[:n]) {
			t.Fatalf("n=%d: %d bytes, %v", n, len(got), err)
		}
		if cap(got) > n {
			t.Errorf("n=%d: capacity %d, want no more than n", n, cap(got))
		}
	}
	// io.ReadFull's errors: EOF when nothing came, ErrUnexpectedEOF when some did.
	if got, err := readFullGrow(bytes.NewReader(nil), 10); len(got) != 0 || err != io.EOF {
		t.Errorf("empty input: %d bytes, %v; want 0, EOF", len(got), err)
	}
	if got, err := readFullGrow(bytes.NewReader(data), len(data)+1); len(got) != len(data) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short input: %d bytes, %v; want %d, unexpected EOF", len(got), err, len(data))
	}
	errBoom := errors.New("boom")
	if _, err := readFullGrow(iotest.ErrReader(errBoom), 10); err != errBoom {
		t.Errorf("failing reader: %v", err)
	}
	// 1 GiB announced, 10 bytes there: a small allocation.
	if a := allocated(func() { readFullGrow(bytes.NewReader(data[:10]), 1<<30) }); a > smallAlloc {
		t.Errorf("reading 10 of an announced 1 GiB allocated %d bytes", a)
	}
}

// An IDX header may announce up to 2³¹ values; a file holding 10 of them
// used to allocate all 2 GiB before noticing the truncation.
func TestIDXHugeHeaderAllocation(t *testing.T) {
	for _, gz := range []bool{false, true} {
		b := idxBytes([]byte{0, 0, 8, 3}, []uint32{1 << 15, 1 << 8, 1 << 8}, make([]byte, 10), gz)
		var err error
		a := allocated(func() { _, _, err = readIDX("huge", bytes.NewReader(b)) })
		wantErrMention(t, err, "huge", "truncated IDX data", "got 10 of 2147483648")
		if a > smallAlloc {
			t.Errorf("gzip %v: a 10-value file announcing 2³¹ values allocated %d bytes", gz, a)
		}
	}
	// Past 2³¹ values the header alone is refused.
	_, _, err := readIDX("huger", bytes.NewReader(idxBytes([]byte{0, 0, 8, 4}, []uint32{1 << 10, 1 << 10, 1 << 10, 1 << 10}, nil, false)))
	wantErrMention(t, err, "huger", "too large")
}

// IDX images must be non-empty and small enough that Dim cannot overflow:
// [0, 2³²−1, 2³²−1] used to load as zero images with Dim = (2³²−1)², which
// wraps to a negative int, and [1, 0, 5] as a dataset of invalid shape.
func TestIDXImageShape(t *testing.T) {
	for _, tc := range []struct {
		dims []uint32
		want string
	}{
		{[]uint32{1, 0, 5}, "empty"},
		{[]uint32{3, 7, 0}, "empty"},
		{[]uint32{0, 1<<32 - 1, 1<<32 - 1}, "too large"},
		{[]uint32{0, 1 << 16, 1 << 16}, "too large"},
	} {
		dims, pix, err := readIDX("shape", bytes.NewReader(idxBytes([]byte{0, 0, 8, 3}, tc.dims, nil, false)))
		if err != nil {
			t.Fatalf("%v: %v", tc.dims, err)
		}
		_, err = idxImages("x", "shape", dims, pix)
		wantErrMention(t, err, "shape", "IDX dimensions", tc.want)
	}
	// Zero images of a sane shape are still an (empty) dataset.
	dims, pix, _ := readIDX("none", bytes.NewReader(idxBytes([]byte{0, 0, 8, 3}, []uint32{0, 28, 28}, nil, false)))
	if d, err := idxImages("x", "none", dims, pix); err != nil || d.Len() != 0 || d.Shape != (denoise.Shape{C: 1, H: 28, W: 28}) {
		t.Errorf("zero 28×28 images: %v, %v", d, err)
	}
}

// An SVHN file with zero images of 2³¹×2³¹×3 pixels used to load with an
// overflowing Dim.
func TestSVHNImageShape(t *testing.T) {
	le := binary.LittleEndian
	b := bytes.Join([][]byte{matFileHeader(le),
		matMatrix(le, "X", mxUINT8_CLASS, []int{1<<31 - 1, 1<<31 - 1, 3, 0}, miUINT8, nil),
		matMatrix(le, "y", mxDOUBLE_CLASS, []int{0, 1}, miUINT8, nil),
	}, nil)
	_, err := readSVHN("huge.mat", bytes.NewReader(b), int64(len(b)))
	wantErrMention(t, err, "huge.mat", "X has dimensions", "too large")
}

// A compressed MAT array may announce up to maxZlibRatio times its
// compressed size. A 1 MiB miCOMPRESSED element whose X announces 1 GiB of
// data but holds 16 bytes used to allocate the whole GiB.
func TestMATCompressedClaimAllocation(t *testing.T) {
	le := binary.LittleEndian
	const claim = 1 << 30
	flags := make([]byte, 8)
	le.PutUint32(flags, mxUINT8_CLASS)
	dims := make([]byte, 8)
	le.PutUint32(dims, 1<<15)
	le.PutUint32(dims[4:], 1<<15)
	var body []byte
	body = append(body, matElement(le, miUINT32, flags)...)
	body = append(body, matElement(le, miINT32, dims)...)
	body = append(body, matElement(le, miINT8, []byte("X"))...)
	dataTag := make([]byte, 8)
	le.PutUint32(dataTag, miUINT8)
	le.PutUint32(dataTag[4:], claim)
	body = append(body, dataTag...)
	matrix := make([]byte, 8)
	le.PutUint32(matrix, miMATRIX)
	le.PutUint32(matrix[4:], uint32(len(body)+claim))
	matrix = append(append(matrix, body...), make([]byte, 16)...)

	// Pad the compressed element to 1 MiB so that its ratio allows the claim.
	elem := matCompress(le, matrix)
	elem = append(elem, make([]byte, 1<<20-len(elem))...)
	le.PutUint32(elem[4:], uint32(len(elem)-8))
	b := append(matFileHeader(le), elem...)

	var err error
	a := allocated(func() { _, err = readSVHN("claim.mat", bytes.NewReader(b), int64(len(b))) })
	wantErrMention(t, err, "claim.mat", "variable X data", "truncated")
	if a > smallAlloc+uint64(len(b)) {
		t.Errorf("a compressed array announcing 1 GiB and holding 16 bytes allocated %d bytes", a)
	}
}

// Validate and LoadImageFolder refuse shapes whose Dim would overflow.
func TestShapeTooLarge(t *testing.T) {
	d := &Dataset{Name: "wrap", Shape: denoise.Shape{C: 3, H: 1<<31 - 1, W: 1<<31 - 1}}
	if d.Dim() > 0 {
		t.Fatalf("Dim %d: the shape was meant to overflow", d.Dim())
	}
	wantErrMention(t, d.Validate(), "wrap", "too large")
	wantErrMention(t, loaderErr(LoadImageFolder(t.TempDir(), 1<<31, FolderOptions{})), "size 2147483648", "too large")
}
