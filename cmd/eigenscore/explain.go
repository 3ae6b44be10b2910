package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
	"github.com/eigenscore/eigenscore/report"
)

// explainFile is the JSON written next to an explanation's panel.
type explainFile struct {
	Image        string                  `json:"image"` // where the image came from
	Index        int                     `json:"index"` // its index there
	Score        float64                 `json:"score"`
	PValue       float64                 `json:"p_value"`
	Flagged      bool                    `json:"flagged"`
	FeatureNames []string                `json:"feature_names"`
	Features     []float64               `json:"features"`
	Peak         peak                    `json:"peak"` // where the combined map is largest
	Explanation  *eigenscore.Explanation `json:"explanation"`
}

type peak struct {
	C, Y, X int
	Z       float64 `json:"z"` // the combined map's value there
}

// writeExplanation writes an image's explanation as dir/name.png, its panel,
// and dir/name.json, its numbers; both atomically.
func writeExplanation(dir, name, source string, index int, img []float32, det *eigenscore.Detector, r eigenscore.Result) error {
	e := r.Explanation
	if e == nil {
		return fmt.Errorf("image %d has no explanation", index)
	}
	c, y, x := e.Peak()
	pk := peak{C: c, Y: y, X: x, Z: e.Combined[(c*e.Shape.H+y)*e.Shape.W+x]}
	panel, err := report.ExplanationOf(source, index, string(det.Method()), img, r)
	if err != nil {
		return err
	}
	base := filepath.Join(dir, name)
	if err := atomicfile.Write(base+".png", func(w io.Writer) error { return report.WritePanel(w, panel) }); err != nil {
		return err
	}
	out := explainFile{Image: source, Index: index, Score: r.Score, PValue: r.PValue, Flagged: r.Flagged,
		FeatureNames: det.FeatureNames(), Features: r.Features, Peak: pk, Explanation: e}
	return atomicfile.Write(base+".json", func(w io.Writer) error {
		enc := json.NewEncoder(w)
		return enc.Encode(&out)
	})
}

func verdict(flagged bool) string {
	if flagged {
		return "flagged OOD"
	}
	return "not flagged"
}

// explainSet writes the explanations of the chosen results of ds into dir,
// named by index, and returns how many it wrote. Panels are drawn and
// encoded on every core, since that takes about as long per image as the
// fast preset's scoring on one.
func explainSet(dir string, ds *data.Dataset, source string, det *eigenscore.Detector, res []eigenscore.Result, all bool) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("explanations: %w", err)
	}
	var chosen []int
	for i, r := range res {
		if all || r.Flagged {
			chosen = append(chosen, i)
		}
	}
	errs := make([]error, len(chosen))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for k, i := range chosen {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := writeExplanation(dir, fmt.Sprint(i), source, i, ds.Image(i), det, res[i]); err != nil {
				errs[k] = fmt.Errorf("explanation of image %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return len(chosen), nil
}

// loadImageFile reads the images of a PNG or JPEG file (one image, fitted
// to shape as data.DecodeImage does) or of an NPY file (one or more).
func loadImageFile(path string, shape denoise.Shape) (*data.Dataset, error) {
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png", ".jpg", ".jpeg":
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		img, err := data.DecodeImage(f, shape)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return &data.Dataset{Name: name, Shape: shape, Pixels: img}, nil
	case ".npy":
		ds, err := data.LoadNPY(path)
		if err != nil {
			return nil, err
		}
		if ds.Shape != shape {
			return nil, fmt.Errorf("%s holds %v images, the detector scores %v", path, ds.Shape, shape)
		}
		return ds, nil
	}
	return nil, fmt.Errorf("%s: want a .png, .jpg, .jpeg or .npy file", path)
}

func newExplainCmd(g *globals) *cobra.Command {
	var detPath, out string
	cmd := &cobra.Command{
		Use:   "explain IMAGE",
		Short: "Explain one image's score: where, and at which noise level, the model is unusually uncertain (PNG panel + JSON)",
		Long: `explain scores an image file (PNG, JPEG or NPY) with a detector and writes, per image, a PNG panel
(the input, the combined ID-standardised uncertainty map with its peak, and per noise level σ the
uncertainty map Σ λ_i v_i², the map standardised against the fit images, and the top eigenvectors of
Cov[x|y], each tile with its colour scale) and a JSON with the numbers, into --out. Explaining costs
no denoiser evaluations beyond the score's.`,
		Example: `  eigenscore explain shirt.png --detector fm-detector.json --out explanations
  eigenscore explain images.npy --detector fm-detector.json --out explanations`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			det, err := eigenscore.Load(detPath)
			if err != nil {
				return err
			}
			ds, err := loadImageFile(args[0], det.Shape())
			if err != nil {
				return err
			}
			m, err := g.openRecorded(det.Model())
			if err != nil {
				return fmt.Errorf("opening the model %s recorded in %s: %w", det.Model().Source, detPath, err)
			}
			defer m.Close()
			res, err := det.Score(cmd.Context(), m, ds, &eigenscore.ScoreOptions{Progress: g.progress(), Explain: true})
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			for i, r := range res {
				name := ds.Name
				if ds.Len() > 1 {
					name = fmt.Sprintf("%s-%d", ds.Name, i)
				}
				if err := writeExplanation(out, name, args[0], i, ds.Image(i), det, r); err != nil {
					return err
				}
				_, y, x := r.Explanation.Peak()
				fmt.Fprintf(cmd.OutOrStdout(), "%s #%d: score %.4g, p-value %.3g, %s; most unusual uncertainty at row %d, column %d; wrote %s.png and .json\n",
					args[0], i, r.Score, r.PValue, verdict(r.Flagged), y, x, filepath.Join(out, name))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&detPath, "detector", "", "detector file written by eigenscore fit")
	cmd.Flags().StringVar(&out, "out", "", "directory to write NAME.png and NAME.json to")
	cmd.MarkFlagRequired("detector")
	cmd.MarkFlagRequired("out")
	return cmd
}
