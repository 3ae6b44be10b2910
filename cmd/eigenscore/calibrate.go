package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/detector"
	"github.com/eigenscore/eigenscore/eval"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
)

func newFitCmd(g *globals) *cobra.Command {
	var (
		est     estimatorFlags
		noise   noiseFlags
		cfg     eval.Config
		agg     string
		out     string
		noCache bool
	)
	cmd := &cobra.Command{
		Use:   "fit",
		Short: "Calibrate an EigenScore detector on ID training images and save it for `score`",
		Example: `  eigenscore fit --id fashion-mnist --n 1000 --preset fast --out fm-detector.json
  eigenscore fit --id path/to/train-images-idx3-ubyte.gz --denoiser model.onnx --out detector.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := spectrumSettings(&est, &noise, agg, &cfg); err != nil {
				return err
			}
			if cfg.FitN < 3 || cfg.Draws < 1 || !(cfg.Acceptance > 0 && cfg.Acceptance < 1) {
				return fmt.Errorf("--n must be at least 3, --draws at least 1 and --acceptance in (0, 1)")
			}
			if out == "" {
				return fmt.Errorf("--out is required: the file the detector is written to")
			}
			spec, err := data.ParseSpec(cfg.ID)
			if err != nil {
				return err
			}
			train, err := data.Load(data.DataDir(g.dataDir), spec, data.Train)
			if err != nil {
				return err
			}
			fit := eval.Sample(train, cfg.FitN, cfg.Seed, "fit")
			if err := fit.Validate(); err != nil {
				return err
			}
			d, modelID, release, err := eval.OpenDenoiser(g.denoiserOptions(cfg.Denoiser), cfg.ID)
			if err != nil {
				return err
			}
			defer release()
			c, err := eval.Calibrate(cmd.Context(), cfg, d, modelID, fit, g.featureCache(noCache), g.progress())
			if err != nil {
				return err
			}
			if err := c.Save(out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "fitted on %d images of %s with %s; thresholds at %.0f%% ID acceptance: one-sided %.4g, two-sided %.4g\nwrote %s\n",
				fit.Len(), cfg.ID, modelID, 100*cfg.Acceptance, c.Detector.Thresholds[detector.OneSided], c.Detector.Thresholds[detector.TwoSided], out)
			return nil
		},
	}
	est.register(cmd)
	noise.register(cmd, "100:300:50")
	cmd.Flags().StringVar(&cfg.ID, "id", "fashion-mnist", "in-distribution dataset (its training split; name[:classes] or a path)")
	cmd.Flags().IntVar(&cfg.FitN, "n", 1000, "ID training images to fit on")
	cmd.Flags().IntVar(&cfg.Draws, "draws", 0, "noise draws per image and level (default: the preset's)")
	cmd.Flags().StringVar(&cfg.Denoiser, "denoiser", "", "denoiser: gmm, a path to an ONNX model, or empty for the shipped network trained on --id")
	cmd.Flags().StringVar(&agg, "aggregation", "mean", "aggregation over draws: mean, median or all")
	cmd.Flags().Float64Var(&cfg.Acceptance, "acceptance", 0.95, "share of ID images the thresholds accept")
	cmd.Flags().Uint64Var(&cfg.Seed, "seed", 1, "random seed (fit sample and noise draws)")
	cmd.Flags().StringVar(&out, "out", "", "file to write the detector to (JSON)")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "do not read or write the per-image feature cache")
	return cmd
}

func newScoreCmd(g *globals) *cobra.Command {
	var (
		detPath, dataSpec, split, csvOut, scoreName string
		n                                           int
		noCache                                     bool
	)
	cmd := &cobra.Command{
		Use:   "score",
		Short: "Score images with a detector saved by `fit`: one row per image, flagged when above the threshold",
		Example: `  eigenscore score --detector fm-detector.json --data mnist --n 100 --csv scores.csv
  eigenscore score --detector fm-detector.json --data my-images.npy --csv scores.csv`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := eval.LoadCalibration(detPath)
			if err != nil {
				return err
			}
			s, err := detector.ParseScore(scoreName)
			if err != nil {
				return err
			}
			spec, err := data.ParseSpec(dataSpec)
			if err != nil {
				return err
			}
			ds, err := data.Load(data.DataDir(g.dataDir), spec, data.Split(split))
			if err != nil {
				return err
			}
			if n > 0 && n < ds.Len() {
				ds = ds.Head(n)
			}
			if err := ds.Validate(); err != nil {
				return err
			}
			d, modelID, release, err := eval.OpenDenoiser(g.denoiserOptions(c.Denoiser), c.ID)
			if err != nil {
				return err
			}
			defer release()
			res, err := c.Score(cmd.Context(), d, modelID, ds, g.featureCache(noCache), g.progress())
			if err != nil {
				return err
			}
			flagged := 0
			for _, f := range res.Flagged[s] {
				if f {
					flagged++
				}
			}
			if csvOut != "" {
				if err := writeScoresCSV(csvOut, c, res, ds); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d images scored (%s score, threshold %.4g), %d flagged OOD (%.1f%%), %.0f NFEs per image\n",
				dataSpec, ds.Len(), s, c.Detector.Thresholds[s], flagged, 100*float64(flagged)/float64(ds.Len()), float64(res.NFE)/float64(ds.Len()))
			if csvOut != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", csvOut)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&detPath, "detector", "", "detector file written by `fit`")
	cmd.Flags().StringVar(&dataSpec, "data", "", "images to score: a dataset name, or a path to an IDX, .npy, CIFAR-10 .bin or SVHN .mat file")
	cmd.Flags().StringVar(&split, "split", "test", "split of a named dataset: train or test")
	cmd.Flags().IntVar(&n, "n", 0, "score only the first n images (0: all)")
	cmd.Flags().StringVar(&csvOut, "csv", "", "write one row per image: index, label, both scores and flags, features")
	cmd.Flags().StringVar(&scoreName, "score", string(detector.OneSided), "score for the summary: one-sided (the paper's) or two-sided")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "do not read or write the per-image feature cache")
	cmd.MarkFlagRequired("detector")
	cmd.MarkFlagRequired("data")
	return cmd
}

// writeScoresCSV writes one row per image, atomically, so that an
// interrupted run never leaves a partial file under the name asked for.
func writeScoresCSV(path string, c *eval.Calibration, res *eval.Scored, ds *data.Dataset) error {
	return atomicfile.Write(path, func(f io.Writer) error {
		w := csv.NewWriter(f)
		head := []string{"index", "label"}
		for _, s := range detector.Scores {
			head = append(head, "score_"+string(s), "flagged_"+string(s))
		}
		head = append(head, c.Detector.Features...)
		w.Write(head)
		for i := range res.Features {
			label := ""
			if ds.Labels != nil {
				label = strconv.Itoa(ds.Labels[i])
			}
			row := []string{strconv.Itoa(i), label}
			for _, s := range detector.Scores {
				row = append(row, strconv.FormatFloat(res.Scores[s][i], 'g', 8, 64), strconv.FormatBool(res.Flagged[s][i]))
			}
			for _, v := range res.Features[i] {
				row = append(row, strconv.FormatFloat(v, 'g', 8, 64))
			}
			w.Write(row)
		}
		w.Flush()
		return w.Error()
	})
}
