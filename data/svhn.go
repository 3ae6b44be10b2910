package data

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/eigenscore/eigenscore/denoise"
)

// SVHN's cropped-digit files (train_32x32.mat, test_32x32.mat,
// extra_32x32.mat) are MATLAB 5.0 MAT-files holding two variables: X, uint8
// [32,32,3,N], and y, [N,1] with label 10 standing for digit 0. No Go module
// for MAT-files is available to this project, so this file holds a minimal
// reader for exactly what those files need: the level-5 layout (either byte
// order), top-level miMATRIX and miCOMPRESSED (zlib) elements, and dense
// real numeric arrays with any numeric storage type. Cells, structs, sparse,
// complex and v7.3 (HDF5) files are refused with an error.
//
// Layout (MathWorks "MAT-File Format", level 5): a 128-byte header (116 bytes
// of text, 8 of subsystem offset, a 2-byte version 0x0100 and the endian
// indicator "IM" for little-endian files, "MI" for big-endian ones), then data
// elements. Each element is an 8-byte tag (type, byte count) and its data,
// padded to 8 bytes; a "small" element packs a count of at most 4 bytes into
// the upper half of the type word and the data into the tag's second word.
// An miMATRIX holds, in order, array flags (miUINT32 ×2: class in the low byte,
// complex/global/logical bits above), dimensions (miINT32), the name (miINT8)
// and the real part. An miCOMPRESSED element is a zlib stream of one miMATRIX
// element; the next top-level element starts right after its byte count.

const (
	miINT8       = 1
	miUINT8      = 2
	miINT16      = 3
	miUINT16     = 4
	miINT32      = 5
	miUINT32     = 6
	miSINGLE     = 7
	miDOUBLE     = 9
	miINT64      = 12
	miUINT64     = 13
	miMATRIX     = 14
	miCOMPRESSED = 15

	mxDOUBLE_CLASS = 6
	mxSINGLE_CLASS = 7
	mxUINT8_CLASS  = 9
	mxUINT64_CLASS = 15

	matHeaderLen  = 128
	matFlagComplx = 0x08 // in the second byte of the flags word

	// maxZlibRatio bounds how much a zlib stream can expand (deflate's
	// limit is about 1032:1), so a corrupt miMATRIX byte count inside an
	// miCOMPRESSED element cannot make us allocate more than the data can hold.
	maxZlibRatio = 1100
)

// matSizes is the byte size of each numeric MAT storage type.
var matSizes = map[uint32]int{
	miINT8: 1, miUINT8: 1, miINT16: 2, miUINT16: 2, miINT32: 4, miUINT32: 4,
	miSINGLE: 4, miDOUBLE: 8, miINT64: 8, miUINT64: 8,
}

// matArray is one numeric MAT variable: its class, its dimensions (column-major)
// and its real part as raw bytes of storage type typ.
type matArray struct {
	name  string
	class uint8
	dims  []int
	typ   uint32
	data  []byte
	order binary.ByteOrder
}

func (a *matArray) len() int { return len(a.data) / matSizes[a.typ] }

// at returns element i converted to float64.
func (a *matArray) at(i int) float64 {
	d, o := a.data, a.order
	switch a.typ {
	case miINT8:
		return float64(int8(d[i]))
	case miUINT8:
		return float64(d[i])
	case miINT16:
		return float64(int16(o.Uint16(d[2*i:])))
	case miUINT16:
		return float64(o.Uint16(d[2*i:]))
	case miINT32:
		return float64(int32(o.Uint32(d[4*i:])))
	case miUINT32:
		return float64(o.Uint32(d[4*i:]))
	case miSINGLE:
		return float64(math.Float32frombits(o.Uint32(d[4*i:])))
	case miDOUBLE:
		return math.Float64frombits(o.Uint64(d[8*i:]))
	case miINT64:
		return float64(int64(o.Uint64(d[8*i:])))
	case miUINT64:
		return float64(o.Uint64(d[8*i:]))
	}
	panic("data: unreachable MAT storage type")
}

func (a *matArray) isFloatClass() bool {
	return a.class == mxDOUBLE_CLASS || a.class == mxSINGLE_CLASS
}

// LoadSVHN reads an SVHN cropped-digits MAT-file (train_32x32.mat and the
// like): X [H,W,C,N] (column-major, C 3 or 1; uint8, or double/single on the
// NPY rule of LoadNPY) and y [N,1] (any numeric class, integral 1-10 or 0),
// with label 10 mapped to 0. Other variables are skipped.
func LoadSVHN(path string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: MAT-file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("data: MAT-file %s: %w", path, err)
	}
	return readSVHN(path, f, fi.Size())
}

// readSVHN reads an SVHN MAT-file of size bytes from r as LoadSVHN does;
// path names the input in errors.
func readSVHN(path string, r io.ReaderAt, size int64) (*Dataset, error) {
	vars, err := readMAT(path, r, size, map[string]bool{"X": true, "y": true})
	if err != nil {
		return nil, err
	}
	x, y := vars["X"], vars["y"]
	if x == nil || y == nil {
		var missing []string
		for _, n := range []string{"X", "y"} {
			if vars[n] == nil {
				missing = append(missing, n)
			}
		}
		return nil, fmt.Errorf("data: SVHN file %s has no variable %v, expected X (images) and y (labels)", path, missing)
	}

	n := y.len()
	labels := make([]int, n)
	for i := range labels {
		v := y.at(i)
		if v != math.Trunc(v) || v < 0 || v > 10 {
			return nil, fmt.Errorf("data: SVHN file %s: y(%d) = %v, expected an integer label 1-10 (10 for digit 0)", path, i+1, v)
		}
		labels[i] = int(v) % 10
	}

	// MATLAB drops trailing singleton dimensions, so one RGB image is
	// [H,W,3] and N grayscale images are [H,W,N].
	dims := x.dims
	var c int
	switch {
	case len(dims) == 4 && dims[3] == n:
		c = dims[2]
	case len(dims) == 3 && dims[2] == n:
		c = 1
	case len(dims) == 3 && n == 1:
		c = dims[2]
	case len(dims) == 2 && n == 1:
		c = 1
	default:
		return nil, fmt.Errorf("data: SVHN file %s: X has dimensions %v, expected [H,W,C,N] with N = %d (the length of y)", path, dims, n)
	}
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("data: SVHN file %s: X has dimensions %v, expected 1 or 3 channels in the third dimension", path, dims)
	}
	h, w := dims[0], dims[1]
	if h == 0 || w == 0 {
		return nil, fmt.Errorf("data: SVHN file %s: X has empty images, dimensions %v", path, dims)
	}
	if err := checkImageShape(denoise.Shape{C: c, H: h, W: w}); err != nil {
		return nil, fmt.Errorf("data: SVHN file %s: X has dimensions %v: %w", path, dims, err)
	}

	unit, err := matToUnit(x)
	if err != nil {
		return nil, fmt.Errorf("data: SVHN file %s: X: %w", path, err)
	}
	d := &Dataset{Name: "svhn", Shape: denoise.Shape{C: c, H: h, W: w}, Pixels: make([]float32, n*c*h*w), Labels: labels}
	// Column-major X(r, col, ch, i) sits at r + H*(col + W*(ch + C*i)), so
	// each (image, channel) plane is stored column by column: transpose it.
	plane := h * w
	for p := 0; p < n*c; p++ {
		src := p * plane
		dst := d.Pixels[p*plane : (p+1)*plane]
		for col := 0; col < w; col++ {
			for r := 0; r < h; r++ {
				dst[r*w+col] = unit(src + col*h + r)
			}
		}
	}
	return d, nil
}

// matToUnit returns a function mapping element i of a to [-1, 1]: integer
// classes must hold bytes 0-255; float classes follow the NPY rule.
func matToUnit(a *matArray) (func(i int) float32, error) {
	if a.class == mxUINT8_CLASS && a.typ == miUINT8 {
		return func(i int) float32 { return ByteToUnit(a.data[i]) }, nil
	}
	n := a.len()
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range n {
		v := a.at(i)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("element %d is %v", i+1, v)
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	if !a.isFloatClass() {
		if n > 0 && (lo < 0 || hi > 255) {
			return nil, fmt.Errorf("integer pixels span [%v, %v], expected 0-255", lo, hi)
		}
		return func(i int) float32 { return float32(a.at(i)/127.5 - 1) }, nil
	}
	scale, err := floatScale(lo, hi, NPYAuto)
	if err != nil {
		return nil, err
	}
	return func(i int) float32 { return scale(a.at(i)) }, nil
}

// readMAT reads the named numeric variables of a level-5 MAT-file of size
// bytes from f; the others are skipped. A wanted variable that is not a real
// numeric array is an error. path names the input in errors.
func readMAT(path string, f io.ReaderAt, size int64, want map[string]bool) (map[string]*matArray, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("data: MAT-file %s: "+format, append([]any{path}, args...)...)
	}

	var hdr [matHeaderLen]byte
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, size), hdr[:]); err != nil {
		return nil, fail("too short for the 128-byte MAT header (%v)", err)
	}
	var order binary.ByteOrder
	switch string(hdr[126:128]) {
	case "IM":
		order = binary.LittleEndian
	case "MI":
		order = binary.BigEndian
	default:
		if bytes.HasPrefix(hdr[:], []byte("MATLAB 7.3")) {
			return nil, fail("is a v7.3 (HDF5) MAT-file, expected a MATLAB 5.0 MAT-file (save with -v7 or -v6)")
		}
		return nil, fail("bad header: endian indicator %q, expected \"IM\" or \"MI\" of a MATLAB 5.0 MAT-file", hdr[126:128])
	}
	if v := order.Uint16(hdr[124:126]); v != 0x0100 {
		return nil, fail("bad header: version 0x%04x, expected 0x0100 (MATLAB 5.0 MAT-file)", v)
	}

	vars := map[string]*matArray{}
	for pos := int64(matHeaderLen); pos < size; {
		if size-pos < 8 {
			return nil, fail("truncated: %d stray bytes at offset %d, expected an 8-byte element tag", size-pos, pos)
		}
		var tag [8]byte
		if _, err := f.ReadAt(tag[:], pos); err != nil {
			return nil, fail("reading the element tag at offset %d: %v", pos, err)
		}
		typ, n := order.Uint32(tag[:4]), int64(order.Uint32(tag[4:]))
		if pos+8+n > size {
			return nil, fail("truncated: the element at offset %d announces %d bytes, only %d remain", pos, n, size-pos-8)
		}
		body := io.NewSectionReader(f, pos+8, n)
		var v *matArray
		var err error
		switch typ {
		case miMATRIX:
			v, err = readMATMatrix(body, n, order, want)
		case miCOMPRESSED:
			var z io.ReadCloser
			z, err = zlib.NewReader(body)
			if err != nil {
				err = fmt.Errorf("bad zlib stream: %w", err)
				break
			}
			v, err = readMATElement(z, n*maxZlibRatio, order, want)
			z.Close()
		default:
			// Top-level elements other than arrays carry nothing we need.
		}
		if err != nil {
			return nil, fail("element at offset %d: %v", pos, err)
		}
		if v != nil {
			vars[v.name] = v
		}
		pos += 8 + n
	}
	return vars, nil
}

// readMATElement reads one miMATRIX element, tag included, from r (the
// decompressed stream of an miCOMPRESSED element), whose data may not exceed
// limit bytes.
func readMATElement(r io.Reader, limit int64, order binary.ByteOrder, want map[string]bool) (*matArray, error) {
	var tag [8]byte
	if _, err := io.ReadFull(r, tag[:]); err != nil {
		return nil, fmt.Errorf("compressed data: reading the array tag: %w", noEOF(err))
	}
	typ, n := order.Uint32(tag[:4]), int64(order.Uint32(tag[4:]))
	if typ != miMATRIX {
		return nil, fmt.Errorf("compressed data holds element type %d, expected miMATRIX (%d)", typ, miMATRIX)
	}
	if n > limit {
		return nil, fmt.Errorf("compressed array announces %d bytes, more than its compressed data can hold", n)
	}
	return readMATMatrix(r, n, order, want)
}

// readMATMatrix reads the sub-elements of an miMATRIX of n bytes from r. It
// returns nil for arrays not in want, without reading their data.
func readMATMatrix(r io.Reader, n int64, order binary.ByteOrder, want map[string]bool) (*matArray, error) {
	m := &matSub{r: r, left: n, order: order}
	typ, flags, err := m.next()
	if err != nil {
		return nil, fmt.Errorf("array flags: %w", err)
	}
	if typ != miUINT32 || len(flags) != 8 {
		return nil, fmt.Errorf("array flags: element type %d of %d bytes, expected miUINT32 of 8", typ, len(flags))
	}
	// Every array class starts with flags, dimensions and name.
	word := order.Uint32(flags[:4])
	class, bits := uint8(word), uint8(word>>8)
	typ, dimBytes, err := m.next()
	if err != nil {
		return nil, fmt.Errorf("dimensions: %w", err)
	}
	if typ != miINT32 || len(dimBytes)%4 != 0 || len(dimBytes) < 8 {
		return nil, fmt.Errorf("dimensions: element type %d of %d bytes, expected miINT32 with 2 or more values", typ, len(dimBytes))
	}
	dims := make([]int, len(dimBytes)/4)
	count := int64(1) // elements, capped at n+1: more cannot fit anyway
	for i := range dims {
		d := int32(order.Uint32(dimBytes[4*i:]))
		if d < 0 {
			return nil, fmt.Errorf("dimensions: negative size %d", d)
		}
		dims[i] = int(d)
		if d != 0 && count > (n+1)/int64(d) {
			count = n + 1
		} else {
			count *= int64(d)
		}
	}
	typ, nameBytes, err := m.next()
	if err != nil {
		return nil, fmt.Errorf("array name: %w", err)
	}
	if typ != miINT8 && typ != miUINT8 {
		return nil, fmt.Errorf("array name: element type %d, expected miINT8", typ)
	}
	name := string(nameBytes)
	if !want[name] {
		return nil, nil
	}
	if class < mxDOUBLE_CLASS || class > mxUINT64_CLASS {
		return nil, fmt.Errorf("variable %s has MATLAB class %d, expected a numeric array (class 6-15)", name, class)
	}
	if bits&matFlagComplx != 0 {
		return nil, fmt.Errorf("variable %s is complex, expected a real array", name)
	}
	typ, data, err := m.next()
	if err != nil {
		return nil, fmt.Errorf("variable %s data: %w", name, err)
	}
	size, ok := matSizes[typ]
	if !ok {
		return nil, fmt.Errorf("variable %s data: storage type %d, expected a numeric type", name, typ)
	}
	if count > n || int64(len(data)) != count*int64(size) {
		return nil, fmt.Errorf("variable %s data: %d bytes of storage type %d do not fill dimensions %v",
			name, len(data), typ, dims)
	}
	return &matArray{name: name, class: class, dims: dims, typ: typ, data: data, order: order}, nil
}

// matSub reads the sub-elements of an miMATRIX, left bytes in all.
type matSub struct {
	r     io.Reader
	left  int64
	order binary.ByteOrder
}

// next reads one sub-element, small or normal, with its padding.
func (m *matSub) next() (typ uint32, data []byte, err error) {
	if m.left < 8 {
		return 0, nil, fmt.Errorf("missing: %d bytes left in the array, expected an 8-byte tag", m.left)
	}
	var tag [8]byte
	if _, err := io.ReadFull(m.r, tag[:]); err != nil {
		return 0, nil, fmt.Errorf("reading the tag: %w", noEOF(err))
	}
	m.left -= 8
	word := m.order.Uint32(tag[:4])
	if small := word >> 16; small != 0 {
		if small > 4 {
			return 0, nil, fmt.Errorf("small element of %d bytes, at most 4 allowed", small)
		}
		// The 4 data bytes follow the type and count, which are two 16-bit
		// halves of the first word in file byte order.
		return word & 0xffff, tag[4 : 4+small], nil
	}
	n := int64(m.order.Uint32(tag[4:]))
	padded := (n + 7) &^ 7
	if padded > m.left {
		// The last sub-element may end unpadded.
		if n > m.left {
			return 0, nil, fmt.Errorf("element of %d bytes overruns its array (%d bytes left)", n, m.left)
		}
		padded = n
	}
	// In a compressed array m.left is only bounded by the zlib ratio, so
	// allocate as the bytes arrive rather than all n up front.
	data, err = readFullGrow(m.r, int(padded))
	if err != nil {
		return 0, nil, fmt.Errorf("truncated: the element announces %d bytes, %d follow: %w", n, len(data), noEOF(err))
	}
	m.left -= padded
	return word, data[:n], nil
}

// noEOF reports a clean EOF in the middle of a structure as truncation.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("truncated data: %w", io.ErrUnexpectedEOF)
	}
	return err
}
