// Package testenv finds the data that tests run on. Tests fail, never skip,
// when it is missing: CI installs it with `make data`.
package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise/gmm"
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// DataDir is $EIGENSCORE_DATA or the repository's data-cache.
func DataDir() string {
	if d := os.Getenv(data.DataDirEnv); d != "" {
		return d
	}
	return filepath.Join(Root(), "data-cache")
}

// Load loads a dataset split or fails the test with how to get it.
func Load(t testing.TB, spec string, split data.Split) *data.Dataset {
	t.Helper()
	sp, err := data.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.Load(DataDir(), sp, split)
	if err != nil {
		t.Fatalf("%v\n(run `make data` first)", err)
	}
	return ds
}

var (
	mixturesMu sync.Mutex
	mixtures   = map[string]*gmm.Mixture{}
)

// FashionMixture is the Gaussian mixture fitted to the first 10,000
// Fashion-MNIST training images (about 1,000 per class); see Mixture.
func FashionMixture(t testing.TB) *gmm.Mixture { return Mixture(t, "fashion-mnist", 10000) }

// Mixture is the Gaussian mixture (rank 64) fitted to the first n training
// images of a dataset spec (all when n ≤ 0). Fitting takes tens of seconds,
// so it is cached on disk in the data directory under a name that includes
// a hash of package gmm's source: a change to gmm.Fit refits it instead of
// reusing a stale fixture.
func Mixture(t testing.TB, spec string, n int) *gmm.Mixture {
	t.Helper()
	mixturesMu.Lock()
	defer mixturesMu.Unlock()
	key := fmt.Sprintf("%s-%d", spec, n)
	if m := mixtures[key]; m != nil {
		return m
	}
	src, err := sourceHash(filepath.Join(Root(), "denoise", "gmm"))
	if err != nil {
		t.Fatal(err)
	}
	name := strings.NewReplacer(":", "_", "/", "_", ",", "_").Replace(key)
	path := filepath.Join(DataDir(), fmt.Sprintf("test-gmm-%s-%s.gob.gz", name, src))
	m, err := gmm.Load(path)
	if err != nil {
		ds := Load(t, spec, data.Train).Head(n)
		if m, err = gmm.Fit(ds, gmm.FitOptions{Rank: 64}); err != nil {
			t.Fatalf("fitting the test mixture of %s: %v", spec, err)
		}
		if err := m.Save(path); err != nil {
			t.Logf("could not cache the test mixture: %v", err)
		}
	}
	mixtures[key] = m
	return m
}

// sourceHash hashes the non-test Go files of a package directory.
func sourceHash(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write([]byte(filepath.Base(f)))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:6]), nil
}
