// Package testenv finds the data that tests run on. Tests fail, never skip,
// when it is missing: CI installs it with `make data`.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
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

var mixtureOnce sync.Once
var mixture *gmm.Mixture
var mixtureErr error

// FashionMixture is the Gaussian mixture fitted to the first 10,000
// Fashion-MNIST training images (about 1,000 per class), cached on disk in
// the data directory because fitting takes tens of seconds.
func FashionMixture(t testing.TB) *gmm.Mixture {
	t.Helper()
	mixtureOnce.Do(func() {
		path := filepath.Join(DataDir(), "test-gmm-fashion-mnist-10k.gob.gz")
		if m, err := gmm.Load(path); err == nil {
			mixture = m
			return
		}
		sp, _ := data.ParseSpec("fashion-mnist")
		ds, err := data.Load(DataDir(), sp, data.Train)
		if err != nil {
			mixtureErr = err
			return
		}
		mixture, mixtureErr = gmm.Fit(ds.Head(10000), gmm.FitOptions{})
		if mixtureErr == nil {
			mixtureErr = mixture.Save(path)
		}
	})
	if mixtureErr != nil {
		t.Fatalf("fitting the test mixture: %v (run `make data` first)", mixtureErr)
	}
	return mixture
}
