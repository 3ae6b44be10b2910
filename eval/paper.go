package eval

import (
	"math/rand/v2"
	"sort"

	"github.com/eigenscore/eigenscore/detector"
	"github.com/eigenscore/eigenscore/metrics"
)

// The paper protocol (method.md §3) chooses EigenScore's timestep window
// and aggregation by AUROC on a validation split that contains OOD images.
// Here the ID and OOD test images are each split in half with the seed:
// the windows are compared on the validation halves, and every method of
// the run is reported on the test halves only, so no reported image was
// used for a choice. The detector is fitted on ID training images as in the
// deploy protocol. Results are labelled as using OOD data.

// halves splits 0..n-1 into two disjoint seeded halves (validation, test).
func halves(n int, seed uint64, role string) (val, test []int) {
	rng := rand.New(rand.NewPCG(seed, 0xBA1F+uint64(len(role))))
	p := rng.Perm(n)
	val, test = append([]int(nil), p[:n/2]...), append([]int(nil), p[n/2:]...)
	sort.Ints(val)
	sort.Ints(test)
	return val, test
}

func pick(rows [][]float64, idx []int) [][]float64 {
	out := make([][]float64, len(idx))
	for i, j := range idx {
		out[i] = rows[j]
	}
	return out
}

// window aggregates each image's draw sums over levels a..b.
func window(sums [][][]float64, a, b int, agg detector.Aggregation) [][]float64 {
	out := make([][]float64, len(sums))
	for i, perSigma := range sums {
		for j := a; j <= b; j++ {
			out[i] = append(out[i], detector.Aggregate(agg, perSigma[j]))
		}
	}
	return out
}

// paperSelect returns the window (level indices a..b) and aggregation with
// the best validation AUROC of the one-sided score, and that AUROC.
func paperSelect(cfg Config, fit, idVal, oodVal [][][]float64) (a, b int, agg detector.Aggregation, best float64) {
	levels := len(fit[0])
	best = -1
	for _, ag := range []detector.Aggregation{detector.Mean, detector.Median} {
		for i := 0; i < levels; i++ {
			for j := i; j < levels; j++ {
				names := make([]string, j-i+1)
				for k := range names {
					names[k] = "level"
				}
				det, err := detector.Fit(names, window(fit, i, j, ag), cfg.Acceptance, detector.OneSided)
				if err != nil {
					continue
				}
				idS, err1 := det.ScoreAll(window(idVal, i, j, ag), detector.OneSided)
				oodS, err2 := det.ScoreAll(window(oodVal, i, j, ag), detector.OneSided)
				if err1 != nil || err2 != nil {
					continue
				}
				if au := metrics.AUROC(idS, oodS); au > best {
					a, b, agg, best = i, j, ag, au
				}
			}
		}
	}
	return a, b, agg, best
}
