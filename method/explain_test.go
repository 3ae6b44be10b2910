package method

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/internal/featcache"
	"github.com/eigenscore/eigenscore/spectrum"
)

// Chunks folded by Welford's rule and merged by Chan et al.'s give the
// two-pass mean and sample standard deviation of all maps.
func TestMapStatsMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var all [][][]float64 // [image][level][pixel]
	var total MapStats
	for _, size := range []int{5, 1, 7} {
		var chunk MapStats
		for range size {
			maps := [][]float64{make([]float64, 4), make([]float64, 4)}
			for _, m := range maps {
				for p := range m {
					m[p] = rng.ExpFloat64() * 1e-3
				}
			}
			chunk.add(maps)
			all = append(all, maps)
		}
		total.merge(&chunk)
	}
	sd := total.SD()
	for j := range 2 {
		for p := range 4 {
			mean, ss := 0.0, 0.0
			for _, m := range all {
				mean += m[j][p] / float64(len(all))
			}
			for _, m := range all {
				ss += (m[j][p] - mean) * (m[j][p] - mean)
			}
			want := math.Sqrt(ss / float64(len(all)-1))
			if total.N != 13 || math.Abs(total.Mean[j][p]-mean) > 1e-15 || math.Abs(sd[j][p]-want) > 1e-12*want {
				t.Errorf("level %d pixel %d: n %d mean %v sd %v, two-pass %v %v", j, p, total.N, total.Mean[j][p], sd[j][p], mean, want)
			}
		}
	}
}

// diagonal is the exact denoiser of the Gaussian prior N(0, diag(s)):
// D(y) = s/(s+σ²)·y, so Cov[x|y] = diag(s·σ²/(s+σ²)), whose top-k
// eigenvectors are the unit vectors of the k largest s.
type diagonal struct{ s []float64 }

func (d diagonal) Shape() denoise.Shape { return denoise.Shape{C: 1, H: 3, W: 3} }

func (d diagonal) Denoise(ctx context.Context, x, sigma, out []float32) error {
	x64, out64 := make([]float64, len(x)), make([]float64, len(out))
	for i, v := range x {
		x64[i] = float64(v)
	}
	s64 := make([]float64, len(sigma))
	for i, v := range sigma {
		s64[i] = float64(v)
	}
	if err := d.Denoise64(ctx, x64, s64, out64); err != nil {
		return err
	}
	for i, v := range out64 {
		out[i] = float32(v)
	}
	return nil
}

func (d diagonal) Denoise64(_ context.Context, x, sigma, out []float64) error {
	if err := denoise.CheckBatch(d.Shape(), x, sigma, out); err != nil {
		return err
	}
	for i := range out {
		s, sg := d.s[i%len(d.s)], sigma[i/len(d.s)]
		out[i] = s / (s + sg*sg) * x[i]
	}
	return nil
}

// ExtractExplained and ExtractMapStats compute the features Extract does,
// bit for bit and at the same NFEs, and maps that match the closed form:
// on the diagonal prior the map is λ_p = s_p·σ²/(s_p+σ²) at the k pixels of
// largest s and 0 elsewhere. The estimator converges there (the 4th to 3rd
// eigenvalue ratio is at most 0.8, so the value rule at 1e-12 leaves an
// angle of about √(2·1e-12)/(1−0.8²) ≈ 4e-6, see the root package's exact
// test), so 1e-6 relative to the largest value bounds the error. Redraws
// are on: about 2% of draws here fall into a cycle of the estimator that
// never converges (two directions straddling 45° between e_i and e_j swap
// places each iteration), and are redrawn. The map statistics survive the
// cache exactly, over two chunks.
func TestExplainedMatchesExtract(t *testing.T) {
	den := diagonal{s: []float64{0.1, 2, 0.3, 1.5, 0.05, 0.9, 0.2, 0.4, 0.6}}
	s := Settings{Estimator: spectrum.Config{K: 3, Step: 0.1, MaxIter: 2000, ValueTol: 1e-12, Redraw: 5, Precision: spectrum.Float64}.WithDefaults(),
		Sigmas: []float64{0.5, 1}, Draws: 2, Aggregation: features.Mean, Probes: 1, Seed: 4}
	rng := rand.New(rand.NewPCG(3, 4))
	ds := &data.Dataset{Name: "fit", Shape: den.Shape(), Pixels: make([]float32, 60*9)}
	for i := range ds.Pixels {
		ds.Pixels[i] = float32(rng.Float64()*2 - 1)
	}
	ctx := context.Background()
	plain, err := Extract(ctx, Spectra, s, den, "diag", ds, featcache.Cache{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, ex, err := ExtractExplained(ctx, s, den, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	same := func(what string, g *Features) {
		if g.NFE != plain.NFE || len(g.Rows) != len(plain.Rows) {
			t.Fatalf("%s: %d NFEs and %d rows, Extract %d and %d", what, g.NFE, len(g.Rows), plain.NFE, len(plain.Rows))
		}
		for i := range g.Rows {
			if !slices.Equal(g.Rows[i], plain.Rows[i]) {
				t.Fatalf("%s: image %d features %v, Extract %v", what, i, g.Rows[i], plain.Rows[i])
			}
		}
	}
	same("ExtractExplained", f)
	top := []int{1, 3, 5} // the pixels of the three largest s
	for j, sg := range s.Sigmas {
		want := make([]float64, 9)
		for _, p := range top {
			want[p] = den.s[p] * sg * sg / (den.s[p] + sg*sg)
		}
		for i, e := range ex {
			if l := e.Levels[j]; l.Converged != s.Draws {
				t.Fatalf("image %d σ %v: %d of %d draws converged", i, sg, l.Converged, len(l.Values))
			}
			for p, v := range e.Levels[j].Map {
				if math.Abs(v-want[p]) > 1e-6*want[top[0]] {
					t.Fatalf("image %d σ %v pixel %d: map %v, closed form %v", i, sg, p, v, want[p])
				}
			}
		}
	}
	dir := t.TempDir()
	fs, stats, err := ExtractMapStats(ctx, s, den, "diag", ds, featcache.Cache{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	same("ExtractMapStats", fs)
	entries := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "features", "*", "*.fcache"))
		return len(m)
	}
	if entries() != 2 {
		t.Fatalf("%d cache entries for 2 chunks", entries())
	}
	again, cached, err := ExtractMapStats(ctx, s, den, "diag", ds, featcache.Cache{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	same("ExtractMapStats from the cache", again)
	if _, err := Extract(ctx, Spectra, s, den, "diag", ds, featcache.Cache{Dir: dir}, nil); err != nil || entries() != 4 {
		t.Errorf("Extract shares keys with ExtractMapStats (%d entries) or failed: %v", entries(), err)
	}
	if stats.N != 60 || !slices.EqualFunc(stats.Mean, cached.Mean, slices.Equal) || !slices.EqualFunc(stats.M2, cached.M2, slices.Equal) {
		t.Errorf("map statistics of %d images, from the cache %d, or differing values", stats.N, cached.N)
	}
	for j := range s.Sigmas {
		for p := range 9 {
			mean := 0.0
			for _, e := range ex {
				mean += e.Levels[j].Map[p] / float64(len(ex))
			}
			if math.Abs(stats.Mean[j][p]-mean) > 1e-12 {
				t.Errorf("σ %v pixel %d: mean map %v, of the explanations %v", s.Sigmas[j], p, stats.Mean[j][p], mean)
			}
		}
	}
}
