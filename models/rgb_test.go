//go:build rgb

package models_test

import "testing"

// The colour model against the mixture fitted to its 5,434 training images
// (3,072 dimensions: the fit takes minutes, so this runs with `make
// test-rgb`, after `make data-rgb`, not in CI).
func TestColourModelBeatsMixture(t *testing.T) { beatsMixture(t, "clipart") }
