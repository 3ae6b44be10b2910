// Package models embeds the denoisers shipped with eigenscore: small EDM
// UNets trained by tools/train.py, one per ID dataset, in the ONNX model
// contract of denoise/onnx. Each directory holds model.onnx and a
// MODEL_CARD.md with its recipe and denoising quality.
package models

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed */model.onnx
var files embed.FS

// byDataset maps ID dataset specs to shipped model names.
var byDataset = map[string]string{
	"fashion-mnist":     "fashion-mnist",
	"mnist":             "mnist",
	"fashion-mnist:0-4": "fashion-mnist-0-4",
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
