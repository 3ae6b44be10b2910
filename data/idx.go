package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/eigenscore/eigenscore/denoise"
)

// IDX is the file format of MNIST and Fashion-MNIST: a 4-byte magic number
// (two zero bytes, a type code, the number of dimensions), one big-endian
// uint32 per dimension, then the values. Files may be gzip-compressed.

const idxUbyte = 0x08

// maxIDXValues bounds what a header may announce, so a corrupt header cannot
// make us allocate gigabytes before the truncation is noticed.
const maxIDXValues = 1 << 31

// ReadIDX reads an unsigned-byte IDX array (gzip or raw) and returns its
// dimensions and values.
func ReadIDX(path string) (dims []int, values []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: open IDX file: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var src io.Reader = r
	if head, _ := r.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("data: %s: bad gzip stream: %w", path, err)
		}
		defer gz.Close()
		src = gz
	}
	var magic [4]byte
	if _, err := io.ReadFull(src, magic[:]); err != nil {
		return nil, nil, fmt.Errorf("data: %s: too short for an IDX header: %w", path, err)
	}
	if magic[0] != 0 || magic[1] != 0 || magic[2] != idxUbyte || magic[3] == 0 || magic[3] > 4 {
		return nil, nil, fmt.Errorf("data: %s: bad IDX magic % x, want 00 00 08 0n (unsigned bytes, 1-4 dimensions)", path, magic)
	}
	dims = make([]int, magic[3])
	total := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(src, binary.BigEndian, &d); err != nil {
			return nil, nil, fmt.Errorf("data: %s: truncated IDX header: %w", path, err)
		}
		dims[i] = int(d)
		total *= int(d)
		if total > maxIDXValues {
			return nil, nil, fmt.Errorf("data: %s: IDX header announces %v, too large", path, dims)
		}
	}
	values = make([]byte, total)
	if n, err := io.ReadFull(src, values); err != nil {
		return nil, nil, fmt.Errorf("data: %s: truncated IDX data: got %d of %d values %v: %w", path, n, total, dims, err)
	}
	return dims, values, nil
}

// LoadIDX reads an IDX image file (N×H×W unsigned bytes) and, when
// labelPath is not empty, its IDX label file (N unsigned bytes).
func LoadIDX(name, imagePath, labelPath string) (*Dataset, error) {
	dims, pix, err := ReadIDX(imagePath)
	if err != nil {
		return nil, err
	}
	if len(dims) != 3 {
		return nil, fmt.Errorf("data: %s: IDX images must have 3 dimensions (N×H×W), found %v", imagePath, dims)
	}
	ds := &Dataset{Name: name, Shape: denoise.Shape{C: 1, H: dims[1], W: dims[2]}, Pixels: make([]float32, len(pix))}
	for i, b := range pix {
		ds.Pixels[i] = ByteToUnit(b)
	}
	if labelPath == "" {
		return ds, nil
	}
	ldims, lab, err := ReadIDX(labelPath)
	if err != nil {
		return nil, err
	}
	if len(ldims) != 1 || ldims[0] != dims[0] {
		return nil, fmt.Errorf("data: %s: IDX labels have dimensions %v, want [%d] to match %s", labelPath, ldims, dims[0], imagePath)
	}
	ds.Labels = make([]int, len(lab))
	for i, l := range lab {
		ds.Labels[i] = int(l)
	}
	return ds, nil
}
