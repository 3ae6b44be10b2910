package eval

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/denoise/gmm"
	"github.com/eigenscore/eigenscore/denoise/onnx"
	"github.com/eigenscore/eigenscore/models"
)

// CacheDir resolves the cache directory: flag, else $EIGENSCORE_CACHE, else
// the user cache directory's eigenscore folder.
func CacheDir(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("EIGENSCORE_CACHE"); env != "" {
		return env
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "eigenscore")
	}
	return ".eigenscore-cache"
}

// Mixture returns the Gaussian-mixture denoiser fitted to the training split
// of the ID dataset spec, from the cache when it was fitted before.
func Mixture(dataDir, cacheDir, idSpec string, opts gmm.FitOptions) (*gmm.Mixture, error) {
	sp, err := data.ParseSpec(idSpec)
	if err != nil {
		return nil, err
	}
	if opts.Rank == 0 {
		opts.Rank = 64
	}
	key := strings.NewReplacer("/", "_", ":", "_", ",", "_").Replace(sp.String())
	path := filepath.Join(cacheDir, "gmm", fmt.Sprintf("%s-r%d.gob.gz", key, opts.Rank))
	if m, err := gmm.Load(path); err == nil {
		slog.Debug("loaded cached mixture", "path", path)
		return m, nil
	}
	ds, err := data.Load(dataDir, sp, data.Train)
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

// DenoiserOptions choose and configure a denoiser.
type DenoiserOptions struct {
	Name     string // "" (the shipped model of the ID data), "gmm", or a path to an ONNX model
	DataDir  string
	CacheDir string
	ORT      onnx.Options
}

// OpenDenoiser resolves a --denoiser value for an ID dataset: "gmm" fits
// (or loads) the mixture of the ID dataset, a path opens an ONNX model, and
// "" opens the shipped network trained on the ID dataset. It returns the
// denoiser, an identifier for cache keys, and a function that releases it.
func OpenDenoiser(o DenoiserOptions, idSpec string) (denoise.Denoiser, string, func(), error) {
	switch {
	case o.Name == "gmm":
		m, err := Mixture(o.DataDir, o.CacheDir, idSpec, gmm.FitOptions{})
		return m, "gmm:" + idSpec, func() {}, err
	case o.Name == "":
		name, ok := models.ForDataset(idSpec)
		if !ok {
			return nil, "", nil, fmt.Errorf("no shipped model for ID dataset %q (shipped: %s); pass --denoiser gmm or --denoiser PATH.onnx", idSpec, strings.Join(models.Names(), ", "))
		}
		b, err := models.Model(name)
		if err != nil {
			return nil, "", nil, err
		}
		d, err := onnx.OpenBytes("models/"+name, b, o.ORT)
		if err != nil {
			return nil, "", nil, err
		}
		return d, "shipped:" + name + ":" + hashBytes(b), func() { d.Close() }, nil
	default:
		b, err := os.ReadFile(o.Name)
		if err != nil {
			return nil, "", nil, fmt.Errorf("denoiser %q: %w (want gmm, a path to an ONNX model, or nothing for the shipped model)", o.Name, err)
		}
		d, err := onnx.OpenBytes(o.Name, b, o.ORT)
		if err != nil {
			return nil, "", nil, err
		}
		return d, "onnx:" + hashBytes(b), func() { d.Close() }, nil
	}
}

func hashBytes(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}
