package data

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/eigenscore/eigenscore/denoise"
)

// NumPy .npy files (format versions 1.0, 2.0 and 3.0): the magic "\x93NUMPY",
// a major and a minor version byte, the header length (uint16 little-endian in
// 1.0, uint32 in 2.0 and 3.0), then the header, a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (10, 3, 32, 32), }
// padded with spaces and a newline, then the raw values.
//
// This is written here rather than taken from a module because the one Go NPY
// module available to the project (npyio) panics on some malformed headers,
// cannot write an N-dimensional shape from a flat slice, and reads values one
// by one; the format needs only the small reader and writer below.

var npyMagic = []byte("\x93NUMPY")

// maxNPYHeader bounds the header a file may announce (real ones are < 1 KiB).
const maxNPYHeader = 1 << 20

// NPYRange says how LoadNPYRange scales float arrays to [-1, 1].
type NPYRange int

const (
	// NPYAuto keeps values that lie in [-1, 1] with at least one negative,
	// and maps values that lie in [0, 1] (none negative) by 2v-1. Anything
	// else is an error. Note the one ambiguity: [-1, 1] data whose values are
	// all ≥ 0 (only bright images) is taken as [0, 1]; use NPYSigned then.
	NPYAuto NPYRange = iota
	// NPYSigned keeps values, which must lie in [-1, 1].
	NPYSigned
	// NPYUnit maps values, which must lie in [0, 1], by 2v-1.
	NPYUnit
)

func (r NPYRange) String() string {
	switch r {
	case NPYAuto:
		return "auto"
	case NPYSigned:
		return "[-1,1]"
	case NPYUnit:
		return "[0,1]"
	}
	return fmt.Sprintf("NPYRange(%d)", int(r))
}

// rangeSlack is how far float values may stray past a range's ends (float
// rounding in whatever wrote them); such values are clamped.
const rangeSlack = 1e-4

// floatScale returns the map to [-1, 1] for float values spanning [lo, hi]
// read under rule r. No values (lo > hi) map as identity.
func floatScale(lo, hi float64, r NPYRange) (func(float64) float32, error) {
	signed := func(v float64) float32 { return float32(max(-1, min(1, v))) }
	unit := func(v float64) float32 { return float32(max(-1, min(1, 2*v-1))) }
	if lo > hi {
		return signed, nil
	}
	inSigned := lo >= -1-rangeSlack && hi <= 1+rangeSlack
	inUnit := lo >= -rangeSlack && hi <= 1+rangeSlack
	switch r {
	case NPYAuto:
		if inUnit {
			return unit, nil
		}
		if inSigned {
			return signed, nil
		}
		return nil, fmt.Errorf("float values span [%g, %g], expected [-1, 1] or [0, 1] (byte data should be uint8)", lo, hi)
	case NPYSigned:
		if inSigned {
			return signed, nil
		}
		return nil, fmt.Errorf("float values span [%g, %g], expected [-1, 1]", lo, hi)
	case NPYUnit:
		if inUnit {
			return unit, nil
		}
		return nil, fmt.Errorf("float values span [%g, %g], expected [0, 1]", lo, hi)
	}
	return nil, fmt.Errorf("unknown NPY range rule %d", int(r))
}

// LoadNPY reads a .npy image array with the NPYAuto rule for floats; see
// LoadNPYRange.
func LoadNPY(path string) (*Dataset, error) { return LoadNPYRange(path, NPYAuto) }

// LoadNPYRange reads a little-endian, C-order .npy array of images shaped
// [N,H,W] (one channel), [N,H,W,C] (channels last) or [N,C,H,W] with C 1 or
// 3; when both the second and the last dimension are 1 or 3 the array is
// taken as [N,C,H,W], the layout SaveNPY writes. uint8 values map by
// ByteToUnit; float32 and float64 values map to [-1, 1] by rule r. The
// dataset is named after the file and has no labels.
func LoadNPYRange(path string, r NPYRange) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: NPY file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("data: NPY file %s: %w", path, err)
	}
	d, err := readNPY(path, f, fi.Size(), r)
	if err != nil {
		return nil, err
	}
	d.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return d, nil
}

// readNPY reads a .npy array of total bytes from f as LoadNPYRange
// does, into an unnamed dataset; src names the input in errors.
func readNPY(src string, f io.Reader, total int64, r NPYRange) (*Dataset, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("data: NPY file %s: "+format, append([]any{src}, args...)...)
	}
	br := bufio.NewReader(f)
	hdr, err := readNPYHeader(br, total)
	if err != nil {
		return nil, fail("%w", err)
	}
	lay, err := npyLayoutOf(hdr)
	if err != nil {
		return nil, fail("%w", err)
	}
	// The value count is capped at avail+1 (more cannot fit) so that a
	// corrupt shape cannot overflow it.
	avail := total - hdr.dataOffset
	count, need := int64(1), float64(lay.size)
	for _, d := range hdr.shape {
		need *= float64(d)
		if d != 0 && count > avail/int64(d) {
			count = avail + 1
		} else {
			count *= int64(d)
		}
	}
	if want := count * int64(lay.size); want != avail {
		if want > avail {
			return nil, fail("truncated data: shape %v of %s needs %.0f bytes, %d follow the header", hdr.shape, lay.descr, need, avail)
		}
		return nil, fail("%d bytes follow the header, shape %v of %s needs only %d", avail, hdr.shape, lay.descr, want)
	}
	raw := make([]byte, avail)
	if _, err := io.ReadFull(br, raw); err != nil {
		return nil, fail("truncated data (%v)", noEOF(err))
	}
	val, err := npyValues(raw, lay, int(count), r)
	if err != nil {
		return nil, fail("%w", err)
	}
	return lay.dataset(int(count), val), nil
}

// npyHeader is what an NPY file's preamble and header dictionary say.
type npyHeader struct {
	descr      string
	shape      []int
	dataOffset int64 // bytes before the array data
}

// readNPYHeader reads the magic, the version, the header length and the
// header dictionary, checking the length against the file's total size.
func readNPYHeader(br *bufio.Reader, total int64) (npyHeader, error) {
	var pre [10]byte
	if _, err := io.ReadFull(br, pre[:8]); err != nil {
		return npyHeader{}, fmt.Errorf("too short for the NPY magic and version (%v)", err)
	}
	if !bytes.Equal(pre[:6], npyMagic) {
		return npyHeader{}, fmt.Errorf("bad magic %q, expected \"\\x93NUMPY\"", pre[:6])
	}
	var hlen, off int64
	switch major := pre[6]; major {
	case 1:
		if _, err := io.ReadFull(br, pre[8:10]); err != nil {
			return npyHeader{}, fmt.Errorf("truncated header length (%v)", noEOF(err))
		}
		hlen, off = int64(binary.LittleEndian.Uint16(pre[8:10])), 10
	case 2, 3:
		var l [4]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return npyHeader{}, fmt.Errorf("truncated header length (%v)", noEOF(err))
		}
		hlen, off = int64(binary.LittleEndian.Uint32(l[:])), 12
	default:
		return npyHeader{}, fmt.Errorf("format version %d.%d, expected 1.0, 2.0 or 3.0", major, pre[7])
	}
	if hlen > maxNPYHeader || off+hlen > total {
		return npyHeader{}, fmt.Errorf("truncated or corrupt: header announces %d bytes, the file has %d in all", hlen, total)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return npyHeader{}, fmt.Errorf("truncated header (%v)", noEOF(err))
	}
	descr, fortran, shape, err := parseNPYHeader(string(hdr))
	if err != nil {
		return npyHeader{}, fmt.Errorf("bad header %q: %v", strings.TrimSpace(string(hdr)), err)
	}
	if fortran {
		return npyHeader{}, fmt.Errorf("array is in Fortran order, expected C order (save with np.ascontiguousarray)")
	}
	return npyHeader{descr: descr, shape: shape, dataOffset: off + hlen}, nil
}

// npyLayout is how an accepted array maps to images: its dtype (descr
// normalised, size in bytes) and its image dimensions.
type npyLayout struct {
	descr      string
	size       int
	n, c, h, w int
	nchw       bool // false: channels last, [N,H,W,C]
}

// npyLayoutOf accepts uint8, little-endian float32 and float64 arrays of
// shape [N,H,W], [N,C,H,W] or [N,H,W,C] (C 1 or 3; [N,C,H,W] when both fit).
func npyLayoutOf(hdr npyHeader) (npyLayout, error) {
	var l npyLayout
	switch hdr.descr {
	case "|u1", "<u1", ">u1", "=u1", "u1":
		l.descr, l.size = "u1", 1
	case "<f4":
		l.descr, l.size = hdr.descr, 4
	case "<f8":
		l.descr, l.size = hdr.descr, 8
	case ">f4", ">f8":
		return l, fmt.Errorf("big-endian dtype %s, expected little-endian (<f4, <f8)", hdr.descr)
	default:
		return l, fmt.Errorf("unsupported dtype %s, expected uint8 (|u1), float32 (<f4) or float64 (<f8)", hdr.descr)
	}
	shape := hdr.shape
	one3 := func(v int) bool { return v == 1 || v == 3 }
	l.nchw = true
	switch {
	case len(shape) == 3:
		l.n, l.c, l.h, l.w = shape[0], 1, shape[1], shape[2]
	case len(shape) == 4 && one3(shape[1]):
		l.n, l.c, l.h, l.w = shape[0], shape[1], shape[2], shape[3]
	case len(shape) == 4 && one3(shape[3]):
		l.n, l.h, l.w, l.c = shape[0], shape[1], shape[2], shape[3]
		l.nchw = false
	default:
		return l, fmt.Errorf("bad shape %v, expected [N,H,W], [N,H,W,C] or [N,C,H,W] with C 1 or 3", shape)
	}
	if l.h == 0 || l.w == 0 {
		return l, fmt.Errorf("bad shape %v: images are empty", shape)
	}
	if err := checkImageShape(denoise.Shape{C: l.c, H: l.h, W: l.w}); err != nil {
		return l, fmt.Errorf("bad shape %v: %v", shape, err)
	}
	return l, nil
}

// npyValues returns value i of raw on the pixel scale: uint8 by
// ByteToUnit, floats by the range rule r after checking that all count of
// them are finite.
func npyValues(raw []byte, l npyLayout, count int, r NPYRange) (func(i int) float32, error) {
	if l.descr == "u1" {
		return func(i int) float32 { return ByteToUnit(raw[i]) }, nil
	}
	get := func(i int) float64 { return float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))) }
	if l.size == 8 {
		get = func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])) }
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range count {
		v := get(i)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("value %d is %v", i, v)
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	scale, err := floatScale(lo, hi, r)
	if err != nil {
		return nil, err
	}
	return func(i int) float32 { return scale(get(i)) }, nil
}

// dataset lays count values out as [N,C,H,W] pixels.
func (l npyLayout) dataset(count int, val func(i int) float32) *Dataset {
	d := &Dataset{Shape: denoise.Shape{C: l.c, H: l.h, W: l.w}, Pixels: make([]float32, count)}
	if l.nchw {
		for i := range d.Pixels {
			d.Pixels[i] = val(i)
		}
		return d
	}
	// Channels last: value (img, y, x, ch) sits at ((img*H+y)*W+x)*C+ch.
	c, h, w := l.c, l.h, l.w
	i := 0
	for img := range l.n {
		for ch := range c {
			for y := range h {
				for x := range w {
					d.Pixels[i] = val(((img*h+y)*w+x)*c + ch)
					i++
				}
			}
		}
	}
	return d
}

// SaveNPY writes the dataset's pixels as a float32 [N,C,H,W] .npy file
// (format 1.0, C order), which LoadNPY reads back; labels are not written.
// With NPYAuto a dataset whose pixels are all ≥ 0 reads back as [0,1] data:
// load such a file with LoadNPYRange(path, NPYSigned).
func SaveNPY(path string, d *Dataset) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("data: SaveNPY %s: %w", path, err)
	}
	hdr := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d, %d), }", d.Len(), d.C, d.H, d.W)
	// Pad with spaces so that the data starts on a 64-byte boundary; the
	// header ends with a newline.
	total := 10 + len(hdr) + 1
	hdr += strings.Repeat(" ", (64-total%64)%64) + "\n"

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("data: SaveNPY: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	bw.Write(npyMagic)
	bw.Write([]byte{1, 0})
	bw.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(hdr))))
	bw.WriteString(hdr)
	var buf [4]byte
	for _, v := range d.Pixels {
		binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
		bw.Write(buf[:])
	}
	err = bw.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("data: SaveNPY %s: %w", path, err)
	}
	return nil
}

// parseNPYHeader reads the header dict: descr (a dtype string), fortran_order
// and shape. Keys may come in any order; all three are required.
func parseNPYHeader(s string) (descr string, fortran bool, shape []int, err error) {
	p := &pyParser{s: s}
	seen := map[string]bool{}
	if !p.eat('{') {
		return "", false, nil, fmt.Errorf("expected '{' at offset %d", p.i)
	}
	for !p.eat('}') {
		key, err := p.str()
		if err != nil {
			return "", false, nil, err
		}
		if !p.eat(':') {
			return "", false, nil, fmt.Errorf("expected ':' after '%s'", key)
		}
		switch key {
		case "descr":
			if p.peek() == '[' || p.peek() == '{' {
				return "", false, nil, fmt.Errorf("structured dtype: unsupported dtype, expected uint8, float32 or float64")
			}
			descr, err = p.str()
		case "fortran_order":
			fortran, err = p.boolean()
		case "shape":
			shape, err = p.tuple()
		default:
			return "", false, nil, fmt.Errorf("unexpected key '%s'", key)
		}
		if err != nil {
			return "", false, nil, fmt.Errorf("'%s': %w", key, err)
		}
		seen[key] = true
		if !p.eat(',') && p.peek() != '}' {
			return "", false, nil, fmt.Errorf("expected ',' or '}' at offset %d", p.i)
		}
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return "", false, nil, fmt.Errorf("missing key '%s'", k)
		}
	}
	return descr, fortran, shape, nil
}

// pyParser reads the few Python literals an NPY header uses.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) skip() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *pyParser) peek() byte {
	p.skip()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyParser) eat(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

func (p *pyParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", fmt.Errorf("expected a string at offset %d", p.i)
	}
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", fmt.Errorf("unterminated string at offset %d", p.i)
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, nil
}

func (p *pyParser) boolean() (bool, error) {
	p.skip()
	for _, w := range []string{"True", "False"} {
		if strings.HasPrefix(p.s[p.i:], w) {
			p.i += len(w)
			return w == "True", nil
		}
	}
	return false, fmt.Errorf("expected True or False at offset %d", p.i)
}

func (p *pyParser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, fmt.Errorf("expected '(' at offset %d", p.i)
	}
	shape := []int{}
	for !p.eat(')') {
		p.skip()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		v, err := strconv.Atoi(p.s[p.i:j])
		if err != nil || v > math.MaxInt32 {
			return nil, fmt.Errorf("expected a dimension at offset %d", p.i)
		}
		p.i = j
		if p.i < len(p.s) && p.s[p.i] == 'L' { // Python 2 long
			p.i++
		}
		shape = append(shape, v)
		if !p.eat(',') && p.peek() != ')' {
			return nil, fmt.Errorf("expected ',' or ')' at offset %d", p.i)
		}
	}
	return shape, nil
}
