// Package spectrum estimates the leading eigenvalues of the posterior
// covariance Cov[x|y] = σ²·∂D/∂y of a denoiser without its Jacobian.
//
// The estimator is the reference subspace iteration (method.md §2): for k
// directions v_i of norm c, the Jacobian-vector products are taken by central
// differences, J·v_i ≈ (D(y + v_i) − D(y − v_i))/2, each column's norm gives
// λ_i = σ²·‖J·v_i‖/c, the columns are orthonormalised by QR, sorted by λ
// descending and rescaled to norm c. The iteration has converged when the
// summed overlap Σ_i |⟨v_i(new), v_i(old)⟩|/c² exceeds 0.98·k for 5
// consecutive iterations.
//
// Problems (an image, a noise level and a noise draw) are batched: every
// denoiser call carries the 2k perturbed inputs of up to Batch problems, and a
// finished problem's slot is refilled at once, so batches stay full while
// problems converge at different iterations.
package spectrum

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/eigenscore/eigenscore/denoise"
)

// Precision selects the arithmetic of the denoiser calls. The estimator's own
// linear algebra is always float64.
type Precision int

const (
	Float32 Precision = iota
	Float64
)

// MarshalText writes "float32" or "float64".
func (p Precision) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (p *Precision) UnmarshalText(b []byte) error {
	v, err := ParsePrecision(string(b))
	*p = v
	return err
}

func (p Precision) String() string {
	if p == Float64 {
		return "float64"
	}
	return "float32"
}

// ParsePrecision reads "float32" or "float64".
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "float32":
		return Float32, nil
	case "float64":
		return Float64, nil
	}
	return 0, fmt.Errorf("spectrum: unknown precision %q, want float32 or float64", s)
}

// Config holds the estimator's parameters. The zero value of a field selects
// the reference default.
type Config struct {
	K        int     `json:"k"`        // eigenvalues to estimate (3)
	Step     float64 `json:"step"`     // c, the norm of a finite-difference direction (1)
	MaxIter  int     `json:"max_iter"` // iteration cap T_max (50)
	Overlap  float64 `json:"overlap"`  // convergence threshold on the mean overlap (0.98)
	Patience int     `json:"patience"` // consecutive iterations meeting the rule (5)
	// ValueTol, when positive, replaces the overlap rule: the iteration has
	// converged when no eigenvalue estimate changed by more than ValueTol
	// (relative) for Patience consecutive iterations. Where the top
	// eigenvalues are nearly degenerate, as for smooth image priors at small
	// σ, the overlap rule stops while the directions still mix with slightly
	// smaller eigenvalues, and the estimates come out a few percent low; a
	// component with eigenvalue ratio r to the top contributes a relative
	// error of about ValueTol/(2(1−r)) when this rule stops.
	ValueTol float64 `json:"value_tol,omitempty"`
	// Forward takes one-sided differences J·v_i ≈ D(y + c·v_i) − D(y),
	// evaluating D(y) once per draw: k NFEs per iteration plus one, instead
	// of 2k. The truncation error is O(c) rather than O(c²): a bias of
	// about ½·c·∂²D[v, v] that depends on the denoiser's curvature at y. The
	// detector only needs ID and test images measured the same way, and
	// docs/benchmarks.md measures what this costs in agreement with the
	// reference.
	Forward bool `json:"forward,omitempty"`
	// SharedNoise gives every image the same noise draws n and starting
	// directions at a given σ (common random numbers): the estimator noise
	// then moves all images' features together, so their differences, and
	// the ranking of scores, vary less between seeds.
	SharedNoise bool `json:"shared_noise,omitempty"`
	// Ritz estimates the eigenvalues by Rayleigh–Ritz on the current
	// subspace, the eigenvalues of the symmetric part of Vᵀ·J·V, instead of
	// the column norms ‖J·v_i‖, and orders the next directions by the Ritz
	// vectors. For a symmetric J and a subspace within angle ε of the
	// leading one the Ritz values err by O(ε²), the norms by O(ε), so fewer
	// iterations reach the same accuracy (for k = 1 this is the Rayleigh
	// quotient of power iteration).
	Ritz      bool      `json:"ritz,omitempty"`
	Redraw    int       `json:"redraw"` // attempts allowed per draw asked for (5); 1 disables redraws
	Batch     int       `json:"batch"`  // problems evaluated together (32)
	Precision Precision `json:"precision"`
	// KeepVectors keeps the estimated eigenvectors in each Draw.
	KeepVectors bool `json:"-"`
}

// WithDefaults fills zero fields with the reference values.
func (c Config) WithDefaults() Config {
	if c.K <= 0 {
		c.K = 3
	}
	if c.Step <= 0 {
		c.Step = 1
	}
	if c.MaxIter <= 0 {
		c.MaxIter = 50
	}
	if c.Overlap <= 0 {
		c.Overlap = 0.98
	}
	if c.Patience <= 0 {
		c.Patience = 5
	}
	if c.Redraw <= 0 {
		c.Redraw = 5
	}
	if c.Batch <= 0 {
		c.Batch = 32
	}
	return c
}

// Task asks for the spectrum of one image at one noise level.
type Task struct {
	Image []float32 // the clean image x
	Sigma float64
	// Key seeds the task's noise draws: the same seed and key give the same
	// draws whatever the batching. Give every task of a run its own key.
	Key uint64
}

// Draw is the result of one subspace iteration on y = x + σ·n.
type Draw struct {
	Values     []float64   // λ_1 ≥ … ≥ λ_k of Cov[x|y]
	Vectors    [][]float64 // unit eigenvectors, when Config.KeepVectors
	Input      []float64   // the noisy image y, when Config.KeepVectors
	Converged  bool
	Iterations int
	Attempt    int // which noise draw of the task this was (0-based)
}

// Result collects a task's draws.
type Result struct {
	// Draws are the converged draws in attempt order, at most the number
	// asked for. When fewer converged within the redraw budget, the
	// non-converged ones follow so that no task is left empty; Converged
	// counts the converged ones.
	Draws     []Draw
	Converged int
	Attempts  int
	NFE       int64
}

// Estimator runs the subspace iteration on a denoiser.
type Estimator struct {
	Denoiser denoise.Denoiser
	Config   Config
	Seed     uint64
}

// problem is one noise draw of one task being iterated.
type problem struct {
	task, attempt int
	sigma         float64
	y             []float64   // noisy image
	dy            []float64   // D(y), for forward differences, once evaluated
	v             [][]float64 // current unit directions
	spare         [][]float64 // k×d scratch for J·v, recycled from the previous directions
	values        []float64
	streak, iter  int
	converged     bool
}

// Run estimates draws converged spectra for every task. progress, when not
// nil, is called with the number of tasks finished so far.
func (e *Estimator) Run(ctx context.Context, tasks []Task, draws int, progress func(done int)) ([]Result, error) {
	cfg := e.Config.WithDefaults()
	if draws <= 0 {
		return nil, fmt.Errorf("spectrum: draws = %d, want at least 1", draws)
	}
	shape := e.Denoiser.Shape()
	d := shape.Dim()
	if cfg.K > d {
		return nil, fmt.Errorf("spectrum: k = %d exceeds the image dimension %d", cfg.K, d)
	}
	var d64 denoise.Denoiser64
	if cfg.Precision == Float64 {
		var ok bool
		if d64, ok = e.Denoiser.(denoise.Denoiser64); !ok {
			return nil, fmt.Errorf("spectrum: float64 precision asked for, but %T evaluates only in float32", e.Denoiser)
		}
	}
	for i, t := range tasks {
		if len(t.Image) != d {
			return nil, fmt.Errorf("spectrum: task %d image has %d values, want %d (%v)", i, len(t.Image), d, shape)
		}
		if !(t.Sigma > 0) || math.IsInf(t.Sigma, 0) {
			return nil, fmt.Errorf("spectrum: task %d sigma = %v, want positive", i, t.Sigma)
		}
	}

	results := make([]Result, len(tasks))
	all := make([][]Draw, len(tasks))      // finished draws, per task
	outstanding := make([]int, len(tasks)) // attempts queued or running
	created := make([]int, len(tasks))     // attempts created so far
	// Attempts are made one slot at a time: each task starts draws of them,
	// and a non-converged one is replaced by a fresh draw while the budget
	// allows. Attempt a of a task always uses the same random stream, so the
	// attempts made, and the results, do not depend on batching.
	type job struct{ task, attempt int }
	queue := make([]job, 0, len(tasks)*draws)
	for t := range tasks {
		for a := 0; a < draws; a++ {
			queue = append(queue, job{t, a})
		}
		created[t], outstanding[t] = draws, draws
	}
	done := 0
	var active []*problem
	k := cfg.K
	in32 := make([]float32, 0)
	out32 := make([]float32, 0)
	var in64, out64, sig64 []float64
	var sig32 []float32
	var off []int
	budget := cfg.Batch * 2 * k
	freshRows := rowsOf(&problem{}, cfg) // a new problem's first iteration

	for len(queue) > 0 || len(active) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Admit new problems while the batch has rows to spare. A batch is
		// Batch·2k rows whatever the differences, so that it stays a whole
		// number of a backend's fixed batches (and keeps all its sessions
		// busy) when Batch is: with forward differences about twice as many
		// problems are in flight, each needing k rows, or k+1 in its first
		// iteration for D(y).
		rows := 0
		for _, pr := range active {
			rows += rowsOf(pr, cfg)
		}
		for len(queue) > 0 && (len(active) == 0 || rows+freshRows <= budget) {
			j := queue[0]
			queue = queue[1:]
			pr := e.start(tasks[j.task], j.task, j.attempt, cfg)
			active = append(active, pr)
			rows += rowsOf(pr, cfg)
		}
		// Lay out the batch: problem p owns rows off[p] … off[p+1]−1. With
		// central differences these are y + c·v_i (i < k) then y − c·v_i;
		// with forward differences, y itself first while D(y) is unknown,
		// then y + c·v_i.
		off = grow(off, len(active)+1)
		off[0] = 0
		for p, pr := range active {
			off[p+1] = off[p] + rowsOf(pr, cfg)
		}
		n := off[len(active)]
		if cfg.Precision == Float64 {
			in64, out64, sig64 = grow(in64, n*d), grow(out64, n*d), grow(sig64, n)
		} else {
			in32, out32, sig32 = grow(in32, n*d), grow(out32, n*d), grow(sig32, n)
		}
		put := func(row int, pr *problem, scale float64, v []float64) {
			if cfg.Precision == Float64 {
				dst := in64[row*d : (row+1)*d]
				for j := range dst {
					dst[j] = pr.y[j] + scale*v[j]
				}
				sig64[row] = pr.sigma
				return
			}
			dst := in32[row*d : (row+1)*d]
			for j := range dst {
				dst[j] = float32(pr.y[j] + scale*v[j])
			}
			sig32[row] = float32(pr.sigma)
		}
		for p, pr := range active {
			row := off[p]
			if cfg.Forward && pr.dy == nil {
				put(row, pr, 0, pr.y)
				row++
			}
			for i := 0; i < k; i++ {
				put(row+i, pr, cfg.Step, pr.v[i])
				if !cfg.Forward {
					put(row+k+i, pr, -cfg.Step, pr.v[i])
				}
			}
		}
		var err error
		if cfg.Precision == Float64 {
			err = d64.Denoise64(ctx, in64, sig64, out64)
		} else {
			err = e.Denoiser.Denoise(ctx, in32, sig32, out32)
		}
		if err != nil {
			return nil, fmt.Errorf("spectrum: denoiser: %w", err)
		}
		kept := active[:0]
		output := func(row, j int) float64 {
			if cfg.Precision == Float64 {
				return out64[row*d+j]
			}
			return float64(out32[row*d+j])
		}
		for p, pr := range active {
			results[pr.task].NFE += int64(off[p+1] - off[p])
			if pr.spare == nil {
				pr.spare = make([][]float64, k)
				for i := range pr.spare {
					pr.spare[i] = make([]float64, d)
				}
			}
			a := pr.spare
			row := off[p]
			if cfg.Forward {
				if pr.dy == nil {
					pr.dy = make([]float64, d)
					for j := range pr.dy {
						pr.dy[j] = output(row, j)
					}
					row++
				}
				for i := 0; i < k; i++ {
					for j := 0; j < d; j++ {
						a[i][j] = output(row+i, j) - pr.dy[j]
					}
				}
			} else {
				for i := 0; i < k; i++ {
					for j := 0; j < d; j++ {
						a[i][j] = 0.5 * (output(row+i, j) - output(row+k+i, j))
					}
				}
			}
			pr.update(a, cfg)
			if !pr.converged && pr.iter < cfg.MaxIter {
				kept = append(kept, pr)
				continue
			}
			// The problem is finished: record it and decide on a redraw.
			t := pr.task
			dr := Draw{Values: pr.values, Converged: pr.converged, Iterations: pr.iter, Attempt: pr.attempt}
			if cfg.KeepVectors {
				dr.Vectors, dr.Input = pr.v, pr.y
			}
			all[t] = append(all[t], dr)
			outstanding[t]--
			results[t].Attempts++
			if pr.converged {
				results[t].Converged++
			}
			if !pr.converged && results[t].Converged+outstanding[t] < draws && created[t] < cfg.Redraw*draws {
				// Redraw first, so the task's slot is refilled at once.
				queue = append([]job{{t, created[t]}}, queue...)
				created[t]++
				outstanding[t]++
			}
			if outstanding[t] == 0 {
				results[t].Draws = choose(all[t], draws)
				all[t] = nil
				done++
				if progress != nil {
					progress(done)
				}
			}
		}
		active = kept
	}
	return results, nil
}

// choose orders a task's draws by attempt and keeps the converged ones first,
// at most want of them, topping up with non-converged ones when too few
// converged.
func choose(ds []Draw, want int) []Draw {
	sort.Slice(ds, func(i, j int) bool { return ds[i].Attempt < ds[j].Attempt })
	var out, rest []Draw
	for _, d := range ds {
		if d.Converged && len(out) < want {
			out = append(out, d)
		} else if !d.Converged {
			rest = append(rest, d)
		}
	}
	for len(out) < want && len(rest) > 0 {
		out = append(out, rest[0])
		rest = rest[1:]
	}
	return out
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// rowsOf is the number of denoiser inputs problem pr needs this iteration.
func rowsOf(pr *problem, cfg Config) int {
	if !cfg.Forward {
		return 2 * cfg.K
	}
	if pr.dy == nil {
		return cfg.K + 1
	}
	return cfg.K
}

// start draws y = x + σ·n and k Gaussian unit directions from the task's
// stream for this attempt (or, with SharedNoise, from the stream of σ, the
// same for every image).
func (e *Estimator) start(t Task, task, attempt int, cfg Config) *problem {
	key := t.Key
	if cfg.SharedNoise {
		key = math.Float64bits(t.Sigma)
	}
	rng := rand.New(rand.NewPCG(e.Seed, mix(key, uint64(attempt))))
	d := len(t.Image)
	pr := &problem{task: task, attempt: attempt, sigma: t.Sigma, y: make([]float64, d), v: make([][]float64, cfg.K)}
	for j, x := range t.Image {
		pr.y[j] = float64(x) + t.Sigma*rng.NormFloat64()
	}
	for i := range pr.v {
		v := make([]float64, d)
		for j := range v {
			v[j] = rng.NormFloat64()
		}
		floats.Scale(1/floats.Norm(v, 2), v)
		pr.v[i] = v
	}
	return pr
}

// mix combines a task key and an attempt number into one well-spread stream
// selector (SplitMix64 finaliser).
func mix(key, attempt uint64) uint64 {
	z := key*0x9E3779B97F4A7C15 + attempt + 1
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// update performs one subspace-iteration step given a_i = J·(c·v_i).
func (pr *problem) update(a [][]float64, cfg Config) {
	k := len(a)
	s2 := pr.sigma * pr.sigma
	vals := make([]float64, k)
	if cfg.Ritz {
		ritz(pr.v, a, vals)
		for i := range vals {
			vals[i] *= s2 / cfg.Step
		}
	}
	for i := range a {
		nrm := floats.Norm(a[i], 2)
		if !cfg.Ritz {
			vals[i] = s2 * nrm / cfg.Step
		}
		floats.Scale(1/math.Max(nrm, 1e-300), a[i])
	}
	q := orthonormalise(a)
	order := make([]int, k)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return vals[order[i]] > vals[order[j]] })
	next := make([][]float64, k)
	sorted := make([]float64, k)
	overlap, change := 0.0, 0.0
	for i, o := range order {
		next[i] = q[o]
		sorted[i] = vals[o]
		overlap += math.Abs(floats.Dot(next[i], pr.v[i]))
		if pr.values != nil {
			change = math.Max(change, math.Abs(sorted[i]-pr.values[i])/sorted[i])
		}
	}
	met := overlap > cfg.Overlap*float64(k)
	if cfg.ValueTol > 0 {
		met = pr.values != nil && change <= cfg.ValueTol
	}
	if met {
		pr.streak++
	} else {
		pr.streak = 0
	}
	pr.iter++
	// The old directions' storage becomes the next step's scratch, so a
	// problem allocates its k×d buffers once, not every iteration.
	if !cfg.KeepVectors {
		pr.spare = pr.v
	} else {
		pr.spare = nil // kept draws own their vectors
	}
	pr.v = next
	pr.values = sorted
	pr.converged = pr.streak >= cfg.Patience
}

// orthonormalise returns the Q factor of the thin QR decomposition of the
// columns a (modified Gram–Schmidt, applied twice for orthogonality to
// rounding level), in place. This QR has a positive diagonal in R, so
// det(R) > 0 and the reference's sign flip never applies; since the overlap
// uses absolute values, signs do not affect the iteration. gonum's QR would
// form the full d×d Q factor, O(d²) per step, where this is O(d·k²).
func orthonormalise(a [][]float64) [][]float64 {
	for pass := 0; pass < 2; pass++ {
		for i := range a {
			for j := 0; j < i; j++ {
				floats.AddScaled(a[i], -floats.Dot(a[i], a[j]), a[j])
			}
			nrm := floats.Norm(a[i], 2)
			if nrm < 1e-300 {
				// A zero column (a constant denoiser): any unit vector
				// orthogonal to the others keeps the basis full rank.
				a[i][i%len(a[i])] = 1
				nrm = floats.Norm(a[i], 2)
			}
			floats.Scale(1/nrm, a[i])
		}
	}
	return a
}

// ritz replaces the columns a_i = J·(c·v_i) by their combinations along the
// Ritz vectors of span(v), A·u_l for the eigenvectors u_l of the symmetric
// part of H = Vᵀ·A, and stores the Ritz values (of c·J) in vals, both
// ordered as the Ritz values descending.
func ritz(v, a [][]float64, vals []float64) {
	k := len(a)
	h := mat.NewSymDense(k, nil)
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			h.SetSym(i, j, 0.5*(floats.Dot(v[i], a[j])+floats.Dot(v[j], a[i])))
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(h, true) {
		// Not expected for a k×k symmetric matrix; keep the columns and
		// fall back to Rayleigh quotients.
		for i := range vals {
			vals[i] = floats.Dot(v[i], a[i])
		}
		return
	}
	var u mat.Dense
	eig.VectorsTo(&u)
	theta := eig.Values(nil) // ascending
	d := len(a[0])
	mixed := make([][]float64, k)
	for l := 0; l < k; l++ {
		col := k - 1 - l // descending
		vals[l] = theta[col]
		m := make([]float64, d)
		for i := 0; i < k; i++ {
			floats.AddScaled(m, u.At(i, col), a[i])
		}
		mixed[l] = m
	}
	for l := range a {
		copy(a[l], mixed[l])
	}
}
