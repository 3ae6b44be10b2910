package main

import (
	"fmt"
	"math"
	"sort"

	"github.com/spf13/cobra"
	"gonum.org/v1/gonum/mat"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/denoise/gmm"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/spectrum"
)

func newSpectrumCmd(g *globals) *cobra.Command {
	var (
		est      estimatorFlags
		ds, den  string
		n, draws int
		sigma    float64
		exact    bool
		seed     uint64
	)
	cmd := &cobra.Command{
		Use:   "spectrum",
		Short: "Estimate the top-k posterior eigenvalues of test images (and compare with the exact ones for gmm)",
		Example: `  eigenscore spectrum --denoiser gmm --data fashion-mnist --n 5 --sigma 0.724 --exact
  eigenscore spectrum --denoiser gmm --data fashion-mnist --n 5 --sigma 1.24 --exact --step 1e-3 --value-tol 1e-4 --iters 1000`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := est.config()
			if err != nil {
				return err
			}
			cfg.KeepVectors = exact
			if !(sigma > 0) {
				return fmt.Errorf("--sigma must be positive")
			}
			dataDir := data.DataDir(g.dataDir)
			spec, err := data.ParseSpec(ds)
			if err != nil {
				return err
			}
			images, err := data.Load(dataDir, spec, data.Test)
			if err != nil {
				return err
			}
			images = images.Head(n)
			if exact && den != "gmm" {
				return fmt.Errorf("--exact needs --denoiser gmm, whose posterior covariance is known in closed form")
			}
			m, err := g.openModel(den, ds)
			if err != nil {
				return err
			}
			defer m.Close()
			var mix *gmm.Mixture
			if exact {
				if mix, err = g.mixture(ds); err != nil {
					return err
				}
			}
			keys := features.LevelKeys(images, 1)
			var tasks []spectrum.Task
			for i := 0; i < images.Len(); i++ {
				tasks = append(tasks, spectrum.Task{Image: images.Image(i), Sigma: sigma, Key: keys[i][0]})
			}
			e := spectrum.Estimator{Denoiser: m.Denoiser(), Config: cfg, Seed: seed}
			update, finish := g.progress()("spectra", len(tasks))
			res, err := e.Run(cmd.Context(), tasks, draws, update)
			finish()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			maxRel := 0.0
			for i, r := range res {
				for _, dr := range r.Draws {
					fmt.Fprintf(out, "image %d draw %d: estimated %s converged=%v iters=%d", i, dr.Attempt, fmtVals(dr.Values), dr.Converged, dr.Iterations)
					if mix != nil {
						cov, _ := mix.Cov(dr.Input, sigma)
						want := topEigen(cov, cfg.K)
						rel := 0.0
						for j := range want {
							rel = math.Max(rel, math.Abs(dr.Values[j]-want[j])/want[j])
						}
						maxRel = math.Max(maxRel, rel)
						fmt.Fprintf(out, " exact %s rel_err=%.3e", fmtVals(want), rel)
					}
					fmt.Fprintln(out)
				}
			}
			if mix != nil {
				fmt.Fprintf(out, "max_rel_err=%.6g\n", maxRel)
			}
			return nil
		},
	}
	est.register(cmd, "default")
	cmd.Flags().StringVar(&ds, "data", "fashion-mnist", "dataset (test split) whose images are used")
	cmd.Flags().StringVar(&den, "denoiser", "gmm", "denoiser: gmm, a path to an ONNX model, or \"\" for the shipped model of --data")
	cmd.Flags().IntVar(&n, "n", 5, "images")
	cmd.Flags().IntVar(&draws, "draws", 1, "noise draws per image")
	cmd.Flags().Float64Var(&sigma, "sigma", 0.72359, "noise level σ")
	cmd.Flags().BoolVar(&exact, "exact", false, "also print the exact eigenvalues (gmm only) and the largest relative error")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "random seed")
	return cmd
}

func topEigen(cov *mat.SymDense, k int) []float64 {
	var eig mat.EigenSym
	eig.Factorize(cov, false)
	v := eig.Values(nil)
	sort.Sort(sort.Reverse(sort.Float64Slice(v)))
	return v[:k]
}

func fmtVals(v []float64) string {
	s := "["
	for i, x := range v {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.5g", x)
	}
	return s + "]"
}
