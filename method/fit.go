package method

import (
	"fmt"

	"github.com/eigenscore/eigenscore/conformal"
	"github.com/eigenscore/eigenscore/detector"
)

// Folds is the number of cross-fitting folds that give every fit image an
// out-of-fold score for the conformal calibration.
const Folds = 5

// Part is one scored method of a fitted detector: its ID statistics
// (fitted on all fit images) and the conformal calibration of its score
// (the fit images' out-of-fold scores).
type Part struct {
	Method      Method                `json:"method"`
	Stats       *detector.Detector    `json:"statistics"`
	Calibration conformal.Calibration `json:"calibration"`
}

// Fitted is a method fitted on ID images: one Part, or one per member of a
// combined method, and the calibration of the method's score.
type Fitted struct {
	Method      Method                `json:"method"`
	Parts       []Part                `json:"parts"`
	Calibration conformal.Calibration `json:"calibration"`
}

// Scored is one image's outcome under a fitted method.
type Scored struct {
	Score  float64 // the method's score: higher is more OOD
	PValue float64 // conformal p-value of Score against the fit images
	// Parts are the members' scores and p-values of a combined method.
	Parts []PartScore
}

// PartScore is a member's score and p-value.
type PartScore struct {
	Method Method  `json:"method"`
	Score  float64 `json:"score"`
	PValue float64 `json:"p_value"`
}

// Fit fits the method on the feature rows of ID images. Each part's
// statistics are fitted on all images, its calibration from out-of-fold
// scores over Folds folds. A combined method's score is the Cauchy
// combination of its members' p-values; a fit image's member p-values are
// taken against the other fit images' out-of-fold scores, and the
// combination's calibration from those. acceptance sets the statistics'
// in-sample thresholds, which Fitted does not use.
func (m Method) Fit(feats map[Provider]*Features, acceptance float64) (*Fitted, error) {
	members := m.Info().Members
	if members == nil {
		part, oof, err := fitPart(m, feats, acceptance)
		if err != nil {
			return nil, err
		}
		return &Fitted{Method: m, Parts: []Part{*part}, Calibration: oofCalibration(oof)}, nil
	}
	f := &Fitted{Method: m}
	var oofs [][]float64
	for _, mm := range members {
		part, oof, err := fitPart(mm, feats, acceptance)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mm, err)
		}
		f.Parts = append(f.Parts, *part)
		oofs = append(oofs, oof)
	}
	n := len(oofs[0])
	combined := make([]float64, n)
	ps := make([]float64, len(members))
	for i := range n {
		for j, oof := range oofs {
			ps[j] = leaveOneOut(oof, i)
		}
		combined[i] = conformal.Cauchy(ps)
	}
	var err error
	f.Calibration, err = conformal.New(combined)
	return f, err
}

func oofCalibration(oof []float64) conformal.Calibration {
	c, _ := conformal.New(oof) // finite: detector scores are checked
	return c
}

// leaveOneOut is image i's conformal p-value against the other scores.
func leaveOneOut(scores []float64, i int) float64 {
	ge := 0
	for j, s := range scores {
		if j != i && s >= scores[i] {
			ge++
		}
	}
	return float64(1+ge) / float64(len(scores))
}

// fitPart fits a single method's statistics on all rows and returns its
// calibration and the out-of-fold scores.
func fitPart(m Method, feats map[Provider]*Features, acceptance float64) (*Part, []float64, error) {
	rows, names, err := m.Join(feats)
	if err != nil {
		return nil, nil, err
	}
	rule := m.Score()
	stats, err := detector.Fit(names, rows, acceptance, rule)
	if err != nil {
		return nil, nil, err
	}
	oof := make([]float64, len(rows))
	for _, fold := range conformal.Folds(len(rows), Folds) {
		train := make([][]float64, 0, len(rows)-len(fold))
		held := map[int]bool{}
		for _, i := range fold {
			held[i] = true
		}
		for i, r := range rows {
			if !held[i] {
				train = append(train, r)
			}
		}
		d, err := detector.Fit(names, train, acceptance, rule)
		if err != nil {
			return nil, nil, fmt.Errorf("cross-fitting: %w", err)
		}
		for _, i := range fold {
			if oof[i], err = d.Score(rows[i], rule); err != nil {
				return nil, nil, fmt.Errorf("cross-fitting: %w", err)
			}
		}
	}
	cal, err := conformal.New(oof)
	if err != nil {
		return nil, nil, err
	}
	return &Part{Method: m, Stats: stats, Calibration: cal}, oof, nil
}

// Score scores every image whose features are given.
func (f *Fitted) Score(feats map[Provider]*Features) ([]Scored, error) {
	var out []Scored
	for k, part := range f.Parts {
		rows, _, err := part.Method.Join(feats)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([]Scored, len(rows))
		}
		rule := part.Method.Score()
		for i, r := range rows {
			s, err := part.Stats.Score(r, rule)
			if err != nil {
				return nil, fmt.Errorf("image %d: %s: %w", i, part.Method, err)
			}
			ps := PartScore{Method: part.Method, Score: s, PValue: part.Calibration.PValue(s)}
			if len(f.Parts) == 1 {
				out[i].Score, out[i].PValue = ps.Score, ps.PValue
				continue
			}
			if k == 0 {
				out[i].Parts = make([]PartScore, 0, len(f.Parts))
			}
			out[i].Parts = append(out[i].Parts, ps)
		}
	}
	if len(f.Parts) > 1 {
		ps := make([]float64, len(f.Parts))
		for i := range out {
			for j, p := range out[i].Parts {
				ps[j] = p.PValue
			}
			out[i].Score = conformal.Cauchy(ps)
			out[i].PValue = f.Calibration.PValue(out[i].Score)
		}
	}
	return out, nil
}

// Validate checks a fitted method read from a file: the parts match the
// method (its members, for a combined one), each part's statistics and
// calibration are valid and of the same number of fit images.
func (f *Fitted) Validate() error {
	want := []Method{f.Method}
	if mem := f.Method.Info().Members; mem != nil {
		want = mem
	}
	if len(f.Parts) != len(want) {
		return fmt.Errorf("%d parts, method %s has %d", len(f.Parts), f.Method, len(want))
	}
	for i, p := range f.Parts {
		if p.Method != want[i] {
			return fmt.Errorf("parts[%d] is %s, want %s", i, p.Method, want[i])
		}
		if p.Stats == nil {
			return fmt.Errorf("parts[%d].statistics missing", i)
		}
		if err := p.Stats.Validate(); err != nil {
			return fmt.Errorf("parts[%d].statistics: %w", i, err)
		}
		if p.Stats.Default != p.Method.Score() {
			return fmt.Errorf("parts[%d].statistics score %s, method %s uses %s", i, p.Stats.Default, p.Method, p.Method.Score())
		}
		if err := p.Calibration.Validate(); err != nil {
			return fmt.Errorf("parts[%d].calibration: %w", i, err)
		}
		if len(p.Calibration.Scores) != p.Stats.FitSize {
			return fmt.Errorf("parts[%d].calibration has %d scores for %d fit images", i, len(p.Calibration.Scores), p.Stats.FitSize)
		}
	}
	if err := f.Calibration.Validate(); err != nil {
		return fmt.Errorf("calibration: %w", err)
	}
	if len(f.Calibration.Scores) != f.Parts[0].Stats.FitSize {
		return fmt.Errorf("calibration has %d scores for %d fit images", len(f.Calibration.Scores), f.Parts[0].Stats.FitSize)
	}
	return nil
}
