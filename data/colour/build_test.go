package colour

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/internal/imagetest"
)

// fakeRoot is a Debian root holding package "art" 1.0 (dpkg status and a
// DEP-5 copyright file stating GPL-2+ for every file) with drawings under
// usr/share/art: n distinct ones (d00.png, …), a copy of d00 (dup.png), a
// corrupt file (bad.png), a blank one (blank.png), a symbolic link
// (link.png) and a text file.
func fakeRoot(t *testing.T, n int) string {
	t.Helper()
	root := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("var/lib/dpkg/status", "Package: other\nStatus: install ok installed\nVersion: 9\n\nPackage: art\nStatus: install ok installed\nVersion: 1.0\nDescription: test\n continued line\n")
	write("usr/share/doc/art/copyright", "Format: https://example.invalid/dep5\n\nFiles: *\nCopyright: someone\nLicense: GPL-2+\n text of the licence\n")
	art := filepath.Join(root, "usr/share/art")
	for i := range n {
		// A distinct colour and size per drawing, on transparency.
		c := color.NRGBA{uint8(20 * i), uint8(255 - 10*i), 100, 255}
		imagetest.Write(t, filepath.Join(art, fmt.Sprintf("d%02d.png", i)), filled(40+i, 30, color.NRGBA{}, image.Rect(5, 5, 20+i, 25), c))
	}
	raw, _ := os.ReadFile(filepath.Join(art, "d00.png"))
	write("usr/share/art/sub/dup.png", string(raw))
	write("usr/share/art/bad.png", "\x89PNG\r\n\x1a\ntruncated")
	imagetest.Write(t, filepath.Join(art, "blank.png"), filled(10, 10, color.NRGBA{}, image.Rectangle{}, color.NRGBA{}))
	write("usr/share/art/notes.txt", "not an image")
	if err := os.Symlink("d01.png", filepath.Join(art, "link.png")); err != nil {
		t.Fatal(err)
	}
	return root
}

// artSet is an object set of the fake package.
func artSet() Set {
	return Set{Name: "art", Role: "id", Geometry: Object, TestFraction: 0.3, Sources: []Source{{
		Kind: Debian, Package: "art", Version: "1.0", Licence: "GPL-2+",
		Checks:  []Check{{File: "usr/share/doc/art/copyright", Text: "Files: *\n\nCopyright:   someone"}},
		PerFile: DEP5{Copyright: "usr/share/doc/art/copyright", Installed: "usr/share/"}, PerFileLicence: "GPL-2+",
		Dir: "usr/share/art", Ext: ".png",
	}}}
}

func sha(t *testing.T, path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(raw)
	return hex.EncodeToString(s[:])
}

func TestBuild(t *testing.T) {
	const n = 12
	root, out := fakeRoot(t, n), t.TempDir()
	rec, err := Build(artSet(), Roots{Debian: root}, out, 3)
	if err != nil {
		t.Fatal(err)
	}
	src := rec.Sources[0]
	// n drawings + dup + bad + blank found; the link skipped; the text
	// file not listed.
	want := FileCounts{Found: n + 3, Used: n + 1, Links: 1, Undecodable: 1, Blank: 1}
	if src.Files != want {
		t.Errorf("file counts %+v, want %+v", src.Files, want)
	}
	if len(src.UndecodableFiles) != 1 || !strings.HasPrefix(src.UndecodableFiles[0], "usr/share/art/bad.png: ") {
		t.Errorf("undecodable files %q, want bad.png with its error", src.UndecodableFiles)
	}
	if rec.Duplicates != 1 {
		t.Errorf("%d duplicates dropped, want 1 (sub/dup.png)", rec.Duplicates)
	}
	if got := strings.Join(src.LicenceVerifiedIn, ","); got != "usr/share/doc/art/copyright" {
		t.Errorf("licence verified in %q", got)
	}

	// The files load as data does, 3×32×32, the images split by key, and
	// no image in both splits.
	seen := map[string]string{}
	total := 0
	for _, o := range rec.Outputs {
		path := filepath.Join(out, filepath.FromSlash(o.File))
		if o.SHA256 != sha(t, path) {
			t.Errorf("%s: recorded SHA-256 is not the file's", o.File)
		}
		ds, err := data.LoadNPY(path)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Shape.C != 3 || ds.H != Size || ds.W != Size || ds.Len() != o.Images {
			t.Errorf("%s: %v × %d images, want 3×32×32 × %d", o.File, ds.Shape, ds.Len(), o.Images)
		}
		for i := range ds.Len() {
			key := fmt.Sprint(ds.Image(i))
			if other, ok := seen[key]; ok {
				t.Errorf("an image is in %s and %s", other, o.Split)
			}
			seen[key] = o.Split
		}
		total += o.Images
	}
	if total != n {
		t.Errorf("%d images written, want %d", total, n)
	}
	var wantTest int
	for i := range n {
		if isTest(fmt.Sprintf("art/usr/share/art/d%02d.png", i), 0.3) {
			wantTest++
		}
	}
	if rec.Outputs[0].Split != "train" || rec.Outputs[1].Split != "test" || rec.Outputs[1].Images != wantTest {
		t.Errorf("outputs %+v, want train then test with %d test images", rec.Outputs, wantTest)
	}

	// Building again gives the same files.
	again, err := Build(artSet(), Roots{Debian: root}, t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(rec, again); len(d) > 0 {
		t.Errorf("a second build differs: %v", d)
	}
}

func TestBuildRefuses(t *testing.T) {
	cases := []struct {
		name   string
		change func(root string, s *Set)
		want   string
	}{
		{"other version", func(root string, s *Set) { s.Sources[0].Version = "2.0" }, "installed at version 1.0"},
		{"not installed", func(root string, s *Set) { s.Sources[0].Package = "gone" }, "not installed"},
		{"licence text", func(root string, s *Set) { s.Sources[0].Checks[0].Text = "License: MIT" }, "does not state"},
		{"per-file licence", func(root string, s *Set) {
			os.WriteFile(filepath.Join(root, "usr/share/doc/art/copyright"),
				[]byte("Format: x\n\nFiles: *\nCopyright: someone\nLicense: GPL-2+\n\nFiles: art/d03.png\nLicense: proprietary\n"), 0o644)
		}, `art/d03.png is under "proprietary"`},
		{"missing listed file", func(root string, s *Set) { s.Sources[0].Only = []string{"d00.png", "nope.png"} }, "no file usr/share/art/nope.png"},
		{"no files", func(root string, s *Set) { s.Sources[0].Ext = ".gif" }, "no .gif files"},
		{"bad fraction", func(root string, s *Set) { s.TestFraction = 1 }, "test fraction"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, out := fakeRoot(t, 4), t.TempDir()
			s := artSet()
			c.change(root, &s)
			_, err := Build(s, Roots{Debian: root}, out, 2)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if entries, _ := os.ReadDir(out); len(entries) > 0 {
				t.Errorf("a refused build wrote %v", entries)
			}
		})
	}
}

func TestBuildPatchesAndOnly(t *testing.T) {
	// Two npm-style photos, one of them listed: crops of the listed one
	// only, all in one split.
	npm := t.TempDir()
	pkg := filepath.Join(npm, "node_modules", "pics")
	os.MkdirAll(pkg, 0o755)
	os.WriteFile(filepath.Join(pkg, "package.json"), []byte(`{"name": "pics", "version": "3.1.4", "license": "MIT"}`), 0o644)
	os.WriteFile(filepath.Join(pkg, "LICENSE"), []byte("Photos: CC0-1.0\n"), 0o644)
	photo := image.NewNRGBA(image.Rect(0, 0, 300, 200))
	for y := range 200 {
		for x := range 300 {
			photo.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	imagetest.Write(t, filepath.Join(pkg, "img", "a.jpg"), photo)
	imagetest.Write(t, filepath.Join(pkg, "img", "b.jpg"), photo)
	s := Set{Name: "pics", Role: FarOOD, Geometry: Patches, PatchesPerFile: 25, TestFraction: 0.5, Sources: []Source{{
		Kind: NPM, Package: "pics", Version: "3.1.4", Licence: "CC0-1.0",
		Checks: []Check{{File: "LICENSE", Text: "Photos: CC0-1.0"}},
		Dir:    "img", Ext: ".JPG", Only: []string{"b.jpg"},
	}}}
	rec, err := Build(s, Roots{NPM: npm}, t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	split := map[bool]int{false: 0, true: 1}[isTest("pics/img/b.jpg", 0.5)]
	if rec.Sources[0].Files.Found != 1 || rec.Outputs[split].Images+rec.Duplicates != 25 || rec.Outputs[1-split].Images != 0 {
		t.Errorf("record %+v: want 25 crops of b.jpg in one split", rec)
	}
}
