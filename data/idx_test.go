package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore/denoise"
)

// idxBytes lays out an IDX file: magic, big-endian dimensions, values,
// gzip-compressed when gz.
func idxBytes(magic []byte, dims []uint32, values []byte, gz bool) []byte {
	var buf bytes.Buffer
	buf.Write(magic)
	for _, d := range dims {
		binary.Write(&buf, binary.BigEndian, d)
	}
	buf.Write(values)
	b := buf.Bytes()
	if gz {
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		w.Write(b)
		w.Close()
		b = z.Bytes()
	}
	return b
}

func writeIDX(t *testing.T, path string, magic []byte, dims []uint32, values []byte, gz bool) {
	t.Helper()
	if err := os.WriteFile(path, idxBytes(magic, dims, values, gz), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadIDX(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "train-images-idx3-ubyte.gz")
	lab := filepath.Join(dir, "train-labels-idx1-ubyte")
	writeIDX(t, img, []byte{0, 0, 8, 3}, []uint32{2, 2, 3}, []byte{0, 255, 127, 1, 2, 3, 9, 9, 9, 9, 9, 9}, true)
	writeIDX(t, lab, []byte{0, 0, 8, 1}, []uint32{2}, []byte{4, 7}, false)
	ds, err := LoadIDX("t", img, lab)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 2 || ds.H != 2 || ds.W != 3 || ds.C != 1 {
		t.Fatalf("shape %d×%d×%d×%d", ds.Len(), ds.C, ds.H, ds.W)
	}
	if ds.Pixels[0] != -1 || ds.Pixels[1] != 1 || ds.Labels[1] != 7 {
		t.Errorf("values %v labels %v", ds.Pixels[:3], ds.Labels)
	}
	if err := ds.Validate(); err != nil {
		t.Error(err)
	}
	f, err := ds.FilterClasses([]int{7})
	if err != nil || f.Len() != 1 || f.Labels[0] != 7 || f.Pixels[0] != ByteToUnit(9) {
		t.Errorf("filter: %v %v", f, err)
	}
	if _, err := ds.FilterClasses([]int{3}); err == nil {
		t.Error("filter to no images accepted")
	}
	// A path spec loads the file and finds its labels beside it.
	ds2, err := Load("", Spec{Name: img}, Test)
	if err != nil || ds2.Labels != nil && len(ds2.Labels) != 2 {
		t.Errorf("path spec: %v", err)
	}
}

func TestIDXErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		magic []byte
		dims  []uint32
		vals  []byte
		want  string
	}{
		{"badmagic", []byte{0, 0, 9, 3}, []uint32{1, 2, 2}, make([]byte, 4), "bad IDX magic"},
		{"truncated", []byte{0, 0, 8, 3}, []uint32{5, 28, 28}, make([]byte, 100), "truncated IDX data"},
		{"labels-as-images", []byte{0, 0, 8, 1}, []uint32{4}, make([]byte, 4), "must have 3 dimensions"},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		writeIDX(t, p, c.magic, c.dims, c.vals, c.name == "truncated")
		_, err := LoadIDX(c.name, p, "")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want %q naming the file", c.name, err, c.want)
		}
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte{0, 0}, 0o644)
	if _, err := LoadIDX("s", short, ""); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short file: %v", err)
	}
	// Labels that do not match the images.
	img := filepath.Join(dir, "img")
	lab := filepath.Join(dir, "lab")
	writeIDX(t, img, []byte{0, 0, 8, 3}, []uint32{2, 1, 1}, []byte{1, 2}, false)
	writeIDX(t, lab, []byte{0, 0, 8, 1}, []uint32{3}, []byte{1, 2, 3}, false)
	if _, err := LoadIDX("x", img, lab); err == nil || !strings.Contains(err.Error(), "labels") {
		t.Errorf("mismatched labels: %v", err)
	}
}

func TestRegistryErrors(t *testing.T) {
	if _, err := Load(t.TempDir(), Spec{Name: "cifar-11"}, Train); err == nil || !strings.Contains(err.Error(), "unknown dataset \"cifar-11\"") {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := Load(t.TempDir(), Spec{Name: "mnist"}, Train); err == nil || !strings.Contains(err.Error(), "make data") {
		t.Errorf("missing files: %v", err)
	}
	sp, err := ParseSpec("fashion-mnist:0-4")
	if err != nil || len(sp.Classes) != 5 || sp.String() != "fashion-mnist:0-4" {
		t.Errorf("spec %v %v", sp, err)
	}
	if _, err := ParseSpec("mnist:4-1"); err == nil {
		t.Error("bad class range accepted")
	}
}

func TestValidateNaN(t *testing.T) {
	ds := &Dataset{Name: "n", Shape: denoise.Shape{C: 1, H: 1, W: 2}, Pixels: []float32{0, float32(nan())}}
	if err := ds.Validate(); err == nil || !strings.Contains(err.Error(), "non-finite") {
		t.Errorf("NaN accepted: %v", err)
	}
}

func nan() float64 { var z float64; return z / z }

func TestRealDatasets(t *testing.T) {
	dir := filepath.Join("..", "data-cache")
	if d := os.Getenv(DataDirEnv); d != "" {
		dir = d
	}
	for _, name := range []string{"mnist", "fashion-mnist"} {
		ds, err := Load(dir, Spec{Name: name}, Test)
		if err != nil {
			t.Fatalf("%v (run `make data`)", err)
		}
		if ds.Len() != 10000 || ds.H != 28 || ds.W != 28 || len(ds.Labels) != 10000 {
			t.Errorf("%s test split: %d images %dx%d", name, ds.Len(), ds.H, ds.W)
		}
	}
}

func TestSynthetic(t *testing.T) {
	dir := filepath.Join("..", "data-cache")
	if d := os.Getenv(DataDirEnv); d != "" {
		dir = d
	}
	base, err := Load(dir, Spec{Name: "fashion-mnist"}, Test)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Load(dir, Spec{Name: "fashion-mnist@invert"}, Test)
	if err != nil {
		t.Fatal(err)
	}
	flip, err := Load(dir, Spec{Name: "fashion-mnist@vflip"}, Test)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Pixels[100] != -base.Pixels[100] {
		t.Error("invert did not negate")
	}
	// Row 0 of a flipped image is row 27 of the original.
	if flip.Pixels[3] != base.Pixels[27*28+3] || flip.Labels[0] != base.Labels[0] {
		t.Error("vflip did not flip rows")
	}
	for _, name := range []string{"uniform-noise", "constant"} {
		a, err := Load(dir, Spec{Name: name}, Test)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Load(dir, Spec{Name: name}, Test)
		if a.Len() != 10000 || a.Pixels[12345] != b.Pixels[12345] || a.Validate() != nil {
			t.Errorf("%s: not a reproducible valid set", name)
		}
	}
	if _, err := Load(dir, Spec{Name: "fashion-mnist@rotate"}, Test); err == nil {
		t.Error("unknown transform accepted")
	}
}
