package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise/gmm"
	"github.com/eigenscore/eigenscore/denoise/onnx"
	"github.com/eigenscore/eigenscore/models"
)

// cacheDir resolves the cache directory: --cache-dir, else
// $EIGENSCORE_CACHE, else the user cache directory's eigenscore folder.
func (g *globals) cacheDirPath() string {
	if g.cacheDir != "" {
		return g.cacheDir
	}
	if env := os.Getenv("EIGENSCORE_CACHE"); env != "" {
		return env
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "eigenscore")
	}
	return ".eigenscore-cache"
}

// featureDir is the feature cache directory, or "" when off.
func (g *globals) featureDir(off bool) string {
	if off {
		return ""
	}
	return g.cacheDirPath()
}

func (g *globals) ortOptions() *onnx.Options {
	return &onnx.Options{LibPath: g.ortLib, Threads: g.threads, BatchSize: g.batch, Sessions: g.sessions}
}

// openModel resolves a --denoiser value for an ID dataset: "gmm" fits (or
// loads) the Gaussian mixture of the ID dataset's training split, a path
// opens an ONNX model, and "" opens the shipped network trained on the ID
// dataset.
func (g *globals) openModel(name, idSpec string) (*eigenscore.Model, error) {
	switch name {
	case "gmm":
		return g.openMixture(idSpec)
	case "":
		shipped, ok := models.ForDataset(idSpec)
		if !ok {
			return nil, fmt.Errorf("no shipped model for ID dataset %q (shipped: %s); pass --denoiser gmm or --denoiser PATH.onnx", idSpec, strings.Join(models.Names(), ", "))
		}
		return models.Open(shipped, g.ortOptions())
	}
	m, err := eigenscore.OpenModel(name, g.ortOptions())
	if err != nil {
		return nil, fmt.Errorf("denoiser %q: %w (want gmm, a path to an ONNX model, or nothing for the shipped model)", name, err)
	}
	return m, nil
}

// openRecorded opens the model a detector was fitted with, from its
// source: "shipped:NAME", "gmm:SPEC" or an ONNX path.
func (g *globals) openRecorded(ref eigenscore.ModelRef) (*eigenscore.Model, error) {
	if spec, ok := strings.CutPrefix(ref.Source, "gmm:"); ok {
		return g.openMixture(spec)
	}
	return models.OpenSource(ref.Source, g.ortOptions())
}

// openMixture opens the Gaussian-mixture denoiser of the ID dataset spec
// (see mixture).
func (g *globals) openMixture(idSpec string) (*eigenscore.Model, error) {
	m, err := g.mixture(idSpec)
	if err != nil {
		return nil, err
	}
	id := "gmm:" + idSpec
	return eigenscore.NewModel(m, id, id), nil
}

// mixture returns the Gaussian mixture fitted to the training split of the
// ID dataset spec, from the cache when it was fitted before.
func (g *globals) mixture(idSpec string) (*gmm.Mixture, error) {
	sp, err := data.ParseSpec(idSpec)
	if err != nil {
		return nil, err
	}
	opts := gmm.FitOptions{Rank: 64}
	key := strings.NewReplacer("/", "_", ":", "_", ",", "_").Replace(sp.String())
	path := filepath.Join(g.cacheDirPath(), "gmm", fmt.Sprintf("%s-r%d.gob.gz", key, opts.Rank))
	if m, err := gmm.Load(path); err == nil {
		slog.Debug("loaded cached mixture", "path", path)
		return m, nil
	}
	ds, err := data.Load(data.DataDir(g.dataDir), sp, data.Train)
	if err != nil {
		return nil, err
	}
	slog.Info("fitting the Gaussian-mixture denoiser (once; cached)", "dataset", sp.String(), "images", ds.Len(), "rank", opts.Rank)
	m, err := gmm.Fit(ds, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		if err := m.Save(path); err != nil {
			slog.Warn("could not cache the mixture", "err", err)
		}
	}
	return m, nil
}
