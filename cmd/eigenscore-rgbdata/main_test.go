package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/data/colour"
	"github.com/eigenscore/eigenscore/denoise"
)

// run runs the command with args and returns its stdout and error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newCommand(&out, &errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// fakeInstall lays out every source of the sets as if installed: a Debian
// root (dpkg status, the checked files, per-file licence statements) and an
// npm prefix, each source with small distinct images (its listed files, or
// three under its folder). It returns the two roots.
func fakeInstall(t *testing.T) (debian, npm string) {
	t.Helper()
	debian, npm = t.TempDir(), t.TempDir()
	files := map[string]string{} // path on disk → content
	var status strings.Builder
	seed := 0
	for _, s := range colour.Sets() {
		for _, src := range s.Sources {
			root := debian
			if src.Kind == colour.NPM {
				root = filepath.Join(npm, "node_modules", src.Package)
				files[filepath.Join(root, "package.json")] = fmt.Sprintf(`{"name": %q, "version": %q}`, src.Package, src.Version)
			} else {
				fmt.Fprintf(&status, "Package: %s\nStatus: install ok installed\nVersion: %s\n\n", src.Package, src.Version)
			}
			for _, c := range src.Checks {
				files[filepath.Join(root, c.File)] += c.Text + "\n\n"
			}
			rels := src.Only
			if len(rels) == 0 {
				rels = []string{"a" + src.Ext, "sub/b" + src.Ext, "c" + src.Ext}
			}
			for _, r := range rels {
				rel := path.Join(src.Dir, r)
				seed++
				files[filepath.Join(root, rel)] = encode(t, rel, seed)
				switch pf := src.PerFile.(type) {
				case colour.KDEMetadata:
					files[filepath.Join(root, path.Dir(rel), "metadata.json")] = fmt.Sprintf(`{"KPlugin": {"License": %q}}`, src.PerFileLicence)
				case colour.DEP5:
					p := filepath.Join(root, pf.Copyright)
					if !strings.HasPrefix(files[p], "Format:") {
						files[p] = "Format: fake\n\n" + files[p]
					}
					files[p] += fmt.Sprintf("Files: *\nLicense: %s\n\n", src.PerFileLicence)
				}
			}
		}
	}
	files[filepath.Join(debian, "var/lib/dpkg/status")] = status.String()
	for p, content := range files {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return debian, npm
}

// encode is a 96×64 image, distinct per seed, as PNG or JPEG by name.
func encode(t *testing.T, name string, seed int) string {
	img := image.NewRGBA(image.Rect(0, 0, 96, 64))
	for y := range 64 {
		for x := range 96 {
			img.SetRGBA(x, y, color.RGBA{uint8(x * seed), uint8(y + 20*seed), uint8(x + y), 255})
		}
	}
	var b bytes.Buffer
	var err error
	if strings.HasSuffix(name, ".png") {
		err = png.Encode(&b, img)
	} else {
		err = jpeg.Encode(&b, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestListPackages(t *testing.T) {
	out, err := run(t, "--list-packages", "debian")
	want := "openclipart-png=1:0.18+dfsg-19\nplasma-workspace-wallpapers=4:5.27.5-2\nmate-backgrounds=1.26.0-1\nextremetuxracer-data=0.8.2-1\n"
	if err != nil || out != want {
		t.Errorf("debian: %q, %v; want %q", out, err, want)
	}
	out, err = run(t, "--list-packages", "npm", "--sets", "emoji,clipart")
	if err != nil || out != "emoji-datasource-twitter@16.0.0\n" {
		t.Errorf("npm of emoji and clipart: %q, %v", out, err)
	}
	if _, err := run(t, "--list-packages", "pip"); err == nil {
		t.Error("--list-packages pip accepted")
	}
	if _, err := run(t, "--sets", "cifar"); err == nil || !strings.Contains(err.Error(), `unknown set "cifar"`) {
		t.Errorf("unknown set: %v", err)
	}
}

func TestBuildRecordVerify(t *testing.T) {
	debian, npm := fakeInstall(t)
	dir := t.TempDir()
	manifest := filepath.Join(t.TempDir(), "m.json")
	args := []string{"--data-dir", dir, "--manifest", manifest, "--debian-root", debian, "--npm-root", npm, "--workers", "2"}

	out, err := run(t, append(args, "--update-manifest")...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := colour.ReadManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sets) != len(colour.Sets()) || strings.Count(out, "recorded") != len(colour.Sets()) {
		t.Fatalf("manifest has %d sets; output:\n%s", len(m.Sets), out)
	}
	// The sets load by name at the colour shape.
	ds, err := data.LoadFor(dir, data.Spec{Name: "photos"}, data.Train, denoise.Shape{C: 3, H: 32, W: 32})
	if err != nil || ds.Len() == 0 {
		t.Fatalf("photos: %v", err)
	}

	// Again: everything is up to date, and --check agrees.
	if out, err := run(t, args...); err != nil || strings.Count(out, "up to date") != len(colour.Sets()) {
		t.Errorf("second run: %v\n%s", err, out)
	}
	if out, err := run(t, "--check", "--data-dir", dir, "--manifest", manifest); err != nil || strings.Count(out, ": ok") != len(colour.Sets()) {
		t.Errorf("--check: %v\n%s", err, out)
	}

	// A damaged file is rebuilt to the same bytes and verified.
	os.WriteFile(filepath.Join(dir, "rgb", "clipart", "test.npy"), []byte("damaged"), 0o644)
	if out, err := run(t, append(args, "--sets", "clipart")...); err != nil || !strings.Contains(out, "clipart: built") || !strings.Contains(out, "verified") {
		t.Errorf("rebuild: %v\n%s", err, out)
	}

	// A build that differs from the manifest fails and leaves no files.
	m.Record("textures").Outputs[0].SHA256 = strings.Repeat("0", 64)
	if err := m.Write(manifest); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, append(args, "--sets", "textures")...)
	if err == nil || !strings.Contains(err.Error(), "outputs[0].sha256") || !strings.Contains(err.Error(), "removed") {
		t.Errorf("mismatch: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rgb", "textures", "train.npy")); !os.IsNotExist(err) {
		t.Errorf("a set that differs from the manifest was left: %v", err)
	}
	_, err = run(t, "--check", "--data-dir", dir, "--manifest", manifest)
	if err == nil || !strings.Contains(err.Error(), "textures") || !strings.Contains(err.Error(), "setup-rgb.sh") {
		t.Errorf("--check after the mismatch: %v", err)
	}

	// npm sets need the prefix.
	os.RemoveAll(filepath.Join(dir, "rgb", "emoji"))
	if _, err := run(t, "--data-dir", dir, "--manifest", manifest, "--debian-root", debian, "--sets", "emoji"); err == nil || !strings.Contains(err.Error(), "--npm-root") {
		t.Errorf("npm set without --npm-root: %v", err)
	}
}
