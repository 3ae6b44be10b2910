package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/denoise/onnx"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/models"
	"github.com/eigenscore/eigenscore/serve"
)

func TestServe(t *testing.T) {
	m, err := models.Open("fashion-mnist", &onnx.Options{BatchSize: 32, Threads: 1, Sessions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// One iteration keeps the test cheap (5 levels × 2 draws × 4 NFEs);
	// the serving path is the same for any preset.
	opts := &eigenscore.Options{Preset: "fast+iters=1", Sigmas: []float64{0.342, 0.522, 0.724, 0.958, 1.24}, Acceptance: 0.9, Seed: 3}
	det, err := eigenscore.Fit(context.Background(), m, testenv.Load(t, "fashion-mnist", "train").Head(10), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(det, m, serve.Options{MaxImages: 4, MaxBodyBytes: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	post := func(body string) (int, []byte) {
		t.Helper()
		r, err := http.Post(ts.URL+"/v1/score", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, b
	}

	// Two Fashion-MNIST and two MNIST test images: the answers equal the
	// library's scores of the same images.
	fm := testenv.Load(t, "fashion-mnist", "test").Head(2)
	mn := testenv.Load(t, "mnist", "test").Head(2)
	req := serve.Request{Images: [][]float32{fm.Image(0), fm.Image(1), mn.Image(0), mn.Image(1)}}
	body, _ := json.Marshal(req)
	code, b := post(string(body))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, b)
	}
	var resp serve.Response
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 4 || len(resp.Results[0].Features) != 5 || resp.NFEPerImage != 40 {
		t.Fatalf("want 4 results of 5 features at 40 NFEs per image, got %d, %d, %v", len(resp.Results), len(resp.Results[0].Features), resp.NFEPerImage)
	}
	both := fm.Head(2)
	both.Pixels = append(append([]float32(nil), fm.Pixels...), mn.Pixels...)
	both.Labels = nil
	want, err := det.Score(context.Background(), m, both, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.Results {
		if r.Score != want[i].Score || r.Flagged != want[i].Flagged {
			t.Errorf("image %d: served %v (%v), library %v", i, r.Score, r.Flagged, want[i].Score)
		}
	}

	// Bad requests get a status and a message naming the problem.
	short, _ := json.Marshal(serve.Request{Images: [][]float32{fm.Image(0), make([]float32, 10)}})
	many, _ := json.Marshal(serve.Request{Images: [][]float32{{1}, {1}, {1}, {1}, {1}}})
	for _, c := range []struct {
		body string
		code int
		msg  string
	}{
		{string(short), 400, "image 1 has 10 values, want 784"},
		{`{"images": []}`, 400, "no images"},
		{`not json`, 400, "not JSON"},
		{string(many), 413, "at most 4"},
		{`{"images": [[` + strings.Repeat("0.5,", 100_000) + `0]]}`, 413, "over 200000 bytes"},
	} {
		code, b := post(c.body)
		if code != c.code || !strings.Contains(string(b), c.msg) {
			t.Errorf("want %d with %q, got %d: %.200s", c.code, c.msg, code, b)
		}
	}

	// Metrics count what was scored.
	r, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{"eigenscore_images_scored_total 4", `eigenscore_requests_total{code="400"} 3`, "eigenscore_denoiser_evaluations_total 160"} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if r, err := http.Get(ts.URL + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Errorf("healthz: %v %v", r, err)
	}

	// A detector for another model is refused.
	mn2, err := models.Open("mnist", &onnx.Options{BatchSize: 32, Threads: 1, Sessions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer mn2.Close()
	if _, err := serve.New(det, mn2, serve.Options{}); err == nil || !strings.Contains(err.Error(), "fitted with") {
		t.Errorf("a detector fitted with another model was accepted: %v", err)
	}
}
