package data

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore/denoise"
)

// npyBytes lays out a .npy file as numpy writes it (format 1.0, header padded
// to 64 bytes), with a raw header dict and data.
func npyBytes(dict string, data []byte) []byte {
	hdr := dict + strings.Repeat(" ", (64-(10+len(dict)+1)%64)%64) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	b.Write(data)
	return b.Bytes()
}

func npyDict(descr string, shape ...int) string {
	s := make([]string, len(shape))
	for i, d := range shape {
		s[i] = fmt.Sprint(d)
	}
	tuple := "(" + strings.Join(s, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	return fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s), }", descr, tuple)
}

func f32Bytes(vs []float32) []byte {
	out := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out
}

func f64Bytes(vs []float64) []byte {
	out := make([]byte, 8*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(v))
	}
	return out
}

func checkShape(t *testing.T, d *Dataset, n, c, h, w int) {
	t.Helper()
	if d.Len() != n || d.C != c || d.H != h || d.W != w {
		t.Fatalf("got %d images of %dx%dx%d, want %d of %dx%dx%d", d.Len(), d.C, d.H, d.W, n, c, h, w)
	}
}

func TestLoadNPYUint8Layouts(t *testing.T) {
	dir := t.TempDir()
	// 2 images, 3 channels, 2 rows, 4 columns; value(i,c,y,x) distinct.
	const n, c, h, w = 2, 3, 2, 4
	val := func(i, ch, y, x int) byte { return byte(100*i + 30*ch + 5*y + x) }
	var nchw, nhwc []byte
	for i := range n {
		for ch := range c {
			for y := range h {
				for x := range w {
					nchw = append(nchw, val(i, ch, y, x))
				}
			}
		}
		for y := range h {
			for x := range w {
				for ch := range c {
					nhwc = append(nhwc, val(i, ch, y, x))
				}
			}
		}
	}
	for _, tc := range []struct {
		name, descr string
		shape       []int
		data        []byte
	}{
		{"nchw.npy", "|u1", []int{n, c, h, w}, nchw},
		{"nhwc.npy", "|u1", []int{n, h, w, c}, nhwc},
		{"nhwc-lt.npy", "<u1", []int{n, h, w, c}, nhwc},
	} {
		p := writeTemp(t, dir, tc.name, npyBytes(npyDict(tc.descr, tc.shape...), tc.data))
		d, err := LoadNPY(p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		checkShape(t, d, n, c, h, w)
		for i := range n {
			for ch := range c {
				for y := range h {
					for x := range w {
						if got, want := d.Image(i)[(ch*h+y)*w+x], ByteToUnit(val(i, ch, y, x)); got != want {
							t.Fatalf("%s: image %d c%d y%d x%d = %v, want %v", tc.name, i, ch, y, x, got, want)
						}
					}
				}
			}
		}
		if d.Labels != nil || d.Name != strings.TrimSuffix(tc.name, ".npy") {
			t.Errorf("%s: labels %v name %q", tc.name, d.Labels, d.Name)
		}
	}

	// [N,H,W] is one channel.
	p := writeTemp(t, dir, "gray.npy", npyBytes(npyDict("|u1", 3, 2, 2), []byte{0, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}))
	d, err := LoadNPY(p)
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, d, 3, 1, 2, 2)
	if d.Pixels[0] != -1 || d.Pixels[1] != 1 || d.Pixels[11] != ByteToUnit(10) {
		t.Errorf("pixels %v", d.Pixels)
	}
}

func TestLoadNPYFloatRanges(t *testing.T) {
	dir := t.TempDir()
	signed := []float32{-1, -0.5, 0, 0.25, 0.5, 1, 0.75, -0.25} // [2,1,2,2]
	unit := []float64{0, 0.25, 0.5, 1, 0.75, 0.125, 1, 0}       // [2,2,2,1]: channels last, C=1
	wantUnit := []float32{-1, -0.5, 0, 1, 0.5, -0.75, 1, -1}    // 2v-1, same order (C=1)
	wrong := []float32{0, 2, 3, 255, 4, 5, 6, 7}                // neither range
	bright := []float32{0, 0.5, 1, 0.25, 0.5, 0.5, 0.5, 0.5}    // ≥ 0: ambiguous
	pSigned := writeTemp(t, dir, "signed.npy", npyBytes(npyDict("<f4", 2, 1, 2, 2), f32Bytes(signed)))
	pUnit := writeTemp(t, dir, "unit.npy", npyBytes(npyDict("<f8", 2, 2, 2, 1), f64Bytes(unit)))
	pWrong := writeTemp(t, dir, "wrong.npy", npyBytes(npyDict("<f4", 2, 2, 2), f32Bytes(wrong)))
	pBright := writeTemp(t, dir, "bright.npy", npyBytes(npyDict("<f4", 2, 2, 2), f32Bytes(bright)))

	d, err := LoadNPY(pSigned)
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, d, 2, 1, 2, 2)
	for i, v := range signed {
		if d.Pixels[i] != v {
			t.Fatalf("signed: pixels %v, want %v", d.Pixels, signed)
		}
	}

	d, err = LoadNPY(pUnit)
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, d, 2, 1, 2, 2)
	for i, v := range wantUnit {
		if d.Pixels[i] != v {
			t.Fatalf("unit: pixels %v, want %v", d.Pixels, wantUnit)
		}
	}

	wantErrMention(t, loaderErr(LoadNPY(pWrong)), "wrong.npy", "[0, 255]")
	wantErrMention(t, loaderErr(LoadNPYRange(pSigned, NPYUnit)), "signed.npy", "expected [0, 1]")

	// All ≥ 0: auto reads [0,1]; NPYSigned keeps the values.
	d, err = LoadNPY(pBright)
	if err != nil {
		t.Fatal(err)
	}
	if d.Pixels[2] != 1 || d.Pixels[0] != -1 {
		t.Errorf("auto bright: pixels %v, want 2v-1", d.Pixels)
	}
	d, err = LoadNPYRange(pBright, NPYSigned)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range bright {
		if d.Pixels[i] != v {
			t.Fatalf("signed bright: pixels %v, want %v", d.Pixels, bright)
		}
	}

	nan := writeTemp(t, dir, "nan.npy", npyBytes(npyDict("<f4", 1, 1, 2), f32Bytes([]float32{0, float32(math.NaN())})))
	wantErrMention(t, loaderErr(LoadNPY(nan)), "nan.npy", "NaN")
}

func TestSaveNPYRoundTrip(t *testing.T) {
	d := &Dataset{Name: "x", Shape: denoise.Shape{C: 3, H: 2, W: 3}, Labels: []int{4, 5}}
	for i := range 2 * 3 * 2 * 3 {
		d.Pixels = append(d.Pixels, float32(i)/17.5-1)
	}
	p := filepath.Join(t.TempDir(), "round.npy")
	if err := SaveNPY(p, d); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	hlen := int(binary.LittleEndian.Uint16(raw[8:10]))
	if (10+hlen)%64 != 0 || raw[10+hlen-1] != '\n' {
		t.Errorf("header of %d bytes is not padded to 64 with a final newline", hlen)
	}
	if !strings.HasPrefix(string(raw[10:]), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 2, 3), }") {
		t.Errorf("header %q", raw[10:10+hlen])
	}
	back, err := LoadNPY(p)
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, back, 2, 3, 2, 3)
	for i, v := range d.Pixels {
		if back.Pixels[i] != v {
			t.Fatalf("pixel %d = %v, want %v", i, back.Pixels[i], v)
		}
	}
	if err := SaveNPY(p, &Dataset{Shape: denoise.Shape{C: 1, H: 2, W: 2}, Pixels: make([]float32, 3)}); err == nil {
		t.Error("SaveNPY of a dataset with a partial image: no error")
	}
}

func TestParseNPYHeader(t *testing.T) {
	descr, fortran, shape, err := parseNPYHeader(`{"shape": (3L, 4L,),'fortran_order':True,  'descr' : "<f8"}`)
	if err != nil || descr != "<f8" || !fortran || fmt.Sprint(shape) != "[3 4]" {
		t.Fatalf("got %q %v %v %v", descr, fortran, shape, err)
	}
	for _, bad := range []string{
		"", "{", "{'descr': '<f4'}", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x)}",
		"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}",
		"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}",
		"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
		"{'descr: '<f4'",
	} {
		if _, _, _, err := parseNPYHeader(bad); err == nil {
			t.Errorf("parseNPYHeader(%q): no error", bad)
		}
	}
}

func TestLoadNPYErrors(t *testing.T) {
	dir := t.TempDir()
	good := npyBytes(npyDict("|u1", 2, 2, 2), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	for _, tc := range []struct {
		name string
		data []byte
		want []string
	}{
		{"magic.npy", append([]byte("\x93NUMPX"), good[6:]...), []string{"bad magic"}},
		{"tiny.npy", good[:5], []string{"too short"}},
		{"version.npy", append([]byte("\x93NUMPY\x07\x00"), good[8:]...), []string{"version 7.0"}},
		{"header.npy", good[:30], []string{"truncated or corrupt"}},
		{"data.npy", good[:len(good)-1], []string{"truncated data", "needs 8 bytes, 7 follow"}},
		{"extra.npy", append(append([]byte(nil), good...), 0), []string{"9 bytes follow", "needs only 8"}},
		{"dtype.npy", npyBytes(npyDict("<i8", 1, 1, 1), make([]byte, 8)), []string{"unsupported dtype <i8"}},
		{"bigend.npy", npyBytes(npyDict(">f4", 1, 1, 1), make([]byte, 4)), []string{"big-endian"}},
		{"shape2.npy", npyBytes(npyDict("|u1", 2, 4), make([]byte, 8)), []string{"bad shape [2 4]"}},
		{"shape1.npy", npyBytes(npyDict("|u1", 8), make([]byte, 8)), []string{"bad shape [8]"}},
		{"chan.npy", npyBytes(npyDict("|u1", 1, 2, 2, 2), make([]byte, 8)), []string{"bad shape [1 2 2 2]"}},
		{"empty.npy", npyBytes(npyDict("|u1", 1, 0, 2), nil), []string{"empty"}},
		{"huge.npy", npyBytes(npyDict("|u1", 1<<31-1, 3, 64, 64), nil), []string{"truncated data"}},
		// Zero images, but each one would be 2⁶⁰ values: Dim would
		// overflow for C=3, and one image is too large to allocate anyway.
		{"hugeimg.npy", npyBytes(npyDict("|u1", 1<<30, 1<<30, 1<<30), nil), []string{"bad shape", "too large"}},
		{"hugeempty.npy", npyBytes(npyDict("|u1", 0, 3, 1<<31-1, 1<<31-1), nil), []string{"bad shape", "too large"}},
		{"fortran.npy", npyBytes("{'descr': '|u1', 'fortran_order': True, 'shape': (1, 2, 2), }", make([]byte, 4)), []string{"Fortran order"}},
		{"dict.npy", npyBytes("{'descr': '|u1', 'shape': (1, 2, 2), }", make([]byte, 4)), []string{"bad header", "fortran_order"}},
	} {
		p := writeTemp(t, dir, tc.name, tc.data)
		wantErrMention(t, loaderErr(LoadNPY(p)), append(tc.want, tc.name)...)
	}
	wantErrMention(t, loaderErr(LoadNPY(filepath.Join(dir, "missing.npy"))), "missing.npy")
}
