package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/denoise/onnx"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
)

// Format is the format of the scored rows.
type Format string

const (
	// CSV writes a header and one row per image: id, source, index, score,
	// p_value, flagged, then one column per feature.
	CSV Format = "csv"
	// JSONL writes one JSON object per line and image.
	JSONL Format = "jsonl"
)

// DefaultItemSize is the number of images per work item when
// Config.ItemSize is zero: large enough that one Score call keeps every
// core of a worker busy, small enough that a 10,000-image file spreads
// over 20 workers.
const DefaultItemSize = 500

// maxItemSize bounds the images one work item holds in memory
// (500,000 × 3×32×32 float32 is 6 GB; this is a tenth of that).
const maxItemSize = 50000

// Config says what to score and where to write. The zero values of
// Format, ItemSize and the ONNX Runtime fields are sensible defaults;
// Inputs, Detector and Output are required.
type Config struct {
	// Inputs are file patterns (filepath.Match syntax, matched on the
	// workers' file system) of IDX, .npy, CIFAR .bin or SVHN .mat files,
	// PNG/JPEG images, or folders of images.
	Inputs []string
	// Detector is the detector file written by `eigenscore fit`.
	Detector string
	// Model is an ONNX model to use instead of the one the detector
	// records; it must have the same weights (the detector checks the id).
	Model string
	// Output is the folder for the part files, job.json, summary.json and
	// failures.jsonl.
	Output string
	// Format of the part files; CSV when empty.
	Format Format
	// ItemSize is the most images per work item; DefaultItemSize when 0.
	ItemSize int
	// SkipBadInput leaves shards that cannot be read out of the output and
	// lists them in failures.jsonl, instead of failing the pipeline.
	SkipBadInput bool
	// ORT sets the ONNX Runtime library and layout on the workers; zero
	// values let the backend choose (see denoise/onnx).
	ORT onnx.Options

	// FaultDir is for tests only: when set, the first attempt at each work
	// item fails after writing part of its rows, leaving a marker in
	// FaultDir, as a worker that dies mid-bundle would.
	FaultDir string
}

// withDefaults returns c with its defaults applied.
func (c Config) withDefaults() Config {
	if c.Format == "" {
		c.Format = CSV
	}
	if c.ItemSize == 0 {
		c.ItemSize = DefaultItemSize
	}
	return c
}

// Validate reports the first invalid field, naming it.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case len(c.Inputs) == 0:
		return errors.New("pipeline: Inputs is empty: give at least one file pattern")
	case c.Detector == "":
		return errors.New("pipeline: Detector is empty: give the detector file written by `eigenscore fit`")
	case c.Output == "":
		return errors.New("pipeline: Output is empty: give the output folder")
	case c.Format != CSV && c.Format != JSONL:
		return fmt.Errorf("pipeline: Format %q, want %q or %q", c.Format, CSV, JSONL)
	case c.ItemSize < 1 || c.ItemSize > maxItemSize:
		return fmt.Errorf("pipeline: ItemSize %d, want 1 to %d images", c.ItemSize, maxItemSize)
	}
	for i, p := range c.Inputs {
		if _, err := filepath.Match(p, ""); err != nil {
			return fmt.Errorf("pipeline: Inputs[%d] %q: %w", i, p, err)
		}
	}
	return nil
}

// job is job.json: what the output folder holds the scores of. A rerun
// resumes only the same job; SkipBadInput may change between runs.
type job struct {
	Inputs         []string `json:"inputs"`
	Detector       string   `json:"detector"`
	DetectorSHA256 string   `json:"detector_sha256"`
	Model          string   `json:"model,omitempty"`
	Format         Format   `json:"format"`
	ItemSize       int      `json:"item_size"`
}

// describe returns the job c runs, with the detector's checksum, after
// checking that the detector loads.
func describe(c Config) (job, error) {
	if _, err := eigenscore.Load(c.Detector); err != nil {
		return job{}, fmt.Errorf("pipeline: %w", err)
	}
	f, err := os.Open(c.Detector)
	if err != nil {
		return job{}, fmt.Errorf("pipeline: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return job{}, fmt.Errorf("pipeline: detector %s: %w", c.Detector, err)
	}
	return job{Inputs: c.Inputs, Detector: c.Detector, DetectorSHA256: hex.EncodeToString(h.Sum(nil)),
		Model: c.Model, Format: c.Format, ItemSize: c.ItemSize}, nil
}

// claimOutput makes c.Output hold job j: it creates the folder and
// job.json, or checks that an existing job.json describes the same job (a
// rerun, which resumes), and removes a summary.json of an earlier run so
// that the folder reads as complete only when this run ends.
func claimOutput(j job, output string) error {
	if err := os.MkdirAll(output, 0o755); err != nil {
		return fmt.Errorf("pipeline: output: %w", err)
	}
	want, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	want = append(want, '\n')
	path := filepath.Join(output, jobFile)
	have, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if entries, _ := os.ReadDir(output); len(entries) > 0 {
			return fmt.Errorf("pipeline: output folder %s is not empty and holds no %s: choose an empty or new folder", output, jobFile)
		}
		if err := atomicfile.Write(path, func(w io.Writer) error { _, err := w.Write(want); return err }); err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
	case err != nil:
		return fmt.Errorf("pipeline: %w", err)
	case string(have) != string(want):
		return fmt.Errorf("pipeline: output folder %s holds another job (%s differs: inputs, detector, model, item size or format changed): choose a new folder, or remove it to start again", output, path)
	}
	if err := os.Remove(filepath.Join(output, summaryFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pipeline: %w", err)
	}
	return nil
}

const (
	jobFile      = "job.json"
	summaryFile  = "summary.json"
	failuresFile = "failures.jsonl"
)
