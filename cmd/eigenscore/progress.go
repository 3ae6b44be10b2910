package main

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/eigenscore/eigenscore/method"
)

// progress returns a method.Progress drawing bars on stderr, or nothing when
// quiet.
func (g *globals) progress() method.Progress {
	return func(stage string, total int) (func(int), func()) {
		if g.quiet || !isTerminal(os.Stderr) {
			// Bars in logs and pipes are noise: log the stage instead.
			if !g.quiet {
				slog.Info("start", "stage", stage, "tasks", total)
			}
			t0 := time.Now()
			last := t0
			// A line every 30 s, so that a long stage in a log shows it is
			// alive and how far it got.
			update := func(done int) {
				if g.quiet || time.Since(last) < 30*time.Second {
					return
				}
				last = time.Now()
				slog.Info("progress", "stage", stage, "done", done, "tasks", total,
					"seconds", time.Since(t0).Round(time.Second).Seconds())
			}
			return update, func() {
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
