package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Summary is the result of a run, printed as one line and written as JSON.
// Latencies are in seconds.
type Summary struct {
	Addr             string  `json:"addr"`
	Model            string  `json:"model"`
	Shape            string  `json:"shape"`
	Data             string  `json:"data"`
	Clients          int     `json:"clients"`
	ImagesPerRequest int     `json:"images_per_request"`
	Requests         int     `json:"requests"` // sent, whatever came of them
	OK               int     `json:"ok"`       // 200 with one result per image
	Status429        int     `json:"429"`
	Status503        int     `json:"503"`
	Status504        int     `json:"504"`
	Other            int     `json:"other"`         // any other HTTP status
	Timeouts         int     `json:"timeouts"`      // client --timeout passed
	Errors           int     `json:"errors"`        // transport errors after connecting (a request cut off)
	Refused          int     `json:"refused"`       // connections refused: never reached a server
	BadResponses     int     `json:"bad_responses"` // 200 without one result per image
	Cancelled        int     `json:"cancelled"`     // in flight when the run stopped
	Images           int     `json:"images"`        // images in OK responses
	WallSeconds      float64 `json:"wall_s"`
	ImagesPerSec     float64 `json:"images_per_s"` // Images / WallSeconds
	P50              float64 `json:"p50_s"`        // of OK requests
	P95              float64 `json:"p95_s"`
	P99              float64 `json:"p99_s"`
	// Latency summarizes OK requests; LatencyAll every request that got a
	// full response, whatever its status.
	Latency    LatencySummary `json:"latency"`
	LatencyAll LatencySummary `json:"latency_all_responses"`
	// StatusCounts counts responses by HTTP status.
	StatusCounts map[string]int `json:"status_counts"`
	// ErrorSamples holds the first failure message of each kind.
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	StopReason   string            `json:"stop_reason"` // requests, duration or interrupted
	RSS          *RSS              `json:"server_rss,omitempty"`
}

// LatencySummary describes a list of latencies, in seconds.
type LatencySummary struct {
	Count int     `json:"count"`
	Min   float64 `json:"min_s"`
	Mean  float64 `json:"mean_s"`
	P50   float64 `json:"p50_s"`
	P90   float64 `json:"p90_s"`
	P95   float64 `json:"p95_s"`
	P99   float64 `json:"p99_s"`
	Max   float64 `json:"max_s"`
}

// summarize turns a run's results into a Summary.
func summarize(r *results, clients, images int) *Summary {
	c := r.counts
	s := &Summary{
		Clients: clients, ImagesPerRequest: images, Requests: r.total(),
		OK: c[kindOK], Status429: c[kind429], Status503: c[kind503], Status504: c[kind504],
		Other: c[kindOther], Timeouts: c[kindTimeout], Errors: c[kindError], Refused: c[kindRefused],
		BadResponses: c[kindBadResponse], Cancelled: c[kindCancelled],
		Images:       c[kindOK] * images,
		WallSeconds:  r.wall.Seconds(),
		ImagesPerSec: rate(c[kindOK]*images, r.wall),
		Latency:      summarizeLatency(r.okLatency),
		LatencyAll:   summarizeLatency(r.allLatency),
		StatusCounts: map[string]int{},
		StopReason:   r.stop,
	}
	s.P50, s.P95, s.P99 = s.Latency.P50, s.Latency.P95, s.Latency.P99
	for code, n := range r.statuses {
		s.StatusCounts[strconv.Itoa(code)] = n
	}
	if len(r.samples) > 0 {
		s.ErrorSamples = r.samples
	}
	return s
}

// rate is n per second of wall time (0 for no time).
func rate(n int, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return float64(n) / wall.Seconds()
}

// summarizeLatency sorts a copy of ds and reads its statistics.
func summarizeLatency(ds []time.Duration) LatencySummary {
	if len(ds) == 0 {
		return LatencySummary{}
	}
	secs := make([]float64, len(ds))
	sum := 0.0
	for i, d := range ds {
		secs[i] = d.Seconds()
		sum += secs[i]
	}
	slices.Sort(secs)
	return LatencySummary{
		Count: len(secs), Min: secs[0], Mean: sum / float64(len(secs)),
		P50: percentile(secs, 50), P90: percentile(secs, 90), P95: percentile(secs, 95),
		P99: percentile(secs, 99), Max: secs[len(secs)-1],
	}
}

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of sorted:
// the smallest value such that at least p% of the values are ≤ it. It is 0
// for no values; p ≤ 0 gives the minimum.
func percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

// Line is the one-line summary.
func (s *Summary) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clients=%d images/request=%d requests=%d ok=%d 429=%d 503=%d 504=%d other=%d timeouts=%d errors=%d refused=%d bad_responses=%d cancelled=%d",
		s.Clients, s.ImagesPerRequest, s.Requests, s.OK, s.Status429, s.Status503, s.Status504, s.Other, s.Timeouts, s.Errors, s.Refused, s.BadResponses, s.Cancelled)
	fmt.Fprintf(&b, " images/s=%.2f p50=%.3fs p95=%.3fs p99=%.3fs", s.ImagesPerSec, s.P50, s.P95, s.P99)
	if s.RSS != nil && s.RSS.PeakMB > 0 {
		fmt.Fprintf(&b, " peak_rss_mb=%.1f", s.RSS.PeakMB)
	} else {
		b.WriteString(" peak_rss_mb=-")
	}
	if s.StopReason != "requests" {
		fmt.Fprintf(&b, " stopped_by=%s", s.StopReason)
	}
	return b.String()
}
