package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eigenscore/eigenscore/data"
)

// kind classifies the outcome of one request.
type kind int

const (
	kindOK          kind = iota // 200 with one result per image sent
	kindBadResponse             // 200 whose body is not that
	kind429                     // queue full
	kind503                     // shutting down or overloaded
	kind504                     // the server's request deadline passed
	kindOther                   // any other status
	kindTimeout                 // the client's --timeout passed
	kindError                   // transport error after connecting: reset, EOF, …
	kindRefused                 // the connection was refused: the request never reached a server
	kindCancelled               // still in flight when --duration passed or the run was interrupted
	numKinds
)

// kindNames are the names kinds have in the summary and in error samples.
var kindNames = [numKinds]string{"ok", "bad_responses", "429", "503", "504", "other", "timeouts", "errors", "refused", "cancelled"}

func (k kind) String() string { return kindNames[k] }

// outcome is what one request came to.
type outcome struct {
	kind       kind
	status     int           // HTTP status, 0 without a response
	latency    time.Duration // send to full body read; 0 without a response
	retryAfter time.Duration // a 429's Retry-After
	msg        string        // why it failed, for the error samples
}

// imageSource hands out the images of a dataset round-robin as request bodies.
type imageSource struct {
	ds  *data.Dataset
	pad int // bytes of white space in each body
}

func newImageSource(ds *data.Dataset, pad int) *imageSource { return &imageSource{ds: ds, pad: pad} }

// body is the JSON body of request k carrying n images: images k·n … k·n+n−1
// of the dataset, modulo its length, after pad bytes of white space (valid
// JSON, to measure how the server holds large bodies).
func (s *imageSource) body(k, n int) []byte {
	dim := s.ds.Dim()
	b := make([]byte, 0, s.pad+16+n*(dim*6+3))
	b = append(b, `{"images":`...)
	for range s.pad {
		b = append(b, ' ')
	}
	b = append(b, '[')
	for j := range n {
		if j > 0 {
			b = append(b, ',')
		}
		b = appendImage(b, s.ds.Image((k*n+j)%s.ds.Len()))
	}
	return append(b, "]}"...)
}

// appendImage appends img as a JSON array of numbers.
func appendImage(b []byte, img []float32) []byte {
	b = append(b, '[')
	for i, v := range img {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	}
	return append(b, ']')
}

// loadTest is one bounded run against POST /v1/score.
type loadTest struct {
	client          *http.Client
	url, token      string
	clients, images int
	requests        int
	duration        time.Duration
	timeout         time.Duration
	honorRetryAfter bool
	source          *imageSource
}

// results are the merged outcomes of a run.
type results struct {
	tally
	wall time.Duration
	stop string // "requests", "duration" or "interrupted"
}

// errDurationReached is the cancellation cause when --duration passes.
var errDurationReached = errors.New("--duration reached")

// run drives the load: lt.clients workers send requests one after another
// until lt.requests have been sent in all or lt.duration has passed (then
// requests in flight are cancelled), or ctx is cancelled.
func (lt *loadTest) run(parent context.Context) *results {
	ctx, cancel := context.WithTimeoutCause(parent, lt.duration, errDurationReached)
	defer cancel()
	var next atomic.Int64
	tallies := make([]*tally, lt.clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range tallies {
		t := newTally()
		tallies[i] = t
		wg.Go(func() { lt.worker(ctx, &next, t) })
	}
	wg.Wait()
	res := &results{wall: time.Since(start), stop: stopReason(ctx, parent)}
	res.tally = *merge(tallies)
	return res
}

// stopReason says why the run ended; call it before cancelling ctx.
func stopReason(ctx, parent context.Context) string {
	switch {
	case errors.Is(context.Cause(ctx), errDurationReached):
		return "duration"
	case parent.Err() != nil:
		return "interrupted"
	default:
		return "requests"
	}
}

// worker claims request numbers from next and sends them until none are
// left or ctx is done, recording each outcome in t.
func (lt *loadTest) worker(ctx context.Context, next *atomic.Int64, t *tally) {
	for ctx.Err() == nil {
		k := int(next.Add(1) - 1)
		if k >= lt.requests {
			return
		}
		o := lt.do(ctx, lt.source.body(k, lt.images))
		t.add(o)
		if o.kind == kind429 && lt.honorRetryAfter {
			sleep(ctx, o.retryAfter)
		}
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// do sends one request and classifies what came back. Its latency runs from
// the send to the end of the body.
func (lt *loadTest) do(ctx context.Context, body []byte) outcome {
	rctx, cancel := context.WithTimeout(ctx, lt.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, lt.url, bytes.NewReader(body))
	if err != nil {
		return outcome{kind: kindError, msg: fmt.Sprintf("building the request: %v", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	setAuth(req, lt.token)
	start := time.Now()
	resp, err := lt.client.Do(req)
	if err != nil {
		return failure(ctx, rctx, err)
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	latency := time.Since(start)
	if err != nil {
		return failure(ctx, rctx, fmt.Errorf("reading the %d response body: %w", resp.StatusCode, err))
	}
	o := classify(resp, respBody, lt.images)
	o.latency = latency
	return o
}

// failure classifies a request that got no full response: cancelled when
// the run's context is done, a timeout when the request's deadline passed
// (or the transport says it timed out), else a transport error.
func failure(run, req context.Context, err error) outcome {
	var ne net.Error
	switch {
	case run.Err() != nil:
		return outcome{kind: kindCancelled, msg: err.Error()}
	case errors.Is(req.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return outcome{kind: kindTimeout, msg: err.Error()}
	case errors.Is(err, syscall.ECONNREFUSED):
		return outcome{kind: kindRefused, msg: err.Error()}
	default:
		return outcome{kind: kindError, msg: err.Error()}
	}
}

// classify turns a response into an outcome; images is how many were sent.
func classify(resp *http.Response, body []byte, images int) outcome {
	o := outcome{status: resp.StatusCode}
	switch resp.StatusCode {
	case http.StatusOK:
		if err := checkResults(body, images); err != nil {
			o.kind, o.msg = kindBadResponse, err.Error()
		} else {
			o.kind = kindOK
		}
		return o
	case http.StatusTooManyRequests:
		o.kind, o.retryAfter = kind429, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case http.StatusServiceUnavailable:
		o.kind = kind503
	case http.StatusGatewayTimeout:
		o.kind = kind504
	default:
		o.kind = kindOther
	}
	o.msg = fmt.Sprintf("status %d: %s", resp.StatusCode, errorMessage(body))
	return o
}

// checkResults checks a 200 body has exactly one result per image sent.
func checkResults(body []byte, images int) error {
	var r struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("status 200: decoding the body: %w", err)
	}
	if len(r.Results) != images {
		return fmt.Errorf("status 200: %d results for %d images", len(r.Results), images)
	}
	return nil
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date
// (relative to now). It is 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// tally accumulates outcomes; each worker has its own, merged at the end.
type tally struct {
	counts     [numKinds]int
	statuses   map[int]int       // responses by HTTP status
	okLatency  []time.Duration   // latencies of kindOK requests
	allLatency []time.Duration   // latencies of every request that got a full response
	samples    map[string]string // the first failure message of each kind
}

func newTally() *tally {
	return &tally{statuses: map[int]int{}, samples: map[string]string{}}
}

// add records one outcome.
func (t *tally) add(o outcome) {
	t.counts[o.kind]++
	if o.status != 0 {
		t.statuses[o.status]++
		t.allLatency = append(t.allLatency, o.latency)
	}
	if o.kind == kindOK {
		t.okLatency = append(t.okLatency, o.latency)
	}
	if o.msg != "" && t.samples[o.kind.String()] == "" {
		t.samples[o.kind.String()] = o.msg
	}
}

// merge sums tallies into a new one.
func merge(ts []*tally) *tally {
	out := newTally()
	for _, t := range ts {
		for k, n := range t.counts {
			out.counts[k] += n
		}
		for s, n := range t.statuses {
			out.statuses[s] += n
		}
		out.okLatency = append(out.okLatency, t.okLatency...)
		out.allLatency = append(out.allLatency, t.allLatency...)
		for k, m := range t.samples {
			if out.samples[k] == "" {
				out.samples[k] = m
			}
		}
	}
	return out
}

// total is the number of requests sent.
func (t *tally) total() int {
	n := 0
	for _, c := range t.counts {
		n += c
	}
	return n
}
