package pipeline

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
)

// rowWriter formats scored images as CSV or JSON Lines. Numbers are
// written in the shortest form that reads back to the same float64, so the
// output holds the scores exactly.
type rowWriter struct {
	format Format
	names  []string // feature names
}

// writeFile writes the rows atomically. A non-nil abort makes the write
// fail after the rows (for fault injection): nothing appears at path.
func (w rowWriter) writeFile(path string, ids []imageRef, res []eigenscore.Result, abort error) error {
	return atomicfile.Write(path, func(f io.Writer) error {
		bw := bufio.NewWriter(f)
		var err error
		if w.format == JSONL {
			err = w.jsonl(bw, ids, res)
		} else {
			err = w.csv(bw, ids, res)
		}
		if err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		return abort
	})
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func (w rowWriter) csv(f io.Writer, ids []imageRef, res []eigenscore.Result) error {
	c := csv.NewWriter(f)
	c.Write(append([]string{"id", "source", "index", "score", "p_value", "flagged"}, w.names...))
	for i, r := range res {
		row := []string{imageID(ids[i].Source, ids[i].Index), ids[i].Source, strconv.Itoa(ids[i].Index),
			formatFloat(r.Score), formatFloat(r.PValue), strconv.FormatBool(r.Flagged)}
		for _, v := range r.Features {
			row = append(row, formatFloat(v))
		}
		c.Write(row)
	}
	c.Flush()
	return c.Error()
}

// Row is one line of JSON Lines output.
type Row struct {
	ID       string             `json:"id"`
	Source   string             `json:"source"`
	Index    int                `json:"index"`
	Score    float64            `json:"score"`
	PValue   float64            `json:"p_value"`
	Flagged  bool               `json:"flagged"`
	Features map[string]float64 `json:"features"`
}

func (w rowWriter) jsonl(f io.Writer, ids []imageRef, res []eigenscore.Result) error {
	enc := json.NewEncoder(f)
	for i, r := range res {
		feats := make(map[string]float64, len(w.names))
		for j, n := range w.names {
			feats[n] = r.Features[j]
		}
		row := Row{ID: imageID(ids[i].Source, ids[i].Index), Source: ids[i].Source, Index: ids[i].Index,
			Score: r.Score, PValue: r.PValue, Flagged: r.Flagged, Features: feats}
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	return nil
}

// decodeFiles reads PNG/JPEG files at the model's shape by data.DecodeImage
// (the rule of image folders elsewhere in eigenscore); files that fail come
// back as Failures.
func decodeFiles(files []string, shape denoise.Shape) (*data.Dataset, []imageRef, []Failure, error) {
	ds := &data.Dataset{Name: "images", Shape: shape}
	var refs []imageRef
	var bad []Failure
	for _, path := range files {
		img, err := decodeFile(path, shape)
		if err != nil {
			bad = append(bad, Failure{Input: path, Error: err.Error()})
			continue
		}
		ds.Pixels = append(ds.Pixels, img...)
		refs = append(refs, imageRef{Source: path, Index: 0})
	}
	return ds, refs, bad, nil
}

func decodeFile(path string, shape denoise.Shape) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return data.DecodeImage(f, shape)
}

// writeDone records an item as done, after its part file.
func writeDone(output string, st Stats) error {
	return writeJSON(filepath.Join(output, st.Part+".done"), st)
}

func writeJSON(path string, v any) error {
	err := atomicfile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
	if err != nil {
		return fmt.Errorf("eigenscore-beam: %w", err)
	}
	return nil
}
