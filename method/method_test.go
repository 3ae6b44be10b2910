package method

import (
	"math"
	"slices"
	"testing"

	"github.com/eigenscore/eigenscore/features"
)

// Collapsing enters a provider as one column, the geometric mean of its
// columns, and the joined names are the ones FeatureNames predicts.
func TestJoinCollapsesAndNames(t *testing.T) {
	s := Settings{Sigmas: []float64{0.5, 1, 2}, Draws: 1, Aggregation: features.Mean}
	spec := &Features{Rows: [][]float64{{1, 4, 16}, {2, 2, 2}}, Names: Spectra.FeatureNames(s)}
	mse := &Features{Rows: [][]float64{{1, 1, 1, 1, 1, 1}, {2, 2, 2, 2, 2, 2}}, Names: DenoisingErrors.FeatureNames(s)}
	rows, names, err := EigenScorePlus1D.Join(map[Provider]*Features{Spectra: spec, DenoisingErrors: mse})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(rows[0][0]-4) > 1e-12 || math.Abs(rows[1][0]-2) > 1e-12 || len(rows[0]) != 7 {
		t.Errorf("rows %v, want the geometric means 4 and 2 first, then 6 errors", rows)
	}
	if want := EigenScorePlus1D.FeatureNames(s); !slices.Equal(names, want) {
		t.Errorf("names %v, FeatureNames says %v", names, want)
	}
	if _, _, err := EigenScorePlus.Join(map[Provider]*Features{Spectra: spec}); err == nil {
		t.Error("a missing provider was accepted")
	}
}

func TestParse(t *testing.T) {
	for _, m := range All() {
		if got, err := Parse(string(m)); err != nil || got != m {
			t.Errorf("%s: %v %v", m, got, err)
		}
		if m.Info().Providers == nil {
			t.Errorf("%s has no providers", m)
		}
	}
	if _, err := Parse("magic"); err == nil {
		t.Error("unknown method accepted")
	}
	if l, err := ParseList("eigenscore, msma"); err != nil || !slices.Equal(l, []Method{EigenScore, MSMA}) {
		t.Errorf("ParseList: %v %v", l, err)
	}
}
