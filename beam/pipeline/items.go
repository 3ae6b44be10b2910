package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
)

// Item is a work item: images [Lo, Hi) of one data file (Shard), or, for
// PNG/JPEG inputs, the image files Files (Lo and Hi then count files of
// the pattern's sorted matches).
type Item struct {
	Shard  string
	Files  []string
	Lo, Hi int
}

// Key names the item's part files: the source and the index range, hashed
// so that equal file names in different folders do not collide.
func (it Item) Key() string {
	h := sha256.New()
	if it.Shard != "" {
		h.Write([]byte(it.Shard))
	} else {
		for _, f := range it.Files {
			h.Write([]byte(f))
			h.Write([]byte{0})
		}
	}
	base := "images"
	if it.Shard != "" {
		base = strings.Map(safeRune, filepath.Base(it.Shard))
	}
	return fmt.Sprintf("%s-%s-%08d-%08d", base, hex.EncodeToString(h.Sum(nil))[:12], it.Lo, it.Hi)
}

func safeRune(r rune) rune {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		return r
	}
	return '_'
}

// Failure is an input left out of the output, with the reason.
type Failure struct {
	Input string `json:"input"`
	Error string `json:"error"`
}

// expand lists a pattern's shards, sorted: data files, and image files
// (those of a matched folder included, at any depth).
func expand(pattern string) (shards, images []string, err error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, nil, fmt.Errorf("input pattern %q: %w", pattern, err)
	}
	if len(matches) == 0 {
		return nil, nil, fmt.Errorf("input pattern %q matches no file", pattern)
	}
	sort.Strings(matches)
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil {
			return nil, nil, fmt.Errorf("input %s: %w", m, err)
		}
		switch {
		case st.IsDir():
			found, err := data.ImageFiles(m, true)
			if err != nil {
				return nil, nil, fmt.Errorf("input %w", err)
			}
			images = append(images, found...)
		case data.IsImageFile(m):
			images = append(images, m)
		default:
			shards = append(shards, m)
		}
	}
	return shards, images, nil
}

// ranges splits [0, n) into consecutive ranges of at most size.
func ranges(n, size int) [][2]int {
	var out [][2]int
	for lo := 0; lo < n; lo += size {
		out = append(out, [2]int{lo, min(lo+size, n)})
	}
	return out
}

// loadShard reads a data file as images of the given shape, by the rules
// of data.LoadFor (the same reader `eigenscore score --data FILE` uses).
func loadShard(path string, shape denoise.Shape) (*data.Dataset, error) {
	ds, err := data.LoadFor("", data.Spec{Name: path}, data.Test, shape)
	if err != nil {
		return nil, err
	}
	if ds.Shape != shape {
		return nil, fmt.Errorf("data: %s holds %v images, the model takes %v", path, ds.Shape, shape)
	}
	return ds, nil
}

// expandFn turns an input pattern into work items. Data files are read to
// count (and check) their images; a file that cannot be read fails the
// pipeline, or with SkipBadInput becomes a Failure.
type expandFn struct {
	Cfg   Config
	Shape denoise.Shape
}

func (f *expandFn) ProcessElement(ctx context.Context, pattern string, emit func(Item), fail func(Failure)) error {
	shards, images, err := expand(pattern)
	if err != nil {
		return f.failed(ctx, pattern, err, fail)
	}
	for _, path := range shards {
		ds, err := loadShard(path, f.Shape)
		if err != nil {
			if err := f.failed(ctx, path, err, fail); err != nil {
				return err
			}
			continue
		}
		for _, r := range ranges(ds.Len(), f.Cfg.ItemSize) {
			emit(Item{Shard: path, Lo: r[0], Hi: r[1]})
		}
	}
	for _, r := range ranges(len(images), f.Cfg.ItemSize) {
		emit(Item{Files: images[r[0]:r[1]], Lo: r[0], Hi: r[1]})
	}
	return nil
}

func (f *expandFn) failed(ctx context.Context, input string, err error, fail func(Failure)) error {
	return reportFailure(ctx, f.Cfg.SkipBadInput, input, err, fail)
}

// reportFailure fails the bundle with an error naming the input, or with
// skip emits a Failure and counts it.
func reportFailure(ctx context.Context, skip bool, input string, err error, fail func(Failure)) error {
	if !skip {
		return fmt.Errorf("eigenscore-beam: %s: %w (pass --skip-bad-input to leave it out and list it in %s)", input, err, failuresFile)
	}
	failures.Inc(ctx, 1)
	fail(Failure{Input: input, Error: err.Error()})
	return nil
}

// imageID is the stable id of an image: its file and index in it.
func imageID(source string, index int) string { return source + ":" + strconv.Itoa(index) }
