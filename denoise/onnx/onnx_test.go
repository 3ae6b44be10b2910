package onnx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eigenscore/eigenscore/denoise"
	ort "github.com/yalue/onnxruntime_go"
)

// The fixtures were exported from PyTorch with the expected outputs that
// PyTorch computed for them; see testdata/.
var fixtures = []string{"tiny", "tiny_ddpm"}

const fixtureDir = "testdata"

// tolerance is the largest allowed |ORT − PyTorch| difference.
const tolerance = 1e-4

type fixture struct {
	Shape    []int     `json:"shape"`
	Sigma    []float32 `json:"sigma"`
	X        []float32 `json:"x"`
	Denoised []float32 `json:"denoised"`
}

func loadFixture(t testing.TB, name string) (string, fixture) {
	t.Helper()
	model := filepath.Join(fixtureDir, name+".onnx")
	raw, err := os.ReadFile(filepath.Join(fixtureDir, name+"_fixture.json"))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	var f fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	if len(f.Shape) != 3 || len(f.Sigma) == 0 {
		t.Fatalf("fixture %s: shape %v, %d sigmas", name, f.Shape, len(f.Sigma))
	}
	d := f.Shape[0] * f.Shape[1] * f.Shape[2]
	if len(f.X) != len(f.Sigma)*d || len(f.Denoised) != len(f.X) {
		t.Fatalf("fixture %s: %d sigmas, %d x, %d denoised values for shape %v", name, len(f.Sigma), len(f.X), len(f.Denoised), f.Shape)
	}
	return model, f
}

var missingOnce sync.Once

// requireORT returns the ONNX Runtime library path. A missing library fails
// the test with the install hint unless EIGENSCORE_SKIP_ORT=1.
func requireORT(t testing.TB) string {
	t.Helper()
	path, err := LibraryPath("")
	if err != nil {
		if os.Getenv("EIGENSCORE_SKIP_ORT") == "1" {
			t.Skipf("EIGENSCORE_SKIP_ORT=1: %v", err)
		}
		first := false
		missingOnce.Do(func() { first = true })
		if !first {
			t.Fatal("ONNX Runtime library missing (the first failing test shows how to install it)")
		}
		t.Fatalf("%v\n(set EIGENSCORE_SKIP_ORT=1 to skip the ONNX Runtime tests explicitly)", err)
	}
	if _, err := Init(""); err != nil {
		t.Fatal(err)
	}
	return path
}

func openFixture(t testing.TB, name string, opts Options) (*Denoiser, fixture) {
	t.Helper()
	requireORT(t)
	model, f := loadFixture(t, name)
	d, err := Open(model, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	want := denoise.Shape{C: f.Shape[0], H: f.Shape[1], W: f.Shape[2]}
	if d.Shape() != want {
		t.Fatalf("%s: Shape() = %v, fixture says %v", name, d.Shape(), want)
	}
	return d, f
}

func maxAbsDiff(a, b []float32) (float64, int) {
	worst, at := 0.0, -1
	for i := range a {
		e := math.Abs(float64(a[i]) - float64(b[i]))
		if e > worst || e != e {
			worst, at = e, i
		}
	}
	return worst, at
}

func TestMatchesPyTorch(t *testing.T) {
	for _, name := range fixtures {
		// 4 images. BatchSize 3: two runs of 2 (runs are balanced, never
		// padded); 1: a run per image; 4 and 8: a single run of 4. With 2
		// or 3 sessions the runs of one call go to the sessions in
		// parallel (runs of 1, or of 2 and 2 with BatchSize 3). {0, 0} is
		// the automatic layout.
		for _, c := range []struct{ bs, sessions int }{{3, 1}, {1, 1}, {4, 1}, {8, 1}, {1, 2}, {1, 3}, {3, 2}, {0, 0}} {
			bs := c.bs
			t.Run(fmt.Sprintf("%s/batch%d/sessions%d", name, bs, c.sessions), func(t *testing.T) {
				opts := Options{BatchSize: bs, Threads: 1, Sessions: c.sessions}
				if c.sessions == 0 {
					opts.Threads = 0
				}
				d, f := openFixture(t, name, opts)
				out := make([]float32, len(f.X))
				if err := d.Denoise(context.Background(), f.X, f.Sigma, out); err != nil {
					t.Fatal(err)
				}
				if e, at := maxAbsDiff(out, f.Denoised); !(e <= tolerance) {
					dim := d.Shape().Dim()
					t.Fatalf("max |ORT - PyTorch| = %g at image %d value %d (ORT %v, PyTorch %v), want <= %g",
						e, at/dim, at%dim, out[at], f.Denoised[at], tolerance)
				}
				e, _ := maxAbsDiff(out, f.Denoised)
				t.Logf("max |ORT - PyTorch| = %.3g", e)
			})
		}
	}
}

func TestMetadata(t *testing.T) {
	for _, name := range fixtures {
		d, _ := openFixture(t, name, Options{BatchSize: 2, Threads: 1})
		md := d.Metadata()
		if md.Shape != d.Shape() || md.SigmaMin <= 0 || md.SigmaMax <= md.SigmaMin {
			t.Errorf("%s: metadata %+v", name, md)
		}
		for _, k := range []string{MetaDataset, MetaShape, MetaSigmaLo, MetaSigmaHi, MetaRecipe, MetaProd} {
			if _, ok := md.Raw[k]; !ok {
				t.Errorf("%s: metadata lacks %q: %v", name, k, md.Raw)
			}
		}
		if d.BatchSize() != 2 {
			t.Errorf("BatchSize() = %d", d.BatchSize())
		}
		t.Logf("%s: %+v (ONNX Runtime %s)", name, md, RuntimeVersion())
	}
}

func TestOpenBytesMatchesOpen(t *testing.T) {
	requireORT(t)
	model, f := loadFixture(t, fixtures[0])
	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	d, err := OpenBytes("embedded "+fixtures[0], data, Options{BatchSize: 3, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	clear(data) // OpenBytes must not retain the bytes
	out := make([]float32, len(f.X))
	if err := d.Denoise(context.Background(), f.X, f.Sigma, out); err != nil {
		t.Fatal(err)
	}
	if e, _ := maxAbsDiff(out, f.Denoised); !(e <= tolerance) {
		t.Fatalf("max abs error %g", e)
	}
}

func TestConcurrentIdentical(t *testing.T) {
	for _, sessions := range []int{1, 2} {
		t.Run(fmt.Sprintf("sessions%d", sessions), func(t *testing.T) {
			d, f := openFixture(t, fixtures[0], Options{BatchSize: 3, Threads: 1, Sessions: sessions})
			ref := make([]float32, len(f.X))
			if err := d.Denoise(context.Background(), f.X, f.Sigma, ref); err != nil {
				t.Fatal(err)
			}
			const workers, iters = 4, 5
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out := make([]float32, len(f.X))
					for it := range iters {
						clear(out)
						if err := d.Denoise(context.Background(), f.X, f.Sigma, out); err != nil {
							errs <- err
							return
						}
						for i := range out {
							if out[i] != ref[i] {
								errs <- fmt.Errorf("worker %d iter %d: out[%d] = %v, want %v", w, it, i, out[i], ref[i])
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestInputValidation(t *testing.T) {
	d, f := openFixture(t, fixtures[0], Options{BatchSize: 2, Threads: 1})
	ctx := context.Background()
	n := len(f.Sigma)
	dim := d.Shape().Dim()
	out := make([]float32, len(f.X))

	if err := d.Denoise(ctx, f.X[:len(f.X)-1], f.Sigma, out); err == nil || !strings.Contains(err.Error(), "input has") {
		t.Errorf("short x: err = %v", err)
	}
	if err := d.Denoise(ctx, f.X, f.Sigma, out[:dim]); err == nil || !strings.Contains(err.Error(), "output has") {
		t.Errorf("short out: err = %v", err)
	}
	if err := d.Denoise(ctx, f.X, f.Sigma[:n-1], out); err == nil {
		t.Error("x/sigma count mismatch: no error")
	}

	bad := append([]float32(nil), f.X...)
	bad[dim+5] = float32(math.NaN())
	if err := d.Denoise(ctx, bad, f.Sigma, out); err == nil || !strings.Contains(err.Error(), "image 1") || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("NaN x: err = %v", err)
	}
	bad[dim+5] = float32(math.Inf(-1))
	if err := d.Denoise(ctx, bad, f.Sigma, out); err == nil || !strings.Contains(err.Error(), "finite") {
		t.Errorf("-Inf x: err = %v", err)
	}
	for _, s := range []float32{0, -1, float32(math.NaN()), float32(math.Inf(1))} {
		sig := append([]float32(nil), f.Sigma...)
		sig[n-1] = s
		if err := d.Denoise(ctx, f.X, sig, out); err == nil || !strings.Contains(err.Error(), "sigma[") {
			t.Errorf("sigma %v: err = %v", s, err)
		}
	}
	if err := d.Denoise(ctx, nil, nil, nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

func TestContextCancelled(t *testing.T) {
	d, f := openFixture(t, fixtures[0], Options{BatchSize: 1, Threads: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := make([]float32, len(f.X))
	if err := d.Denoise(ctx, f.X, f.Sigma, out); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: err = %v", err)
	}
	// The session must be usable again afterwards.
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	if err := d.Denoise(ctx2, f.X, f.Sigma, out); err != nil {
		t.Fatal(err)
	}
	if e, _ := maxAbsDiff(out, f.Denoised); !(e <= tolerance) {
		t.Fatalf("after cancel: max abs error %g", e)
	}
}

func TestCancelWhileRunning(t *testing.T) {
	d, f := openFixture(t, fixtures[0], Options{BatchSize: 1, Threads: 1})
	x, sigma := benchInput(f, 5000)
	out := make([]float32, len(x))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(5*time.Millisecond, cancel)
	start := time.Now()
	if err := d.Denoise(ctx, x, sigma, out); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while running: err = %v after %v", err, time.Since(start))
	}
	// The terminate flag must have been cleared for the next call.
	out = out[:len(f.X)]
	if err := d.Denoise(context.Background(), f.X, f.Sigma, out); err != nil {
		t.Fatal(err)
	}
	if e, _ := maxAbsDiff(out, f.Denoised); !(e <= tolerance) {
		t.Fatalf("after cancel: max abs error %g", e)
	}
}

func TestClose(t *testing.T) {
	d, f := openFixture(t, fixtures[0], Options{BatchSize: 4, Threads: 1})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(f.X))
	if err := d.Denoise(context.Background(), f.X, f.Sigma, out); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: err = %v", err)
	}
}

func TestBadModels(t *testing.T) {
	requireORT(t)
	cases := []struct {
		file string
		want []string
	}{
		{"bad_names.onnx", []string{"bad_names.onnx", "input names", `"x" and "sigma"`, `"image"`}},
		{"bad_shape.onnx", []string{"bad_shape.onnx", "C,H,W", "1x28x28", "32"}},
	}
	for _, c := range cases {
		_, err := Open(filepath.Join(fixtureDir, c.file), Options{BatchSize: 2, Threads: 1})
		if err == nil {
			t.Errorf("%s: Open succeeded", c.file)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.file, err, w)
			}
		}
		t.Logf("%s: %v", c.file, err)
	}
	if _, err := Open(filepath.Join(fixtureDir, "missing.onnx"), Options{}); err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("missing model: err = %v", err)
	}
	if _, err := OpenBytes("garbage", []byte("not an onnx model"), Options{}); err == nil || !strings.Contains(err.Error(), "garbage") {
		t.Errorf("garbage model: err = %v", err)
	}
}

func TestMetadataParsing(t *testing.T) {
	good := map[string]string{"shape": "1x28x28", "sigma_min": "0.002", "sigma_max": "80"}
	md, err := parseMetadata("m.onnx", good)
	if err != nil || md.Shape != (denoise.Shape{C: 1, H: 28, W: 28}) || md.SigmaMin != 0.002 || md.SigmaMax != 80 {
		t.Fatalf("good metadata: %+v, %v", md, err)
	}
	for _, c := range []struct {
		k, v, want string
	}{
		{"shape", "28x28", "CxHxW"},
		{"shape", "1x0x28", "positive"},
		{"sigma_min", "zero", "positive finite"},
		{"sigma_max", "0.001", "not below"},
		{"shape", "", "CxHxW"},
	} {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		m[c.k] = c.v
		if _, err := parseMetadata("m.onnx", m); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "m.onnx") {
			t.Errorf("%s=%q: err = %v, want it to mention %q", c.k, c.v, err, c.want)
		}
	}
	delete(good, "sigma_max")
	if _, err := parseMetadata("m.onnx", good); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("no sigma_max: err = %v", err)
	}
}

func TestLibraryPathMissing(t *testing.T) {
	hint := func(t *testing.T, err error, path string) {
		t.Helper()
		if err == nil {
			t.Fatal("no error for a missing library")
		}
		if !errors.Is(err, ErrLibraryNotFound) {
			t.Errorf("error does not wrap ErrLibraryNotFound: %v", err)
		}
		for _, w := range []string{path, "scripts/install-onnxruntime.sh", LibEnv, MinORTVersion} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error does not mention %q:\n%v", w, err)
			}
		}
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "libonnxruntime.so")

	_, err := LibraryPath(missing)
	hint(t, err, missing)

	t.Setenv(LibEnv, missing)
	_, err = LibraryPath("")
	hint(t, err, "$"+LibEnv)

	t.Setenv(LibEnv, "")
	t.Setenv(CacheEnv, dir)
	want := filepath.Join(dir, "onnxruntime-"+ORTVersion, "libonnxruntime.so.1")
	if got := DefaultLibraryPath(); got != want {
		t.Errorf("DefaultLibraryPath() = %s, want %s", got, want)
	}
	_, err = LibraryPath("")
	hint(t, err, want)

	_, err = Open(filepath.Join(fixtureDir, "bad_names.onnx"), Options{LibPath: missing})
	hint(t, err, missing)

	// The flag wins over the environment.
	if err := os.WriteFile(missing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(LibEnv, filepath.Join(dir, "other.so"))
	if got, err := LibraryPath(missing); err != nil || got != missing {
		t.Errorf("LibraryPath(flag) = %q, %v", got, err)
	}
}

func TestInitOtherLibrary(t *testing.T) {
	lib := requireORT(t)
	// Same library again (also through a symlink): fine.
	if got, err := Init(lib); err != nil || got == "" {
		t.Fatalf("Init(same) = %q, %v", got, err)
	}
	link := filepath.Join(t.TempDir(), "link.so")
	if err := os.Symlink(lib, link); err == nil {
		if _, err := Init(link); err != nil {
			t.Errorf("Init(symlink to same library): %v", err)
		}
	}
	// Another existing file: refused, naming both.
	other := filepath.Join(t.TempDir(), "libonnxruntime.so")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Init(other)
	if err == nil || !strings.Contains(err.Error(), "already initialised") || !strings.Contains(err.Error(), other) {
		t.Fatalf("Init(other) = %v", err)
	}
	if _, err := Open(filepath.Join(fixtureDir, fixtures[0]+".onnx"), Options{LibPath: other}); err == nil {
		t.Fatal("Open with another library succeeded")
	}
}

// TestInitBadLibrary runs in a child process, because the environment is
// process-global: a file that is not ONNX Runtime gives a clear error, and a
// later Init with the real library still succeeds.
func TestInitBadLibrary(t *testing.T) {
	if os.Getenv("EIGENSCORE_ONNX_CHILD") == "1" {
		bad := filepath.Join(t.TempDir(), "libonnxruntime.so")
		if err := os.WriteFile(bad, []byte("not a shared library"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Init(bad)
		if err == nil {
			t.Fatal("Init(not a library) succeeded")
		}
		for _, w := range []string{bad, MinORTVersion, "scripts/install-onnxruntime.sh"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error does not mention %q:\n%v", w, err)
			}
		}
		requireORT(t) // retry with the real library
		if RuntimeVersion() == "" {
			t.Error("no runtime version after Init")
		}
		return
	}
	requireORT(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestInitBadLibrary$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "EIGENSCORE_ONNX_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestInitBadLibrary") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// Benchmarks: both run the tiny fixture at the same batch size on one
// single-threaded session; NFE/s counts images (network function
// evaluations) per second. BenchmarkShipped (bench_test.go) times the
// shipped network with the default layout.

const benchBatch = 64

func benchInput(f fixture, n int) (x, sigma []float32) {
	dim := len(f.X) / len(f.Sigma)
	x = make([]float32, n*dim)
	sigma = make([]float32, n)
	for i := range n {
		j := i % len(f.Sigma)
		copy(x[i*dim:(i+1)*dim], f.X[j*dim:(j+1)*dim])
		sigma[i] = f.Sigma[j]
	}
	return x, sigma
}

func BenchmarkDenoise(b *testing.B) {
	d, f := openFixture(b, fixtures[0], Options{BatchSize: benchBatch, Threads: 1, Sessions: 1})
	x, sigma := benchInput(f, benchBatch)
	out := make([]float32, len(x))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := d.Denoise(ctx, x, sigma, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "NFE/s")
}

func BenchmarkRawSession(b *testing.B) {
	requireORT(b)
	model, f := loadFixture(b, fixtures[0])
	opts, _ := Options{BatchSize: benchBatch, Threads: 1, Sessions: 1}.layout(numCPU(), 0)
	xt, err := ort.NewEmptyTensor[float32](ort.NewShape(benchBatch, int64(f.Shape[0]), int64(f.Shape[1]), int64(f.Shape[2])))
	if err != nil {
		b.Fatal(err)
	}
	defer xt.Destroy()
	st, err := ort.NewEmptyTensor[float32](ort.NewShape(benchBatch))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Destroy()
	yt, err := ort.NewEmptyTensor[float32](ort.NewShape(benchBatch, int64(f.Shape[0]), int64(f.Shape[1]), int64(f.Shape[2])))
	if err != nil {
		b.Fatal(err)
	}
	defer yt.Destroy()
	x, sigma := benchInput(f, benchBatch)
	copy(xt.GetData(), x)
	copy(st.GetData(), sigma)
	so, err := ort.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	defer so.Destroy()
	so.SetIntraOpNumThreads(opts.Threads)
	so.SetInterOpNumThreads(1)
	sess, err := ort.NewAdvancedSession(model, []string{InputX, InputSigma}, []string{OutputName},
		[]ort.Value{xt, st}, []ort.Value{yt}, so)
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Destroy()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := sess.Run(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "NFE/s")
}
