// Package imagetest writes image files for tests. It imports nothing from
// the project, so the tests of any package (data included) can use it.
package imagetest

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Write encodes img to path, as PNG when its extension is .png (any case)
// and as JPEG at quality 100 otherwise, making the folder. It fails t on any
// error.
func Write(t testing.TB, path string, img image.Image) {
	t.Helper()
	var b bytes.Buffer
	var err error
	if strings.EqualFold(filepath.Ext(path), ".png") {
		err = png.Encode(&b, img)
	} else {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 100})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
