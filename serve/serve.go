// Package serve scores images over HTTP with a fitted eigenscore.Detector.
//
// Endpoints:
//
//   - POST /v1/score: a JSON body {"images": [[C·H·W values], …]} (values in
//     [-1, 1], or 0–255 with "input_range": "uint8"), a PNG or JPEG body
//     (one image), or multipart/form-data with PNG/JPEG parts (several);
//     answers per image the score, the flag and the features behind them.
//     With ?explain=1 (at most MaxExplainImages images) each result also
//     has an explanation: per noise level the eigenvalues and the
//     uncertainty maps as PNGs (Explanation); off by default.
//   - The Open Inference Protocol (KServe v2): GET /v2, /v2/health/live,
//     /v2/health/ready, /v2/models/{name}, /v2/models/{name}/ready and
//     POST /v2/models/{name}/infer.
//   - GET /healthz (readiness) and GET /metrics (Prometheus, with Go runtime
//     and process metrics).
//
// The images of concurrent requests are scored together in batches (scores
// depend only on each image's pixels, so batching changes no result). The
// queue is bounded in images: a request that does not fit gets 429 with
// Retry-After, one that would not be done before its deadline 503, one whose
// deadline passes 504. A request whose client goes away stops costing
// compute. Bodies are decoded as they stream in, with the image and body
// limits enforced while decoding, and at most Options.MaxDecodes at once, so
// memory stays bounded. Close drains: requests in flight complete.
package serve

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/method"
)

// Options configure a Server; zero fields take the defaults in brackets.
type Options struct {
	MaxBodyBytes   int64         // request body limit [32 MiB]
	MaxImages      int           // images per request [256]
	QueueImages    int           // images queued or being scored at most [4·MaxBatch, at least MaxImages]
	MaxBatch       int           // images of concurrent requests scored together [64]
	BatchDelay     time.Duration // how long a partial batch waits for more requests [5 ms]
	RequestTimeout time.Duration // deadline of a request from arrival [30 s]
	MaxDecodes     int           // request bodies decoded at once [cores]
	// Token, when not empty, is required as "Authorization: Bearer TOKEN"
	// on every endpoint but the health checks.
	Token string
	// ModelName is the model's name in the Open Inference Protocol
	// ["eigenscore"].
	ModelName string
	// Logger receives request errors: client errors at Debug, server
	// errors at Error [slog.Default()].
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.MaxImages <= 0 {
		o.MaxImages = 256
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 64
	}
	if o.QueueImages <= 0 {
		o.QueueImages = max(4*o.MaxBatch, o.MaxImages)
	}
	if o.BatchDelay == 0 {
		o.BatchDelay = 5 * time.Millisecond
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.MaxDecodes <= 0 {
		o.MaxDecodes = runtime.NumCPU()
	}
	if o.ModelName == "" {
		o.ModelName = "eigenscore"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Server scores images with a detector and its model.
type Server struct {
	det      *eigenscore.Detector
	m        *eigenscore.Model
	opts     Options
	batch    *batcher
	decodes  chan struct{} // semaphore of body decodes
	draining atomic.Bool   // readiness off; requests still admitted
	closing  atomic.Bool   // requests refused

	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	images   prometheus.Counter
	flagged  prometheus.Counter
	latency  prometheus.Histogram
}

// New returns a server for a detector and the model it was fitted with,
// warms the model up on a few blank images (which also gives admission
// control its first throughput estimate) and starts its scoring worker;
// Close stops it.
func New(det *eigenscore.Detector, m *eigenscore.Model, opts Options) (*Server, error) {
	if m.ID() != det.Model().ID {
		return nil, fmt.Errorf("serve: the model is %s but the detector was fitted with %s", m.ID(), det.Model().ID)
	}
	opts = opts.withDefaults()
	if opts.QueueImages < opts.MaxImages {
		return nil, fmt.Errorf("serve: the queue (%d images) must hold a request of MaxImages (%d)", opts.QueueImages, opts.MaxImages)
	}
	s := &Server{det: det, m: m, opts: opts, decodes: make(chan struct{}, opts.MaxDecodes), reg: prometheus.NewRegistry()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eigenscore_requests_total", Help: "Score requests by endpoint and HTTP status code."}, []string{"endpoint", "code"})
	s.images = prometheus.NewCounter(prometheus.CounterOpts{Name: "eigenscore_images_scored_total", Help: "Images scored."})
	s.flagged = prometheus.NewCounter(prometheus.CounterOpts{Name: "eigenscore_images_flagged_total", Help: "Images above the detector's threshold."})
	s.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "eigenscore_request_seconds", Help: "Time to answer a score request.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)})
	nfe := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "eigenscore_denoiser_evaluations_total", Help: "Denoiser evaluations (NFEs) spent."}, func() float64 { return float64(m.NFE()) })
	s.batch = newBatcher(det, m, opts.MaxBatch, opts.QueueImages, opts.BatchDelay)
	if err := s.batch.warmUp(context.Background(), min(4, opts.MaxBatch)); err != nil {
		s.batch.close()
		return nil, err
	}
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eigenscore_queued_images", Help: "Images queued or being scored."}, func() float64 { return float64(s.batch.queued()) })
	s.reg.MustRegister(s.requests, s.images, s.flagged, s.latency, nfe, queued,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s, nil
}

// Options are the server's settings, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// Drain turns readiness off (/healthz and /v2/health/ready answer 400),
// so that load balancers stop sending requests, while requests that still
// arrive are served. Call it when shutdown begins, before
// http.Server.Shutdown.
func (s *Server) Drain() { s.draining.Store(true) }

// Close stops admitting requests (they get 503), lets the queued ones
// finish and stops the scoring worker. Call it after http.Server.Shutdown
// has waited for the handlers, and before closing the model.
func (s *Server) Close() {
	s.draining.Store(true)
	s.closing.Store(true)
	s.batch.close()
}

// Handler routes the server's endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/score", s.auth(s.instrument("v1", s.score)))
	mux.Handle("POST /v2/models/{name}/infer", s.auth(s.instrument("v2", s.infer)))
	mux.Handle("GET /v2/models/{name}", s.auth(http.HandlerFunc(s.modelMetadata)))
	mux.HandleFunc("GET /v2/models/{name}/ready", s.modelReady)
	mux.Handle("GET /v2", s.auth(http.HandlerFunc(s.serverMetadata)))
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /v2/health/ready", s.ready)
	mux.HandleFunc("GET /healthz", s.ready)
	mux.Handle("GET /metrics", s.auth(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})))
	return mux
}

// ready answers 200 while the server admits requests; during shutdown 400,
// the Open Inference Protocol's "not ready" (a 4xx, no body).
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("name") != s.opts.ModelName {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	s.ready(w, r)
}

func (s *Server) serverMetadata(w http.ResponseWriter, _ *http.Request) {
	s.writeJSON(w, http.StatusOK, map[string]any{"name": "eigenscore", "version": "1", "extensions": []string{}})
}

func (s *Server) modelMetadata(w http.ResponseWriter, r *http.Request) {
	if name := r.PathValue("name"); name != s.opts.ModelName {
		s.writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("unknown model %q; this server serves %q", name, s.opts.ModelName)})
		return
	}
	s.writeJSON(w, http.StatusOK, s.metadata())
}

// auth requires the bearer token, when one is set (constant-time compare).
func (s *Server) auth(h http.Handler) http.Handler {
	if s.opts.Token == "" {
		return h
	}
	want := []byte("Bearer " + s.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="eigenscore"`)
			s.writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// httpError is an error with the status code it answers.
type httpError struct {
	code       int
	msg        string
	retryAfter time.Duration
}

func (e *httpError) Error() string { return e.msg }

func statusError(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// scoreFunc handles a scoring request and returns the response body.
type scoreFunc func(ctx context.Context, r *http.Request) (any, int, error)

// instrument runs a scoring handler under the request deadline, maps its
// error to a status, logs and counts it, and writes the response only once
// it is complete.
func (s *Server) instrument(endpoint string, h scoreFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
		defer cancel()
		body, images, err := h(ctx, r)
		code := http.StatusOK
		if err != nil {
			code = s.fail(w, r, err)
		} else {
			code = s.writeJSON(w, code, body)
		}
		s.requests.WithLabelValues(endpoint, fmt.Sprint(code)).Inc()
		s.latency.Observe(time.Since(t0).Seconds())
		if code == http.StatusOK {
			s.images.Add(float64(images))
		}
	})
}

// fail answers an error and returns its status; client errors are logged
// at Debug, server errors at Error.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, errQueueFull):
		he = &httpError{code: http.StatusTooManyRequests, msg: "the queue is full; retry later", retryAfter: s.batch.retryAfter()}
	case errors.Is(err, errOverloaded):
		he = &httpError{code: http.StatusServiceUnavailable, msg: "overloaded: the queue would not drain before this request's deadline", retryAfter: s.batch.retryAfter()}
	case errors.Is(err, errClosing):
		he = &httpError{code: http.StatusServiceUnavailable, msg: "the server is shutting down"}
	case errors.Is(err, context.DeadlineExceeded):
		he = &httpError{code: http.StatusGatewayTimeout, msg: fmt.Sprintf("not done within the request deadline of %v", s.opts.RequestTimeout)}
	case errors.Is(err, context.Canceled):
		he = &httpError{code: 499, msg: "client went away"}
	default:
		he = &httpError{code: http.StatusInternalServerError, msg: err.Error()}
	}
	if he.retryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(he.retryAfter.Seconds()))))
	}
	level := slog.LevelDebug
	if he.code >= 500 && he.code != http.StatusServiceUnavailable && he.code != http.StatusGatewayTimeout {
		level = slog.LevelError
	}
	s.opts.Logger.Log(r.Context(), level, "score request failed", "path", r.URL.Path, "code", he.code, "err", he.msg)
	return s.writeJSON(w, he.code, map[string]string{"error": he.msg})
}

// writeJSON encodes v completely before writing anything, so that a client
// gets either the whole answer or an error status, never a 200 with a
// partial or empty body. It returns the status written.
func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) int {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		s.opts.Logger.Error("encoding a response failed", "err", err)
		code = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, "{\"error\": %q}\n", "encoding the response failed: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
	return code
}

// ScoreResponse is the answer to POST /v1/score.
type ScoreResponse struct {
	Results      []Result      `json:"results"`
	Method       method.Method `json:"method"`
	FeatureNames []string      `json:"feature_names"`
	Threshold    float64       `json:"threshold"`
	ModelID      string        `json:"model_id"`
}

// score handles POST /v1/score; ?explain=1 adds each image's explanation
// (at most MaxExplainImages images).
func (s *Server) score(ctx context.Context, r *http.Request) (any, int, error) {
	explain, err := s.wantExplain(r)
	if err != nil {
		return nil, 0, err
	}
	pixels, n, err := s.decode(ctx, r, func() ([]float32, int, error) { return s.readScoreBody(r) })
	if err != nil {
		return nil, 0, err
	}
	if explain && n > MaxExplainImages {
		return nil, 0, statusError(http.StatusBadRequest, "explain=1 takes at most %d images per request, got %d; send fewer or leave explain off", MaxExplainImages, n)
	}
	res, err := s.submit(ctx, pixels, n, explain)
	if err != nil {
		return nil, 0, err
	}
	wire, err := wireResults(res)
	if err != nil {
		return nil, 0, err
	}
	return &ScoreResponse{Results: wire, Method: s.det.Method(), FeatureNames: s.det.FeatureNames(),
		Threshold: s.det.Threshold(), ModelID: s.m.ID()}, n, nil
}

// infer handles POST /v2/models/{name}/infer.
func (s *Server) infer(ctx context.Context, r *http.Request) (any, int, error) {
	if name := r.PathValue("name"); name != s.opts.ModelName {
		return nil, 0, statusError(http.StatusNotFound, "unknown model %q; this server serves %q", name, s.opts.ModelName)
	}
	if err := requireJSON(r); err != nil {
		return nil, 0, err
	}
	var req *inferRequest
	_, _, err := s.decode(ctx, r, func() ([]float32, int, error) {
		var err error
		req, err = decodeInferRequest(s.body(r), s.det.Shape(), s.opts.MaxImages)
		return nil, 0, err
	})
	if err != nil {
		return nil, 0, err
	}
	res, err := s.submit(ctx, req.Pixels, req.N, false)
	if err != nil {
		return nil, 0, err
	}
	return s.inferResponse(req, res), req.N, nil
}

// decode runs a body decoder under the decode semaphore, mapping decoding
// errors to 400 and 413.
func (s *Server) decode(ctx context.Context, r *http.Request, f func() ([]float32, int, error)) ([]float32, int, error) {
	if s.closing.Load() {
		return nil, 0, errClosing
	}
	select {
	case s.decodes <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	defer func() { <-s.decodes }()
	pixels, n, err := f()
	if err != nil {
		var tooBig *http.MaxBytesError
		var tooMany *errTooMany
		var he *httpError
		switch {
		case errors.As(err, &he):
			return nil, 0, err
		case errors.As(err, &tooBig):
			return nil, 0, statusError(http.StatusRequestEntityTooLarge, "request body over %d bytes; send fewer images per request", s.opts.MaxBodyBytes)
		case errors.As(err, &tooMany):
			return nil, 0, statusError(http.StatusRequestEntityTooLarge, "%s", tooMany.msg)
		case ctx.Err() != nil:
			return nil, 0, ctx.Err()
		}
		return nil, 0, statusError(http.StatusBadRequest, "%v", err)
	}
	return pixels, n, nil
}

// submit scores decoded images through the batcher, with their
// explanations when explain is set.
func (s *Server) submit(ctx context.Context, pixels []float32, n int, explain bool) ([]eigenscore.Result, error) {
	res, err := s.batch.submit(ctx, pixels, n, explain)
	if err != nil {
		return nil, err
	}
	for _, r := range res {
		if r.Flagged {
			s.flagged.Inc()
		}
	}
	return res, nil
}

// body is the request body under the size limit.
func (s *Server) body(r *http.Request) io.Reader {
	return http.MaxBytesReader(nil, r.Body, s.opts.MaxBodyBytes)
}

// requireJSON answers 415 unless the body is declared JSON.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(mt) != "application/json" {
		return statusError(http.StatusUnsupportedMediaType, "Content-Type %q, want application/json", ct)
	}
	return nil
}
