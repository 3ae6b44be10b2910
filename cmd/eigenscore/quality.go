package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/eval"
)

func newQualityCmd(g *globals) *cobra.Command {
	var (
		ds, den, ref string
		n            int
		seed         uint64
	)
	cmd := &cobra.Command{
		Use:   "quality",
		Short: "Denoising MSE per σ on a test split, next to the Gaussian-mixture denoiser",
		Example: `  eigenscore quality --data fashion-mnist --n 1000
  eigenscore quality --data mnist --denoiser my-model.onnx`,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := data.ParseSpec(ds)
			if err != nil {
				return err
			}
			images, err := data.Load(data.DataDir(g.dataDir), spec, data.Test)
			if err != nil {
				return err
			}
			images = eval.Sample(images, n, seed, eval.Role("quality"))
			sigmas := eval.QualitySigmas()
			var cols [][]eval.MSE
			names := []string{den, ref}
			if den == "" {
				names[0] = "shipped"
			}
			for _, name := range []string{den, ref} {
				m, err := g.openModel(name, ds)
				if err != nil {
					return err
				}
				q, _, err := eval.Quality(cmd.Context(), m.Denoiser(), images, sigmas, seed)
				m.Close()
				if err != nil {
					return err
				}
				cols = append(cols, q)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintf(w, "σ\t%s MSE\t± se\t%s MSE\t± se\tbetter\n", names[0], names[1])
			for j, s := range sigmas {
				a, b := cols[0][j], cols[1][j]
				better := names[0]
				if b.MSE < a.MSE {
					better = names[1]
				}
				fmt.Fprintf(w, "%.4g\t%.5f\t%.5f\t%.5f\t%.5f\t%s\n", s, a.MSE, a.SE, b.MSE, b.SE, better)
			}
			w.Flush()
			fmt.Fprintf(cmd.OutOrStdout(), "per-pixel MSE on %d test images of %s in [-1,1] scale, one noise draw each (seed %d)\n", images.Len(), ds, seed)
			return nil
		},
	}
	cmd.Flags().StringVar(&ds, "data", "fashion-mnist", "dataset (test split)")
	cmd.Flags().StringVar(&den, "denoiser", "", "denoiser to measure (default: the shipped model of --data)")
	cmd.Flags().StringVar(&ref, "reference", "gmm", "denoiser to compare with")
	cmd.Flags().IntVar(&n, "n", 1000, "test images")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "random seed")
	return cmd
}
