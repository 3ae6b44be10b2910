package onnx

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/eigenscore/eigenscore/denoise"
	ort "github.com/yalue/onnxruntime_go"
)

// Names of the graph inputs/outputs and metadata properties of the model
// contract (see docs/onnxruntime.md).
const (
	InputX      = "x"        // float32 [N,C,H,W], data scale [-1, 1]
	InputSigma  = "sigma"    // float32 [N]
	OutputName  = "denoised" // float32 [N,C,H,W]
	MetaDataset = "dataset"
	MetaShape   = "shape" // "CxHxW", e.g. "1x28x28"
	MetaSigmaLo = "sigma_min"
	MetaSigmaHi = "sigma_max"
	MetaRecipe  = "recipe"
	MetaProd    = "producer"
)

// Metadata is the model's custom metadata (ONNX metadata_props).
type Metadata struct {
	Dataset  string        // training data set, e.g. "mnist"
	Shape    denoise.Shape // C×H×W of one image
	SigmaMin float64       // smallest σ the model was trained for
	SigmaMax float64       // largest σ the model was trained for
	Recipe   string        // training recipe / preconditioning, e.g. "edm"
	Producer string        // tool that produced the model
	Raw      map[string]string
}

// ParseShape parses "CxHxW" (e.g. "1x28x28").
func ParseShape(s string) (denoise.Shape, error) {
	parts := strings.Split(strings.TrimSpace(s), "x")
	if len(parts) != 3 {
		return denoise.Shape{}, fmt.Errorf("shape %q is not CxHxW", s)
	}
	var d [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v <= 0 {
			return denoise.Shape{}, fmt.Errorf("shape %q is not CxHxW with positive integers", s)
		}
		d[i] = v
	}
	return denoise.Shape{C: d[0], H: d[1], W: d[2]}, nil
}

func readMetadata(m *ort.ModelMetadata) (map[string]string, error) {
	keys, err := m.GetCustomMetadataMapKeys()
	if err != nil {
		return nil, err
	}
	raw := make(map[string]string, len(keys))
	for _, k := range keys {
		v, _, err := m.LookupCustomMetadataMap(k)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", k, err)
		}
		raw[k] = v
	}
	return raw, nil
}

// parseMetadata checks the contract's metadata: shape is required and must
// parse; sigma_min/sigma_max are required positive numbers with min < max;
// dataset, recipe and producer are informative and may be empty.
func parseMetadata(name string, raw map[string]string) (Metadata, error) {
	md := Metadata{
		Dataset:  raw[MetaDataset],
		Recipe:   raw[MetaRecipe],
		Producer: raw[MetaProd],
		Raw:      raw,
	}
	s, ok := raw[MetaShape]
	if !ok {
		return md, fmt.Errorf("onnx: model %s: metadata property %q is missing (expected e.g. \"1x28x28\"; found keys %v)", name, MetaShape, keys(raw))
	}
	shape, err := ParseShape(s)
	if err != nil {
		return md, fmt.Errorf("onnx: model %s: metadata property %q: %w", name, MetaShape, err)
	}
	md.Shape = shape
	for _, f := range []struct {
		key string
		dst *float64
	}{{MetaSigmaLo, &md.SigmaMin}, {MetaSigmaHi, &md.SigmaMax}} {
		v, ok := raw[f.key]
		if !ok {
			return md, fmt.Errorf("onnx: model %s: metadata property %q is missing (expected a positive number; found keys %v)", name, f.key, keys(raw))
		}
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || !(x > 0) || math.IsInf(x, 0) {
			return md, fmt.Errorf("onnx: model %s: metadata property %q = %q, expected a positive finite number", name, f.key, v)
		}
		*f.dst = x
	}
	if !(md.SigmaMin < md.SigmaMax) {
		return md, fmt.Errorf("onnx: model %s: metadata sigma_min = %v is not below sigma_max = %v", name, md.SigmaMin, md.SigmaMax)
	}
	return md, nil
}

func keys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// checkIO validates the graph's inputs and outputs against the contract and
// the metadata shape, and returns the batch dimension N when the graph fixes
// it (0 when it is dynamic). A fixed N must be the same on x, sigma and
// denoised, and equal to batch when batch is not 0 (the session batch size
// asked for).
func checkIO(name string, shape denoise.Shape, batch int, ins, outs []ort.InputOutputInfo) (int, error) {
	want4 := fmt.Sprintf("float32 tensor [N,%d,%d,%d]", shape.C, shape.H, shape.W)
	expect := map[string]string{InputX: want4, InputSigma: "float32 tensor [N]"}
	bad := func(what, want, got string) error {
		return fmt.Errorf("onnx: model %s does not match the denoiser contract: %s: expected %s, found %s", name, what, want, got)
	}
	describe := func(list []ort.InputOutputInfo) string {
		s := make([]string, len(list))
		for i, io := range list {
			s[i] = describeIO(io)
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	if len(ins) != 2 {
		return 0, bad("inputs", fmt.Sprintf("2 inputs %q (%s) and %q (%s)", InputX, want4, InputSigma, expect[InputSigma]), fmt.Sprintf("%d: %s", len(ins), describe(ins)))
	}
	if len(outs) != 1 {
		return 0, bad("outputs", fmt.Sprintf("1 output %q (%s)", OutputName, want4), fmt.Sprintf("%d: %s", len(outs), describe(outs)))
	}
	seen := map[string]ort.InputOutputInfo{}
	for _, io := range ins {
		seen[io.Name] = io
	}
	for _, n := range []string{InputX, InputSigma} {
		if _, ok := seen[n]; !ok {
			return 0, bad("input names", fmt.Sprintf("%q and %q", InputX, InputSigma), describe(ins))
		}
	}
	if outs[0].Name != OutputName {
		return 0, bad("output name", fmt.Sprintf("%q", OutputName), describe(outs))
	}
	fixed := 0
	check := func(io ort.InputOutputInfo, rank int, want string) error {
		what := fmt.Sprintf("%q", io.Name)
		got := describeIO(io)
		if io.OrtValueType != ort.ONNXTypeTensor || io.DataType != ort.TensorElementDataTypeFloat {
			return bad(what, want, got)
		}
		d := io.Dimensions
		if len(d) != rank {
			return bad(what+" rank", want, got)
		}
		if d[0] > 0 {
			switch {
			case batch > 0 && int(d[0]) != batch:
				return bad(what+" batch dimension", fmt.Sprintf("a dynamic N (or exactly the session batch size %d)", batch), got)
			case fixed > 0 && int(d[0]) != fixed:
				return bad(what+" batch dimension", fmt.Sprintf("a dynamic N, or the same fixed N = %d on every input and output", fixed), got)
			}
			fixed = int(d[0])
		}
		if rank == 4 && (d[1] != int64(shape.C) || d[2] != int64(shape.H) || d[3] != int64(shape.W)) {
			return bad(what+" C,H,W (metadata shape "+shape.String()+")", want, got)
		}
		return nil
	}
	if err := check(seen[InputX], 4, want4); err != nil {
		return 0, err
	}
	if err := check(seen[InputSigma], 1, expect[InputSigma]); err != nil {
		return 0, err
	}
	if err := check(outs[0], 4, want4); err != nil {
		return 0, err
	}
	return fixed, nil
}

// describeIO formats an input/output as `"x" float32 [?,1,28,28]`, with ? for
// a dynamic dimension.
func describeIO(io ort.InputOutputInfo) string {
	if io.OrtValueType != ort.ONNXTypeTensor {
		return fmt.Sprintf("%q %v", io.Name, io.OrtValueType)
	}
	dt := strings.ToLower(strings.TrimPrefix(io.DataType.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_"))
	switch dt {
	case "float":
		dt = "float32"
	case "double":
		dt = "float64"
	}
	dims := make([]string, len(io.Dimensions))
	for i, d := range io.Dimensions {
		if d < 0 {
			dims[i] = "?"
		} else {
			dims[i] = strconv.FormatInt(d, 10)
		}
	}
	return fmt.Sprintf("%q %s tensor [%s]", io.Name, dt, strings.Join(dims, ","))
}
