package colour

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
)

// Manifest is the committed record of the sets (data/rgb-manifest.json):
// the rule, and per set its sources, counts and the SHA-256 of each output.
type Manifest struct {
	About string   `json:"about"`
	Rule  Rule     `json:"rule"`
	Sets  []Record `json:"sets"`
}

// Rule is the conversion rule in words, with its fixed parameters; the
// per-set parameters are in each Record.
type Rule struct {
	Size       int    `json:"size"`
	Format     string `json:"format"`
	Sources    string `json:"sources"`
	MaxPixels  int    `json:"max_pixels"`
	Background string `json:"background"`
	Object     string `json:"object"`
	Patches    string `json:"patches"`
	Filter     string `json:"filter"`
	Split      string `json:"split"`
	Duplicates string `json:"duplicates"`
}

// Record is one set as built.
type Record struct {
	Name           string         `json:"name"`
	Role           Role           `json:"role"`
	About          string         `json:"about"`
	Geometry       Geometry       `json:"geometry"`
	PatchesPerFile int            `json:"patches_per_file,omitempty"`
	TestFraction   float64        `json:"test_fraction"`
	Sources        []SourceRecord `json:"sources"`
	// Duplicates counts the images dropped as equal to one kept before.
	Duplicates int      `json:"duplicate_images_dropped"`
	Outputs    []Output `json:"outputs"`
}

// SourceRecord is one package's part in a set.
type SourceRecord struct {
	Kind    string `json:"kind"`
	Package string `json:"package"`
	Version string `json:"version"`
	Licence string `json:"licence"`
	// LicenceVerifiedIn lists the package's files the licence was checked
	// in, relative to its root.
	LicenceVerifiedIn []string   `json:"licence_verified_in"`
	Files             FileCounts `json:"files"`
	// UndecodableFiles names each file counted in Files.Undecodable, with
	// the decoder's error.
	UndecodableFiles []string `json:"undecodable_files,omitempty"`
}

// FileCounts says what became of a source's files.
type FileCounts struct {
	Found       int `json:"found"`
	Used        int `json:"used"`
	Links       int `json:"links_skipped"`
	Undecodable int `json:"undecodable"`
	TooLarge    int `json:"too_large"`
	TooSmall    int `json:"too_small"`
	Blank       int `json:"blank"`
}

// Output is one written file.
type Output struct {
	// File is the path relative to the data directory.
	File   string `json:"file"`
	Split  string `json:"split"`
	Images int    `json:"images"`
	SHA256 string `json:"sha256"`
}

// CurrentRule is the rule this package implements.
func CurrentRule() Rule {
	return Rule{
		Size:       Size,
		Format:     "NPY 1.0, uint8, shape [N, 32, 32, 3] (rows, columns, R G B), C order; DIR/rgb/<set>/{train,test}.npy",
		Sources:    "regular files under the source folder with its extension (or its listed files), in byte order of their path relative to the package root; symbolic links skipped",
		MaxPixels:  data.MaxImagePixels,
		Background: "alpha composited onto white (255, 255, 255), 8-bit sRGB",
		Object:     "bounding box of the pixels not white after compositing, padded with white to a centred square (offset floor((side - extent)/2)); no such pixel: blank, skipped",
		Patches:    "crop k of a file: side = lo + u0 mod (hi - lo + 1) with lo = max(32, s/8), hi = max(lo, s/2), s the shorter side (integer division); x = u1 mod (W - side + 1), y = u2 mod (H - side + 1); u0, u1, u2 the big-endian uint64s in bytes 0-8, 8-16, 16-24 of SHA-256(key + \"#\" + k); files shorter than 32 px skipped",
		Filter:     "golang.org/x/image/draw CatmullRom Scale (kernel widened by the reduction factor, so antialiased), 8-bit sRGB",
		Split:      "key = package + \"/\" + path relative to the package root; test when the big-endian uint64 of SHA-256(key)[0:8] < test_fraction * 2^64, else train; all images of a file in one split",
		Duplicates: "an image equal byte for byte to one kept before it (file order, then crop order, train and test together) is dropped",
	}
}

// ReadManifest reads a manifest file.
func ReadManifest(path string) (*Manifest, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("colour: manifest: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("colour: manifest %s: %w", path, err)
	}
	return &m, nil
}

// Write writes the manifest as indented JSON (<, > and & unescaped),
// atomically.
func (m *Manifest) Write(path string) error {
	err := atomicfile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	})
	if err != nil {
		return fmt.Errorf("colour: manifest: %w", err)
	}
	return nil
}

// Record returns the record of the named set, or nil.
func (m *Manifest) Record(name string) *Record {
	for i := range m.Sets {
		if m.Sets[i].Name == name {
			return &m.Sets[i]
		}
	}
	return nil
}

// Put replaces the record of rec's set, or adds it, keeping the sets in the
// order of Sets() (unknown names last, by name).
func (m *Manifest) Put(rec Record) {
	if r := m.Record(rec.Name); r != nil {
		*r = rec
	} else {
		m.Sets = append(m.Sets, rec)
	}
	order := map[string]int{}
	for i, s := range Sets() {
		order[s.Name] = i
	}
	rank := func(name string) int {
		if i, ok := order[name]; ok {
			return i
		}
		return len(order)
	}
	sort.SliceStable(m.Sets, func(i, j int) bool {
		ri, rj := rank(m.Sets[i].Name), rank(m.Sets[j].Name)
		return ri < rj || ri == rj && m.Sets[i].Name < m.Sets[j].Name
	})
}

// CheckOutputs reports, for a recorded set, the first output file under
// dataDir that is missing or whose SHA-256 differs from the record; nil
// when all match.
func (r Record) CheckOutputs(dataDir string) error {
	if len(r.Outputs) == 0 {
		return fmt.Errorf("colour: set %s: the manifest lists no outputs", r.Name)
	}
	for _, o := range r.Outputs {
		p := filepath.Join(dataDir, filepath.FromSlash(o.File))
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("colour: set %s: %w", r.Name, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("colour: set %s: %w", r.Name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != o.SHA256 {
			return fmt.Errorf("colour: set %s: %s has SHA-256 %s, the manifest says %s", r.Name, p, got, o.SHA256)
		}
	}
	return nil
}

// Diff lists the fields in which got differs from want, one line each
// ("outputs[0].sha256: want …, got …"), sorted by field path; none when
// equal.
func Diff(want, got any) []string {
	w, g := flatten(want), flatten(got)
	var keys []string
	for k := range w {
		keys = append(keys, k)
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		wv, wok := w[k]
		gv, gok := g[k]
		switch {
		case !wok:
			out = append(out, fmt.Sprintf("%s: not in the manifest, got %s", k, gv))
		case !gok:
			out = append(out, fmt.Sprintf("%s: want %s, got nothing", k, wv))
		case wv != gv:
			out = append(out, fmt.Sprintf("%s: want %s, got %s", k, wv, gv))
		}
	}
	return out
}

// flatten maps each leaf of v's JSON form to its JSON text, keyed by path
// ("sources[0].files.used").
func flatten(v any) map[string]string {
	raw, err := json.Marshal(v)
	if err != nil {
		return map[string]string{"": err.Error()}
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return map[string]string{"": err.Error()}
	}
	out := map[string]string{}
	var walk func(prefix string, t any)
	walk = func(prefix string, t any) {
		switch t := t.(type) {
		case map[string]any:
			for k, v := range t {
				if prefix != "" {
					k = prefix + "." + k
				}
				walk(k, v)
			}
		case []any:
			for i, v := range t {
				walk(fmt.Sprintf("%s[%d]", prefix, i), v)
			}
		default:
			leaf, _ := json.Marshal(t)
			out[prefix] = string(leaf)
		}
	}
	walk("", tree)
	return out
}
