package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/serve"
)

// fixture is a detector fitted with the Gaussian-mixture model (cheap NFEs;
// the serving path is the same for any model) and test images.
type fixture struct {
	det    *eigenscore.Detector
	m      *eigenscore.Model
	fm, mn *data.Dataset
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	m := eigenscore.NewModel(testenv.FashionMixture(t), "gmm:fashion-mnist", "test-gmm")
	opts := &eigenscore.Options{Preset: "fast+iters=1", Sigmas: []float64{0.342, 0.724, 1.24}, Acceptance: 0.9, Seed: 3}
	det, err := eigenscore.Fit(context.Background(), m, testenv.Load(t, "fashion-mnist", "train").Head(10), opts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{det: det, m: m, fm: testenv.Load(t, "fashion-mnist", "test").Head(4), mn: testenv.Load(t, "mnist", "test").Head(4)}
}

func (f *fixture) server(t *testing.T, opts serve.Options) (*serve.Server, *httptest.Server) {
	t.Helper()
	srv, err := serve.New(f.det, f.m, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return srv, ts
}

// want scores images with the library.
func (f *fixture) want(t *testing.T, pixels []float32) []eigenscore.Result {
	t.Helper()
	ds := &data.Dataset{Name: "x", Shape: f.det.Shape(), Pixels: pixels}
	res, err := f.det.Score(context.Background(), f.m, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func post(t *testing.T, url, contentType string, body io.Reader, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, r.Header, b
}

func imagesJSON(images ...[]float32) string {
	b, _ := json.Marshal(map[string]any{"images": images})
	return string(b)
}

func checkResults(t *testing.T, got []serve.Result, want []eigenscore.Result) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Score != want[i].Score || got[i].PValue != want[i].PValue || got[i].Flagged != want[i].Flagged {
			t.Errorf("image %d: served %v (%v), library %v (%v)", i, got[i].Score, got[i].Flagged, want[i].Score, want[i].Flagged)
		}
	}
}

func TestScoreJSON(t *testing.T) {
	f := newFixture(t)
	_, ts := f.server(t, serve.Options{MaxImages: 4, MaxBodyBytes: 200_000})
	imgs := [][]float32{f.fm.Image(0), f.fm.Image(1), f.mn.Image(0), f.mn.Image(1)}
	code, _, b := post(t, ts.URL+"/v1/score", "application/json", strings.NewReader(imagesJSON(imgs...)))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, b)
	}
	var resp serve.ScoreResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	var all []float32
	for _, im := range imgs {
		all = append(all, im...)
	}
	checkResults(t, resp.Results, f.want(t, all))
	if len(resp.FeatureNames) != 3 || resp.Method != "eigenscore" { // the default method: one eigenvalue per level
		t.Errorf("response names %v, method %q", resp.FeatureNames, resp.Method)
	}

	// The same images as bytes 0–255 score the same.
	u8 := make([][]int, 2)
	for i := range u8 {
		for _, v := range imgs[i] {
			u8[i] = append(u8[i], int((v+1)*127.5+0.5))
		}
	}
	body, _ := json.Marshal(map[string]any{"images": u8, "input_range": "uint8"})
	code, _, b = post(t, ts.URL+"/v1/score", "application/json", bytes.NewReader(body))
	if err := json.Unmarshal(b, &resp); code != 200 || err != nil {
		t.Fatalf("uint8: %d %s", code, b)
	}
	checkResults(t, resp.Results, f.want(t, append(append([]float32(nil), imgs[0]...), imgs[1]...)))
}

// Bad requests get a status and a message naming the problem; none of them
// is a 500, and none is logged as an error.
func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	_, ts := f.server(t, serve.Options{MaxImages: 4, MaxBodyBytes: 200_000})
	img := f.fm.Image(0)
	good := imagesJSON(img)
	short := imagesJSON(img, make([]float32, 10))
	bright := append([]float32(nil), img...)
	bright[5] = 2
	withNull := strings.Replace(good, "[[", "[[null,", 1)
	for _, c := range []struct {
		name, ct, body string
		code           int
		msg            string
	}{
		{"wrong length", "application/json", short, 400, "image 1 has 10 values, want 784"},
		{"no images", "application/json", `{"images": []}`, 400, "no images"},
		{"not JSON", "application/json", `not json`, 400, "invalid character"},
		{"too many", "application/json", imagesJSON(img, img, img, img, img), 413, "at most 4"},
		{"too big", "application/json", `{"images": ` + strings.Repeat(" ", 250_000) + `[]}`, 413, "over 200000 bytes"},
		{"long image", "application/json", `{"images": [[` + strings.Repeat("0.5,", 1000) + `0]]}`, 400, "image 0 has 1001 values, want 784"},
		{"out of range", "application/json", imagesJSON(img, bright), 400, "image 1 value 5 is 2"},
		{"null pixel", "application/json", withNull, 400, "want a number"},
		{"trailing data", "application/json", good + `{}`, 400, "data after the JSON object"},
		{"duplicate key", "application/json", `{"images": [], "images": []}`, 400, "duplicate key"},
		{"unknown field", "application/json", `{"imgs": []}`, 400, "unknown field"},
		{"bad range", "application/json", strings.Replace(good, `{"images"`, `{"input_range": "float", "images"`, 1), 400, "input_range"},
		{"wrong content type", "text/plain", good, 415, "Content-Type"},
		{"not an image", "image/png", "GIF89a", 400, "image"},
	} {
		code, _, b := post(t, ts.URL+"/v1/score", c.ct, strings.NewReader(c.body))
		if code != c.code || !strings.Contains(string(b), c.msg) {
			t.Errorf("%s: want %d with %q, got %d: %.200s", c.name, c.code, c.msg, code, b)
		}
	}
	r, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{`eigenscore_requests_total{code="400",endpoint="v1"} 11`, "go_goroutines", "process_resident_memory_bytes"} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func encodePNG(t *testing.T, img image.Image) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// PNG and JPEG uploads, alone or several in a multipart body, score as the
// library scores the pixels data.DecodeImage makes of them.
func TestUploads(t *testing.T) {
	f := newFixture(t)
	_, ts := f.server(t, serve.Options{})
	shirt := image.NewGray(image.Rect(0, 0, 28, 28))
	for i, v := range f.fm.Image(0) {
		shirt.Pix[i] = uint8((v + 1) * 127.5)
	}
	wide := image.NewRGBA(image.Rect(0, 0, 56, 40))
	for y := 0; y < 40; y++ {
		for x := 0; x < 56; x++ {
			wide.Set(x, y, color.RGBA{uint8(4 * x), uint8(6 * y), 90, 255})
		}
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, wide, nil); err != nil {
		t.Fatal(err)
	}
	files := [][]byte{encodePNG(t, shirt), jpg.Bytes()}
	decoded := func(b []byte) []float32 {
		px, err := data.DecodeImage(bytes.NewReader(b), f.det.Shape())
		if err != nil {
			t.Fatal(err)
		}
		return px
	}
	var resp serve.ScoreResponse
	for i, ct := range []string{"image/png", "image/jpeg"} {
		code, _, b := post(t, ts.URL+"/v1/score", ct, bytes.NewReader(files[i]))
		if err := json.Unmarshal(b, &resp); code != 200 || err != nil {
			t.Fatalf("%s: %d %s", ct, code, b)
		}
		checkResults(t, resp.Results, f.want(t, decoded(files[i])))
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for i, b := range files {
		w, _ := mw.CreateFormFile("image", fmt.Sprintf("img%d", i))
		w.Write(b)
	}
	mw.Close()
	code, _, b := post(t, ts.URL+"/v1/score", mw.FormDataContentType(), &body)
	if err := json.Unmarshal(b, &resp); code != 200 || err != nil {
		t.Fatalf("multipart: %d %s", code, b)
	}
	checkResults(t, resp.Results, f.want(t, append(decoded(files[0]), decoded(files[1])...)))
}

// The Open Inference Protocol's metadata, health and inference, with the
// JSON the specification writes.
func TestOpenInferenceProtocol(t *testing.T) {
	f := newFixture(t)
	_, ts := f.server(t, serve.Options{ModelName: "fm"})
	for path, want := range map[string]int{"/v2/health/live": 200, "/v2/health/ready": 200, "/v2/models/fm/ready": 200, "/v2/models/other/ready": 404} {
		r, err := http.Get(ts.URL + path)
		if err != nil || r.StatusCode != want {
			t.Errorf("%s: %v %v, want %d", path, r.StatusCode, err, want)
		}
	}
	r, err := http.Get(ts.URL + "/v2/models/fm")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Name     string `json:"name"`
		Platform string `json:"platform"`
		Inputs   []struct {
			Name     string `json:"name"`
			Datatype string `json:"datatype"`
			Shape    []int  `json:"shape"`
		} `json:"inputs"`
		Outputs []struct {
			Name string `json:"name"`
		} `json:"outputs"`
	}
	json.NewDecoder(r.Body).Decode(&meta)
	r.Body.Close()
	if meta.Name != "fm" || len(meta.Inputs) != 1 || meta.Inputs[0].Name != "images" || fmt.Sprint(meta.Inputs[0].Shape) != "[-1 1 28 28]" || len(meta.Outputs) != 4 {
		t.Errorf("metadata %+v", meta)
	}

	// An FP32 request with nested data, and a UINT8 one asking for one output.
	img0, img1 := f.fm.Image(0), f.mn.Image(0)
	nested := make([][][][]float32, 2)
	for n, img := range [][]float32{img0, img1} {
		nested[n] = [][][]float32{make([][]float32, 28)}
		for y := 0; y < 28; y++ {
			nested[n][0][y] = img[28*y : 28*y+28]
		}
	}
	req, _ := json.Marshal(map[string]any{"id": "r1", "inputs": []any{map[string]any{"name": "images", "shape": []int{2, 1, 28, 28}, "datatype": "FP32", "data": nested}}})
	code, _, b := post(t, ts.URL+"/v2/models/fm/infer", "application/json", bytes.NewReader(req))
	var resp struct {
		ModelName string `json:"model_name"`
		ID        string `json:"id"`
		Outputs   []struct {
			Name     string          `json:"name"`
			Datatype string          `json:"datatype"`
			Shape    []int           `json:"shape"`
			Data     json.RawMessage `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(b, &resp); code != 200 || err != nil {
		t.Fatalf("infer: %d %s", code, b)
	}
	want := f.want(t, append(append([]float32(nil), img0...), img1...))
	var scores []float64
	json.Unmarshal(resp.Outputs[0].Data, &scores)
	var pvalues []float64
	json.Unmarshal(resp.Outputs[1].Data, &pvalues)
	if resp.ModelName != "fm" || resp.ID != "r1" || len(resp.Outputs) != 4 || resp.Outputs[0].Name != "score" ||
		len(scores) != 2 || scores[0] != want[0].Score || scores[1] != want[1].Score || len(pvalues) != 2 || pvalues[1] != want[1].PValue ||
		fmt.Sprint(resp.Outputs[3].Shape) != "[2 3]" {
		t.Errorf("infer response %s", b)
	}
	u8 := make([]int, 784)
	for i, v := range img0 {
		u8[i] = int((v+1)*127.5 + 0.5)
	}
	req, _ = json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "images", "shape": []int{1, 1, 28, 28}, "datatype": "UINT8", "data": u8}},
		"outputs": []any{map[string]any{"name": "flagged"}}})
	code, _, b = post(t, ts.URL+"/v2/models/fm/infer", "application/json", bytes.NewReader(req))
	if err := json.Unmarshal(b, &resp); code != 200 || err != nil || len(resp.Outputs) != 1 || resp.Outputs[0].Datatype != "BOOL" {
		t.Errorf("UINT8 infer: %d %s", code, b)
	}
	for _, c := range []struct{ body, msg string }{
		{`{"inputs": [{"name": "images", "shape": [1, 1, 28, 27], "datatype": "FP32", "data": [0]}]}`, "input shape"},
		{`{"inputs": [{"name": "images", "shape": [2, 1, 28, 28], "datatype": "FP32", "data": [0, 1]}]}`, "input data has 2 values"},
		{`{"inputs": [{"name": "images", "shape": [1, 1, 28, 28], "datatype": "INT64", "data": [0]}]}`, "datatype"},
		{`{"inputs": []}`, "want one input tensor"},
		{`{"inputs": [{"name": "x"}]}`, "the model's input is"},
		{`{"inputs": [], "outputs": [{"name": "logits"}]}`, "unknown output"},
	} {
		code, _, b := post(t, ts.URL+"/v2/models/fm/infer", "application/json", strings.NewReader(c.body))
		if code != 400 || !strings.Contains(string(b), c.msg) {
			t.Errorf("%s: %d %s, want 400 mentioning %q", c.body, code, b, c.msg)
		}
	}
	if code, _, _ := post(t, ts.URL+"/v2/models/other/infer", "application/json", strings.NewReader(`{}`)); code != 404 {
		t.Errorf("unknown model: %d", code)
	}
}

func TestBearerToken(t *testing.T) {
	f := newFixture(t)
	_, ts := f.server(t, serve.Options{Token: "s3cret"})
	body := imagesJSON(f.fm.Image(0))
	if code, h, _ := post(t, ts.URL+"/v1/score", "application/json", strings.NewReader(body)); code != 401 || h.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d", code)
	}
	if code, _, _ := post(t, ts.URL+"/v1/score", "application/json", strings.NewReader(body), "Authorization", "Bearer wrong"); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	if code, _, b := post(t, ts.URL+"/v1/score", "application/json", strings.NewReader(body), "Authorization", "Bearer s3cret"); code != 200 {
		t.Errorf("right token: %d %s", code, b)
	}
	if r, err := http.Get(ts.URL + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Errorf("health checks need no token: %v %v", r.StatusCode, err)
	}
	if r, err := http.Get(ts.URL + "/metrics"); err != nil || r.StatusCode != 401 {
		t.Errorf("metrics without a token: %v %v", r.StatusCode, err)
	}
}

// Requests in flight when shutdown begins all complete with 200; readiness
// turns off at once; requests after Close get 503.
func TestGracefulShutdown(t *testing.T) {
	f := newFixture(t)
	srv, err := serve.New(f.det, f.m, serve.Options{MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	url := "http://" + ln.Addr().String()
	body := imagesJSON(f.fm.Image(0), f.fm.Image(1), f.mn.Image(0), f.mn.Image(1))
	var wg sync.WaitGroup
	codes := make([]int, 6)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = post(t, url+"/v1/score", "application/json", strings.NewReader(body))
		}()
	}
	time.Sleep(50 * time.Millisecond) // the requests are in flight
	srv.Drain()
	if r, err := http.Get(url + "/healthz"); err != nil || r.StatusCode != http.StatusBadRequest {
		t.Errorf("readiness while draining: %v %v, want 400", r.StatusCode, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d in flight at shutdown got %d", i, c)
		}
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/score", strings.NewReader(body)))
	if rec.Code != http.StatusServiceUnavailable && rec.Code != http.StatusUnsupportedMediaType {
		t.Errorf("after Close: %d", rec.Code)
	}
}
