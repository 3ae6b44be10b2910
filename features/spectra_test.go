package features

import (
	"testing"

	"github.com/eigenscore/eigenscore/spectrum"
)

func TestFeaturesAggregate(t *testing.T) {
	mk := func(v ...float64) spectrum.Draw { return spectrum.Draw{Values: v} }
	sp := &Spectra{Sigmas: []float64{1, 2}, Draws: [][][]spectrum.Draw{{
		{mk(3, 2, 1), mk(1, 1, 1), mk(10, 0, 0)}, // sums 6, 3, 10
		{mk(1, 0, 0), mk(2, 0, 0), mk(4, 0, 0)},  // sums 1, 2, 4
	}}}
	if f := sp.Features(Mean)[0]; f[0] != 19.0/3 || f[1] != 7.0/3 {
		t.Errorf("mean features %v", f)
	}
	if f := sp.Features(Median)[0]; f[0] != 6 || f[1] != 2 {
		t.Errorf("median features %v", f)
	}
	if f := sp.Features(All)[0]; len(f) != 6 || f[2] != 10 || f[3] != 1 {
		t.Errorf("all features %v", f)
	}
}
