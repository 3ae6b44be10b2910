package eval

import (
	"context"
	"fmt"
	"sort"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/detector"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/internal/featcache"
	"github.com/eigenscore/eigenscore/method"
	"github.com/eigenscore/eigenscore/metrics"
	"github.com/eigenscore/eigenscore/noise"
	"github.com/eigenscore/eigenscore/schedule"
)

// The paper protocol (method.md §3) chooses EigenScore's timestep window
// and aggregation by AUROC on a validation split that contains OOD images.
// Here the ID and OOD test images are each split in half with the seed:
// the windows are compared on the validation halves, and every method of
// the run is reported on the test halves only, so no reported image was
// used for a choice. The detector is fitted on ID training images as in the
// deploy protocol. Results are labelled as using OOD data.

// PaperSigmas are the reference protocol's 13 levels, DDPM timesteps
// 100, 150, …, 700.
func PaperSigmas() []float64 {
	var ts []int
	for t := 100; t <= 700; t += 50 {
		ts = append(ts, t)
	}
	s, _ := schedule.DDPM.Sigmas(ts)
	return s
}

// runPaper adds PaperMethod to res and returns the test halves' indices.
func runPaper(ctx context.Context, cfg Config, m *eigenscore.Model, sets *Sets, cache featcache.Cache, progress method.Progress, res *Result) (idTest, oodTest []int, err error) {
	s := cfg.Settings()
	s.Sigmas = PaperSigmas()
	pf, err := extractRoles(ctx, method.Spectra, s, m, sets, cache, progress)
	if err != nil {
		return nil, nil, err
	}
	res.Paper = pf
	var nfe int64
	var secs float64
	for _, f := range pf {
		nfe += f.NFE
		secs += f.Seconds
	}
	idVal, idTest := halves(sets.ID.Len(), cfg.Seed, ID)
	oodVal, oodTest := halves(sets.OOD.Len(), cfg.Seed, OOD)
	a, b, agg, valAUROC := paperSelect(cfg, pf[Fit].Sums, pick(pf[ID].Sums, idVal), pick(pf[OOD].Sums, oodVal))
	names := method.Names("eig", s.Sigmas[a:b+1], agg, 1)
	det, err := detector.Fit(names, window(pf[Fit].Sums, a, b, agg), cfg.Acceptance, detector.OneSided)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", PaperMethod, err)
	}
	mr, err := score(cfg, det, detector.OneSided, window(pick(pf[ID].Sums, idTest), a, b, agg), window(pick(pf[OOD].Sums, oodTest), a, b, agg))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", PaperMethod, err)
	}
	mr.UsesOOD = true
	mr.Note = "paper protocol: timestep window and aggregation chosen by AUROC on OOD validation data"
	mr.NFEPerImage = float64(nfe) / float64(res.Images)
	mr.Seconds = secs
	mr.Selected = map[string]any{"timesteps": [2]int{100 + 50*a, 100 + 50*b}, "aggregation": agg, "validation_auroc": valAUROC,
		"validation_images": map[string]int{"id": len(idVal), "ood": len(oodVal)}}
	res.Methods[PaperMethod] = *mr
	return idTest, oodTest, nil
}

// halves splits 0..n-1 into two disjoint seeded halves (validation, test).
func halves(n int, seed uint64, role Role) (val, test []int) {
	p := noise.Stream(seed, noise.Split, noise.RoleKey(string(role)), 0).Perm(n)
	val, test = append([]int(nil), p[:n/2]...), append([]int(nil), p[n/2:]...)
	sort.Ints(val)
	sort.Ints(test)
	return val, test
}

// pick returns the elements of xs at the indices, in that order.
func pick[T any](xs []T, idx []int) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = xs[j]
	}
	return out
}

// window aggregates each image's draw sums over levels a..b.
func window(sums [][][]float64, a, b int, agg features.Aggregation) [][]float64 {
	out := make([][]float64, len(sums))
	for i, perSigma := range sums {
		for j := a; j <= b; j++ {
			out[i] = append(out[i], features.Aggregate(agg, perSigma[j]))
		}
	}
	return out
}

// paperSelect returns the window (level indices a..b) and aggregation with
// the best validation AUROC of the one-sided score, and that AUROC.
func paperSelect(cfg Config, fit, idVal, oodVal [][][]float64) (a, b int, agg features.Aggregation, best float64) {
	levels := len(fit[0])
	best = -1
	for _, ag := range []features.Aggregation{features.Mean, features.Median} {
		for i := 0; i < levels; i++ {
			for j := i; j < levels; j++ {
				names := make([]string, j-i+1)
				for k := range names {
					names[k] = fmt.Sprintf("level%d", i+k)
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
