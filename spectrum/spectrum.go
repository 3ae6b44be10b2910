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
//
// Every random number comes from package noise. Attempt r of a task (its
// r-th noise draw, counting redraws) uses y = x + σ·n with n from
// noise.Stream(seed, noise.NoisyImage, key, r), where key is Task.Key (or
// noise.SigmaKey(σ) with Config.SharedNoise): the same y that the other
// methods use for draw r of that key, so that methods differ by what they
// compute and not by their noise. Its k starting directions come from a
// stream of their own, noise.Stream(seed, noise.Directions, key, r), so
// they never shift the noisy images.
package spectrum

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/noise"
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
	// directions at a given σ (common random numbers, keyed by
	// noise.SigmaKey(σ) instead of Task.Key): the estimator noise
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
	// Key names the task's random streams in package noise: attempt r
	// evaluates the noisy image y of noise.Stream(seed, noise.NoisyImage,
	// Key, r), the y every other method sees for draw r of Key, whatever
	// the batching. Give every task of a run its own key, for an image at
	// the level-th noise level noise.LevelKey(noise.ImageKey(set, x),
	// level). With Config.SharedNoise the key is noise.SigmaKey(Sigma)
	// instead, and Key is unused.
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

// Run estimates draws converged spectra for every task. progress, when not
// nil, is called with the number of tasks finished so far.
func (e *Estimator) Run(ctx context.Context, tasks []Task, draws int, progress func(done int)) ([]Result, error) {
	cfg := e.Config.WithDefaults()
	b, err := e.prepare(tasks, draws, cfg)
	if err != nil {
		return nil, err
	}
	l := newLedger(len(tasks), draws, cfg.Redraw, progress)
	var active []*problem
	for l.pending() || len(active) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		active = e.admit(active, l, tasks, cfg)
		b.layout(active)
		if err := b.call(ctx); err != nil {
			return nil, fmt.Errorf("spectrum: denoiser: %w", err)
		}
		active = advance(active, b, l, cfg)
	}
	return l.results, nil
}

// prepare checks the arguments of Run and returns the batch that will carry
// its denoiser calls.
func (e *Estimator) prepare(tasks []Task, draws int, cfg Config) (*batch, error) {
	if draws <= 0 {
		return nil, fmt.Errorf("spectrum: draws = %d, want at least 1", draws)
	}
	shape := e.Denoiser.Shape()
	d := shape.Dim()
	if cfg.K > d {
		return nil, fmt.Errorf("spectrum: k = %d exceeds the image dimension %d", cfg.K, d)
	}
	b, err := newBatch(e.Denoiser, cfg)
	if err != nil {
		return nil, err
	}
	for i, t := range tasks {
		if len(t.Image) != d {
			return nil, fmt.Errorf("spectrum: task %d image has %d values, want %d (%v)", i, len(t.Image), d, shape)
		}
		if !(t.Sigma > 0) || math.IsInf(t.Sigma, 0) {
			return nil, fmt.Errorf("spectrum: task %d sigma = %v, want positive", i, t.Sigma)
		}
	}
	return b, nil
}

// admit starts queued attempts while the batch has rows to spare. A batch is
// Batch·2k rows whatever the differences, so that it stays a whole number of
// a backend's fixed batches (and keeps all its sessions busy) when Batch is:
// with forward differences about twice as many problems are in flight, each
// needing k rows, or k+1 in its first iteration for D(y). At least one
// problem is always admitted, so that no budget can stall the run.
func (e *Estimator) admit(active []*problem, l *ledger, tasks []Task, cfg Config) []*problem {
	budget := cfg.Batch * 2 * cfg.K
	fresh := rowsOf(&problem{}, cfg)
	rows := 0
	for _, pr := range active {
		rows += rowsOf(pr, cfg)
	}
	for l.pending() && (len(active) == 0 || rows+fresh <= budget) {
		j := l.next()
		pr := e.start(tasks[j.task], j, cfg)
		active = append(active, pr)
		rows += rowsOf(pr, cfg)
	}
	return active
}

// advance takes every active problem one iteration on from the evaluated
// batch, hands the finished ones to the ledger and returns the others.
func advance(active []*problem, b *batch, l *ledger, cfg Config) []*problem {
	kept := active[:0]
	for p, pr := range active {
		l.results[pr.task].NFE += int64(b.rows(p))
		pr.step(b, p, cfg)
		if pr.finished(cfg) {
			l.finish(pr.task, pr.draw(cfg.KeepVectors))
		} else {
			kept = append(kept, pr)
		}
	}
	return kept
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

// job is one attempt of one task: a noise draw and its starting directions.
type job struct{ task, attempt int }

// ledger keeps the per-task bookkeeping of a run. Attempts are made one slot
// at a time: each task starts draws of them, and a non-converged one is
// replaced by a fresh attempt while the budget allows. Attempt a of a task
// always uses the same random streams, so the attempts made, and the
// results, do not depend on batching.
type ledger struct {
	draws       int // draws asked for per task
	maxAttempts int // attempts allowed per task
	queue       []job
	outstanding []int    // attempts queued or running, per task
	created     []int    // attempts created so far, per task
	finished    [][]Draw // finished draws, per task
	results     []Result
	done        int // tasks finished
	progress    func(done int)
}

func newLedger(tasks, draws, redraw int, progress func(done int)) *ledger {
	l := &ledger{
		draws:       draws,
		maxAttempts: redraw * draws,
		queue:       make([]job, 0, tasks*draws),
		outstanding: make([]int, tasks),
		created:     make([]int, tasks),
		finished:    make([][]Draw, tasks),
		results:     make([]Result, tasks),
		progress:    progress,
	}
	for t := 0; t < tasks; t++ {
		for a := 0; a < draws; a++ {
			l.queue = append(l.queue, job{t, a})
		}
		l.created[t], l.outstanding[t] = draws, draws
	}
	return l
}

// pending reports whether attempts wait to be started.
func (l *ledger) pending() bool { return len(l.queue) > 0 }

// next removes the first waiting attempt from the queue.
func (l *ledger) next() job {
	j := l.queue[0]
	l.queue = l.queue[1:]
	return j
}

// finish records a finished draw of task t, queues a redraw when it did not
// converge and more converged draws are still wanted, and closes the task
// when none of its attempts is left.
func (l *ledger) finish(t int, dr Draw) {
	r := &l.results[t]
	l.finished[t] = append(l.finished[t], dr)
	l.outstanding[t]--
	r.Attempts++
	if dr.Converged {
		r.Converged++
	}
	if !dr.Converged && r.Converged+l.outstanding[t] < l.draws && l.created[t] < l.maxAttempts {
		// At the front, so that the task's slot is refilled at once.
		l.queue = slices.Insert(l.queue, 0, job{t, l.created[t]})
		l.created[t]++
		l.outstanding[t]++
	}
	if l.outstanding[t] == 0 {
		r.Draws = choose(l.finished[t], l.draws)
		l.finished[t] = nil
		l.done++
		if l.progress != nil {
			l.progress(l.done)
		}
	}
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

// batch lays out the denoiser inputs of the active problems, evaluates them
// in one call and hands each problem its outputs. Problem p owns rows
// off[p] … off[p+1]−1: with central differences y + c·v_i (i < k) then
// y − c·v_i; with forward differences, y itself first while D(y) is
// unknown, then y + c·v_i.
type batch struct {
	cfg Config
	buf rowBuffer
	off []int
	tmp []float64 // one output row, for central differences
}

func newBatch(den denoise.Denoiser, cfg Config) (*batch, error) {
	d := den.Shape().Dim()
	b := &batch{cfg: cfg, tmp: make([]float64, d)}
	if cfg.Precision != Float64 {
		b.buf = &buffer[float32]{d: d, denoise: den.Denoise}
		return b, nil
	}
	d64, ok := den.(denoise.Denoiser64)
	if !ok {
		return nil, fmt.Errorf("spectrum: float64 precision asked for, but %T evaluates only in float32", den)
	}
	b.buf = &buffer[float64]{d: d, denoise: d64.Denoise64}
	return b, nil
}

// layout writes the inputs of the active problems.
func (b *batch) layout(active []*problem) {
	b.off = grow(b.off, len(active)+1)
	b.off[0] = 0
	for p, pr := range active {
		b.off[p+1] = b.off[p] + rowsOf(pr, b.cfg)
	}
	b.buf.resize(b.off[len(active)])
	for p, pr := range active {
		row, k, c := b.off[p], b.cfg.K, b.cfg.Step
		if b.cfg.Forward && pr.dy == nil {
			b.buf.put(row, pr.y, 0, pr.y, pr.sigma)
			row++
		}
		for i, v := range pr.v {
			b.buf.put(row+i, pr.y, c, v, pr.sigma)
			if !b.cfg.Forward {
				b.buf.put(row+k+i, pr.y, -c, v, pr.sigma)
			}
		}
	}
}

func (b *batch) call(ctx context.Context) error { return b.buf.call(ctx) }

// rows is the number of rows problem p has in the batch.
func (b *batch) rows(p int) int { return b.off[p+1] - b.off[p] }

// differences writes a_i = J·(c·v_i) of problem p, pr, into a: by central
// differences ½(D(y + c·v_i) − D(y − c·v_i)), or forward ones
// D(y + c·v_i) − D(y), taking D(y) from the first row the first time.
func (b *batch) differences(p int, pr *problem, a [][]float64) {
	row, k := b.off[p], b.cfg.K
	if !b.cfg.Forward {
		for i := range a {
			b.buf.output(row+i, a[i])
			b.buf.output(row+k+i, b.tmp)
			for j, m := range b.tmp {
				a[i][j] = 0.5 * (a[i][j] - m)
			}
		}
		return
	}
	if pr.dy == nil {
		pr.dy = make([]float64, len(pr.y))
		b.buf.output(row, pr.dy)
		row++
	}
	for i := range a {
		b.buf.output(row+i, a[i])
		for j, m := range pr.dy {
			a[i][j] -= m
		}
	}
}

// rowBuffer holds a batch's denoiser inputs and outputs in the precision of
// the denoiser calls, so that the layout and the differences are written
// once for float32 and float64.
type rowBuffer interface {
	resize(rows int)                                                     // make room for rows inputs and outputs
	put(row int, y []float64, scale float64, v []float64, sigma float64) // input row = y + scale·v at σ
	call(ctx context.Context) error                                      // evaluate the denoiser on all rows
	output(row int, dst []float64)                                       // copy output row into dst
}

// buffer is a rowBuffer in precision T. Its slices are allocated once and
// grown when a batch needs more rows.
type buffer[T float32 | float64] struct {
	d              int
	in, out, sigma []T
	denoise        func(ctx context.Context, x, sigma, out []T) error
}

func (b *buffer[T]) resize(rows int) {
	b.in, b.out, b.sigma = grow(b.in, rows*b.d), grow(b.out, rows*b.d), grow(b.sigma, rows)
}

func (b *buffer[T]) put(row int, y []float64, scale float64, v []float64, sigma float64) {
	dst := b.in[row*b.d : (row+1)*b.d]
	for j := range dst {
		dst[j] = T(y[j] + scale*v[j])
	}
	b.sigma[row] = T(sigma)
}

func (b *buffer[T]) call(ctx context.Context) error { return b.denoise(ctx, b.in, b.sigma, b.out) }

func (b *buffer[T]) output(row int, dst []float64) {
	for j, v := range b.out[row*b.d : (row+1)*b.d] {
		dst[j] = float64(v)
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// problem is one noise draw of one task being iterated.
type problem struct {
	task, attempt int
	sigma         float64
	y             []float64   // noisy image
	dy            []float64   // D(y), for forward differences, once evaluated
	v             [][]float64 // current unit directions
	values        []float64   // current estimates, descending
	streak, iter  int
	converged     bool

	// Scratch, recycled between iterations so that a problem allocates its
	// buffers once: spare (k×d) receives J·v and holds the directions before
	// the last ones; next (k) the reordered columns; vals and order (k) the
	// unsorted estimates and their order; prev (k) the estimates before the
	// current ones.
	spare, next [][]float64
	vals, prev  []float64
	order       []int
}

// start makes attempt j of task t: y = x + σ·n and k Gaussian unit
// directions, each from its own stream of package noise keyed by the task's
// key (or, with SharedNoise, by σ, the same for every image) and the attempt.
func (e *Estimator) start(t Task, j job, cfg Config) *problem {
	key := t.Key
	if cfg.SharedNoise {
		key = noise.SigmaKey(t.Sigma)
	}
	d := len(t.Image)
	pr := &problem{task: j.task, attempt: j.attempt, sigma: t.Sigma, y: make([]float64, d), v: make([][]float64, cfg.K)}
	noise.Noisy(pr.y, t.Image, t.Sigma, noise.Stream(e.Seed, noise.NoisyImage, key, uint64(j.attempt)))
	rng := noise.Stream(e.Seed, noise.Directions, key, uint64(j.attempt))
	for i := range pr.v {
		v := make([]float64, d)
		for n := range v {
			v[n] = rng.NormFloat64()
		}
		floats.Scale(1/floats.Norm(v, 2), v)
		pr.v[i] = v
	}
	return pr
}

// step takes pr one iteration on from its rows of the evaluated batch, where
// it is problem p.
func (pr *problem) step(b *batch, p int, cfg Config) {
	if pr.spare == nil {
		pr.spare = make([][]float64, cfg.K)
		for i := range pr.spare {
			pr.spare[i] = make([]float64, len(pr.y))
		}
	}
	b.differences(p, pr, pr.spare)
	pr.update(pr.spare, cfg)
}

// finished reports whether pr has converged or run out of iterations.
func (pr *problem) finished(cfg Config) bool { return pr.converged || pr.iter >= cfg.MaxIter }

// draw is pr's result; with keep it carries pr's directions and y, which pr
// no longer uses once finished.
func (pr *problem) draw(keep bool) Draw {
	dr := Draw{Values: pr.values, Converged: pr.converged, Iterations: pr.iter, Attempt: pr.attempt}
	if keep {
		dr.Vectors, dr.Input = pr.v, pr.y
	}
	return dr
}

// update performs one subspace-iteration step given a_i = J·(c·v_i) in
// a = pr.spare, which becomes the next directions.
func (pr *problem) update(a [][]float64, cfg Config) {
	k := len(a)
	vals := pr.estimate(a, cfg)
	q := orthonormalise(a)
	pr.order = descending(vals, grow(pr.order, k))
	next, sorted := grow(pr.next, k), grow(pr.prev, k)
	overlap, change := 0.0, 0.0
	for i, o := range pr.order {
		next[i], sorted[i] = q[o], vals[o]
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
	pr.converged = pr.streak >= cfg.Patience
	// The old directions' storage receives the next J·v, and a's column
	// list (whose columns next now holds) the next reordering.
	pr.v, pr.spare, pr.next = next, pr.v, a
	pr.values, pr.prev = sorted, pr.values
}

// estimate returns the eigenvalue estimates of Cov[x|y] from a_i = J·(c·v_i),
// Ritz values or column norms, in the order of a's columns, which it scales
// to unit norm (and, for Ritz, turns towards the Ritz vectors).
func (pr *problem) estimate(a [][]float64, cfg Config) []float64 {
	s2 := pr.sigma * pr.sigma
	vals := grow(pr.vals, len(a))
	pr.vals = vals
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
	return vals
}

// descending fills order with the indices of vals by value descending,
// stably. It is the insertion sort sort.SliceStable runs on short slices,
// without the allocations of its reflection.
func descending(vals []float64, order []int) []int {
	for i := range order {
		order[i] = i
	}
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && vals[order[j]] > vals[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	return order
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
