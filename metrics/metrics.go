// Package metrics scores an OOD detector on labelled scores.
//
// Conventions, as in OpenOOD and PyTorch-OOD: OOD is the positive class and a
// higher score means more OOD.
//
//   - AUROC is the probability that a random OOD score exceeds a random ID
//     score, ties counting one half (the Mann–Whitney statistic).
//   - AUPR-Out is the average precision with OOD as the positive class;
//     AUPR-In the same with ID positive and scores negated. Average precision
//     is Σ_n (R_n − R_{n−1})·P_n over the distinct thresholds (no
//     interpolation), as scikit-learn computes it.
//   - FPR@95TPR: the threshold is the largest score t such that at least 95%
//     of OOD scores are ≥ t; the result is the fraction of ID scores ≥ t.
package metrics

import (
	"github.com/eigenscore/eigenscore/noise"
	"gonum.org/v1/gonum/stat"

	"math"
	"sort"
)

// Report holds the metrics of one detector on one ID/OOD pair.
type Report struct {
	AUROC   float64 `json:"auroc"`
	AUPRIn  float64 `json:"aupr_in"`
	AUPROut float64 `json:"aupr_out"`
	FPR95   float64 `json:"fpr95"`
}

// Evaluate computes every metric of Report.
func Evaluate(id, ood []float64) Report {
	negID := make([]float64, len(id))
	negOOD := make([]float64, len(ood))
	for i, v := range id {
		negID[i] = -v
	}
	for i, v := range ood {
		negOOD[i] = -v
	}
	return Report{
		AUROC:   AUROC(id, ood),
		AUPROut: AveragePrecision(ood, id),
		AUPRIn:  AveragePrecision(negID, negOOD),
		FPR95:   FPRAtTPR(id, ood, 0.95),
	}
}

// AUROC is the Mann–Whitney estimate of P(ood > id) + ½·P(ood = id), by
// ranking: O((m+n) log(m+n)).
func AUROC(id, ood []float64) float64 {
	type s struct {
		v   float64
		ood bool
	}
	all := make([]s, 0, len(id)+len(ood))
	for _, v := range id {
		all = append(all, s{v, false})
	}
	for _, v := range ood {
		all = append(all, s{v, true})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })
	// Sum the (average, for ties) ranks of the OOD scores.
	rankSum := 0.0
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j
		for l := i; l < j; l++ {
			if all[l].ood {
				rankSum += avg
			}
		}
		i = j
	}
	m, n := float64(len(ood)), float64(len(id))
	return (rankSum - m*(m+1)/2) / (m * n)
}

// AveragePrecision is the average precision of retrieving pos among pos ∪
// neg by descending score.
func AveragePrecision(pos, neg []float64) float64 {
	type s struct {
		v   float64
		pos bool
	}
	all := make([]s, 0, len(pos)+len(neg))
	for _, v := range pos {
		all = append(all, s{v, true})
	}
	for _, v := range neg {
		all = append(all, s{v, false})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v })
	tp, fp := 0.0, 0.0
	ap, prevRecall := 0.0, 0.0
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			if all[j].pos {
				tp++
			} else {
				fp++
			}
			j++
		}
		recall := tp / float64(len(pos))
		ap += (recall - prevRecall) * tp / (tp + fp)
		prevRecall = recall
		i = j
	}
	return ap
}

// FPRAtTPR returns the fraction of ID scores at or above the largest
// threshold that still flags at least tpr of the OOD scores.
func FPRAtTPR(id, ood []float64, tpr float64) float64 {
	o := append([]float64(nil), ood...)
	sort.Sort(sort.Reverse(sort.Float64Slice(o)))
	need := int(math.Ceil(tpr*float64(len(o)) - 1e-9))
	if need < 1 {
		need = 1
	}
	t := o[need-1]
	fp := 0
	for _, v := range id {
		if v >= t {
			fp++
		}
	}
	return float64(fp) / float64(len(id))
}

// Interval is a two-sided confidence interval.
type Interval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// Bootstrap returns percentile 95% intervals for every metric, resampling ID
// and OOD scores independently with replacement reps times.
func Bootstrap(id, ood []float64, reps int, seed uint64) map[string]Interval {
	rng := noise.Stream(seed, noise.Bootstrap, 0, 0)
	var au, ain, aout, fpr []float64
	bi := make([]float64, len(id))
	bo := make([]float64, len(ood))
	for r := 0; r < reps; r++ {
		for i := range bi {
			bi[i] = id[rng.IntN(len(id))]
		}
		for i := range bo {
			bo[i] = ood[rng.IntN(len(ood))]
		}
		rep := Evaluate(bi, bo)
		au, ain, aout, fpr = append(au, rep.AUROC), append(ain, rep.AUPRIn), append(aout, rep.AUPROut), append(fpr, rep.FPR95)
	}
	return map[string]Interval{"auroc": percentile95(au), "aupr_in": percentile95(ain), "aupr_out": percentile95(aout), "fpr95": percentile95(fpr)}
}

func percentile95(x []float64) Interval {
	sort.Float64s(x)
	at := func(q float64) float64 { return x[int(math.Round(q*float64(len(x)-1)))] }
	return Interval{Lo: at(0.025), Hi: at(0.975)}
}

// Quantile returns the q-quantile of x by linear interpolation between order
// statistics (type 7, the default of R and NumPy).
func Quantile(x []float64, q float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// MeanStd returns the mean and the sample standard deviation of x.
func MeanStd(x []float64) (mean, sd float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	if len(x) < 2 {
		return mean, 0
	}
	for _, v := range x {
		sd += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(sd / float64(len(x)-1))
}

// Spearman returns the rank correlation of x and y: the Pearson correlation
// of their ranks, tied values sharing their mean rank.
func Spearman(x, y []float64) float64 {
	if len(x) != len(y) {
		panic("metrics: Spearman of slices of different lengths")
	}
	return stat.Correlation(ranks(x), ranks(y), nil)
}

// ranks returns the 1-based ranks of x, ties averaged.
func ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		for l := i; l <= j; l++ {
			r[idx[l]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	return r
}
