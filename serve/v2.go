package serve

import (
	"fmt"
	"io"
	"slices"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/denoise"
)

// The Open Inference Protocol (KServe v2, Triton's HTTP API): the model
// takes one input tensor "images", FP32 on the model's scale ([-1, 1]) or
// UINT8 (0–255), shape [N, C, H, W], and answers three output tensors:
// "score" (FP64 [N]), "p_value" (FP64 [N], conformal), "flagged" (BOOL
// [N]) and "features" (FP64 [N, F], named in the model metadata's
// parameters).

// tensorMeta describes a tensor in model metadata.
type tensorMeta struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
}

// modelMetadata is the answer to GET /v2/models/{name}.
type modelMetadata struct {
	Name       string         `json:"name"`
	Versions   []string       `json:"versions,omitempty"`
	Platform   string         `json:"platform"`
	Inputs     []tensorMeta   `json:"inputs"`
	Outputs    []tensorMeta   `json:"outputs"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

func (s *Server) metadata() modelMetadata {
	sh := s.det.Shape()
	f := len(s.det.FeatureNames())
	return modelMetadata{
		Name:     s.opts.ModelName,
		Platform: "eigenscore",
		Inputs:   []tensorMeta{{Name: "images", Datatype: "FP32", Shape: []int{-1, sh.C, sh.H, sh.W}}},
		Outputs: []tensorMeta{
			{Name: "score", Datatype: "FP64", Shape: []int{-1}},
			{Name: "p_value", Datatype: "FP64", Shape: []int{-1}},
			{Name: "flagged", Datatype: "BOOL", Shape: []int{-1}},
			{Name: "features", Datatype: "FP64", Shape: []int{-1, f}},
		},
		Parameters: map[string]any{"method": s.det.Method(), "threshold": s.det.Threshold(),
			"feature_names": s.det.FeatureNames(), "model_id": s.det.Model().ID, "input_datatypes": []string{"FP32", "UINT8"}},
	}
}

// inferRequest is the part of an inference request the server uses.
type inferRequest struct {
	ID      string
	Pixels  []float32
	N       int
	Outputs []string // requested outputs; nil for all
}

// outputNames are the outputs in their answer order.
var outputNames = []string{"score", "p_value", "flagged", "features"}

// decodeInferRequest reads an inference request strictly and with bounded
// memory: exactly one input named "images" of datatype FP32 or UINT8 and
// shape [N, C, H, W] matching the model, 1 ≤ N ≤ maxImages, its data flat or
// nested; "id", "parameters" and "outputs" (names out of score, flagged,
// p_value, features) are optional.
func decodeInferRequest(r io.Reader, shape denoise.Shape, maxImages int) (*inferRequest, error) {
	t := newTensorReader(r, maxImages*shape.Dim())
	req := &inferRequest{}
	inputs := 0
	var dtype string
	var dims []float32
	err := t.object("inference request", func(key string) error {
		switch key {
		case "id":
			var err error
			req.ID, err = t.str("id")
			return err
		case "parameters":
			return t.skip("parameters")
		case "inputs":
			return t.array("inputs", func() error {
				inputs++
				if inputs > 1 {
					return fmt.Errorf("inputs: more than one input tensor; the model takes one, \"images\"")
				}
				var err error
				dtype, dims, req.Pixels, err = t.input()
				return err
			})
		case "outputs":
			return t.array("outputs", func() error {
				name, err := t.output()
				if err != nil {
					return err
				}
				if !slices.Contains(outputNames, name) {
					return fmt.Errorf("outputs: unknown output %q, want score, p_value, flagged or features", name)
				}
				req.Outputs = append(req.Outputs, name)
				return nil
			})
		}
		return fmt.Errorf("inference request: unknown field %q", key)
	})
	if err == nil {
		err = t.end()
	}
	if err != nil {
		return nil, err
	}
	if inputs == 0 {
		return nil, fmt.Errorf("inputs: want one input tensor \"images\" of shape [N, %d, %d, %d]", shape.C, shape.H, shape.W)
	}
	if req.N, err = checkTensor(dims, len(req.Pixels), shape, maxImages); err != nil {
		return nil, err
	}
	rng := Unit
	if dtype == "UINT8" {
		rng = Uint8
	}
	return req, convert(req.Pixels, shape.Dim(), rng)
}

// array calls elem for every element of a JSON array.
func (t *tensorReader) array(what string, elem func() error) error {
	if err := t.delim('[', what); err != nil {
		return err
	}
	for t.dec.More() {
		if err := elem(); err != nil {
			return err
		}
	}
	return t.delim(']', what)
}

// input reads one input tensor object.
func (t *tensorReader) input() (dtype string, dims []float32, pixels []float32, err error) {
	err = t.object("input", func(key string) error {
		var err error
		switch key {
		case "name":
			var name string
			if name, err = t.str("input name"); err == nil && name != "images" {
				err = fmt.Errorf("input %q, the model's input is \"images\"", name)
			}
		case "datatype":
			if dtype, err = t.str("datatype"); err == nil && dtype != "FP32" && dtype != "UINT8" {
				err = fmt.Errorf("datatype %q, want FP32 (values in [-1, 1]) or UINT8 (0–255)", dtype)
			}
		case "shape":
			sub := &tensorReader{dec: t.dec, maxValues: 8}
			dims, err = sub.numbers(nil, "shape")
		case "data":
			pixels, err = t.numbers(pixels, "data")
		case "parameters":
			err = t.skip("parameters")
		default:
			err = fmt.Errorf("input: unknown field %q", key)
		}
		return err
	})
	if err == nil && dtype == "" {
		err = fmt.Errorf("input: datatype missing, want FP32 or UINT8")
	}
	return dtype, dims, pixels, err
}

// output reads one requested-output object and returns its name.
func (t *tensorReader) output() (string, error) {
	var name string
	err := t.object("output", func(key string) error {
		switch key {
		case "name":
			var err error
			name, err = t.str("output name")
			return err
		case "parameters":
			return t.skip("parameters")
		}
		return fmt.Errorf("output: unknown field %q", key)
	})
	return name, err
}

// checkTensor checks an input's shape against the model and its data and
// returns the number of images.
func checkTensor(dims []float32, values int, shape denoise.Shape, maxImages int) (int, error) {
	want := fmt.Sprintf("[N, %d, %d, %d]", shape.C, shape.H, shape.W)
	if len(dims) != 4 || int(dims[1]) != shape.C || int(dims[2]) != shape.H || int(dims[3]) != shape.W {
		return 0, fmt.Errorf("input shape %v, want %s", dims, want)
	}
	n := int(dims[0])
	if float32(n) != dims[0] || n < 1 {
		return 0, fmt.Errorf("input shape %v, want %s with N ≥ 1", dims, want)
	}
	if n > maxImages {
		return 0, &errTooMany{fmt.Sprintf("%d images, at most %d per request", n, maxImages)}
	}
	if values != n*shape.Dim() {
		return 0, fmt.Errorf("input data has %d values, shape %v needs %d", values, dims, n*shape.Dim())
	}
	return n, nil
}

// tensor is an output tensor.
type tensor struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
	Data     any    `json:"data"`
}

// inferResponse is the answer to an inference request.
type inferResponse struct {
	ModelName string   `json:"model_name"`
	ID        string   `json:"id,omitempty"`
	Outputs   []tensor `json:"outputs"`
}

func (s *Server) inferResponse(req *inferRequest, res []eigenscore.Result) *inferResponse {
	out := &inferResponse{ModelName: s.opts.ModelName, ID: req.ID}
	n := len(res)
	want := func(name string) bool { return req.Outputs == nil || slices.Contains(req.Outputs, name) }
	if want("score") {
		out.Outputs = append(out.Outputs, tensor{Name: "score", Datatype: "FP64", Shape: []int{n}, Data: each(res, func(r eigenscore.Result) float64 { return r.Score })})
	}
	if want("p_value") {
		out.Outputs = append(out.Outputs, tensor{Name: "p_value", Datatype: "FP64", Shape: []int{n}, Data: each(res, func(r eigenscore.Result) float64 { return r.PValue })})
	}
	if want("flagged") {
		out.Outputs = append(out.Outputs, tensor{Name: "flagged", Datatype: "BOOL", Shape: []int{n}, Data: each(res, func(r eigenscore.Result) bool { return r.Flagged })})
	}
	if want("features") {
		f := len(s.det.FeatureNames())
		v := make([]float64, 0, n*f)
		for _, r := range res {
			v = append(v, r.Features...)
		}
		out.Outputs = append(out.Outputs, tensor{Name: "features", Datatype: "FP64", Shape: []int{n, f}, Data: v})
	}
	return out
}

// each maps every result to one value of an output tensor.
func each[T any](res []eigenscore.Result, f func(eigenscore.Result) T) []T {
	out := make([]T, len(res))
	for i, r := range res {
		out[i] = f(r)
	}
	return out
}
