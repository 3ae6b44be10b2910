package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
	"github.com/eigenscore/eigenscore/method"
	"github.com/eigenscore/eigenscore/noise"
)

func newFitCmd(g *globals) *cobra.Command {
	var (
		est      estimatorFlags
		levels   noiseFlags
		opts     eigenscore.Options
		id, den  string
		meth     string
		agg, out string
		n        int
		noCache  bool
		split    string
	)
	cmd := &cobra.Command{
		Use:   "fit",
		Short: "Fit a detector on ID training images and save it for `score` and `serve`",
		Example: `  eigenscore fit --id fashion-mnist --n 1000 --preset fast --out fm-detector.json
  eigenscore fit --id fashion-mnist --method eigenscore+1d --out fm-plus1d.json
  eigenscore fit --id path/to/train-images-idx3-ubyte.gz --denoiser model.onnx --out detector.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out is required: the file the detector is written to")
			}
			if err := fitOptions(&est, &levels, meth, agg, &opts); err != nil {
				return err
			}
			opts.Progress, opts.CacheDir = g.progress(), g.featureDir(noCache)
			if err := opts.Validate(); err != nil {
				return err
			}
			spec, err := data.ParseSpec(id)
			if err != nil {
				return err
			}
			if err := spec.Check(); err != nil {
				return err
			}
			m, err := g.openModel(den, id)
			if err != nil {
				return err
			}
			defer m.Close()
			if split != string(data.Train) && split != string(data.Test) {
				return fmt.Errorf("--split %q, want train or test", split)
			}
			train, err := data.LoadFor(data.DataDir(g.dataDir), spec, data.Split(split), m.Shape())
			if err != nil {
				return err
			}
			// The fit role's sample, as eval draws it, so that `fit` deploys
			// the detector `eval` measures for the same seed and --n.
			fit := train.Sample(n, noise.Stream(opts.Seed, noise.Sample, noise.RoleKey("fit"), 0))
			det, err := eigenscore.Fit(cmd.Context(), m, fit, &opts)
			if err != nil {
				return err
			}
			if err := det.Save(out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "fitted %s on %d images of %s with %s; conformal threshold %.4g (p-value ≤ %.3g) at %.0f%% ID acceptance\nwrote %s\n",
				det.Method(), det.FitSize(), id, m.ID(), det.Threshold(), 1-det.Acceptance(), 100*det.Acceptance(), out)
			return nil
		},
	}
	// The library's default (eigenscore.Options): a deployed detector pays
	// the fast preset's NFEs per image, not the reference's ~12×.
	est.register(cmd, "fast")
	levels.register(cmd, "100:300:50")
	cmd.Flags().StringVar(&id, "id", "fashion-mnist", "in-distribution dataset (its training split; name[:classes], a file, or a folder of PNG/JPEG images)")
	cmd.Flags().IntVar(&n, "n", 1000, "ID training images to fit on")
	cmd.Flags().StringVar(&split, "split", "train", "split of a named ID set to fit on: train, or test for images a denoiser trained on the train split has not seen (its conformal thresholds need such images once it has memorised its training set)")
	cmd.Flags().StringVar(&meth, "method", string(method.EigenScore), "detection method (eigenscore is the recommended one, see docs/results.md): "+joinMethods())
	cmd.Flags().IntVar(&opts.Draws, "draws", 0, "noise draws per image and level (default: the preset's)")
	cmd.Flags().IntVar(&opts.Probes, "probes", 4, "Hutchinson probes per image and σ (trace method)")
	cmd.Flags().StringVar(&den, "denoiser", "", "denoiser: gmm, a path to an ONNX model, or empty for the shipped network trained on --id")
	cmd.Flags().StringVar(&agg, "aggregation", "mean", "aggregation over draws: mean, median or all")
	cmd.Flags().Float64Var(&opts.Acceptance, "acceptance", 0.95, "share of ID images the threshold accepts")
	cmd.Flags().Uint64Var(&opts.Seed, "seed", 1, "random seed (fit sample and noise draws)")
	cmd.Flags().StringVar(&out, "out", "", "file to write the detector to (JSON)")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "do not read or write the per-image feature cache")
	return cmd
}

// fitOptions fills the method, estimator, levels and aggregation of opts
// from the flags.
func fitOptions(est *estimatorFlags, levels *noiseFlags, meth, agg string, opts *eigenscore.Options) error {
	m, err := method.Parse(meth)
	if err != nil {
		return err
	}
	e, err := est.config()
	if err != nil {
		return err
	}
	opts.Method, opts.Preset, opts.Estimator = m, est.preset, &e
	if opts.Sigmas, _, err = levels.resolve(); err != nil {
		return err
	}
	opts.Aggregation, err = features.ParseAggregation(agg)
	return err
}

func joinMethods() string {
	s := ""
	for i, m := range method.All() {
		if i > 0 {
			s += ", "
		}
		s += string(m)
	}
	return s
}

func newScoreCmd(g *globals) *cobra.Command {
	var (
		detPath, dataSpec, split, csvOut string
		explainDir                       string
		n                                int
		noCache, explainAll              bool
	)
	cmd := &cobra.Command{
		Use:   "score",
		Short: "Score images with a detector saved by `fit`: one row per image, flagged when above the threshold",
		Example: `  eigenscore score --detector fm-detector.json --data mnist --n 100 --csv scores.csv
  eigenscore score --detector fm-detector.json --data my-images.npy --csv scores.csv
  eigenscore score --detector fm-detector.json --data mnist --n 100 --explain why   # why/<index>.png, .json per flagged image`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if explainAll && explainDir == "" {
				return fmt.Errorf("--explain-all needs --explain DIR, the directory to write the explanations to")
			}
			det, err := eigenscore.Load(detPath)
			if err != nil {
				return err
			}
			spec, err := data.ParseSpec(dataSpec)
			if err != nil {
				return err
			}
			ds, err := data.LoadFor(data.DataDir(g.dataDir), spec, data.Split(split), det.Shape())
			if err != nil {
				return err
			}
			ds = ds.Head(n)
			m, err := g.openRecorded(det.Model())
			if err != nil {
				return fmt.Errorf("opening the model %s recorded in %s: %w", det.Model().Source, detPath, err)
			}
			defer m.Close()
			res, err := det.Score(cmd.Context(), m, ds, &eigenscore.ScoreOptions{Progress: g.progress(), CacheDir: g.featureDir(noCache), Explain: explainDir != ""})
			if err != nil {
				return err
			}
			explained := 0
			if explainDir != "" {
				if explained, err = explainSet(explainDir, ds, dataSpec, det, res, explainAll); err != nil {
					return err
				}
			}
			if csvOut != "" {
				if err := writeScoresCSV(csvOut, det, res, ds); err != nil {
					return err
				}
			}
			flagged := 0
			for _, r := range res {
				if r.Flagged {
					flagged++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d images scored with %s (threshold %.4g), %d flagged OOD (%.1f%%), %.0f NFEs per image\n",
				dataSpec, ds.Len(), det.Method(), det.Threshold(), flagged, 100*float64(flagged)/float64(ds.Len()), float64(m.NFE())/float64(ds.Len()))
			if csvOut != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", csvOut)
			}
			if explainDir != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %d explanations (PNG panel + JSON) to %s\n", explained, explainDir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&detPath, "detector", "", "detector file written by eigenscore fit")
	cmd.Flags().StringVar(&dataSpec, "data", "", "images to score: a dataset name, a path to an IDX, .npy, CIFAR-10 .bin or SVHN .mat file, or a folder of PNG/JPEG images (centre-cropped and resized to the model's shape)")
	cmd.Flags().StringVar(&split, "split", "test", "split of a named dataset: train or test")
	cmd.Flags().IntVar(&n, "n", 0, "score only the first n images (0: all)")
	cmd.Flags().StringVar(&csvOut, "csv", "", "write one row per image: index, label, score, conformal p-value, flag, features")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "do not read or write the per-image feature cache")
	cmd.Flags().StringVar(&explainDir, "explain", "", "write DIR/<index>.png (panel: input, uncertainty maps, eigenvectors per σ) and DIR/<index>.json per flagged image; no extra NFEs, the spectra bypass the feature cache")
	cmd.Flags().BoolVar(&explainAll, "explain-all", false, "with --explain, explain every image, not only the flagged ones")
	cmd.MarkFlagRequired("detector")
	cmd.MarkFlagRequired("data")
	return cmd
}

// writeScoresCSV writes one row per image, atomically, so that an
// interrupted run never leaves a partial file under the name asked for.
func writeScoresCSV(path string, det *eigenscore.Detector, res []eigenscore.Result, ds *data.Dataset) error {
	return atomicfile.Write(path, func(f io.Writer) error {
		w := csv.NewWriter(f)
		w.Write(append([]string{"index", "label", "score", "p_value", "flagged"}, det.FeatureNames()...))
		for i, r := range res {
			label := ""
			if ds.Labels != nil {
				label = strconv.Itoa(ds.Labels[i])
			}
			row := []string{strconv.Itoa(i), label, strconv.FormatFloat(r.Score, 'g', 8, 64), strconv.FormatFloat(r.PValue, 'g', 6, 64), strconv.FormatBool(r.Flagged)}
			for _, v := range r.Features {
				row = append(row, strconv.FormatFloat(v, 'g', 8, 64))
			}
			w.Write(row)
		}
		w.Flush()
		return w.Error()
	})
}
