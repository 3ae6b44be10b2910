package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
)

// Beam metrics of the job, summed over workers.
var (
	imagesScored = beam.NewCounter("eigenscore", "images")
	imagesFlaged = beam.NewCounter("eigenscore", "flagged")
	nfes         = beam.NewCounter("eigenscore", "nfe")
	itemsResumed = beam.NewCounter("eigenscore", "items_resumed")
	failures     = beam.NewCounter("eigenscore", "failures")
)

// Stats are one work item's counts, kept beside its part file in the
// .done file and summed into the summary.
type Stats struct {
	Part     string    `json:"part"`
	Images   int64     `json:"images"`
	Flagged  int64     `json:"flagged"`
	NFE      int64     `json:"nfe"`
	Failures []Failure `json:"failures,omitempty"`
	// Resumed is set when the item was done by an earlier run.
	Resumed bool `json:"-"`
}

// scoreFn scores work items and writes their part files.
type scoreFn struct {
	Cfg Config

	s         *scorer
	shardPath string // the last data file read, kept for the next item of it
	shard     *data.Dataset
}

func (f *scoreFn) Setup() error {
	s, err := acquire(f.Cfg.Detector, f.Cfg.Model, f.Cfg.ORT)
	if err != nil {
		return fmt.Errorf("eigenscore-beam: %w", err)
	}
	f.s = s
	return nil
}

func (f *scoreFn) Teardown() error {
	if f.s == nil {
		return nil
	}
	f.s = nil
	return release(f.Cfg.Detector, f.Cfg.Model)
}

func (f *scoreFn) ProcessElement(ctx context.Context, it Item, emit func(Stats), fail func(Failure)) error {
	part := it.Key() + "." + string(f.Cfg.Format)
	if st, ok := readDone(f.Cfg.Output, part); ok {
		itemsResumed.Inc(ctx, 1)
		for _, fl := range st.Failures {
			failures.Inc(ctx, 1)
			fail(fl)
		}
		st.Resumed = true
		emit(st)
		return nil
	}
	imgs, ids, bad, err := f.images(it)
	if err != nil {
		return reportFailure(ctx, f.Cfg.SkipBadInput, itemInput(it), err, fail)
	}
	for _, b := range bad {
		if err := reportFailure(ctx, f.Cfg.SkipBadInput, b.Input, errors.New(b.Error), fail); err != nil {
			return err
		}
	}
	st := Stats{Part: part, Failures: bad}
	var res []eigenscore.Result
	if imgs.Len() > 0 {
		m := eigenscore.NewModel(f.s.model.Denoiser(), f.s.model.Source(), f.s.model.ID())
		if res, err = f.s.det.Score(ctx, m, imgs, nil); err != nil {
			return reportFailure(ctx, f.Cfg.SkipBadInput, itemInput(it), err, fail)
		}
		st.NFE = m.NFE()
	}
	st.Images = int64(len(res))
	for _, r := range res {
		if r.Flagged {
			st.Flagged++
		}
	}
	if err := f.write(it, part, ids, res); err != nil {
		return err
	}
	if err := writeDone(f.Cfg.Output, st); err != nil {
		return err
	}
	imagesScored.Inc(ctx, st.Images)
	imagesFlaged.Inc(ctx, st.Flagged)
	nfes.Inc(ctx, st.NFE)
	emit(st)
	return nil
}

// write writes the item's part file, or, on the first attempt at it under
// Cfg.FaultDir, dies half-way through as a crashing worker would.
func (f *scoreFn) write(it Item, part string, ids []imageRef, res []eigenscore.Result) error {
	path := filepath.Join(f.Cfg.Output, part)
	rows := rowWriter{format: f.Cfg.Format, names: f.s.det.FeatureNames()}
	if f.Cfg.FaultDir != "" {
		marker := filepath.Join(f.Cfg.FaultDir, part)
		if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
			if err := os.WriteFile(marker, nil, 0o644); err != nil {
				return err
			}
			half := len(res) / 2
			err := rows.writeFile(path, ids[:half], res[:half], errInjected)
			return fmt.Errorf("eigenscore-beam: %s [%d,%d): %w", itemInput(it), it.Lo, it.Hi, err)
		}
	}
	if err := rows.writeFile(path, ids, res, nil); err != nil {
		return fmt.Errorf("eigenscore-beam: %w", err)
	}
	return nil
}

// errInjected is the failure Config.FaultDir injects.
var errInjected = errors.New("injected transient failure (Config.FaultDir)")

// imageRef is an image's source file and index in it.
type imageRef struct {
	Source string
	Index  int
}

// images reads an item's images. For a data file, an error is the file's;
// for image files, those that cannot be decoded come back as Failures and
// the rest are read.
func (f *scoreFn) images(it Item) (*data.Dataset, []imageRef, []Failure, error) {
	shape := f.s.model.Shape()
	if it.Shard == "" {
		return decodeFiles(it.Files, shape)
	}
	if f.shardPath != it.Shard {
		f.shard, f.shardPath = nil, ""
		ds, err := loadShard(it.Shard, shape)
		if err != nil {
			return nil, nil, nil, err
		}
		f.shard, f.shardPath = ds, it.Shard
	}
	if it.Hi > f.shard.Len() {
		return nil, nil, nil, fmt.Errorf("holds %d images, the work item wants [%d, %d): the file changed while the job ran", f.shard.Len(), it.Lo, it.Hi)
	}
	idx := make([]int, it.Hi-it.Lo)
	refs := make([]imageRef, len(idx))
	for i := range idx {
		idx[i] = it.Lo + i
		refs[i] = imageRef{Source: it.Shard, Index: it.Lo + i}
	}
	return f.shard.Subset(idx), refs, nil, nil
}

// itemInput names an item's input in messages.
func itemInput(it Item) string {
	if it.Shard != "" {
		return fmt.Sprintf("%s images [%d, %d)", it.Shard, it.Lo, it.Hi)
	}
	return fmt.Sprintf("%d image files from %s", len(it.Files), it.Files[0])
}

// readDone returns the stats of a part written by an earlier attempt.
func readDone(output, part string) (Stats, bool) {
	b, err := os.ReadFile(filepath.Join(output, part+".done"))
	if err != nil {
		return Stats{}, false
	}
	var st Stats
	if json.Unmarshal(b, &st) != nil || st.Part != part {
		return Stats{}, false
	}
	if _, err := os.Stat(filepath.Join(output, part)); err != nil {
		return Stats{}, false
	}
	return st, true
}
