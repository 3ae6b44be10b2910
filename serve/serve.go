// Package serve scores images over HTTP with a fitted eigenscore.Detector.
//
// POST /v1/score takes {"images": [[…], …]}, each image C·H·W pixel values
// in the model's range ([-1, 1] for the shipped models), channel-major, and
// answers one result per image: the detector's score, whether it is above
// the calibrated threshold, and the features that explain it.
// GET /healthz answers 200 when the detector is loaded; GET /metrics serves
// Prometheus metrics.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/method"
)

// Options bound what one request may ask for.
type Options struct {
	MaxBodyBytes int64 // default 32 MiB
	MaxImages    int   // per request, default 256
}

// Request is the body of POST /v1/score.
type Request struct {
	Images [][]float32 `json:"images"`
}

// Response is the answer to POST /v1/score.
type Response struct {
	Results      []eigenscore.Result `json:"results"`
	Method       method.Method       `json:"method"`
	FeatureNames []string            `json:"feature_names"`
	Threshold    float64             `json:"threshold"`
	NFEPerImage  float64             `json:"nfe_per_image"`
	Seconds      float64             `json:"seconds"`
	ModelID      string              `json:"model_id"`
	Sigmas       []float64           `json:"sigmas"`
}

// Server holds the detector and its model.
type Server struct {
	det  *eigenscore.Detector
	m    *eigenscore.Model
	opts Options
	// One scoring at a time: a request's batch already keeps every core
	// busy, and queuing keeps latency predictable instead of thrashing.
	mu sync.Mutex

	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	images   prometheus.Counter
	flagged  prometheus.Counter
	nfe      prometheus.Counter
	latency  prometheus.Histogram
}

// New returns a server for a detector and the model it was fitted with.
func New(det *eigenscore.Detector, m *eigenscore.Model, opts Options) (*Server, error) {
	if m.ID() != det.Model().ID {
		return nil, fmt.Errorf("serve: the model is %s but the detector was fitted with %s", m.ID(), det.Model().ID)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 32 << 20
	}
	if opts.MaxImages <= 0 {
		opts.MaxImages = 256
	}
	s := &Server{det: det, m: m, opts: opts, reg: prometheus.NewRegistry()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eigenscore_requests_total", Help: "Score requests by HTTP status code."}, []string{"code"})
	s.images = prometheus.NewCounter(prometheus.CounterOpts{Name: "eigenscore_images_scored_total", Help: "Images scored."})
	s.flagged = prometheus.NewCounter(prometheus.CounterOpts{Name: "eigenscore_images_flagged_total", Help: "Images above the default score's threshold."})
	s.nfe = prometheus.NewCounter(prometheus.CounterOpts{Name: "eigenscore_denoiser_evaluations_total", Help: "Denoiser evaluations (NFEs) spent."})
	s.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "eigenscore_request_seconds", Help: "Time to answer a score request.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)})
	s.reg.MustRegister(s.requests, s.images, s.flagged, s.nfe, s.latency)
	return s, nil
}

// Handler routes the server's endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/score", s.score)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "model_id": s.m.ID(), "method": s.det.Method()})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	return mux
}

type httpError struct {
	code int
	msg  string
}

func (s *Server) score(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	resp, err := s.handle(r)
	code := http.StatusOK
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			code = he.code
			err = errors.New(he.msg)
		} else {
			code = http.StatusInternalServerError
			slog.Error("score request failed", "err", err)
		}
		writeJSON(w, code, map[string]string{"error": err.Error()})
	} else {
		writeJSON(w, code, resp)
	}
	s.requests.WithLabelValues(fmt.Sprint(code)).Inc()
	s.latency.Observe(time.Since(t0).Seconds())
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func (s *Server) handle(r *http.Request) (*Response, error) {
	body := http.MaxBytesReader(nil, r.Body, s.opts.MaxBodyBytes)
	var req Request
	dec := json.NewDecoder(body)
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes; send fewer images per request", s.opts.MaxBodyBytes)}
		}
		return nil, badRequest("request body is not JSON of the form {\"images\": [[pixels…], …]}: %v", err)
	}
	sh := s.det.Shape()
	dim := sh.Dim()
	switch {
	case len(req.Images) == 0:
		return nil, badRequest("no images: want {\"images\": [[%d pixel values], …]}", dim)
	case len(req.Images) > s.opts.MaxImages:
		return nil, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("%d images, at most %d per request", len(req.Images), s.opts.MaxImages)}
	}
	ds := &data.Dataset{Name: "request", Shape: sh, Pixels: make([]float32, 0, len(req.Images)*dim)}
	for i, img := range req.Images {
		if len(img) != dim {
			return nil, badRequest("image %d has %d values, want %d (%d×%d×%d, channel-major)", i, len(img), dim, sh.C, sh.H, sh.W)
		}
		for j, v := range img {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, badRequest("image %d pixel %d is %v, want a finite value", i, j, v)
			}
		}
		ds.Pixels = append(ds.Pixels, img...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := r.Context().Err(); err != nil {
		return nil, &httpError{499, "client went away"}
	}
	t0 := time.Now()
	nfe0 := s.m.NFE()
	res, err := s.det.Score(r.Context(), s.m, ds, nil)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, &httpError{499, "client went away"}
		}
		return nil, err
	}
	nfe := s.m.NFE() - nfe0 // exact: one request scores at a time
	out := &Response{Results: res, Method: s.det.Method(), FeatureNames: s.det.FeatureNames(), Threshold: s.det.Threshold(),
		NFEPerImage: float64(nfe) / float64(ds.Len()), Seconds: time.Since(t0).Seconds(), ModelID: s.m.ID(), Sigmas: s.det.Settings().Sigmas}
	for _, r := range res {
		if r.Flagged {
			s.flagged.Inc()
		}
	}
	s.images.Add(float64(ds.Len()))
	s.nfe.Add(float64(nfe))
	return out, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Error("writing a response failed", "err", err)
	}
}
