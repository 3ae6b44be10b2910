package colour

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// FileLicence finds the licence a package states for one of its files.
type FileLicence interface {
	// Licence returns the licence stated for the file at rel (a slash path
	// relative to the package root) and the file that states it (relative
	// to the root too).
	Licence(root, rel string) (licence, statedIn string, err error)
}

// DEP5 reads a file's licence from a machine-readable Debian copyright file
// (DEP-5): the License of the last paragraph whose Files patterns match the
// file's upstream path. A file installed at Installed+X has the upstream
// path Upstream+X.
type DEP5 struct {
	Copyright           string // the copyright file, relative to the root
	Installed, Upstream string
}

// Licence implements FileLicence.
func (d DEP5) Licence(root, rel string) (string, string, error) {
	x, ok := strings.CutPrefix(rel, d.Installed)
	if !ok {
		return "", "", fmt.Errorf("colour: %s is not under %s, whose upstream paths %s maps", rel, d.Installed, d.Copyright)
	}
	paras, err := readDEP5(filepath.Join(root, filepath.FromSlash(d.Copyright)))
	if err != nil {
		return "", "", err
	}
	upstream := d.Upstream + x
	licence := ""
	for _, p := range paras {
		for _, pat := range p.files {
			if globMatch(pat, upstream) {
				licence = p.licence
			}
		}
	}
	if licence == "" {
		return "", "", fmt.Errorf("colour: %s: no Files paragraph matches %s (installed as %s)", d.Copyright, upstream, rel)
	}
	return licence, d.Copyright, nil
}

// dep5Para is the part of a DEP-5 paragraph the lookup needs.
type dep5Para struct {
	files   []string
	licence string
}

// readDEP5 reads the Files paragraphs of a DEP-5 copyright file: the
// patterns of Files (continuation lines included) and the first word run of
// License.
func readDEP5(path string) ([]dep5Para, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("colour: copyright file: %w", err)
	}
	if !bytes.HasPrefix(raw, []byte("Format:")) {
		return nil, fmt.Errorf("colour: %s is not a machine-readable (DEP-5) copyright file", path)
	}
	var paras []dep5Para
	var cur dep5Para
	field := ""
	flush := func() {
		if len(cur.files) > 0 {
			paras = append(paras, cur)
		}
		cur, field = dep5Para{}, ""
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if field == "Files" {
				cur.files = append(cur.files, strings.Fields(line)...)
			}
		default:
			name, value, _ := strings.Cut(line, ":")
			field = name
			switch name {
			case "Files":
				cur.files = append(cur.files, strings.Fields(value)...)
			case "License":
				cur.licence = strings.TrimSpace(value)
			}
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("colour: copyright file %s: %w", path, err)
	}
	return paras, nil
}

// globMatch matches a DEP-5 Files pattern: * matches any run of characters,
// slashes included, ? one character; the rest is literal.
func globMatch(pattern, name string) bool {
	var re strings.Builder
	re.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(name)
}

// KDEMetadata reads a wallpaper's licence from the KPlugin.License field of
// the metadata.json nearest above the file (a KDE wallpaper package holds
// metadata.json beside contents/images/).
type KDEMetadata struct{}

// Licence implements FileLicence.
func (KDEMetadata) Licence(root, rel string) (string, string, error) {
	for dir := path.Dir(rel); dir != "." && dir != "/"; dir = path.Dir(dir) {
		meta := path.Join(dir, "metadata.json")
		raw, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(meta)))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("colour: wallpaper metadata: %w", err)
		}
		var m struct{ KPlugin struct{ License string } }
		if err := json.Unmarshal(raw, &m); err != nil {
			return "", "", fmt.Errorf("colour: wallpaper metadata %s: %w", meta, err)
		}
		if m.KPlugin.License == "" {
			return "", "", fmt.Errorf("colour: wallpaper metadata %s states no KPlugin.License", meta)
		}
		return m.KPlugin.License, meta, nil
	}
	return "", "", fmt.Errorf("colour: no metadata.json above %s", rel)
}

// installedVersion reads the installed version of the source's package
// under root: from var/lib/dpkg/status for Debian (a package whose status
// is "install ok installed"), from package.json for npm.
func installedVersion(src Source, root string) (string, error) {
	switch src.Kind {
	case Debian:
		status := filepath.Join(root, "var", "lib", "dpkg", "status")
		raw, err := os.ReadFile(status)
		if err != nil {
			return "", fmt.Errorf("colour: dpkg status: %w", err)
		}
		for _, para := range strings.Split(string(raw), "\n\n") {
			f := map[string]string{}
			for _, line := range strings.Split(para, "\n") {
				if k, v, ok := strings.Cut(line, ": "); ok && line[0] != ' ' {
					f[k] = v
				}
			}
			if f["Package"] == src.Package && f["Status"] == "install ok installed" {
				return f["Version"], nil
			}
		}
		return "", fmt.Errorf("colour: Debian package %s is not installed (%s)", src.Package, status)
	case NPM:
		pj := filepath.Join(root, "package.json")
		raw, err := os.ReadFile(pj)
		if os.IsNotExist(err) {
			return "", fmt.Errorf("colour: npm package %s is not installed (no %s)", src.Package, pj)
		}
		if err != nil {
			return "", fmt.Errorf("colour: npm package %s: %w", src.Package, err)
		}
		var m struct{ Name, Version string }
		if err := json.Unmarshal(raw, &m); err != nil {
			return "", fmt.Errorf("colour: npm package %s: %s: %w", src.Package, pj, err)
		}
		if m.Name != src.Package {
			return "", fmt.Errorf("colour: %s names package %q, expected %q", pj, m.Name, src.Package)
		}
		return m.Version, nil
	}
	return "", fmt.Errorf("colour: source %s has unknown kind %q, expected %s or %s", src.Package, src.Kind, Debian, NPM)
}

// verifyPackage checks that the source's package is installed under root at
// the pinned version and that every licence check holds. It returns the
// files checked, relative to the root.
func verifyPackage(src Source, root string) ([]string, error) {
	v, err := installedVersion(src, root)
	if err != nil {
		return nil, err
	}
	if v != src.Version {
		return nil, fmt.Errorf("colour: %s package %s is installed at version %s, the sets are built from %s (scripts/setup-rgb.sh installs it)", src.Kind, src.Package, v, src.Version)
	}
	var files []string
	for _, c := range src.Checks {
		raw, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(c.File)))
		if err != nil {
			return nil, fmt.Errorf("colour: licence of %s: %w", src.Package, err)
		}
		if !strings.Contains(squeeze(string(raw)), squeeze(c.Text)) {
			return nil, fmt.Errorf("colour: licence of %s: %s does not state %q: the licence is not %s; check the package before using it", src.Package, c.File, c.Text, src.Licence)
		}
		files = append(files, c.File)
	}
	return files, nil
}

// squeeze replaces every run of white space by one space.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }
