package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssInterval is how often the server's VmRSS is sampled.
const rssInterval = 100 * time.Millisecond

// RSS is what was learned of the server's memory. Sizes are in MiB.
type RSS struct {
	PID int `json:"pid"`
	// PeakMB is VmHWM read at the end of the run: the peak resident set over
	// the process's whole life, not only this run. When it cannot be read
	// it is MaxSampledMB.
	PeakMB float64 `json:"peak_rss_mb"`
	// MaxSampledMB is the largest VmRSS seen in samples every 100 ms (start,
	// during the run, end).
	MaxSampledMB float64 `json:"max_sampled_rss_mb"`
	StartMB      float64 `json:"start_rss_mb"`
	EndMB        float64 `json:"end_rss_mb,omitempty"`
	Samples      int     `json:"samples"`
	Error        string  `json:"error,omitempty"` // the first read failure after the start
}

// rssSampler samples a process's VmRSS in the background.
type rssSampler struct {
	pid      int
	path     string
	interval time.Duration
	done     chan struct{}
	finished sync.WaitGroup

	mu      sync.Mutex
	maxKB   int64
	samples int
	err     error
	startKB int64
}

// startRSS starts sampling /proc/pid/status; pid 0 means no sampling (a nil
// sampler, whose stop returns nil). It fails when the file cannot be read
// now, e.g. no such process.
func startRSS(pid int) (*rssSampler, error) {
	if pid == 0 {
		return nil, nil
	}
	s := &rssSampler{pid: pid, path: fmt.Sprintf("/proc/%d/status", pid), interval: rssInterval, done: make(chan struct{})}
	kb, err := readStatusKB(s.path, "VmRSS")
	if err != nil {
		return nil, fmt.Errorf("--server-pid %d: %w", pid, err)
	}
	s.startKB, s.maxKB, s.samples = kb, kb, 1
	s.finished.Go(s.loop)
	return s, nil
}

// loop samples every interval until done is closed.
func (s *rssSampler) loop() {
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
			s.sample()
		}
	}
}

// sample reads VmRSS once and records it (or the first failure), returning
// the value read.
func (s *rssSampler) sample() (int64, error) {
	kb, err := readStatusKB(s.path, "VmRSS")
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return 0, err
	}
	s.samples++
	s.maxKB = max(s.maxKB, kb)
	return kb, nil
}

// stop ends the sampling, takes a last sample and reads VmHWM.
func (s *rssSampler) stop() *RSS {
	if s == nil {
		return nil
	}
	close(s.done)
	s.finished.Wait()
	endKB, _ := s.sample()
	hwmKB, hwmErr := readStatusKB(s.path, "VmHWM")
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &RSS{PID: s.pid, MaxSampledMB: mib(s.maxKB), StartMB: mib(s.startKB), EndMB: mib(endKB), Samples: s.samples, PeakMB: mib(hwmKB)}
	if hwmErr != nil {
		r.PeakMB = r.MaxSampledMB
		if s.err == nil {
			s.err = hwmErr
		}
	}
	if s.err != nil {
		r.Error = s.err.Error()
	}
	return r
}

// mib converts kB (KiB, as /proc reports them) to MiB.
func mib(kb int64) float64 { return float64(kb) / 1024 }

// readStatusKB reads field (e.g. "VmRSS") from a /proc/PID/status file, in kB.
func readStatusKB(path, field string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	kb, err := parseStatusKB(b, field)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return kb, nil
}

// parseStatusKB finds "field:   N kB" in the text of a /proc/PID/status file.
func parseStatusKB(status []byte, field string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: unexpected value %q", field, strings.TrimSpace(rest))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", field, err)
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("scanning for %s: %w", field, err)
	}
	return 0, fmt.Errorf("no %s field (not a user process, or it has exited)", field)
}
