package onnx

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkShipped times the backend with its default options (the
// automatic layout) on a shipped network, by default
// models/fashion-mnist/model.onnx, at the call sizes of the peer
// comparison (`make bench-peer`, tools/bench_peer.py): 1, 6, 32 and 192
// images per call, cycled from the tiny fixture's noisy Fashion-MNIST
// images, which tools/torch_peer.py feeds PyTorch too. It reports NFE/s.
//
//	go test -run '^$' -bench 'Shipped/batch=32$' ./denoise/onnx
//
// $EIGENSCORE_BENCH_MODEL picks another model and $EIGENSCORE_BENCH_BATCH
// other call sizes (comma-separated).
func BenchmarkShipped(b *testing.B) {
	requireORT(b)
	model := os.Getenv("EIGENSCORE_BENCH_MODEL")
	if model == "" {
		model = filepath.Join("..", "..", "models", "fashion-mnist", "model.onnx")
	}
	sizes := []int{1, 6, 32, 192}
	if env := os.Getenv("EIGENSCORE_BENCH_BATCH"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("EIGENSCORE_BENCH_BATCH=%q: want positive integers", env)
			}
			sizes = append(sizes, n)
		}
	}
	d, err := Open(model, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	_, f := loadFixture(b, fixtures[0])
	ctx := context.Background()
	for _, n := range sizes {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			x, sigma := benchInput(f, n)
			out := make([]float32, len(x))
			if err := d.Denoise(ctx, x, sigma, out); err != nil { // warm-up: first runs of each size
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := d.Denoise(ctx, x, sigma, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "NFE/s")
		})
	}
}
