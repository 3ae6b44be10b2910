package colour

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
)

func TestManifestRoundTripAndDiff(t *testing.T) {
	root, out := fakeRoot(t, 6), t.TempDir()
	rec, err := Build(artSet(), Roots{Debian: root}, out, 2)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{About: "a < b & c", Rule: CurrentRule()}
	m.Put(Record{Name: "zzz"})
	m.Put(Record{Name: "clipart"})
	m.Put(rec)
	m.Put(Record{Name: "clipart", Role: "id"})
	var names []string
	for _, s := range m.Sets {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "clipart,art,zzz" || m.Sets[0].Role != InDistribution {
		t.Errorf("sets %v (clipart role %q), want clipart (replaced), then unknown names by name", names, m.Sets[0].Role)
	}
	path := filepath.Join(t.TempDir(), "m.json")
	if err := m.Write(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), `"a < b & c"`) {
		t.Errorf("manifest escapes <, > or &:\n%s", raw)
	}
	back, err := ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(m, back); len(d) > 0 {
		t.Errorf("read back differs: %v", d)
	}

	if err := back.Record("art").CheckOutputs(out); err != nil {
		t.Errorf("fresh outputs: %v", err)
	}
	changed := *back.Record("art")
	changed.Outputs = slices.Clone(changed.Outputs)
	changed.Outputs[1].SHA256 = strings.Repeat("0", 64)
	changed.Sources = []SourceRecord{changed.Sources[0]}
	changed.Sources[0].Files.Used++
	if err := changed.CheckOutputs(out); err == nil || !strings.Contains(err.Error(), "test.npy has SHA-256") {
		t.Errorf("wrong checksum: %v", err)
	}
	d := Diff(changed, rec)
	if len(d) != 2 || !strings.HasPrefix(d[0], "outputs[1].sha256: want \"000") || !strings.HasPrefix(d[1], "sources[0].files.used: want ") {
		t.Errorf("diff %q, want the checksum and the count", d)
	}
	os.Remove(filepath.Join(out, "rgb", "art", "train.npy"))
	if err := rec.CheckOutputs(out); err == nil || !strings.Contains(err.Error(), "train.npy") {
		t.Errorf("missing output: %v", err)
	}
	os.WriteFile(path, []byte(`{"sets": [], "extra": 1}`), 0o644)
	if _, err := ReadManifest(path); err == nil {
		t.Error("a manifest with an unknown field was read")
	}
}

func TestNPYLoads(t *testing.T) {
	img := make([]byte, ImageBytes)
	for i := range img {
		img[i] = byte(i)
	}
	path := filepath.Join(t.TempDir(), "x.npy")
	f, _ := os.Create(path)
	if err := writeNPY(f, [][]byte{img, img}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	raw, _ := os.ReadFile(path)
	if hdr := len(raw) - 2*ImageBytes; hdr%64 != 0 {
		t.Errorf("header is %d bytes, want a multiple of 64", hdr)
	}
	ds, err := data.LoadNPY(path)
	if err != nil {
		t.Fatal(err)
	}
	// Byte (y, x, c) of the file is value (c, y, x) of the dataset.
	y, x, c := 3, 4, 2
	if ds.Len() != 2 || ds.Shape != (denoise.Shape{C: 3, H: Size, W: Size}) || ds.Image(1)[c*Size*Size+y*Size+x] != data.ByteToUnit(img[3*(y*Size+x)+c]) {
		t.Errorf("loaded %d images of %v, or the layout is not channels last", ds.Len(), ds.Shape)
	}
	if err := writeNPY(f, [][]byte{img[:10]}); err == nil {
		t.Error("a short image was written")
	}
}

// TestCatalogue checks the sets against package data and the committed
// manifest, without the packages.
func TestCatalogue(t *testing.T) {
	m, err := ReadManifest(filepath.Join("..", "rgb-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(m.Rule, CurrentRule()); len(d) > 0 {
		t.Errorf("the manifest's rule is not the code's (run scripts/setup-rgb.sh --update-manifest): %v", d)
	}
	if len(m.Sets) != len(Sets()) {
		t.Errorf("the manifest has %d sets, the code %d", len(m.Sets), len(Sets()))
	}
	for _, s := range Sets() {
		if err := s.validate(); err != nil {
			t.Error(err)
		}
		if !slices.Contains(data.Names(), s.Name) || !(data.Spec{Name: s.Name}).HasSplits() {
			t.Errorf("set %s is not a named dataset with splits in package data", s.Name)
		}
		rec := m.Record(s.Name)
		if rec == nil {
			t.Errorf("set %s is not in the manifest", s.Name)
			continue
		}
		if rec.Role != s.Role || rec.About != s.About || rec.Geometry != s.Geometry || rec.PatchesPerFile != s.PatchesPerFile || rec.TestFraction != s.TestFraction || len(rec.Sources) != len(s.Sources) {
			t.Errorf("set %s: the manifest's parameters are not the code's", s.Name)
			continue
		}
		for i, src := range s.Sources {
			r := rec.Sources[i]
			if r.Kind != src.Kind || r.Package != src.Package || r.Version != src.Version || r.Licence != src.Licence {
				t.Errorf("set %s source %d: manifest %s %s %s (%s), code %s %s %s (%s)", s.Name, i, r.Kind, r.Package, r.Version, r.Licence, src.Kind, src.Package, src.Version, src.Licence)
			}
		}
		for _, o := range rec.Outputs {
			if o.File != "rgb/"+s.Name+"/"+o.Split+".npy" || len(o.SHA256) != 64 {
				t.Errorf("set %s: output %+v", s.Name, o)
			}
		}
	}
	// The ID set has at least 5,000 training images.
	if id := m.Record("clipart"); id == nil || id.Outputs[0].Split != "train" || id.Outputs[0].Images < 5000 {
		t.Errorf("clipart record %+v: want ≥ 5000 training images", id)
	}
}
