package data

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"testing"

	"github.com/eigenscore/eigenscore/denoise"
)

// The fuzz targets feed arbitrary bytes to the readers of untrusted files
// (the byte-level cores of LoadIDX, LoadNPYRange, LoadSVHN, LoadCIFAR10/100
// and DecodeImage). Whatever the input, a reader must return an error or a
// dataset that checkLoaded accepts, never panic, hang or allocate more than
// the input can hold. Seeds are valid files made by the tests' own writers,
// plus cut and corrupted variants; testdata/fuzz/FuzzXXX holds a few more.
//
// Run one at a time, e.g. go test ./data/ -run '^$' -fuzz '^FuzzMAT$'
// -fuzztime 20s. FuzzCIFAR's inputs are whole 3073-byte records, which Go's
// minimizer is slow on: add -fuzzminimizetime 1s or it spends its time there.

// checkLoaded checks the invariants of a dataset a reader accepted: a
// positive shape of at most maxImageValues values, a whole number of images,
// one label per image when there are labels, and every value finite and in
// [-1, 1] (byte sources map into it; float sources are clamped into it).
func checkLoaded(t *testing.T, d *Dataset) {
	t.Helper()
	if d == nil {
		t.Fatal("nil dataset without an error")
	}
	if d.C <= 0 || d.H <= 0 || d.W <= 0 || d.Dim() > maxImageValues {
		t.Fatalf("shape %v: not positive or over %d values", d.Shape, maxImageValues)
	}
	if len(d.Pixels) != d.Len()*d.Dim() {
		t.Fatalf("%d values for %d images of %v", len(d.Pixels), d.Len(), d.Shape)
	}
	if d.Labels != nil && len(d.Labels) != d.Len() {
		t.Fatalf("%d labels for %d images", len(d.Labels), d.Len())
	}
	checkUnit(t, d.Pixels)
	if err := d.Validate(); err != nil {
		t.Fatalf("accepted dataset does not validate: %v", err)
	}
}

// checkUnit checks that every value is finite and in [-1, 1].
func checkUnit(t *testing.T, px []float32) {
	t.Helper()
	for i, v := range px {
		if math.IsNaN(float64(v)) || v < -1 || v > 1 {
			t.Fatalf("value %d is %v, outside [-1, 1]", i, v)
		}
	}
}

func FuzzIDX(f *testing.F) {
	img := []byte{0, 0, 8, 3}
	lab := []byte{0, 0, 8, 1}
	pix := []byte{0, 255, 127, 1, 2, 3, 9, 9, 9, 9, 9, 9}
	goodImg := idxBytes(img, []uint32{2, 2, 3}, pix, false)
	goodLab := idxBytes(lab, []uint32{2}, []byte{4, 7}, false)
	gzImg := idxBytes(img, []uint32{2, 2, 3}, pix, true)
	f.Add(goodImg, goodLab)
	f.Add(gzImg, idxBytes(lab, []uint32{2}, []byte{4, 7}, true))
	f.Add(goodImg[:len(goodImg)-1], goodLab)               // data cut short
	f.Add(gzImg[:len(gzImg)-5], goodLab)                   // gzip cut short
	f.Add(goodImg[:9], goodLab[:6])                        // header cut short
	f.Add(goodImg, idxBytes(lab, []uint32{3}, nil, false)) // label count
	f.Add(idxBytes(img, []uint32{1 << 15, 1 << 8, 1 << 8}, pix, false), []byte{})
	f.Add(idxBytes(img, []uint32{0, 1<<32 - 1, 1<<32 - 1}, nil, false), []byte{})
	f.Add(idxBytes(img, []uint32{1, 0, 5}, nil, false), []byte{})
	f.Add(idxBytes([]byte{0, 0, 8, 4}, []uint32{1, 1, 1, 1}, []byte{1}, false), goodLab)

	f.Fuzz(func(t *testing.T, images, labels []byte) {
		dims, pix, err := readIDX("fuzz-images", bytes.NewReader(images))
		if err != nil {
			if dims != nil || pix != nil {
				t.Fatal("readIDX returned values with its error")
			}
			return
		}
		total := 1
		for _, d := range dims {
			total *= d
		}
		if len(dims) < 1 || len(dims) > 4 || total != len(pix) || total > maxIDXValues {
			t.Fatalf("dims %v with %d values", dims, len(pix))
		}
		ds, err := idxImages("fuzz", "fuzz-images", dims, pix)
		if err != nil {
			return
		}
		checkLoaded(t, ds)
		if ds.Len() != dims[0] || ds.H != dims[1] || ds.W != dims[2] || ds.C != 1 {
			t.Fatalf("dims %v read as %d images of %v", dims, ds.Len(), ds.Shape)
		}
		ldims, lab, err := readIDX("fuzz-labels", bytes.NewReader(labels))
		if err != nil {
			return
		}
		if err := idxLabels(ds, "fuzz-images", "fuzz-labels", ldims, lab); err != nil {
			if ds.Labels != nil {
				t.Fatal("idxLabels set labels with its error")
			}
			return
		}
		checkLoaded(t, ds)
		for i, l := range ds.Labels {
			if l != int(lab[i]) {
				t.Fatalf("label %d = %d, want %d", i, l, lab[i])
			}
		}
	})
}

func FuzzNPY(f *testing.F) {
	u8 := npyBytes(npyDict("|u1", 2, 2, 2), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(u8, uint8(NPYAuto))
	f.Add(npyBytes(npyDict("|u1", 1, 2, 2, 3), make([]byte, 12)), uint8(NPYAuto))
	f32 := npyBytes(npyDict("<f4", 2, 1, 2, 2), f32Bytes([]float32{-1, -0.5, 0, 0.25, 0.5, 1, 0.75, -0.25}))
	f.Add(f32, uint8(NPYSigned))
	f.Add(f32, uint8(NPYUnit))
	f.Add(npyBytes(npyDict("<f8", 2, 2, 2, 1), f64Bytes([]float64{0, 0.25, 0.5, 1, 0.75, 0.125, 1, 0})), uint8(NPYAuto))
	f.Add(npyBytes(npyDict("<f4", 1, 1, 2), f32Bytes([]float32{0, float32(math.NaN())})), uint8(NPYAuto))
	f.Add(u8[:len(u8)-1], uint8(NPYAuto))
	f.Add(u8[:20], uint8(NPYAuto))
	f.Add(npyBytes(npyDict("|u1", 1<<30, 1<<30, 1<<30), nil), uint8(NPYAuto))
	f.Add(npyBytes(npyDict("|u1", 0, 3, 1<<31-1, 1<<31-1), nil), uint8(NPYAuto))
	f.Add(npyBytes(`{"shape": (3L, 4L, 1,),'fortran_order':False,  'descr' : "|u1"}`, make([]byte, 12)), uint8(NPYAuto))
	// Format 2.0: a 4-byte header length.
	v2 := append([]byte("\x93NUMPY\x02\x00"), binary.LittleEndian.AppendUint32(nil, uint32(len(u8)-10))...)
	f.Add(append(v2, u8[10:]...), uint8(NPYAuto))

	f.Fuzz(func(t *testing.T, b []byte, rule uint8) {
		r := NPYRange(rule % 3)
		d, err := readNPY("fuzz.npy", bytes.NewReader(b), int64(len(b)), r)
		if err != nil {
			if d != nil {
				t.Fatal("readNPY returned a dataset with its error")
			}
			return
		}
		checkLoaded(t, d)
		if d.Labels != nil || (d.C != 1 && d.C != 3) {
			t.Fatalf("labels %v, %d channels", d.Labels, d.C)
		}
	})
}

// matFuzzFile builds an SVHN MAT-file of X (h×w×3×n uint8) and y (n labels
// stored as uint8 in a double array), compressing the parts flagged.
func matFuzzFile(bo binary.ByteOrder, h, w int, labels []byte, compressX, compressY bool) []byte {
	x := matMatrix(bo, "X", mxUINT8_CLASS, []int{h, w, 3, len(labels)}, miUINT8, svhnX(h, w, len(labels)))
	y := matMatrix(bo, "y", mxDOUBLE_CLASS, []int{len(labels), 1}, miUINT8, labels)
	if compressX {
		x = matCompress(bo, x)
	}
	if compressY {
		y = matCompress(bo, y)
	}
	return bytes.Join([][]byte{matFileHeader(bo), x, y}, nil)
}

func FuzzMAT(f *testing.F) {
	le, be := binary.LittleEndian, binary.BigEndian
	good := matFuzzFile(le, 2, 3, []byte{10, 3}, false, true)
	f.Add(good)
	f.Add(matFuzzFile(be, 2, 2, []byte{1}, true, false))
	f.Add(matFuzzFile(le, 1, 1, []byte{1, 2, 3}, true, true))
	f.Add(bytes.Join([][]byte{matFileHeader(be),
		matMatrix(be, "y", mxDOUBLE_CLASS, []int{2, 1}, miDOUBLE, matDoubles(be, 1, 10)),
		matMatrix(be, "X", mxDOUBLE_CLASS, []int{1, 1, 1, 2}, miDOUBLE, matDoubles(be, 0.25, 1)),
	}, nil))
	f.Add(good[:len(good)-10])
	f.Add(good[:100])
	// Zero images of 2³¹×2³¹ pixels: no data, but an overflowing shape.
	f.Add(bytes.Join([][]byte{matFileHeader(le),
		matMatrix(le, "X", mxUINT8_CLASS, []int{1<<31 - 1, 1<<31 - 1, 3, 0}, miUINT8, nil),
		matMatrix(le, "y", mxDOUBLE_CLASS, []int{0, 1}, miUINT8, nil),
	}, nil))
	corrupt := append([]byte(nil), good...)
	for i := len(corrupt) - 20; i < len(corrupt); i++ {
		corrupt[i] ^= 0x55
	}
	f.Add(corrupt)

	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := readSVHN("fuzz.mat", bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if d != nil {
				t.Fatal("readSVHN returned a dataset with its error")
			}
			return
		}
		checkLoaded(t, d)
		if d.Labels == nil || (d.C != 1 && d.C != 3) {
			t.Fatalf("labels %v, %d channels", d.Labels, d.C)
		}
		for i, l := range d.Labels {
			if l < 0 || l > 9 {
				t.Fatalf("label %d = %d, want 0-9", i, l)
			}
		}
	})
}

func FuzzCIFAR(f *testing.F) {
	two := cifarRecords(f, [][]byte{{3}, {9}})
	f.Add(two, false)
	f.Add(cifarRecords(f, [][]byte{{19, 99}, {4, 42}}), true)
	f.Add(two[:3000], false)
	f.Add(two, true) // a CIFAR-10 file read as CIFAR-100
	f.Add(cifarRecords(f, [][]byte{{10}}), false)
	f.Add([]byte{}, false)

	f.Fuzz(func(t *testing.T, b []byte, hundred bool) {
		l := cifar10Layout
		if hundred {
			l = cifar100FineLayout
		}
		d := l.newDataset(0)
		if err := l.appendBatch(d, "fuzz.bin", b); err != nil {
			return
		}
		checkLoaded(t, d)
		if d.Len() != len(b)/l.record() || d.Len() == 0 {
			t.Fatalf("%d bytes read as %d images", len(b), d.Len())
		}
		for i, lab := range d.Labels {
			if lab != int(b[i*l.record()+l.keep]) {
				t.Fatalf("label %d = %d, want byte %d", i, lab, b[i*l.record()+l.keep])
			}
		}
	})
}

// fuzzMaxPixels is the pixel limit FuzzDecodeImage decodes under: the same
// check as DecodeImage's, lower so that inputs announcing large images do
// not spend each run allocating and clearing 64 MiB.
const fuzzMaxPixels = 256 * 256

func FuzzDecodeImage(f *testing.F) {
	enc := func(img image.Image, jpg bool) []byte {
		var b bytes.Buffer
		var err error
		if jpg {
			err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 90})
		} else {
			err = png.Encode(&b, img)
		}
		if err != nil {
			f.Fatal(err)
		}
		return b.Bytes()
	}
	rgba := image.NewNRGBA(image.Rect(0, 0, 5, 3))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(37 * i)
	}
	gray16 := image.NewGray16(image.Rect(0, 0, 3, 4))
	for i := range gray16.Pix {
		gray16.Pix[i] = uint8(91 * i)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White, color.NRGBA{255, 0, 0, 128}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 3)
	}
	p := enc(rgba, false)
	j := enc(uniform(16, 8, color.RGBA{30, 140, 220, 255}), true)
	f.Add(p, uint8(3), uint8(4))
	f.Add(enc(gray16, false), uint8(1), uint8(2))
	f.Add(enc(pal, false), uint8(3), uint8(7))
	f.Add(j, uint8(1), uint8(4))
	f.Add(j, uint8(3), uint8(16))
	f.Add(p[:len(p)-10], uint8(3), uint8(4))
	f.Add(j[:len(j)/2], uint8(3), uint8(4))
	f.Add(setPNGSize(f, p, 10000, 10000), uint8(3), uint8(4))
	f.Add(setJPEGSize(f, j, 10000, 10000), uint8(3), uint8(4))
	f.Add([]byte("GIF89a garbage"), uint8(1), uint8(4))

	f.Fuzz(func(t *testing.T, b []byte, c, side uint8) {
		shape := denoise.Shape{C: 1 + 2*int(c&1), H: 1 + int(side%16), W: 1 + int(side/16)}
		px, err := decodeImage(bytes.NewReader(b), shape, fuzzMaxPixels)
		if err != nil {
			if px != nil {
				t.Fatal("decodeImage returned values with its error")
			}
			return
		}
		if len(px) != shape.Dim() {
			t.Fatalf("%d values for shape %v", len(px), shape)
		}
		checkUnit(t, px)
		// The other channel count decodes too, and its luma agrees.
		other := shape
		other.C = 4 - shape.C
		px2, err := decodeImage(bytes.NewReader(b), other, fuzzMaxPixels)
		if err != nil {
			t.Fatalf("decodes as %v but not as %v: %v", shape, other, err)
		}
		gray, rgb := px, px2
		if shape.C == 3 {
			gray, rgb = px2, px
		}
		plane := shape.H * shape.W
		for i := range plane {
			r, g, bl := unitToByte(rgb[i]), unitToByte(rgb[plane+i]), unitToByte(rgb[2*plane+i])
			if want := ByteToUnit(color.GrayModel.Convert(color.RGBA{r, g, bl, 255}).(color.Gray).Y); gray[i] != want {
				t.Fatalf("pixel %d: gray %v, luma of RGB %v %v %v is %v", i, gray[i], r, g, bl, want)
			}
		}
	})
}

// unitToByte inverts ByteToUnit.
func unitToByte(v float32) uint8 { return uint8(math.Round(float64(v+1) * 127.5)) }
