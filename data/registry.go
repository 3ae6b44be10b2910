package data

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/eigenscore/eigenscore/denoise"
)

// Split names a dataset's training or test part.
type Split string

const (
	Train Split = "train"
	Test  Split = "test"
)

// DataDirEnv is the environment variable that names the data directory when
// no flag does.
const DataDirEnv = "EIGENSCORE_DATA"

// idxSets are the named datasets stored as IDX files under DataDir/<name>/.
var idxSets = map[string]bool{"mnist": true, "fashion-mnist": true}

// rgbSets are the named colour sets that scripts/setup-rgb.sh builds
// (package data/colour) as 3×32×32 uint8 NPY files under
// DataDir/rgb/<name>/{train,test}.npy.
var rgbSets = map[string]bool{"clipart": true, "emoji": true, "emoji-noto": true, "photos": true, "textures": true}

// isNamed reports whether name is a named dataset (IDX or colour).
func isNamed(name string) bool { return idxSets[name] || rgbSets[name] }

// Names lists the dataset names Load accepts.
func Names() []string {
	names := make([]string, 0, len(idxSets)+len(rgbSets))
	for n := range idxSets {
		names = append(names, n)
	}
	for n := range rgbSets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DataDir resolves the data directory: the flag value, else $EIGENSCORE_DATA,
// else ./data-cache.
func DataDir(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv(DataDirEnv); env != "" {
		return env
	}
	return "data-cache"
}

// Spec is a parsed dataset reference: a name (or IDX image path) and an
// optional class filter, written "fashion-mnist", "fashion-mnist:0-4" or
// "/path/to/images-idx3-ubyte.gz:1,3".
type Spec struct {
	Name    string
	Classes []int
}

// ParseSpec parses "name[:classes]" where classes is "a-b" or "a,b,c".
func ParseSpec(s string) (Spec, error) {
	name, cls, found := strings.Cut(s, ":")
	if name == "" {
		return Spec{}, fmt.Errorf("data: empty dataset name in %q", s)
	}
	sp := Spec{Name: name}
	if !found {
		return sp, nil
	}
	classes, err := ParseClasses(cls)
	if err != nil {
		return Spec{}, fmt.Errorf("data: dataset %q: %w", s, err)
	}
	sp.Classes = classes
	return sp, nil
}

// ParseClasses parses "0-4" or "1,3,7".
func ParseClasses(s string) ([]int, error) {
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a > b || a < 0 {
			return nil, fmt.Errorf("bad class range %q, want like 0-4", s)
		}
		var out []int
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
		return out, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 0 {
			return nil, fmt.Errorf("bad class list %q, want like 1,3,7", s)
		}
		out = append(out, c)
	}
	return out, nil
}

func (s Spec) String() string {
	if len(s.Classes) == 0 {
		return s.Name
	}
	return s.Name + ":" + FormatClasses(s.Classes)
}

// Load reads a split of a dataset named by spec from dir. Named IDX datasets
// live in dir/<name>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; the
// named colour sets (3×32×32, no labels) in dir/rgb/<name>/{train,test}.npy.
// A spec whose name is a path to an IDX image file loads that file (and a
// labels file beside it when its name follows the MNIST convention), whatever
// the split; paths ending in .npy, .mat (SVHN) or .bin (CIFAR-10) load with
// those readers. Generated sets are 1×28×28 here (LoadFor makes them at a
// model's shape).
func Load(dir string, spec Spec, split Split) (*Dataset, error) {
	var ds *Dataset
	var err error
	switch {
	case isSynthetic(spec.Name):
		if len(spec.Classes) > 0 && !strings.Contains(spec.Name, "@") {
			return nil, fmt.Errorf("data: generated set %q has no classes", spec.Name)
		}
		return loadSynthetic(dir, spec, split, grayShape)
	case rgbSets[spec.Name]:
		if split != Train && split != Test {
			return nil, fmt.Errorf("data: unknown split %q, want train or test", split)
		}
		path := filepath.Join(dir, "rgb", spec.Name, string(split)+".npy")
		if !fileExists(path) {
			return nil, fmt.Errorf("data: dataset %s: no %s (run scripts/setup-rgb.sh or set --data-dir / %s)", spec.Name, path, DataDirEnv)
		}
		if ds, err = LoadNPY(path); err != nil {
			return nil, err
		}
	case idxSets[spec.Name]:
		prefix := map[Split]string{Train: "train", Test: "t10k"}[split]
		if prefix == "" {
			return nil, fmt.Errorf("data: unknown split %q, want train or test", split)
		}
		sub := filepath.Join(dir, spec.Name)
		img, err := findFile(sub, prefix+"-images-idx3-ubyte")
		if err != nil {
			return nil, fmt.Errorf("data: dataset %s: %w (run `make data` or set --data-dir / %s)", spec.Name, err, DataDirEnv)
		}
		lab, _ := findFile(sub, prefix+"-labels-idx1-ubyte")
		ds, err = LoadIDX(spec.Name, img, lab)
		if err != nil {
			return nil, err
		}
	case fileExists(spec.Name):
		switch strings.ToLower(filepath.Ext(spec.Name)) {
		case ".npy":
			ds, err = LoadNPY(spec.Name)
		case ".mat":
			ds, err = LoadSVHN(spec.Name)
		case ".bin":
			ds, err = LoadCIFAR10(spec.Name)
		default:
			lab := strings.Replace(spec.Name, "images-idx3", "labels-idx1", 1)
			if lab == spec.Name || !fileExists(lab) {
				lab = ""
			}
			ds, err = LoadIDX(spec.Name, spec.Name, lab)
		}
		if err != nil {
			return nil, err
		}
	case isDir(spec.Name):
		return nil, fmt.Errorf("data: %s is a folder of images, which loads at a model's image shape (LoadFor; every command that has a model does this)", spec.Name)
	default:
		return nil, spec.Check()
	}
	ds.Name = spec.Name
	return ds.FilterClasses(spec.Classes)
}

// Check reports an error naming what is wanted when the spec names no
// dataset this package can load: not a named or synthetic set, nor an
// existing file or folder. It reads nothing; Load and LoadFor can still
// fail on the contents.
func (s Spec) Check() error {
	if isNamed(s.Name) || isSynthetic(s.Name) || fileExists(s.Name) || isDir(s.Name) {
		return nil
	}
	return fmt.Errorf("data: unknown dataset %q: want one of %s, uniform-noise, constant, NAME@invert, NAME@vflip, a path to an IDX, .npy, CIFAR-10 .bin or SVHN .mat file, or a folder of PNG/JPEG images", s.Name, strings.Join(Names(), ", "))
}

// HasSplits reports whether the spec names a dataset with separate train and
// test splits (the named IDX and colour sets and the synthetic sets). A
// path has one set of images for both, so callers that need disjoint fit and
// test images must split it themselves.
func (s Spec) HasSplits() bool { return isNamed(s.Name) || isSynthetic(s.Name) }

// LoadFor loads a split of a dataset for a model that takes images of the
// given shape. A spec naming a directory loads its PNG and JPEG images (and
// those of its subfolders, or, with classes in the spec, its class
// subfolders) as that shape by LoadImageFolder's rule: a centred square
// crop, Catmull-Rom resize to H×W, alpha onto black, luma for one channel.
// Generated sets (uniform-noise, constant) are made at the shape. Every
// other source loads as Load does and must have the shape already.
func LoadFor(dir string, spec Spec, split Split, shape denoise.Shape) (*Dataset, error) {
	if isGenerated(spec.Name) {
		if len(spec.Classes) > 0 {
			return nil, fmt.Errorf("data: generated set %q has no classes", spec.Name)
		}
		return loadSynthetic(dir, spec, split, shape)
	}
	if isDir(spec.Name) {
		if shape.H != shape.W || (shape.C != 1 && shape.C != 3) {
			return nil, fmt.Errorf("data: image folder %s: the model takes %v images; folders load as 1×S×S or 3×S×S", spec.Name, shape)
		}
		opts := FolderOptions{Gray: shape.C == 1, Classes: len(spec.Classes) > 0, Recursive: len(spec.Classes) == 0}
		ds, err := LoadImageFolder(spec.Name, shape.H, opts)
		if err != nil {
			return nil, err
		}
		ds.Name = spec.Name
		return ds.FilterClasses(spec.Classes)
	}
	ds, err := Load(dir, spec, split)
	if err != nil {
		return nil, err
	}
	if ds.Shape != shape {
		return nil, fmt.Errorf("data: images of %s are %v, the model takes %v", spec, ds.Shape, shape)
	}
	return ds, nil
}

func findFile(dir, base string) (string, error) {
	for _, p := range []string{base + ".gz", base} {
		if fileExists(filepath.Join(dir, p)) {
			return filepath.Join(dir, p), nil
		}
	}
	return "", fmt.Errorf("no %s[.gz] in %s", base, dir)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
