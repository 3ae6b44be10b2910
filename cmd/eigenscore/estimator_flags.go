package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/eigenscore/eigenscore/schedule"
	"github.com/eigenscore/eigenscore/spectrum"
)

// estimatorFlags are the subspace-iteration settings shared by commands.
type estimatorFlags struct {
	k, iters, batch, redraw int
	step, valueTol          float64
	precision               string
}

func (f *estimatorFlags) register(cmd *cobra.Command) {
	cmd.Flags().IntVar(&f.k, "k", 3, "eigenvalues per noise level")
	cmd.Flags().IntVar(&f.iters, "iters", 50, "maximum subspace iterations per draw")
	cmd.Flags().Float64Var(&f.step, "step", 1, "finite-difference step c (norm of each direction)")
	cmd.Flags().Float64Var(&f.valueTol, "value-tol", 0, "stop when eigenvalues change less than this (relative) for 5 iterations, instead of the reference overlap rule")
	cmd.Flags().IntVar(&f.batch, "batch", 32, "problems (image × σ × draw) evaluated together")
	cmd.Flags().IntVar(&f.redraw, "redraw", 5, "noise draws allowed per draw asked for, to replace non-converged ones")
	cmd.Flags().StringVar(&f.precision, "precision", "float32", "denoiser arithmetic: float32 or float64 (gmm only)")
}

func (f *estimatorFlags) config() (spectrum.Config, error) {
	p, err := spectrum.ParsePrecision(f.precision)
	if err != nil {
		return spectrum.Config{}, err
	}
	if f.k < 1 || f.iters < 1 || !(f.step > 0) || f.valueTol < 0 {
		return spectrum.Config{}, fmt.Errorf("--k, --iters and --step must be positive and --value-tol non-negative")
	}
	return spectrum.Config{K: f.k, Step: f.step, MaxIter: f.iters, ValueTol: f.valueTol, Batch: f.batch, Redraw: f.redraw, Precision: p}.WithDefaults(), nil
}

// noiseFlags choose the noise levels by DDPM timesteps or explicitly.
type noiseFlags struct{ timesteps, sigmas string }

func (f *noiseFlags) register(cmd *cobra.Command, defTimesteps string) {
	cmd.Flags().StringVar(&f.timesteps, "timesteps", defTimesteps, "DDPM timesteps (start:stop:step or a list) mapped to σ by the linear-β schedule")
	cmd.Flags().StringVar(&f.sigmas, "sigmas", "", "explicit noise levels σ (comma-separated); overrides --timesteps")
}

func (f *noiseFlags) resolve() ([]float64, []int, error) {
	if f.sigmas != "" {
		s, err := schedule.ParseSigmas(f.sigmas)
		return s, nil, err
	}
	ts, err := schedule.ParseTimesteps(f.timesteps)
	if err != nil {
		return nil, nil, err
	}
	s, err := schedule.DDPM.Sigmas(ts)
	return s, ts, err
}
