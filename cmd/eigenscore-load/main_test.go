package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
)

// reply is what the fake server answers to its n-th scoring request (1-based).
type reply struct {
	status     int
	results    int    // for 200: how many results; -1 means one per image
	retryAfter string // for 429
}

// fakeServer answers the scoring contract on loopback: GET /v2/models/{name}
// and POST /v1/score, checking each request as the real server would.
type fakeServer struct {
	t        *testing.T
	shape    []int64 // metadata input shape; nil answers 404 (guarded by mu)
	token    string  // required bearer token, if any
	delay    time.Duration
	answer   func(n int) reply // nil: always 200 with one result per image
	requests atomic.Int64      // scoring requests received
	mu       sync.Mutex
	imageLen map[int]int // image length → count, over all requests
}

func newFake(t *testing.T) *fakeServer {
	return &fakeServer{t: t, shape: []int64{-1, 1, 28, 28}, imageLen: map[int]int{}}
}

// start serves f on an httptest server (127.0.0.1) closed at test end.
func (f *fakeServer) start() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/models/{name}", f.metadata)
	mux.HandleFunc("POST /v1/score", f.score)
	srv := httptest.NewServer(mux)
	f.t.Cleanup(srv.Close)
	return srv
}

func (f *fakeServer) metadata(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	shape := f.shape
	f.mu.Unlock()
	if shape == nil || r.PathValue("name") != "eigenscore" {
		writeError(w, http.StatusNotFound, "no such model")
		return
	}
	writeJSONBody(w, http.StatusOK, map[string]any{
		"name": "eigenscore", "platform": "eigenscore",
		"inputs":  []any{map[string]any{"name": "images", "datatype": "FP32", "shape": shape}},
		"outputs": []any{map[string]any{"name": "score", "datatype": "FP64", "shape": []int{-1}}},
	})
}

// setShape changes the metadata input shape.
func (f *fakeServer) setShape(s []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shape = s
}

func (f *fakeServer) score(w http.ResponseWriter, r *http.Request) {
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		writeError(w, http.StatusUnauthorized, "bad token")
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "want application/json")
		return
	}
	var req struct {
		Images [][]float64 `json:"images"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Images) == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad body: %v", err))
		return
	}
	if msg := f.checkImages(req.Images); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	n := int(f.requests.Add(1))
	if !f.wait(r.Context()) {
		return
	}
	rep := reply{status: http.StatusOK, results: -1}
	if f.answer != nil {
		rep = f.answer(n)
	}
	f.write(w, rep, len(req.Images))
}

// checkImages records the image lengths and checks the values are in [-1, 1].
func (f *fakeServer) checkImages(images [][]float64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, img := range images {
		f.imageLen[len(img)]++
		for _, v := range img {
			if v < -1 || v > 1 {
				return fmt.Sprintf("value %v outside [-1, 1]", v)
			}
		}
	}
	return ""
}

// wait sleeps f.delay unless the request is cancelled first.
func (f *fakeServer) wait(ctx context.Context) bool {
	if f.delay == 0 {
		return true
	}
	select {
	case <-time.After(f.delay):
		return true
	case <-ctx.Done():
		return false
	}
}

func (f *fakeServer) write(w http.ResponseWriter, rep reply, images int) {
	if rep.status != http.StatusOK {
		if rep.retryAfter != "" {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		writeError(w, rep.status, http.StatusText(rep.status))
		return
	}
	n := rep.results
	if n < 0 {
		n = images
	}
	results := make([]map[string]any, n)
	for i := range results {
		results[i] = map[string]any{"score": 0.5, "flagged": false, "features": []float64{1, 2}}
	}
	writeJSONBody(w, http.StatusOK, map[string]any{"results": results, "model": "fake"})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSONBody(w, status, map[string]string{"error": msg})
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// testData is a small 1x28x28 dataset whose image i has every pixel i/10−0.5.
func testData(n int) *data.Dataset {
	ds := &data.Dataset{Name: "test", Shape: denoise.Shape{C: 1, H: 28, W: 28}}
	for i := range n {
		for range ds.Dim() {
			ds.Pixels = append(ds.Pixels, float32(i)/10-0.5)
		}
	}
	return ds
}

// runCmd runs the command against srv with args and returns the summary
// (read back from --json) and the stdout line.
func runCmd(t *testing.T, srv *httptest.Server, args ...string) (*Summary, string, error) {
	t.Helper()
	var out bytes.Buffer
	o := &options{
		stdout:      &out,
		lookup:      noDNS(t),
		loadDataset: func(data.Spec) (*data.Dataset, error) { return testData(5), nil },
	}
	jsonPath := filepath.Join(t.TempDir(), "summary.json")
	cmd := newCommand(o)
	cmd.SetArgs(append([]string{"--addr", srv.URL, "--json", jsonPath, "-q"}, args...))
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		return nil, out.String(), err
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("decoding the summary: %v\n%s", err, b)
	}
	return &s, out.String(), nil
}

// mustRun is runCmd failing the test on error.
func mustRun(t *testing.T, srv *httptest.Server, args ...string) (*Summary, string) {
	t.Helper()
	s, line, err := runCmd(t, srv, args...)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return s, line
}

// noDNS is a lookup that fails the test: no name should need resolving.
func noDNS(t *testing.T) lookupFunc {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		t.Errorf("unexpected DNS lookup of %q", host)
		return nil, errors.New("no DNS in tests")
	}
}

// checkTotal checks the outcome counts add up to the requests sent.
func checkTotal(t *testing.T, s *Summary) {
	t.Helper()
	sum := s.OK + s.BadResponses + s.Status429 + s.Status503 + s.Status504 + s.Other + s.Timeouts + s.Errors + s.Refused + s.Cancelled
	if sum != s.Requests {
		t.Errorf("outcomes add up to %d, requests=%d: %+v", sum, s.Requests, s)
	}
}

func TestCountsByStatus(t *testing.T) {
	f := newFake(t)
	answer := func(n int) reply {
		switch {
		case n%10 == 0:
			return reply{status: http.StatusTooManyRequests, retryAfter: "0"}
		case n%10 == 3:
			return reply{status: http.StatusServiceUnavailable}
		case n == 7:
			return reply{status: http.StatusGatewayTimeout}
		case n == 9 || n == 19:
			return reply{status: http.StatusOK, results: 1} // 1 result for 3 images
		case n == 21:
			return reply{status: http.StatusBadRequest}
		}
		return reply{status: http.StatusOK, results: -1}
	}
	f.answer = answer
	srv := f.start()
	s, line := mustRun(t, srv, "--clients", "4", "--images", "3", "--requests", "40", "--shape", "1x28x28")

	want := map[int]int{}
	for n := 1; n <= 40; n++ {
		want[answer(n).status]++
	}
	const bad = 2
	if s.Requests != 40 || int(f.requests.Load()) != 40 {
		t.Errorf("requests=%d, server saw %d, want 40", s.Requests, f.requests.Load())
	}
	if s.OK != want[200]-bad || s.BadResponses != bad || s.Status429 != want[429] || s.Status503 != want[503] ||
		s.Status504 != want[504] || s.Other != want[400] || s.Timeouts != 0 || s.Errors != 0 || s.Cancelled != 0 {
		t.Errorf("counts %+v, want by status %v with %d bad 200s", s, want, bad)
	}
	for code, n := range want {
		if s.StatusCounts[strconv.Itoa(code)] != n {
			t.Errorf("status_counts[%d]=%d, want %d", code, s.StatusCounts[strconv.Itoa(code)], n)
		}
	}
	checkTotal(t, s)
	if s.Images != 3*s.OK {
		t.Errorf("images=%d, want 3·ok=%d", s.Images, 3*s.OK)
	}
	if got := float64(s.Images) / s.WallSeconds; math.Abs(got-s.ImagesPerSec) > 1e-9*got {
		t.Errorf("images/s=%v, want images/wall=%v", s.ImagesPerSec, got)
	}
	if s.Latency.Count != s.OK || s.LatencyAll.Count != 40 {
		t.Errorf("latency counts %d (ok) and %d (all), want %d and 40", s.Latency.Count, s.LatencyAll.Count, s.OK)
	}
	if s.ErrorSamples["bad_responses"] == "" || s.ErrorSamples["503"] == "" {
		t.Errorf("error samples %v lack bad_responses or 503", s.ErrorSamples)
	}
	wantPrefix := fmt.Sprintf("clients=4 images/request=3 requests=40 ok=%d 429=%d 503=%d 504=%d other=%d timeouts=0 errors=0 refused=0 bad_responses=2 cancelled=0 images/s=",
		s.OK, s.Status429, s.Status503, s.Status504, s.Other)
	if !strings.HasPrefix(line, wantPrefix) || !strings.HasSuffix(strings.TrimSpace(line), "peak_rss_mb=-") {
		t.Errorf("line %q\nwant prefix %q", line, wantPrefix)
	}
	t.Logf("summary line: %s", strings.TrimSpace(line))
	if f.imageLen[784] != 120 || len(f.imageLen) != 1 {
		t.Errorf("server saw image lengths %v, want 120 of 784", f.imageLen)
	}
}

func TestTimeoutsAndErrors(t *testing.T) {
	f := newFake(t)
	f.delay = 5 * time.Second
	srv := f.start()
	s, _ := mustRun(t, srv, "--requests", "3", "--timeout", "50ms", "--shape", "1x28x28")
	if s.Timeouts != 3 || s.OK != 0 || s.Requests != 3 {
		t.Errorf("timeouts=%d ok=%d requests=%d, want 3 timeouts", s.Timeouts, s.OK, s.Requests)
	}

	// A closed port on loopback: refused, not cut off.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	s, _ = mustRun(t, dead, "--requests", "2", "--shape", "1x28x28")
	if s.Refused != 2 || s.Errors != 0 || s.Requests != 2 {
		t.Errorf("refused=%d errors=%d requests=%d, want 2, 0 and 2", s.Refused, s.Errors, s.Requests)
	}
	checkTotal(t, s)
}

func TestStopsAtRequests(t *testing.T) {
	f := newFake(t)
	srv := f.start()
	s, _ := mustRun(t, srv, "--clients", "3", "--requests", "7", "--duration", "1m", "--shape", "1x28x28")
	if got := f.requests.Load(); got != 7 || s.Requests != 7 || s.OK != 7 {
		t.Errorf("server saw %d, requests=%d ok=%d, want 7", got, s.Requests, s.OK)
	}
	if s.StopReason != "requests" {
		t.Errorf("stop_reason=%q, want requests", s.StopReason)
	}
}

func TestStopsAtDuration(t *testing.T) {
	f := newFake(t)
	f.delay = 20 * time.Millisecond
	srv := f.start()
	start := time.Now()
	s, line := mustRun(t, srv, "--clients", "2", "--requests", "1000000", "--duration", "300ms", "--shape", "1x28x28")
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("run took %v with --duration 300ms", el)
	}
	if s.StopReason != "duration" || !strings.Contains(line, "stopped_by=duration") {
		t.Errorf("stop_reason=%q line %q, want duration", s.StopReason, line)
	}
	if s.Requests == 0 || s.Requests > 100 || s.WallSeconds < 0.3 || s.WallSeconds > 2 {
		t.Errorf("requests=%d wall=%.2fs, want a few requests in about 0.3s", s.Requests, s.WallSeconds)
	}
	checkTotal(t, s)
}

func TestRetryAfterIsHonored(t *testing.T) {
	f := newFake(t)
	f.answer = func(int) reply { return reply{status: http.StatusTooManyRequests, retryAfter: "10"} }
	srv := f.start()
	s, _ := mustRun(t, srv, "--requests", "5", "--duration", "300ms", "--shape", "1x28x28")
	if s.Requests != 1 || s.Status429 != 1 || s.StopReason != "duration" {
		t.Errorf("requests=%d 429=%d stop=%s, want one 429 then waiting until --duration", s.Requests, s.Status429, s.StopReason)
	}
	s, _ = mustRun(t, srv, "--requests", "5", "--duration", "10s", "--honor-retry-after=false", "--shape", "1x28x28")
	if s.Requests != 5 || s.Status429 != 5 {
		t.Errorf("without honoring: requests=%d 429=%d, want 5 and 5", s.Requests, s.Status429)
	}
}

func TestTokenAndEnv(t *testing.T) {
	f := newFake(t)
	f.token = "s3cret"
	srv := f.start()
	s, _ := mustRun(t, srv, "--requests", "2", "--token", "s3cret", "--shape", "1x28x28")
	if s.OK != 2 {
		t.Errorf("with --token: ok=%d, want 2", s.OK)
	}
	t.Setenv(tokenEnv, "s3cret")
	s, _ = mustRun(t, srv, "--requests", "2", "--shape", "1x28x28")
	if s.OK != 2 {
		t.Errorf("with $%s: ok=%d, want 2", tokenEnv, s.OK)
	}
	t.Setenv(tokenEnv, "")
	s, _ = mustRun(t, srv, "--requests", "2", "--shape", "1x28x28")
	if s.Other != 2 || s.StatusCounts["401"] != 2 {
		t.Errorf("without a token: other=%d %v, want two 401s", s.Other, s.StatusCounts)
	}
}

func TestShapeFromServer(t *testing.T) {
	f := newFake(t)
	srv := f.start()
	s, _ := mustRun(t, srv, "--requests", "1")
	if s.Shape != "1x28x28" || s.OK != 1 {
		t.Errorf("shape %s ok=%d, want 1x28x28 and 1", s.Shape, s.OK)
	}

	f.setShape([]int64{-1, 3, 32, 32})
	_, _, err := runCmd(t, srv, "--requests", "1")
	if err == nil || !strings.Contains(err.Error(), "server expects 3x32x32") {
		t.Errorf("dataset 1x28x28 against a 3x32x32 model: err %v", err)
	}

	f.setShape(nil) // 404: fall back to 1x28x28
	s, _ = mustRun(t, srv, "--requests", "1")
	if s.Shape != "1x28x28" {
		t.Errorf("fallback shape %s, want 1x28x28", s.Shape)
	}
}

func TestShapeFromMetadata(t *testing.T) {
	for _, tc := range []struct {
		body string
		want denoise.Shape
		ok   bool
	}{
		{`{"inputs":[{"name":"images","shape":[-1,1,28,28]}]}`, denoise.Shape{C: 1, H: 28, W: 28}, true},
		{`{"inputs":[{"name":"images","shape":[3,32,32]}]}`, denoise.Shape{C: 3, H: 32, W: 32}, true},
		{`{"inputs":[{"name":"images","shape":[-1,784]}]}`, denoise.Shape{}, false},
		{`{"inputs":[{"name":"images","shape":[-1,-1,28,28]}]}`, denoise.Shape{}, false},
		{`{"inputs":[]}`, denoise.Shape{}, false},
		{`not json`, denoise.Shape{}, false},
	} {
		got, err := shapeFromMetadata([]byte(tc.body))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("shapeFromMetadata(%s) = %v, %v; want %v ok=%v", tc.body, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseShape(t *testing.T) {
	if s, err := parseShape("3x32x32"); err != nil || s != (denoise.Shape{C: 3, H: 32, W: 32}) {
		t.Errorf("parseShape(3x32x32) = %v, %v", s, err)
	}
	for _, bad := range []string{"", "28x28", "1x28x0", "1x28xa", "1x2x3x4"} {
		if _, err := parseShape(bad); err == nil {
			t.Errorf("parseShape(%q) accepted", bad)
		}
	}
}

func TestUniformNoiseDataset(t *testing.T) {
	// The real data path: a generated set needs no files.
	f := newFake(t)
	srv := f.start()
	var out bytes.Buffer
	cmd := newCommand(&options{stdout: &out, lookup: noDNS(t)})
	cmd.SetArgs([]string{"--addr", srv.URL, "--data", "uniform-noise", "--requests", "2", "--images", "2", "-q"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), " ok=2 ") {
		t.Errorf("line %q, want ok=2", out.String())
	}
}

func TestPercentileKnownData(t *testing.T) {
	five := []float64{15, 20, 35, 40, 50} // the nearest-rank example on Wikipedia
	for _, tc := range []struct{ p, want float64 }{{5, 15}, {20, 15}, {30, 20}, {40, 20}, {50, 35}, {100, 50}, {0, 15}} {
		if got := percentile(five, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", five, tc.p, got, tc.want)
		}
	}
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	for _, p := range []float64{1, 50, 90, 95, 99, 100} {
		if got := percentile(hundred, p); got != p {
			t.Errorf("percentile(1..100, %v) = %v, want %v", p, got, p)
		}
	}
	if got := percentile(hundred, 99.5); got != 100 {
		t.Errorf("percentile(1..100, 99.5) = %v, want 100", got)
	}
	if got := percentile([]float64{7}, 99); got != 7 {
		t.Errorf("percentile of one value = %v, want 7", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}

func TestSummarize(t *testing.T) {
	var lat []time.Duration
	for i := 10; i >= 1; i-- { // unsorted on purpose
		lat = append(lat, time.Duration(i)*100*time.Millisecond)
	}
	tl := newTally()
	for _, d := range lat {
		tl.add(outcome{kind: kindOK, status: 200, latency: d})
	}
	tl.add(outcome{kind: kind429, status: 429, latency: time.Millisecond, msg: "status 429: queue full"})
	tl.add(outcome{kind: kindTimeout, msg: "deadline"})
	r := &results{tally: *merge([]*tally{tl, newTally()}), wall: 4 * time.Second, stop: "requests"}
	s := summarize(r, 2, 3)
	if s.Requests != 12 || s.OK != 10 || s.Status429 != 1 || s.Timeouts != 1 || s.Images != 30 {
		t.Errorf("counts %+v", s)
	}
	if s.ImagesPerSec != 7.5 {
		t.Errorf("images/s = %v, want 30/4 = 7.5", s.ImagesPerSec)
	}
	want := LatencySummary{Count: 10, Min: 0.1, Mean: 0.55, P50: 0.5, P90: 0.9, P95: 1, P99: 1, Max: 1}
	if !closeLatency(s.Latency, want) {
		t.Errorf("latency %+v, want %+v", s.Latency, want)
	}
	if s.P50 != s.Latency.P50 || s.P95 != s.Latency.P95 || s.P99 != s.Latency.P99 {
		t.Errorf("top-level percentiles %v %v %v differ from the latency summary", s.P50, s.P95, s.P99)
	}
	if s.LatencyAll.Count != 11 || s.LatencyAll.Min != 0.001 {
		t.Errorf("latency of all responses %+v, want 11 from 0.001", s.LatencyAll)
	}
	s.RSS = &RSS{PeakMB: 812.44}
	wantLine := "clients=2 images/request=3 requests=12 ok=10 429=1 503=0 504=0 other=0 timeouts=1 errors=0 refused=0 bad_responses=0 cancelled=0 images/s=7.50 p50=0.500s p95=1.000s p99=1.000s peak_rss_mb=812.4"
	if got := s.Line(); got != wantLine {
		t.Errorf("line\n%s\nwant\n%s", got, wantLine)
	}
}

// closeLatency compares latency summaries up to rounding.
func closeLatency(a, b LatencySummary) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return a.Count == b.Count && near(a.Min, b.Min) && near(a.Mean, b.Mean) && near(a.P50, b.P50) &&
		near(a.P90, b.P90) && near(a.P95, b.P95) && near(a.P99, b.P99) && near(a.Max, b.Max)
}

func TestCheckLoopbackLiterals(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "localhost", "LocalHost", "localhost."} {
		if err := checkLoopback(t.Context(), host, noDNS(t)); err != nil {
			t.Errorf("checkLoopback(%s): %v", host, err)
		}
	}
	for _, host := range []string{"10.0.0.1", "8.8.8.8", "192.168.1.1", "0.0.0.0", "::", "::ffff:8.8.8.8", "2001:db8::1", "fe80::1%eth0", "128.0.0.1"} {
		err := checkLoopback(t.Context(), host, noDNS(t))
		if err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("checkLoopback(%s) = %v, want a refusal", host, err)
		}
	}
}

func TestCheckLoopbackNames(t *testing.T) {
	fakeDNS := map[string][]string{
		"example.com":    {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
		"mixed.test":     {"127.0.0.1", "10.0.0.1"},
		"loopback.test":  {"127.0.0.1", "::1"},
		"nothing.test":   {},
		"internal.local": {"10.1.2.3"},
	}
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		ips, ok := fakeDNS[host]
		if !ok {
			return nil, fmt.Errorf("no such host %s", host)
		}
		var out []netip.Addr
		for _, s := range ips {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
	if err := checkLoopback(t.Context(), "loopback.test", lookup); err != nil {
		t.Errorf("loopback.test: %v", err)
	}
	for _, host := range []string{"example.com", "mixed.test", "nothing.test", "internal.local", "unknown.test"} {
		err := checkLoopback(t.Context(), host, lookup)
		if err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("checkLoopback(%s) = %v, want a refusal", host, err)
		}
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:8080", "8.8.8.8:80", "http://example.com:80", "[2001:db8::1]:80"} {
		var out bytes.Buffer
		o := &options{stdout: &out, lookup: func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
		}, loadDataset: func(data.Spec) (*data.Dataset, error) {
			t.Errorf("%s: loaded data before refusing", addr)
			return testData(1), nil
		}}
		cmd := newCommand(o)
		cmd.SetArgs([]string{"--addr", addr, "--requests", "1", "-q"})
		err := cmd.ExecuteContext(t.Context())
		if err == nil || !strings.Contains(err.Error(), "refusing") || out.Len() != 0 {
			t.Errorf("--addr %s: err %v, output %q; want a refusal and no output", addr, err, out.String())
		}
	}
}

func TestDialControlRefusesNonLoopback(t *testing.T) {
	for _, a := range []string{"127.0.0.1:80", "[::1]:8080", "127.1.2.3:1"} {
		if err := loopbackOnly("tcp", a, nil); err != nil {
			t.Errorf("loopbackOnly(%s): %v", a, err)
		}
	}
	for _, a := range []string{"10.0.0.1:80", "8.8.8.8:53", "[2001:db8::1]:80", "example.com:80", "garbage"} {
		if err := loopbackOnly("tcp", a, nil); err == nil {
			t.Errorf("loopbackOnly(%s) allowed", a)
		}
	}
}

func TestParseAddr(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:8080":            "http://localhost:8080",
		":9000":                     "http://localhost:9000",
		"127.0.0.1:80":              "http://127.0.0.1:80",
		"[::1]:8080":                "http://[::1]:8080",
		"http://127.0.0.1:8080":     "http://127.0.0.1:8080",
		"https://localhost:8443/es": "https://localhost:8443/es",
	} {
		u, err := parseAddr(in)
		if err != nil || u.String() != want {
			t.Errorf("parseAddr(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for _, bad := range []string{"", "localhost", "ftp://localhost:21", "http://:8080", "http://u:p@localhost:1", "http://localhost:1/?q=1"} {
		if u, err := parseAddr(bad); err == nil {
			t.Errorf("parseAddr(%q) = %v, want an error", bad, u)
		}
	}
}

func TestValidateBounds(t *testing.T) {
	for _, args := range [][]string{
		{"--requests", "0"}, {"--duration", "0s"}, {"--clients", "0"}, {"--images", "0"}, {"--timeout", "-1s"},
	} {
		o := &options{lookup: noDNS(t)}
		cmd := newCommand(o)
		cmd.SetArgs(append(args, "-q"))
		if err := cmd.ExecuteContext(t.Context()); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestBodyRoundRobin(t *testing.T) {
	ds := &data.Dataset{Shape: denoise.Shape{C: 1, H: 1, W: 2}, Pixels: []float32{0, 0.5, -1, 1, 0.25, -0.125}}
	src := newImageSource(ds, 0)
	for _, tc := range []struct {
		k, n int
		want [][]float64
	}{
		{0, 1, [][]float64{{0, 0.5}}},
		{1, 2, [][]float64{{0.25, -0.125}, {0, 0.5}}}, // images 2, 3 mod 3 = 0
		{4, 1, [][]float64{{-1, 1}}},                  // image 4 mod 3 = 1
	} {
		var got struct{ Images [][]float64 }
		if err := json.Unmarshal(src.body(tc.k, tc.n), &got); err != nil {
			t.Fatalf("body(%d, %d): %v", tc.k, tc.n, err)
		}
		if fmt.Sprint(got.Images) != fmt.Sprint(tc.want) {
			t.Errorf("body(%d, %d) images %v, want %v", tc.k, tc.n, got.Images, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-2":                            0,
		"soon":                          0,
		"Thu, 02 Jan 2025 03:04:15 GMT": 10 * time.Second,
		"Thu, 02 Jan 2025 03:04:00 GMT": 0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestParseStatusKB(t *testing.T) {
	status := []byte("Name:\tserver\nVmPeak:\t  900000 kB\nVmHWM:\t  812345 kB\nVmRSS:\t  700000 kB\nThreads:\t9\n")
	if kb, err := parseStatusKB(status, "VmHWM"); err != nil || kb != 812345 {
		t.Errorf("VmHWM = %d, %v; want 812345", kb, err)
	}
	if kb, err := parseStatusKB(status, "VmRSS"); err != nil || kb != 700000 {
		t.Errorf("VmRSS = %d, %v; want 700000", kb, err)
	}
	if _, err := parseStatusKB(status, "VmSwap"); err == nil {
		t.Error("a missing field was found")
	}
	if _, err := parseStatusKB([]byte("VmRSS:\tlots\n"), "VmRSS"); err == nil {
		t.Error("a malformed field was accepted")
	}
}

func TestRSSOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	s, err := startRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond)
	r := s.stop()
	if r.Samples < 3 || r.MaxSampledMB <= 0 || r.PeakMB < r.MaxSampledMB || r.Error != "" {
		t.Errorf("rss %+v: want ≥3 samples, peak ≥ max sampled > 0", r)
	}
	if _, err := startRSS(1 << 30); err == nil { // beyond the largest pid_max, 2^22
		t.Error("startRSS of a pid that cannot exist succeeded")
	}
	if (*rssSampler)(nil).stop() != nil {
		t.Error("a nil sampler reported RSS")
	}
}
