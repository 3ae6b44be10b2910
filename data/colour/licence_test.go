package colour

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDEP5(t *testing.T) {
	root := t.TempDir()
	doc := filepath.Join(root, "usr/share/doc/p")
	os.MkdirAll(doc, 0o755)
	os.WriteFile(filepath.Join(doc, "copyright"), []byte(`Format: https://example.invalid/dep5
Upstream-Name: p

Files: *
Copyright: 2020 A
License: GPL-2+

Files: data/courses/extras/*
  data/special?.png
Copyright: 2021 B
License: CC0
 Body of the licence.
 .
 More body.

Files: debian/*
License: GPL-2+

License: GPL-2+
 Text of GPL-2+.
`), 0o644)
	d := DEP5{Copyright: "usr/share/doc/p/copyright", Installed: "usr/share/games/p/", Upstream: "data/"}
	for rel, want := range map[string]string{
		"usr/share/games/p/terrains/rock.png":        "GPL-2+",
		"usr/share/games/p/courses/extras/a/b.png":   "CC0", // later paragraph wins, * spans folders
		"usr/share/games/p/special1.png":             "CC0", // continuation line, ? is one character
		"usr/share/games/p/special12.png":            "GPL-2+",
		"usr/share/games/p/courses/extrasX/file.png": "GPL-2+",
	} {
		got, in, err := d.Licence(root, rel)
		if err != nil || got != want || in != "usr/share/doc/p/copyright" {
			t.Errorf("Licence(%s) = %q in %q, %v; want %q", rel, got, in, err, want)
		}
	}
	if _, _, err := d.Licence(root, "usr/share/other/x.png"); err == nil || !strings.Contains(err.Error(), "not under usr/share/games/p/") {
		t.Errorf("file outside the mapped folder: %v", err)
	}
	os.WriteFile(filepath.Join(doc, "copyright"), []byte("This package was debianized by someone.\n"), 0o644)
	if _, _, err := d.Licence(root, "usr/share/games/p/x.png"); err == nil || !strings.Contains(err.Error(), "not a machine-readable") {
		t.Errorf("free-form copyright file: %v", err)
	}
}

func TestKDEMetadata(t *testing.T) {
	root := t.TempDir()
	wp := filepath.Join(root, "usr/share/wallpapers/Lake")
	os.MkdirAll(filepath.Join(wp, "contents/images"), 0o755)
	os.WriteFile(filepath.Join(wp, "metadata.json"), []byte(`{"KPlugin": {"Authors": [{"Name": "A"}], "License": "LGPLv3", "Id": "Lake"}}`), 0o644)
	lic, in, err := KDEMetadata{}.Licence(root, "usr/share/wallpapers/Lake/contents/images/2560x1600.jpg")
	if err != nil || lic != "LGPLv3" || in != "usr/share/wallpapers/Lake/metadata.json" {
		t.Errorf("got %q in %q, %v", lic, in, err)
	}
	os.WriteFile(filepath.Join(wp, "metadata.json"), []byte(`{"KPlugin": {"Id": "Lake"}}`), 0o644)
	if _, _, err := (KDEMetadata{}).Licence(root, "usr/share/wallpapers/Lake/contents/images/a.jpg"); err == nil || !strings.Contains(err.Error(), "no KPlugin.License") {
		t.Errorf("metadata without a licence: %v", err)
	}
	if _, _, err := (KDEMetadata{}).Licence(root, "usr/share/other/a.jpg"); err == nil {
		t.Error("a file with no metadata.json above it has a licence")
	}
}
