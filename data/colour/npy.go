package colour

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// writeNPY writes images (ImageBytes each) as a NumPy .npy file (format
// 1.0) of uint8 shaped [N, Size, Size, 3], C order: the channels-last
// layout data.LoadNPY reads. The header is padded with spaces so that the
// values start on a 64-byte boundary, as NumPy writes it.
func writeNPY(w io.Writer, images [][]byte) error {
	hdr := fmt.Sprintf("{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d, %d, 3), }", len(images), Size, Size)
	total := 10 + len(hdr) + 1
	hdr += strings.Repeat(" ", (64-total%64)%64) + "\n"
	bw := bufio.NewWriter(w)
	bw.WriteString("\x93NUMPY\x01\x00")
	bw.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(hdr))))
	bw.WriteString(hdr)
	for i, img := range images {
		if len(img) != ImageBytes {
			return fmt.Errorf("colour: image %d has %d bytes, expected %d", i, len(img), ImageBytes)
		}
		bw.Write(img)
	}
	return bw.Flush()
}
