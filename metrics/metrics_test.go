package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

func bruteAUROC(id, ood []float64) float64 {
	s := 0.0
	for _, o := range ood {
		for _, i := range id {
			switch {
			case o > i:
				s++
			case o == i:
				s += 0.5
			}
		}
	}
	return s / float64(len(id)*len(ood))
}

func TestAUROCMatchesPairwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		id := make([]float64, 1+rng.IntN(40))
		ood := make([]float64, 1+rng.IntN(40))
		for i := range id {
			id[i] = float64(rng.IntN(10)) // many ties
		}
		for i := range ood {
			ood[i] = float64(rng.IntN(12))
		}
		if got, want := AUROC(id, ood), bruteAUROC(id, ood); math.Abs(got-want) > 1e-12 {
			t.Fatalf("AUROC %v, pairwise %v", got, want)
		}
	}
}

func TestHandWorked(t *testing.T) {
	// ID {1,2,3}, OOD {2,4}: pairs (2>1, 2=2, 2<3, 4>all) = 1+0.5+0+3 = 4.5/6.
	id, ood := []float64{1, 2, 3}, []float64{2, 4}
	if got := AUROC(id, ood); math.Abs(got-0.75) > 1e-12 {
		t.Errorf("AUROC = %v, want 0.75", got)
	}
	// Descending: 4(ood) 3(id) 2(ood,id tie) 1(id).
	// Thresholds: 4 → P=1, R=.5; 3 → P=.5, R=.5; 2 → P=2/4, R=1; 1 → R=1.
	// AP-Out = .5·1 + .5·.5 = .75.
	if got := AveragePrecision(ood, id); math.Abs(got-0.75) > 1e-12 {
		t.Errorf("AUPR-Out = %v, want 0.75", got)
	}
	// ID positive, scores negated: order -1(id) -2(tie id,ood) -3(id) -4(ood).
	// -1: P=1 R=1/3; -2: P=2/3 R=2/3; -3: P=3/4 R=1. AP = 1/3 + 1/3·2/3 + 1/3·3/4.
	want := 1.0/3 + 2.0/9 + 0.25
	if got := Evaluate(id, ood).AUPRIn; math.Abs(got-want) > 1e-12 {
		t.Errorf("AUPR-In = %v, want %v", got, want)
	}
	// 95% of 2 OOD scores needs both: threshold 2; ID ≥ 2 are {2,3}: 2/3.
	if got := FPRAtTPR(id, ood, 0.95); math.Abs(got-2.0/3) > 1e-12 {
		t.Errorf("FPR95 = %v, want 2/3", got)
	}
	// Perfect separation.
	r := Evaluate([]float64{0, 1, 2}, []float64{5, 6})
	if r.AUROC != 1 || r.AUPROut != 1 || r.AUPRIn != 1 || r.FPR95 != 0 {
		t.Errorf("perfect separation gave %+v", r)
	}
	// Inverted score sign gives AUROC 1 − AUROC.
	if got := AUROC([]float64{5, 6}, []float64{0, 1, 2}); got != 0 {
		t.Errorf("inverted AUROC = %v, want 0", got)
	}
}

func TestFPR95With20OOD(t *testing.T) {
	ood := make([]float64, 20)
	for i := range ood {
		ood[i] = float64(i + 1) // 1..20; 95% of 20 = 19 → threshold 2
	}
	id := []float64{0, 1, 1.5, 2, 3}
	if got := FPRAtTPR(id, ood, 0.95); math.Abs(got-0.4) > 1e-12 {
		t.Errorf("FPR95 = %v, want 0.4 (ID scores 2 and 3 at or above the threshold 2)", got)
	}
}

func TestBootstrapCoversEstimate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	id, ood := make([]float64, 200), make([]float64, 200)
	for i := range id {
		id[i] = rng.NormFloat64()
		ood[i] = rng.NormFloat64() + 1
	}
	ci := Bootstrap(id, ood, 500, 1)
	a := AUROC(id, ood)
	if !(ci["auroc"].Lo < a && a < ci["auroc"].Hi) || ci["auroc"].Hi-ci["auroc"].Lo > 0.15 {
		t.Errorf("AUROC %v, CI %+v", a, ci["auroc"])
	}
	// Same seed, same interval.
	if ci2 := Bootstrap(id, ood, 500, 1); ci2["auroc"] != ci["auroc"] {
		t.Error("bootstrap not deterministic")
	}
}

func TestQuantile(t *testing.T) {
	x := []float64{4, 1, 3, 2}
	if q := Quantile(x, 0.5); q != 2.5 {
		t.Errorf("median %v", q)
	}
	if q := Quantile(x, 1); q != 4 {
		t.Errorf("max %v", q)
	}
}

func TestSpearman(t *testing.T) {
	// Monotone but not linear: rank correlation 1, reversed −1.
	x := []float64{1, 2, 3, 4, 5}
	if got := Spearman(x, []float64{1, 4, 9, 16, 100}); math.Abs(got-1) > 1e-12 {
		t.Errorf("monotone: %v, want 1", got)
	}
	if got := Spearman(x, []float64{5, 4, 3, 2, -10}); math.Abs(got+1) > 1e-12 {
		t.Errorf("reversed: %v, want -1", got)
	}
	// Hand-worked with a tie: ranks (1, 2, 3, 4) and (1, 2.5, 2.5, 4);
	// sample variances 5/3 and 3/2, covariance 3/2, ρ = 1.5/√2.5.
	got := Spearman([]float64{1, 2, 3, 4}, []float64{10, 20, 20, 30})
	if want := 1.5 / math.Sqrt(2.5); math.Abs(got-want) > 1e-12 {
		t.Errorf("tie: %v, want %v", got, want)
	}
}
