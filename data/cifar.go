package data

import (
	"fmt"
	"os"

	"github.com/eigenscore/eigenscore/denoise"
)

// CIFAR binary batches (data_batch_1.bin … test_batch.bin for CIFAR-10,
// train.bin and test.bin for CIFAR-100) are a plain sequence of fixed-size
// records: the label byte(s), then 3072 pixel bytes holding the red, green and
// blue 32×32 planes in turn, each row-major. That is already the C×H×W order
// of Dataset, so a record's pixels map one to one.
const (
	cifarSide       = 32
	cifarImageBytes = 3 * cifarSide * cifarSide
)

// LoadCIFAR10 reads CIFAR-10 binary batch files, in the order given, into one
// dataset with labels 0-9. Each record is 1 label byte and 3072 pixel bytes.
func LoadCIFAR10(paths ...string) (*Dataset, error) {
	return cifar10Layout.load(paths)
}

// LoadCIFAR100 reads CIFAR-100 binary batch files, in the order given, into
// one dataset. Each record is a coarse label byte (0-19), a fine label byte
// (0-99) and 3072 pixel bytes; fine selects which label the dataset keeps.
// Both label bytes are range-checked whichever is kept.
func LoadCIFAR100(fine bool, paths ...string) (*Dataset, error) {
	if fine {
		return cifar100FineLayout.load(paths)
	}
	return cifar100CoarseLayout.load(paths)
}

// cifarLayout describes one CIFAR binary format: records of len(classes)
// label bytes, label byte j in [0, classes[j]), then one image; the label
// kept is byte keep.
type cifarLayout struct {
	name, format string
	classes      []int
	keep         int
}

var (
	cifar10Layout        = cifarLayout{"cifar10", "CIFAR-10", []int{10}, 0}
	cifar100CoarseLayout = cifarLayout{"cifar100-coarse", "CIFAR-100", []int{20, 100}, 0}
	cifar100FineLayout   = cifarLayout{"cifar100", "CIFAR-100", []int{20, 100}, 1}
)

func (l cifarLayout) record() int { return len(l.classes) + cifarImageBytes }

func (l cifarLayout) newDataset(images int) *Dataset {
	return &Dataset{
		Name:   l.name,
		Shape:  denoise.Shape{C: 3, H: cifarSide, W: cifarSide},
		Pixels: make([]float32, 0, images*cifarImageBytes),
		Labels: make([]int, 0, images),
	}
}

// checkSize reports a batch of size bytes that is not a whole, non-zero
// number of records.
func (l cifarLayout) checkSize(path string, size int64) error {
	labelDesc := fmt.Sprintf("%d label byte", len(l.classes))
	if len(l.classes) > 1 {
		labelDesc += "s"
	}
	if size == 0 {
		return fmt.Errorf("data: %s batch %s is empty, expected records of %d bytes (%s + %d pixel bytes)",
			l.format, path, l.record(), labelDesc, cifarImageBytes)
	}
	if size%int64(l.record()) != 0 {
		return fmt.Errorf("data: %s batch %s has %d bytes, not a multiple of the record size %d (%s + %d pixel bytes)",
			l.format, path, size, l.record(), labelDesc, cifarImageBytes)
	}
	return nil
}

// appendBatch appends the records of one batch file's bytes buf to d; path
// names the batch in errors.
func (l cifarLayout) appendBatch(d *Dataset, path string, buf []byte) error {
	if err := l.checkSize(path, int64(len(buf))); err != nil {
		return err
	}
	record := l.record()
	for r := 0; r+record <= len(buf); r += record {
		rec := buf[r : r+record]
		for j, n := range l.classes {
			if int(rec[j]) >= n {
				return fmt.Errorf("data: %s batch %s: record %d has label byte %d = %d, expected 0-%d",
					l.format, path, r/record, j, rec[j], n-1)
			}
		}
		d.Labels = append(d.Labels, int(rec[l.keep]))
		for _, b := range rec[len(l.classes):] {
			d.Pixels = append(d.Pixels, ByteToUnit(b))
		}
	}
	return nil
}

// load reads the batch files, in the order given, into one dataset.
func (l cifarLayout) load(paths []string) (*Dataset, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("data: %s: no batch files given", l.format)
	}
	// Size every file first so that the pixels are allocated once.
	total := 0
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("data: %s batch file: %w", l.format, err)
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("data: %s batch %s is a directory, expected a binary batch file", l.format, p)
		}
		if err := l.checkSize(p, fi.Size()); err != nil {
			return nil, err
		}
		total += int(fi.Size() / int64(l.record()))
	}
	d := l.newDataset(total)
	for _, p := range paths {
		buf, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("data: %s batch file: %w", l.format, err)
		}
		// appendBatch checks the size again: the file may have changed
		// since it was sized.
		if err := l.appendBatch(d, p, buf); err != nil {
			return nil, err
		}
	}
	return d, nil
}
