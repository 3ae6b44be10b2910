package main

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/eigenscore/eigenscore/eval"
)

// progress returns an eval.Progress drawing bars on stderr, or nothing when
// quiet.
func (g *globals) progress() eval.Progress {
	return func(stage string, total int) (func(int), func()) {
		if g.quiet || !isTerminal(os.Stderr) {
			// Bars in logs and pipes are noise: log the stage instead.
			if !g.quiet {
				slog.Info("start", "stage", stage, "tasks", total)
			}
			t0 := time.Now()
			return func(int) {}, func() {
				if !g.quiet {
					slog.Info("done", "stage", stage, "seconds", time.Since(t0).Round(time.Millisecond).Seconds())
				}
			}
		}
		var w io.Writer = os.Stderr
		bar := progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(stage),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		return func(done int) { bar.Set(done) }, func() { bar.Finish() }
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
