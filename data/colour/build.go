package colour

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/eigenscore/eigenscore/internal/atomicfile"
)

// Roots are where the packages are installed.
type Roots struct {
	// Debian is the folder Debian packages are installed under ("/").
	Debian string
	// NPM is the npm prefix: package P is in NPM/node_modules/P.
	NPM string
}

// of is the root of the source's package: the folder its paths are
// relative to.
func (r Roots) of(src Source) string {
	if src.Kind == NPM {
		return filepath.Join(r.NPM, "node_modules", src.Package)
	}
	return r.Debian
}

// Dir is the folder, under a data directory, that holds the set's files:
// rgb/<name>.
func Dir(dataDir, name string) string { return filepath.Join(dataDir, "rgb", name) }

// item is one source file to convert.
type item struct {
	src      int    // index in Set.Sources
	rel, key string // path relative to the package root; package + "/" + rel
	path     string // on disk
}

// result is what one file gave: images, or why none.
type result struct {
	images [][]byte
	err    error
}

// Build converts set s from the packages under roots into dataDir/rgb/<name>/
// train.npy and test.npy (each replaced atomically) by the package rule, and
// returns its manifest record. Before anything is converted it checks each
// source: the package installed at the pinned version, every licence check,
// and each file's own licence where the source has PerFile; any failure is
// an error and nothing is written. Files that cannot be decoded are skipped
// and counted by name; workers files are converted at once (at least one).
func Build(s Set, roots Roots, dataDir string, workers int) (Record, error) {
	if err := s.validate(); err != nil {
		return Record{}, err
	}
	rec := Record{Name: s.Name, Role: s.Role, About: s.About, Geometry: s.Geometry, PatchesPerFile: s.PatchesPerFile, TestFraction: s.TestFraction}
	items, err := s.collect(roots, &rec)
	if err != nil {
		return Record{}, fmt.Errorf("colour: set %s: %w", s.Name, err)
	}
	results, err := convertAll(s, items, workers)
	if err != nil {
		return Record{}, fmt.Errorf("colour: set %s: %w", s.Name, err)
	}
	train, test := s.split(items, results, &rec)
	if err := s.write(dataDir, train, test, &rec); err != nil {
		return Record{}, fmt.Errorf("colour: set %s: %w", s.Name, err)
	}
	return rec, nil
}

// collect checks each source's licence and lists its image files, adding a
// SourceRecord per source to rec.
func (s Set) collect(roots Roots, rec *Record) ([]item, error) {
	var items []item
	for i, src := range s.Sources {
		root := roots.of(src)
		sr := SourceRecord{Kind: src.Kind, Package: src.Package, Version: src.Version, Licence: src.Licence}
		checked, err := verifyPackage(src, root)
		if err != nil {
			return nil, err
		}
		rels, links, err := listFiles(src, root)
		if err != nil {
			return nil, err
		}
		for _, rel := range rels {
			if src.PerFile != nil {
				lic, statedIn, err := src.PerFile.Licence(root, rel)
				if err != nil {
					return nil, err
				}
				if lic != src.PerFileLicence {
					return nil, fmt.Errorf("%s file %s is under %q (stated in %s), expected %q: check the package before using it", src.Package, rel, lic, statedIn, src.PerFileLicence)
				}
				checked = append(checked, statedIn)
			}
			items = append(items, item{src: i, rel: rel, key: src.Package + "/" + rel, path: filepath.Join(root, filepath.FromSlash(rel))})
		}
		slices.Sort(checked)
		sr.LicenceVerifiedIn = slices.Compact(checked)
		sr.Files = FileCounts{Found: len(rels), Links: links}
		rec.Sources = append(rec.Sources, sr)
	}
	return items, nil
}

// split tallies the conversion results into rec's file counts and splits
// the images by file into train and test, dropping exact duplicates in
// file order.
func (s Set) split(items []item, results []result, rec *Record) (train, test [][]byte) {
	seen := map[string]bool{}
	for i, it := range items {
		fc := &rec.Sources[it.src].Files
		r := results[i]
		switch {
		case errors.Is(r.err, errTooLarge):
			fc.TooLarge++
			continue
		case errors.Is(r.err, errTooSmall):
			fc.TooSmall++
			continue
		case r.err != nil:
			fc.Undecodable++
			rec.Sources[it.src].UndecodableFiles = append(rec.Sources[it.src].UndecodableFiles, it.rel+": "+r.err.Error())
			continue
		case len(r.images) == 0:
			fc.Blank++
			continue
		}
		fc.Used++
		toTest := isTest(it.key, s.TestFraction)
		for _, img := range r.images {
			if seen[string(img)] {
				rec.Duplicates++
				continue
			}
			seen[string(img)] = true
			if toTest {
				test = append(test, img)
			} else {
				train = append(train, img)
			}
		}
	}
	return train, test
}

// write writes train.npy and test.npy of the set under dataDir, adding
// each file's count and SHA-256 to rec.
func (s Set) write(dataDir string, train, test [][]byte, rec *Record) error {
	if err := os.MkdirAll(Dir(dataDir, s.Name), 0o755); err != nil {
		return err
	}
	for _, part := range []struct {
		split  string
		images [][]byte
	}{{"train", train}, {"test", test}} {
		file := path.Join("rgb", s.Name, part.split+".npy")
		h := sha256.New()
		err := atomicfile.Write(filepath.Join(dataDir, filepath.FromSlash(file)), func(w io.Writer) error {
			return writeNPY(io.MultiWriter(w, h), part.images)
		})
		if err != nil {
			return fmt.Errorf("writing %s: %w", file, err)
		}
		rec.Outputs = append(rec.Outputs, Output{File: file, Split: part.split, Images: len(part.images), SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	return nil
}

// validate checks the set's parameters.
func (s Set) validate() error {
	switch {
	case s.Name == "" || len(s.Sources) == 0:
		return fmt.Errorf("colour: set %q has no name or no sources", s.Name)
	case !(s.TestFraction > 0 && s.TestFraction < 1):
		return fmt.Errorf("colour: set %s: test fraction %v, expected in (0, 1)", s.Name, s.TestFraction)
	case s.Geometry == Patches && s.PatchesPerFile <= 0:
		return fmt.Errorf("colour: set %s: %d patches per file, expected ≥ 1", s.Name, s.PatchesPerFile)
	case s.Geometry != Patches && s.Geometry != Object:
		return fmt.Errorf("colour: set %s: geometry %q, expected %s or %s", s.Name, s.Geometry, Object, Patches)
	}
	return nil
}

// listFiles lists the source's files (regular files under Dir with
// extension Ext, any case, or the Only ones) as slash paths relative to
// root, in byte order, and counts the symbolic links it skipped.
func listFiles(src Source, root string) (rels []string, links int, err error) {
	base := filepath.Join(root, filepath.FromSlash(src.Dir))
	err = filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || !strings.EqualFold(filepath.Ext(p), src.Ext) {
			return nil
		}
		if e.Type()&fs.ModeSymlink != 0 {
			links++
			return nil
		}
		if !e.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rels = append(rels, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("%s package %s: %w", src.Kind, src.Package, err)
	}
	slices.Sort(rels)
	if len(src.Only) > 0 {
		var kept []string
		for _, o := range src.Only {
			want := path.Join(src.Dir, o)
			if _, found := slices.BinarySearch(rels, want); !found {
				return nil, 0, fmt.Errorf("%s package %s has no file %s", src.Kind, src.Package, want)
			}
			kept = append(kept, want)
		}
		slices.Sort(kept)
		rels, links = kept, 0
	}
	if len(rels) == 0 {
		return nil, 0, fmt.Errorf("%s package %s has no %s files in %s", src.Kind, src.Package, src.Ext, src.Dir)
	}
	return rels, links, nil
}

// convertAll converts every item by the set's geometry, workers at a time.
// An error reading a file (other than decoding it) is returned; skips are
// in the results.
func convertAll(s Set, items []item, workers int) ([]result, error) {
	results := make([]result, len(items))
	fatal := make([]error, len(items))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(workers, len(items))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i], fatal[i] = convertFile(s, items[i])
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	return results, errors.Join(fatal...)
}

// convertFile converts one file: its images, or in result.err why it gave
// none (errTooLarge, errTooSmall, a decoding error; no images and no error
// for a blank drawing). The error returned is a failure to open the file.
func convertFile(s Set, it item) (result, error) {
	img, err := decodeFile(it.path)
	var open *fs.PathError
	if errors.As(err, &open) {
		return result{}, err
	}
	if err != nil {
		return result{err: err}, nil
	}
	if s.Geometry == Patches {
		images, err := patchImages(img, it.key, s.PatchesPerFile)
		return result{images: images, err: err}, nil
	}
	if out, ok := objectImage(img); ok {
		return result{images: [][]byte{out}}, nil
	}
	return result{}, nil
}
