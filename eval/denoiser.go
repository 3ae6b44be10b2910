package eval

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/denoise/gmm"
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

// OpenDenoiser resolves a --denoiser value: "gmm" fits (or loads) the
// mixture of the ID dataset. It returns the denoiser, an identifier for
// cache keys, and a function that releases it.
func OpenDenoiser(name, dataDir, cacheDir, idSpec string) (denoise.Denoiser, string, func(), error) {
	switch {
	case name == "gmm":
		m, err := Mixture(dataDir, cacheDir, idSpec, gmm.FitOptions{})
		return m, "gmm:" + idSpec, func() {}, err
	}
	return nil, "", nil, fmt.Errorf("unknown denoiser %q: want gmm", name)
}
