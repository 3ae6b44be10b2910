package data

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"math"
	"testing"
)

// A tiny level-5 MAT-file writer, laid out as MATLAB writes files (see the
// format notes in svhn.go), to give LoadSVHN real input.

func matFileHeader(bo binary.ByteOrder) []byte {
	h := bytes.Repeat([]byte(" "), matHeaderLen)
	copy(h, "MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024")
	copy(h[116:124], make([]byte, 8)) // no subsystem data
	bo.PutUint16(h[124:], 0x0100)
	bo.PutUint16(h[126:], 'M'<<8|'I') // reads "IM" little-endian, "MI" big-endian
	return h
}

// matElement encodes one data element, in the small format when it fits.
func matElement(bo binary.ByteOrder, typ uint32, data []byte) []byte {
	if len(data) <= 4 {
		out := make([]byte, 8)
		bo.PutUint32(out, uint32(len(data))<<16|typ)
		copy(out[4:], data)
		return out
	}
	out := make([]byte, 8, 8+len(data)+7)
	bo.PutUint32(out, typ)
	bo.PutUint32(out[4:], uint32(len(data)))
	out = append(out, data...)
	for len(out)%8 != 0 {
		out = append(out, 0)
	}
	return out
}

// matMatrix encodes an miMATRIX element: a real array of the given class,
// dimensions and name, its data of storage type typ.
func matMatrix(bo binary.ByteOrder, name string, class uint8, dims []int, typ uint32, data []byte) []byte {
	flags := make([]byte, 8)
	bo.PutUint32(flags, uint32(class))
	dimBytes := make([]byte, 4*len(dims))
	for i, d := range dims {
		bo.PutUint32(dimBytes[4*i:], uint32(d))
	}
	var body []byte
	body = append(body, matElement(bo, miUINT32, flags)...)
	body = append(body, matElement(bo, miINT32, dimBytes)...)
	body = append(body, matElement(bo, miINT8, []byte(name))...)
	body = append(body, matElement(bo, typ, data)...)
	tag := make([]byte, 8)
	bo.PutUint32(tag, miMATRIX)
	bo.PutUint32(tag[4:], uint32(len(body)))
	return append(tag, body...)
}

// matCompress wraps an miMATRIX element in an miCOMPRESSED one.
func matCompress(bo binary.ByteOrder, elem []byte) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(elem)
	zw.Close()
	tag := make([]byte, 8)
	bo.PutUint32(tag, miCOMPRESSED)
	bo.PutUint32(tag[4:], uint32(z.Len()))
	return append(tag, z.Bytes()...)
}

func matDoubles(bo binary.ByteOrder, vs ...float64) []byte {
	out := make([]byte, 8*len(vs))
	for i, v := range vs {
		bo.PutUint64(out[8*i:], math.Float64bits(v))
	}
	return out
}

// svhnPixel is the test value of X(r, col, ch, i) (0-based).
func svhnPixel(r, col, ch, i int) byte { return byte(r + 10*col + 40*ch + 120*i) }

// svhnX returns X [h,w,3,n] as uint8 in column-major order.
func svhnX(h, w, n int) []byte {
	var x []byte
	for i := range n {
		for ch := range 3 {
			for col := range w {
				for r := range h {
					x = append(x, svhnPixel(r, col, ch, i))
				}
			}
		}
	}
	return x
}

func checkSVHN(t *testing.T, d *Dataset, h, w int, labels []int) {
	t.Helper()
	if d.C != 3 || d.H != h || d.W != w || d.Len() != len(labels) {
		t.Fatalf("shape %dx%dx%d, %d images; want 3x%dx%d, %d", d.C, d.H, d.W, d.Len(), h, w, len(labels))
	}
	for i, l := range labels {
		if d.Labels[i] != l {
			t.Fatalf("labels %v, want %v", d.Labels, labels)
		}
	}
	for i := range labels {
		img := d.Image(i)
		for ch := range 3 {
			for r := range h {
				for col := range w {
					if got, want := img[(ch*h+r)*w+col], ByteToUnit(svhnPixel(r, col, ch, i)); got != want {
						t.Fatalf("image %d ch %d row %d col %d = %v, want %v", i, ch, r, col, got, want)
					}
				}
			}
		}
	}
}

func TestLoadSVHNLittleEndian(t *testing.T) {
	bo := binary.LittleEndian
	var f []byte
	f = append(f, matFileHeader(bo)...)
	// A char variable first, compressed, to be skipped.
	f = append(f, matCompress(bo, matMatrix(bo, "note", 4, []int{1, 3}, 17, []byte("a\x00b\x00c\x00")))...)
	// X uncompressed, as [2,3,3,2] uint8 (a non-square image shows the
	// column-major transpose).
	f = append(f, matMatrix(bo, "X", mxUINT8_CLASS, []int{2, 3, 3, 2}, miUINT8, svhnX(2, 3, 2))...)
	// y compressed: a double array stored as bytes, as MATLAB does when
	// the values fit; 10 stands for digit 0.
	f = append(f, matCompress(bo, matMatrix(bo, "y", mxDOUBLE_CLASS, []int{2, 1}, miUINT8, []byte{10, 3}))...)
	p := writeTemp(t, t.TempDir(), "train_32x32.mat", f)

	d, err := LoadSVHN(p)
	if err != nil {
		t.Fatal(err)
	}
	checkSVHN(t, d, 2, 3, []int{0, 3})
	if d.Name != "svhn" {
		t.Errorf("name %q, want svhn", d.Name)
	}
}

func TestLoadSVHNBigEndian(t *testing.T) {
	bo := binary.BigEndian
	var f []byte
	f = append(f, matFileHeader(bo)...)
	// y uncompressed double, X compressed.
	f = append(f, matMatrix(bo, "y", mxDOUBLE_CLASS, []int{3, 1}, miDOUBLE, matDoubles(bo, 1, 10, 7))...)
	f = append(f, matCompress(bo, matMatrix(bo, "X", mxUINT8_CLASS, []int{4, 2, 3, 3}, miUINT8, svhnX(4, 2, 3)))...)
	p := writeTemp(t, t.TempDir(), "test_32x32.mat", f)

	d, err := LoadSVHN(p)
	if err != nil {
		t.Fatal(err)
	}
	checkSVHN(t, d, 4, 2, []int{1, 0, 7})
}

func TestLoadSVHNOneImage(t *testing.T) {
	// MATLAB drops the trailing singleton: one image is X [H,W,3].
	bo := binary.LittleEndian
	f := matFileHeader(bo)
	f = append(f, matCompress(bo, matMatrix(bo, "X", mxUINT8_CLASS, []int{2, 2, 3}, miUINT8, svhnX(2, 2, 1)))...)
	f = append(f, matCompress(bo, matMatrix(bo, "y", mxDOUBLE_CLASS, []int{1, 1}, miDOUBLE, matDoubles(bo, 5)))...)
	d, err := LoadSVHN(writeTemp(t, t.TempDir(), "one.mat", f))
	if err != nil {
		t.Fatal(err)
	}
	checkSVHN(t, d, 2, 2, []int{5})
}

func TestLoadSVHNErrors(t *testing.T) {
	bo := binary.LittleEndian
	dir := t.TempDir()
	x := matMatrix(bo, "X", mxUINT8_CLASS, []int{2, 3, 3, 2}, miUINT8, svhnX(2, 3, 2))
	y := func(vs ...byte) []byte {
		return matCompress(bo, matMatrix(bo, "y", mxDOUBLE_CLASS, []int{len(vs), 1}, miUINT8, vs))
	}
	file := func(parts ...[]byte) []byte {
		return bytes.Join(append([][]byte{matFileHeader(bo)}, parts...), nil)
	}
	good := file(x, y(1, 2))

	p := writeTemp(t, dir, "notmat.mat", bytes.Repeat([]byte("x"), 200))
	wantErrMention(t, loaderErr(LoadSVHN(p)), "notmat.mat", "bad header")

	p = writeTemp(t, dir, "short.mat", good[:100])
	wantErrMention(t, loaderErr(LoadSVHN(p)), "short.mat", "128-byte")

	p = writeTemp(t, dir, "cut.mat", good[:len(good)-10])
	wantErrMention(t, loaderErr(LoadSVHN(p)), "cut.mat", "truncated")

	// An element whose byte count is right but whose array is cut short.
	cutX := append([]byte(nil), x[:len(x)-16]...)
	bo.PutUint32(cutX[4:], uint32(len(cutX)-8))
	p = writeTemp(t, dir, "cutx.mat", file(cutX, y(1, 2)))
	wantErrMention(t, loaderErr(LoadSVHN(p)), "cutx.mat", "variable X data")

	p = writeTemp(t, dir, "noy.mat", file(x))
	wantErrMention(t, loaderErr(LoadSVHN(p)), "noy.mat", "no variable [y]")

	p = writeTemp(t, dir, "label.mat", file(x, y(1, 11)))
	wantErrMention(t, loaderErr(LoadSVHN(p)), "label.mat", "y(2) = 11")

	p = writeTemp(t, dir, "count.mat", file(x, y(1, 2, 3)))
	wantErrMention(t, loaderErr(LoadSVHN(p)), "count.mat", "N = 3")

	// Corrupt zlib data inside a well-formed miCOMPRESSED element.
	z := y(1, 2)
	for i := 10; i < len(z); i++ {
		z[i] ^= 0x55
	}
	p = writeTemp(t, dir, "zlib.mat", file(x, z))
	wantErrMention(t, loaderErr(LoadSVHN(p)), "zlib.mat")

	wantErrMention(t, loaderErr(LoadSVHN(dir+"/missing.mat")), "missing.mat")
}
