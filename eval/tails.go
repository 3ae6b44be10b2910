package eval

import (
	"context"
	"fmt"
	"slices"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/method"
)

// Tail is a test image from a histogram tail, explained.
type Tail struct {
	Role   Role              `json:"role"`
	Index  int               `json:"index"` // in the role's test set
	Most   bool              `json:"most_ood"`
	Image  []float32         `json:"-"`
	Result eigenscore.Result `json:"-"`
}

// TailMethod is the method whose scores pick the tails: the recommended
// detector when it was run, else the paper's EigenScore; "" when neither
// was (the explanation needs the spectra).
func TailMethod(res *Result) method.Method {
	for _, m := range []method.Method{method.Combined, method.EigenScore} {
		if _, ok := res.Methods[m]; ok {
			return m
		}
	}
	return ""
}

// ExplainTails explains the n most and n least OOD test images of each set
// under TailMethod: it fits that method with the library (eigenscore.Fit on
// the fit set with the run's settings, the detector `eigenscore fit` would
// make) and scores the tail images with explanations. Deploy protocol only:
// the paper protocol reports on test halves whose indices are not kept.
func ExplainTails(ctx context.Context, cfg Config, m *eigenscore.Model, sets *Sets, res *Result, n int) ([]Tail, error) {
	meth := TailMethod(res)
	if n <= 0 || meth == "" || cfg.Protocol != Deploy {
		return nil, nil
	}
	est := cfg.Estimator
	opts := &eigenscore.Options{Method: meth, Estimator: &est, Draws: cfg.Draws, Sigmas: cfg.Sigmas,
		Aggregation: cfg.Aggregation, Probes: cfg.Probes, Acceptance: cfg.Acceptance, Seed: cfg.Seed}
	det, err := eigenscore.Fit(ctx, m, sets.Fit, opts)
	if err != nil {
		return nil, fmt.Errorf("explaining the tails: %w", err)
	}
	var out []Tail
	for _, r := range []Role{ID, OOD} {
		scores := res.Methods[meth].IDScores
		if r == OOD {
			scores = res.Methods[meth].OODScores
		}
		idx, most := tails(scores, n)
		// The library scores them as `eigenscore score` would: with the
		// noise of a scored image, not of the evaluation's test role, so a
		// panel's score can differ from the histogram's by estimator noise.
		ds := sets.ByRole(r).Subset(idx)
		scored, err := det.Score(ctx, m, ds, &eigenscore.ScoreOptions{Explain: true})
		if err != nil {
			return nil, fmt.Errorf("explaining the %s tails: %w", r, err)
		}
		for k, i := range idx {
			out = append(out, Tail{Role: r, Index: i, Most: most[k], Image: ds.Image(k), Result: scored[k]})
		}
	}
	return out, nil
}

// tails returns the indices of the n largest scores (most OOD first) and
// then the n smallest, without repeats, and which of them are the largest.
func tails(scores []float64, n int) ([]int, []bool) {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case scores[a] > scores[b]:
			return -1
		case scores[a] < scores[b]:
			return 1
		}
		return 0
	})
	n = min(n, len(order)/2)
	idx := append(slices.Clone(order[:n]), order[len(order)-n:]...)
	most := make([]bool, len(idx))
	for k := range n {
		most[k] = true
	}
	return idx, most
}
