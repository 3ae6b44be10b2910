// Package models embeds the denoisers shipped with eigenscore: small EDM
// UNets trained by tools/train.py, one per ID dataset, in the ONNX model
// contract of denoise/onnx. Each directory holds model.onnx and a
// MODEL_CARD.md with its recipe and denoising quality.
package models

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/denoise/onnx"
)

//go:embed */model.onnx
var files embed.FS

// byDataset maps ID dataset specs to shipped model names.
var byDataset = map[string]string{
	"fashion-mnist":     "fashion-mnist",
	"mnist":             "mnist",
	"fashion-mnist:0-4": "fashion-mnist-0-4",
	"clipart":           "clipart",
}

// Names lists the shipped models.
func Names() []string {
	dirs, _ := fs.ReadDir(files, ".")
	var out []string
	for _, d := range dirs {
		out = append(out, d.Name())
	}
	sort.Strings(out)
	return out
}

// ForDataset returns the shipped model trained on the ID dataset spec.
func ForDataset(spec string) (string, bool) {
	name, ok := byDataset[spec]
	if !ok {
		return "", false
	}
	_, err := fs.Stat(files, name+"/model.onnx")
	return name, err == nil
}

// Model returns a shipped model's ONNX bytes.
func Model(name string) ([]byte, error) {
	b, err := files.ReadFile(name + "/model.onnx")
	if err != nil {
		return nil, fmt.Errorf("models: no shipped model %q (have %v)", name, Names())
	}
	return b, nil
}

// Open opens a shipped model by name as an eigenscore.Model, whose source
// is "shipped:NAME" and whose id includes a hash of the weights. opts may
// be nil (see eigenscore.OpenModel).
func Open(name string, opts *onnx.Options) (*eigenscore.Model, error) {
	b, err := Model(name)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(b)
	return eigenscore.OpenModelBytes("shipped:"+name, "shipped:"+name+":"+hex.EncodeToString(h[:8]), b, opts)
}

// OpenSource opens the model a detector records as its source
// (eigenscore.ModelRef.Source): "shipped:NAME" opens a shipped model and
// any other source is read as the path of an ONNX file. The Gaussian
// mixture ("gmm:SPEC") is fitted from data, not opened, and is refused
// here with a message saying so.
func OpenSource(source string, opts *onnx.Options) (*eigenscore.Model, error) {
	if name, ok := strings.CutPrefix(source, "shipped:"); ok {
		return Open(name, opts)
	}
	if strings.HasPrefix(source, "gmm:") {
		return nil, fmt.Errorf("models: %s is a Gaussian mixture fitted from data, not a file to open; fit it with `eigenscore fit --denoiser gmm` or use an ONNX model", source)
	}
	return eigenscore.OpenModel(source, opts)
}
