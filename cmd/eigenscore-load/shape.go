package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/eigenscore/eigenscore/denoise"
)

// parseShape parses "CxHxW", e.g. "1x28x28".
func parseShape(s string) (denoise.Shape, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "x")
	if len(parts) != 3 {
		return denoise.Shape{}, fmt.Errorf("--shape %q: want CxHxW, e.g. 1x28x28", s)
	}
	var dims [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return denoise.Shape{}, fmt.Errorf("--shape %q: dimension %q is not a positive integer", s, p)
		}
		dims[i] = n
	}
	return denoise.Shape{C: dims[0], H: dims[1], W: dims[2]}, nil
}

// modelMetadata is the part of a KServe v2 model metadata answer read here.
type modelMetadata struct {
	Name   string `json:"name"`
	Inputs []struct {
		Name  string  `json:"name"`
		Shape []int64 `json:"shape"`
	} `json:"inputs"`
}

// errNoShape is returned for metadata without an input of a C,H,W shape.
var errNoShape = errors.New("model metadata has no input with a [..., C, H, W] shape")

// discoverShape asks GET {base}/v2/models/{model} for the image shape: the
// last three dimensions of the first input.
func discoverShape(ctx context.Context, client *http.Client, base *url.URL, model, token string, timeout time.Duration) (denoise.Shape, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := base.JoinPath("v2", "models", model).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return denoise.Shape{}, fmt.Errorf("model metadata request: %w", err)
	}
	setAuth(req, token)
	resp, err := client.Do(req)
	if err != nil {
		return denoise.Shape{}, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return denoise.Shape{}, fmt.Errorf("GET %s: reading the body: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return denoise.Shape{}, fmt.Errorf("GET %s: status %d: %s", u, resp.StatusCode, errorMessage(body))
	}
	return shapeFromMetadata(body)
}

// shapeFromMetadata reads C,H,W from a KServe v2 metadata body.
func shapeFromMetadata(body []byte) (denoise.Shape, error) {
	var md modelMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		return denoise.Shape{}, fmt.Errorf("decoding model metadata: %w", err)
	}
	if len(md.Inputs) == 0 || len(md.Inputs[0].Shape) < 3 {
		return denoise.Shape{}, errNoShape
	}
	s := md.Inputs[0].Shape
	c, h, w := s[len(s)-3], s[len(s)-2], s[len(s)-1]
	if c <= 0 || h <= 0 || w <= 0 {
		return denoise.Shape{}, fmt.Errorf("%w: input %q has shape %v", errNoShape, md.Inputs[0].Name, s)
	}
	return denoise.Shape{C: int(c), H: int(h), W: int(w)}, nil
}

// setAuth adds the bearer token, if any.
func setAuth(req *http.Request, token string) {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
}

// errorMessage is the "error" field of a JSON error body, or the body itself
// (shortened) when it is not one.
func errorMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
