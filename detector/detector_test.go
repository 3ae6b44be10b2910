package detector

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/eigenscore/eigenscore/metrics"
	"github.com/eigenscore/eigenscore/spectrum"
)

func lognormalRows(rng *rand.Rand, n int, shift float64) [][]float64 {
	rows := make([][]float64, n)
	for i := range rows {
		common := rng.NormFloat64()
		r := make([]float64, 3)
		for j := range r {
			r[j] = math.Exp(shift + 0.3*common + 0.1*rng.NormFloat64() + float64(j))
		}
		rows[i] = r
	}
	return rows
}

func TestScoresAndThreshold(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	names := []string{"a", "b", "c"}
	det, err := Fit(names, lognormalRows(rng, 2000, 0), 0.95, TwoSided)
	if err != nil {
		t.Fatal(err)
	}
	idTest := lognormalRows(rng, 2000, 0)
	small := lognormalRows(rng, 500, -1) // spectra smaller than ID
	large := lognormalRows(rng, 500, 1)
	for _, s := range Scores {
		id, _ := det.ScoreAll(idTest, s)
		// Held-out ID acceptance at the 95% threshold: binomial sd with
		// n=2000 is 0.5%, so 2% is four standard deviations.
		acc := 0
		for _, v := range id {
			if !det.Flag(v, s) {
				acc++
			}
		}
		if rate := float64(acc) / 2000; math.Abs(rate-0.95) > 0.02 {
			t.Errorf("%s: held-out ID acceptance %.3f, want 0.95 ± 0.02", s, rate)
		}
		lo, _ := det.ScoreAll(small, s)
		hi, _ := det.ScoreAll(large, s)
		aSmall, aLarge := metrics.AUROC(id, lo), metrics.AUROC(id, hi)
		t.Logf("%s: AUROC smaller-spectrum OOD %.3f, larger %.3f", s, aSmall, aLarge)
		if aLarge < 0.95 {
			t.Errorf("%s misses larger spectra: AUROC %.3f", s, aLarge)
		}
		if s == TwoSided && aSmall < 0.95 {
			t.Errorf("two-sided misses smaller spectra: AUROC %.3f", aSmall)
		}
		if s == OneSided && aSmall > 0.05 {
			t.Errorf("one-sided should rank smaller spectra as ID, got AUROC %.3f", aSmall)
		}
	}
	path := filepath.Join(t.TempDir(), "det.json")
	if err := det.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := det.Score(idTest[0], TwoSided)
	b, _ := back.Score(idTest[0], TwoSided)
	if a != b {
		t.Errorf("loaded detector scores %v, want %v", b, a)
	}
	if _, err := det.Score([]float64{1, 2}, OneSided); err == nil {
		t.Error("wrong feature count accepted")
	}
	if _, err := det.Score([]float64{1, math.NaN(), 2}, OneSided); err == nil {
		t.Error("NaN feature accepted")
	}
}

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
