package onnx

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// withCPUs makes the automatic layout plan for n cores during the test.
func withCPUs(t *testing.T, n int) {
	t.Helper()
	old := numCPU
	numCPU = func() int { return n }
	t.Cleanup(func() { numCPU = old })
}

func TestLayout(t *testing.T) {
	cases := []struct {
		opts  Options
		cpus  int
		fixed int
		want  Layout
	}{
		// Automatic: a single-threaded session per core, and a session
		// with a thread per core for lone images.
		{Options{}, 2, 0, Layout{Sessions: 2, Threads: 1, BatchSize: DefaultBatchSize, WideThreads: 2}},
		{Options{}, 8, 0, Layout{Sessions: 8, Threads: 1, BatchSize: DefaultBatchSize, WideThreads: 8}},
		{Options{}, 1, 0, Layout{Sessions: 1, Threads: 1, BatchSize: DefaultBatchSize}},
		// Overrides: the other setting fills the cores; no wide session.
		{Options{Threads: 2}, 8, 0, Layout{Sessions: 4, Threads: 2, BatchSize: DefaultBatchSize}},
		{Options{Threads: 16}, 8, 0, Layout{Sessions: 1, Threads: 16, BatchSize: DefaultBatchSize}},
		{Options{Sessions: 1}, 8, 0, Layout{Sessions: 1, Threads: 8, BatchSize: DefaultBatchSize}},
		{Options{Sessions: 3, Threads: 1, BatchSize: 32}, 2, 0, Layout{Sessions: 3, Threads: 1, BatchSize: 32}},
		// A fixed batch dimension sets the run size, and no lone images.
		{Options{}, 2, 3, Layout{Sessions: 2, Threads: 1, BatchSize: 3, FixedBatch: 3}},
		{Options{BatchSize: 3}, 2, 3, Layout{Sessions: 2, Threads: 1, BatchSize: 3, FixedBatch: 3}},
	}
	for _, c := range cases {
		got, err := c.opts.layout(c.cpus, c.fixed)
		if err != nil || got != c.want {
			t.Errorf("%+v on %d cores, fixed batch %d: %+v, %v; want %+v", c.opts, c.cpus, c.fixed, got, err, c.want)
		}
	}
	for _, o := range []Options{{Threads: -1}, {BatchSize: -2}, {Sessions: -1}} {
		if _, err := o.layout(2, 0); err == nil || !strings.HasPrefix(err.Error(), "onnx: ") {
			t.Errorf("%+v: err = %v", o, err)
		}
	}
	if _, err := (Options{BatchSize: 4}).layout(2, 3); err == nil || !strings.Contains(err.Error(), "fixed at 3") {
		t.Errorf("batch 4 for a model fixed at 3: err = %v", err)
	}
}

// TestSplit pins how calls are cut into runs: never more than BatchSize
// images, never padded, sizes within one of each other, every session
// busy when there are enough images, and no more runs than needed for
// that.
func TestSplit(t *testing.T) {
	for lanes := 1; lanes <= 3; lanes++ {
		for b := 1; b <= 17; b++ {
			d := &Denoiser{layout: Layout{Sessions: lanes, Threads: 1, BatchSize: b}}
			for n := 1; n <= 200; n++ {
				runs, q, r := d.split(n)
				sizes := make([]int, runs)
				sum := 0
				for i := range sizes {
					sizes[i] = q
					if i < r {
						sizes[i]++
					}
					sum += sizes[i]
				}
				bad := sum != n || q < 1 || sizes[0] > b || runs < min(n, lanes)
				// As few runs as keep every session equally busy: one
				// more run per session would be needed only if the
				// sessions' shares exceeded b.
				bad = bad || (runs > lanes && runs%lanes == 0 && (runs-lanes)*b >= n)
				if bad {
					t.Fatalf("%d sessions, batch %d: %d images split into %v", lanes, b, n, sizes)
				}
			}
		}
	}
	for _, c := range []struct{ n, runs, q, r int }{{40, 4, 10, 0}, {192, 12, 16, 0}, {3, 2, 1, 1}, {1, 1, 1, 0}, {6, 2, 3, 0}, {33, 4, 8, 1}} {
		d := &Denoiser{layout: Layout{Sessions: 2, Threads: 1, BatchSize: 16}}
		if runs, q, r := d.split(c.n); runs != c.runs || q != c.q || r != c.r {
			t.Errorf("split(%d) on 2 sessions of 16 = %d runs, q %d, r %d; want %d, %d, %d", c.n, runs, q, r, c.runs, c.q, c.r)
		}
	}
}

// checkCall denoises n images cycled from the fixture and compares them
// with PyTorch's outputs; it returns the images ORT evaluated.
func checkCall(t *testing.T, d *Denoiser, f fixture, n int) int64 {
	t.Helper()
	x, sigma := benchInput(f, n)
	want, _ := benchInput(fixture{X: f.Denoised, Sigma: f.Sigma}, n)
	out := make([]float32, len(x))
	before := d.evaluated.Load()
	if err := d.Denoise(context.Background(), x, sigma, out); err != nil {
		t.Fatalf("%d images: %v", n, err)
	}
	if e, at := maxAbsDiff(out, want); !(e <= tolerance) {
		t.Fatalf("%d images: max |ORT - PyTorch| = %g at value %d", n, e, at)
	}
	return d.evaluated.Load() - before
}

// TestNoPadding: with a dynamic batch dimension a call of n images
// evaluates exactly n images, whatever the layout. (The backend used to
// pad every call to whole batches of BatchSize.)
func TestNoPadding(t *testing.T) {
	withCPUs(t, 2)
	for _, opts := range []Options{{}, {BatchSize: 3, Threads: 1, Sessions: 2}, {BatchSize: 2, Threads: 1, Sessions: 1}, {BatchSize: 5, Threads: 2}} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			d, f := openFixture(t, fixtures[0], opts)
			for n := 1; n <= 11; n++ {
				if got := checkCall(t, d, f, n); got != int64(n) {
					t.Errorf("%d images: ORT evaluated %d", n, got)
				}
			}
		})
	}
}

// TestFixedBatch: a model whose batch dimension is fixed at N runs batches
// of exactly N, the last one padded (the only padding left).
func TestFixedBatch(t *testing.T) {
	requireORT(t)
	_, f := loadFixture(t, fixtures[0])
	path := filepath.Join(fixtureDir, "tiny_fixed3.onnx")
	for _, sessions := range []int{1, 2} {
		d, err := Open(path, Options{Threads: 1, Sessions: sessions})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if l := d.Layout(); l.FixedBatch != 3 || l.BatchSize != 3 || l.WideThreads != 0 {
			t.Fatalf("layout %+v", l)
		}
		for n := 1; n <= 7; n++ {
			if got, want := checkCall(t, d, f, n), int64((n+2)/3*3); got != want {
				t.Errorf("%d sessions, %d images: ORT evaluated %d, want %d", sessions, n, got, want)
			}
		}
	}
	if _, err := Open(path, Options{BatchSize: 4}); err == nil || !strings.Contains(err.Error(), "session batch size 4") {
		t.Errorf("batch 4 for a model fixed at 3: err = %v", err)
	}
}

// TestWideSession: with the automatic layout on more than one core, a lone
// image runs on the session with a thread per core when nothing else runs.
func TestWideSession(t *testing.T) {
	withCPUs(t, 2)
	d, f := openFixture(t, fixtures[0], Options{})
	if l := d.Layout(); l.WideThreads != 2 || l.Sessions != 2 || l.Threads != 1 {
		t.Fatalf("layout %+v", l)
	}
	dim := d.Shape().Dim()
	out := make([]float32, dim)
	for i := range f.Sigma {
		if err := d.Denoise(context.Background(), f.X[i*dim:(i+1)*dim], f.Sigma[i:i+1], out); err != nil {
			t.Fatal(err)
		}
		if e, _ := maxAbsDiff(out, f.Denoised[i*dim:(i+1)*dim]); !(e <= tolerance) {
			t.Fatalf("image %d: max error %g", i, e)
		}
	}
	// The first four lone images alternate between the wide session and
	// the first lane's, to time both.
	if d.picker.calls != len(f.Sigma) || d.wide.runs[1] == nil || d.lanes[0].runs[1] == nil || d.lanes[1].runs[1] != nil {
		t.Errorf("lone images: %d picked, wide session used %v, lanes used %v %v", d.picker.calls,
			d.wide.runs[1] != nil, d.lanes[0].runs[1] != nil, d.lanes[1].runs[1] != nil)
	}
	if !(d.picker.ns[0] > 0 && d.picker.ns[1] > 0) {
		t.Errorf("run times %v", d.picker.ns)
	}
}

// TestLonePicker: lone images go to the faster kind of run, and every 32nd
// to the other kind.
func TestLonePicker(t *testing.T) {
	withCPUs(t, 2)
	d, f := openFixture(t, fixtures[0], Options{})
	dim := d.Shape().Dim()
	out := make([]float32, dim)
	lone := func() {
		t.Helper()
		d.cores.Lock()
		defer d.cores.Unlock()
		if err := d.lone(f.X[:dim], f.Sigma[:1], out); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		lone()
	}
	for slow := range 2 {
		ran := 0
		for range 64 {
			// Pretend that one kind is much slower, whatever the timings:
			// its average changes only when it runs.
			d.picker.ns[slow] = 1e12
			lone()
			if d.picker.ns[slow] != 1e12 {
				ran++
			}
		}
		if ran != 2 {
			t.Errorf("the slow kind (%d) ran %d times in 64 lone images, want 2 (every 32nd)", slow, ran)
		}
	}
}

// TestConcurrentMixed runs one-image and larger calls at once on the
// automatic layout: the wide session and the lanes exclude each other, and
// every result matches PyTorch.
func TestConcurrentMixed(t *testing.T) {
	withCPUs(t, 2)
	d, f := openFixture(t, fixtures[0], Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := []int{1, 1, 4, 9, 1, 33}[w]
			x, sigma := benchInput(f, n)
			want, _ := benchInput(fixture{X: f.Denoised, Sigma: f.Sigma}, n)
			out := make([]float32, len(x))
			for it := range 8 {
				clear(out)
				if err := d.Denoise(context.Background(), x, sigma, out); err != nil {
					errs <- err
					return
				}
				if e, _ := maxAbsDiff(out, want); !(e <= tolerance) {
					errs <- fmt.Errorf("worker %d (%d images) iteration %d: max error %g", w, n, it, e)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestNoAllocs: once every run size of a call has been seen, Denoise
// allocates nothing, on the wide session and on the lanes.
func TestNoAllocs(t *testing.T) {
	withCPUs(t, 2)
	for _, opts := range []Options{{}, {Threads: 1, Sessions: 2, BatchSize: 4}} {
		d, f := openFixture(t, fixtures[0], opts)
		for _, n := range []int{1, 4, 7, 40} {
			x, sigma := benchInput(f, n)
			out := make([]float32, len(x))
			ctx := context.Background()
			if err := d.Denoise(ctx, x, sigma, out); err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(20, func() {
				if err := d.Denoise(ctx, x, sigma, out); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%+v, %d images: %v allocations per call", opts, n, allocs)
			}
		}
	}
}
