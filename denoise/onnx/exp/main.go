// Throwaway experiment harness (deleted before hand-off).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

type cfg struct {
	model    string
	mode     string // adv | bind | dyn
	batch    int    // images per run per session
	threads  int
	sessions int
	opt      int // 0 disable,1 basic,2 ext,99 all
	spin     bool
	daz      bool
	mempat   bool
	arena    bool
	parallel bool
}

func (c cfg) String() string {
	return fmt.Sprintf("mode=%s b=%d t=%d s=%d opt=%d spin=%v daz=%v mempat=%v arena=%v par=%v model=%s",
		c.mode, c.batch, c.threads, c.sessions, c.opt, c.spin, c.daz, c.mempat, c.arena, c.parallel, c.model[strings.LastIndex(c.model, "/")+1:])
}

type runner struct {
	run     func() error
	destroy func()
}

func newRunner(c cfg) (*runner, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	so.SetIntraOpNumThreads(c.threads)
	so.SetInterOpNumThreads(1)
	lvl := map[int]ort.GraphOptimizationLevel{0: ort.GraphOptimizationLevelDisableAll, 1: ort.GraphOptimizationLevelEnableBasic, 2: ort.GraphOptimizationLevelEnableExtended, 99: ort.GraphOptimizationLevelEnableAll}[c.opt]
	if err := so.SetGraphOptimizationLevel(lvl); err != nil {
		return nil, err
	}
	if !c.spin {
		so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0")
	}
	if c.daz {
		so.AddSessionConfigEntry("session.set_denormal_as_zero", "1")
	}
	so.SetMemPattern(c.mempat)
	so.SetCpuMemArena(c.arena)
	if c.parallel {
		so.SetExecutionMode(ort.ExecutionModeParallel)
		so.SetInterOpNumThreads(2)
	}
	b := int64(c.batch)
	x, _ := ort.NewEmptyTensor[float32](ort.NewShape(b, 1, 28, 28))
	s, _ := ort.NewEmptyTensor[float32](ort.NewShape(b))
	y, _ := ort.NewEmptyTensor[float32](ort.NewShape(b, 1, 28, 28))
	xd, sd := x.GetData(), s.GetData()
	for i := range xd {
		xd[i] = float32((i*7919)%200-100) / 100
	}
	for i := range sd {
		sd[i] = 0.72359
	}
	in := []ort.Value{x, s}
	out := []ort.Value{y}
	names, onames := []string{"x", "sigma"}, []string{"denoised"}
	ro, _ := ort.NewRunOptions()
	switch c.mode {
	case "adv":
		sess, err := ort.NewAdvancedSession(c.model, names, onames, in, out, so)
		if err != nil {
			return nil, err
		}
		return &runner{func() error { return sess.RunWithOptions(ro) }, func() { sess.Destroy() }}, nil
	case "dyn", "bind":
		sess, err := ort.NewDynamicAdvancedSession(c.model, names, onames, so)
		if err != nil {
			return nil, err
		}
		if c.mode == "dyn" {
			return &runner{func() error { return sess.RunWithOptions(in, out, ro) }, func() { sess.Destroy() }}, nil
		}
		bd, err := sess.CreateIoBinding()
		if err != nil {
			return nil, err
		}
		bd.BindInput("x", x)
		bd.BindInput("sigma", s)
		bd.BindOutput("denoised", y)
		return &runner{func() error { return sess.RunWithBinding(bd) }, func() { bd.Destroy(); sess.Destroy() }}, nil
	}
	return nil, fmt.Errorf("mode %s", c.mode)
}

// measure returns NFE/s over dur with c.sessions runners in parallel.
func measure(c cfg, dur time.Duration) (float64, float64) {
	rs := make([]*runner, c.sessions)
	for i := range rs {
		r, err := newRunner(c)
		if err != nil {
			fmt.Fprintln(os.Stderr, c, err)
			os.Exit(1)
		}
		rs[i] = r
		defer r.destroy()
	}
	// warm
	for _, r := range rs {
		for range 3 {
			r.run()
		}
	}
	var wg sync.WaitGroup
	counts := make([]int, len(rs))
	start := time.Now()
	var allocs float64
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			for time.Since(start) < dur {
				if err := r.run(); err != nil {
					panic(err)
				}
				counts[i]++
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	allocs = testing.AllocsPerRun(20, func() { rs[0].run() })
	n := 0
	for _, k := range counts {
		n += k
	}
	return float64(n*c.batch) / el, allocs
}

func main() {
	dur := flag.Duration("dur", 1500*time.Millisecond, "")
	reps := flag.Int("reps", 2, "")
	model := flag.String("model", "models/fashion-mnist/model.onnx", "")
	modes := flag.String("modes", "adv", "")
	batches := flag.String("batches", "1", "")
	threads := flag.String("threads", "1", "")
	sessions := flag.String("sessions", "1", "")
	opts := flag.String("opt", "99", "")
	spin := flag.String("spin", "1", "")
	daz := flag.String("daz", "0", "")
	mempat := flag.String("mempat", "1", "")
	arena := flag.String("arena", "1", "")
	par := flag.String("par", "0", "")
	fixed := flag.Bool("fixed", false, "use /tmp/exp/fixed_<batch>.onnx")
	flag.Parse()
	ort.SetSharedLibraryPath(os.Getenv("ONNXRUNTIME_LIB"))
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		panic(err)
	}
	ints := func(s string) []int {
		var r []int
		for _, f := range strings.Split(s, ",") {
			var v int
			fmt.Sscan(f, &v)
			r = append(r, v)
		}
		return r
	}
	var cs []cfg
	for _, m := range strings.Split(*modes, ",") {
		for _, b := range ints(*batches) {
			for _, t := range ints(*threads) {
				for _, s := range ints(*sessions) {
					for _, o := range ints(*opts) {
						for _, sp := range ints(*spin) {
							for _, dz := range ints(*daz) {
								for _, mp := range ints(*mempat) {
									for _, ar := range ints(*arena) {
										for _, p := range ints(*par) {
											md := *model
											if *fixed {
												md = fmt.Sprintf("/tmp/exp/fixed_%d.onnx", b)
											}
											cs = append(cs, cfg{md, m, b, t, s, o, sp == 1, dz == 1, mp == 1, ar == 1, p == 1})
										}
									}
								}
							}
						}
					}
				}
			}
		}
	}
	best := make([]float64, len(cs))
	var al []float64 = make([]float64, len(cs))
	for range *reps {
		for i, c := range cs {
			v, a := measure(c, *dur)
			best[i] = max(best[i], v)
			al[i] = a
		}
	}
	for i, c := range cs {
		fmt.Printf("%8.1f NFE/s  allocs/run=%.0f  %v\n", best[i], al[i], c)
	}
}
