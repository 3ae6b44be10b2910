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
	return loadCIFAR("cifar10", "CIFAR-10", paths, []int{10}, 0)
}

// LoadCIFAR100 reads CIFAR-100 binary batch files, in the order given, into
// one dataset. Each record is a coarse label byte (0-19), a fine label byte
// (0-99) and 3072 pixel bytes; fine selects which label the dataset keeps.
// Both label bytes are range-checked whichever is kept.
func LoadCIFAR100(fine bool, paths ...string) (*Dataset, error) {
	name, keep := "cifar100-coarse", 0
	if fine {
		name, keep = "cifar100", 1
	}
	return loadCIFAR(name, "CIFAR-100", paths, []int{20, 100}, keep)
}

// loadCIFAR reads records made of len(classes) label bytes, label byte j in
// [0, classes[j]), followed by one image; the label kept is byte keep.
func loadCIFAR(name, format string, paths []string, classes []int, keep int) (*Dataset, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("data: %s: no batch files given", format)
	}
	record := len(classes) + cifarImageBytes
	labelDesc := fmt.Sprintf("%d label byte", len(classes))
	if len(classes) > 1 {
		labelDesc += "s"
	}

	// Size every file first so that the pixels are allocated once.
	total := 0
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("data: %s batch file: %w", format, err)
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("data: %s batch %s is a directory, expected a binary batch file", format, p)
		}
		if err := checkCIFARSize(format, p, fi.Size(), record, labelDesc); err != nil {
			return nil, err
		}
		total += int(fi.Size() / int64(record))
	}

	d := &Dataset{
		Name:   name,
		Shape:  denoise.Shape{C: 3, H: cifarSide, W: cifarSide},
		Pixels: make([]float32, 0, total*cifarImageBytes),
		Labels: make([]int, 0, total),
	}
	for _, p := range paths {
		buf, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("data: %s batch file: %w", format, err)
		}
		// The file may have changed since it was sized.
		if err := checkCIFARSize(format, p, int64(len(buf)), record, labelDesc); err != nil {
			return nil, err
		}
		for r := 0; r+record <= len(buf); r += record {
			rec := buf[r : r+record]
			for j, n := range classes {
				if int(rec[j]) >= n {
					return nil, fmt.Errorf("data: %s batch %s: record %d has label byte %d = %d, expected 0-%d",
						format, p, r/record, j, rec[j], n-1)
				}
			}
			d.Labels = append(d.Labels, int(rec[keep]))
			for _, b := range rec[len(classes):] {
				d.Pixels = append(d.Pixels, ByteToUnit(b))
			}
		}
	}
	return d, nil
}

func checkCIFARSize(format, path string, size int64, record int, labelDesc string) error {
	if size == 0 {
		return fmt.Errorf("data: %s batch %s is empty, expected records of %d bytes (%s + %d pixel bytes)",
			format, path, record, labelDesc, cifarImageBytes)
	}
	if size%int64(record) != 0 {
		return fmt.Errorf("data: %s batch %s has %d bytes, not a multiple of the record size %d (%s + %d pixel bytes)",
			format, path, size, record, labelDesc, cifarImageBytes)
	}
	return nil
}
