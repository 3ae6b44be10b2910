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

// maxIDXValues bounds what a header may announce. Values are read with
// readFullGrow, so a header announcing more than the file holds costs only
// what the file holds, not what the header claims.
const maxIDXValues = 1 << 31

// ReadIDX reads an unsigned-byte IDX array (gzip or raw) and returns its
// dimensions and values.
func ReadIDX(path string) (dims []int, values []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: open IDX file: %w", err)
	}
	defer f.Close()
	return readIDX(path, f)
}

// readIDX reads an unsigned-byte IDX array (gzip or raw) from r; src names
// the input in errors.
func readIDX(src string, r io.Reader) (dims []int, values []byte, err error) {
	br := bufio.NewReader(r)
	var in io.Reader = br
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("data: %s: bad gzip stream: %w", src, err)
		}
		defer gz.Close()
		in = gz
	}
	var magic [4]byte
	if _, err := io.ReadFull(in, magic[:]); err != nil {
		return nil, nil, fmt.Errorf("data: %s: too short for an IDX header: %w", src, err)
	}
	if magic[0] != 0 || magic[1] != 0 || magic[2] != idxUbyte || magic[3] == 0 || magic[3] > 4 {
		return nil, nil, fmt.Errorf("data: %s: bad IDX magic % x, want 00 00 08 0n (unsigned bytes, 1-4 dimensions)", src, magic)
	}
	dims = make([]int, magic[3])
	total := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(in, binary.BigEndian, &d); err != nil {
			return nil, nil, fmt.Errorf("data: %s: truncated IDX header: %w", src, noEOF(err))
		}
		dims[i] = int(d)
		total *= int(d) // ≤ 2³¹ · (2³² − 1): no overflow
		if total > maxIDXValues {
			return nil, nil, fmt.Errorf("data: %s: IDX header announces %v, too large (at most %d values)", src, dims[:i+1], maxIDXValues)
		}
	}
	values, err = readFullGrow(in, total)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %s: truncated IDX data: got %d of %d values %v: %w", src, len(values), total, dims, noEOF(err))
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
	ds, err := idxImages(name, imagePath, dims, pix)
	if err != nil || labelPath == "" {
		return ds, err
	}
	ldims, lab, err := ReadIDX(labelPath)
	if err != nil {
		return nil, err
	}
	if err := idxLabels(ds, imagePath, labelPath, ldims, lab); err != nil {
		return nil, err
	}
	return ds, nil
}

// idxImages builds a dataset from an IDX array of images, dims N×H×W; src
// names the input in errors.
func idxImages(name, src string, dims []int, pix []byte) (*Dataset, error) {
	if len(dims) != 3 {
		return nil, fmt.Errorf("data: %s: IDX images must have 3 dimensions (N×H×W), found %v", src, dims)
	}
	shape := denoise.Shape{C: 1, H: dims[1], W: dims[2]}
	if err := checkImageShape(shape); err != nil {
		return nil, fmt.Errorf("data: %s: IDX dimensions %v: %w", src, dims, err)
	}
	ds := &Dataset{Name: name, Shape: shape, Pixels: make([]float32, len(pix))}
	for i, b := range pix {
		ds.Pixels[i] = ByteToUnit(b)
	}
	return ds, nil
}

// idxLabels sets the labels of ds, read from imageSrc, to an IDX array of
// one byte per image read from labelSrc.
func idxLabels(ds *Dataset, imageSrc, labelSrc string, ldims []int, lab []byte) error {
	if len(ldims) != 1 || ldims[0] != ds.Len() {
		return fmt.Errorf("data: %s: IDX labels have dimensions %v, want [%d] to match %s", labelSrc, ldims, ds.Len(), imageSrc)
	}
	ds.Labels = make([]int, len(lab))
	for i, l := range lab {
		ds.Labels[i] = int(l)
	}
	return nil
}
