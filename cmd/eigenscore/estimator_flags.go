package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/eval"
	"github.com/eigenscore/eigenscore/features"
	"github.com/eigenscore/eigenscore/schedule"
	"github.com/eigenscore/eigenscore/spectrum"
)

// estimatorFlags are the subspace-iteration settings shared by commands.
type estimatorFlags struct {
	preset                  string
	k, iters, batch, redraw int
	step, valueTol          float64
	precision               string
	forward, sharedNoise    bool
	cmd                     *cobra.Command
}

// register adds the flags to cmd, with defaultPreset as --preset's default.
func (f *estimatorFlags) register(cmd *cobra.Command, defaultPreset string) {
	f.cmd = cmd
	cmd.Flags().StringVar(&f.preset, "preset", defaultPreset, "estimator preset: "+strings.Join(eigenscore.PresetNames(), ", ")+"; the flags below override it")
	cmd.Flags().IntVar(&f.k, "k", 3, "eigenvalues per noise level")
	cmd.Flags().IntVar(&f.iters, "iters", 50, "maximum subspace iterations per draw")
	cmd.Flags().Float64Var(&f.step, "step", 1, "finite-difference step c (norm of each direction)")
	cmd.Flags().Float64Var(&f.valueTol, "value-tol", 0, "stop when eigenvalues change less than this (relative) for 5 iterations, instead of the reference overlap rule")
	cmd.Flags().IntVar(&f.batch, "batch", 32, "problems (image × σ × draw) evaluated together")
	cmd.Flags().IntVar(&f.redraw, "redraw", 5, "noise draws allowed per draw asked for, to replace non-converged ones")
	cmd.Flags().StringVar(&f.precision, "precision", "float32", "denoiser arithmetic: float32 or float64 (gmm only)")
	cmd.Flags().BoolVar(&f.forward, "forward", false, "one-sided finite differences reusing D(y): k+1 NFEs per iteration's first step, then k, instead of 2k")
	cmd.Flags().BoolVar(&f.sharedNoise, "shared-noise", false, "give every image the same noise draws at each σ (common random numbers)")
}

// config returns the preset's estimator with explicitly set flags applied,
// and the preset's draws (or --draws when drawsFlag is set).
func (f *estimatorFlags) config() (spectrum.Config, error) {
	cfg, _, err := f.resolve()
	return cfg, err
}

func (f *estimatorFlags) resolve() (spectrum.Config, eigenscore.Preset, error) {
	pr, err := eigenscore.LookupPreset(f.preset)
	if err != nil {
		return spectrum.Config{}, pr, err
	}
	cfg := pr.Estimator
	set := func(name string) bool { return f.cmd.Flags().Changed(name) }
	if set("k") {
		cfg.K = f.k
	}
	if set("iters") {
		cfg.MaxIter = f.iters
	}
	if set("step") {
		cfg.Step = f.step
	}
	if set("value-tol") {
		cfg.ValueTol = f.valueTol
	}
	if set("redraw") {
		cfg.Redraw = f.redraw
	}
	if set("forward") {
		cfg.Forward = f.forward
	}
	if set("shared-noise") {
		cfg.SharedNoise = f.sharedNoise
	}
	cfg.Batch = f.batch
	if cfg.Precision, err = spectrum.ParsePrecision(f.precision); err != nil {
		return cfg, pr, err
	}
	if cfg.K < 1 || cfg.MaxIter < 1 || !(cfg.Step > 0) || cfg.ValueTol < 0 || cfg.Redraw < 1 || cfg.Batch < 1 {
		return cfg, pr, fmt.Errorf("--k, --iters, --step, --redraw and --batch must be positive and --value-tol non-negative")
	}
	return cfg.WithDefaults(), pr, nil
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

// spectrumSettings fills cfg's estimator, draws (the preset's unless --draws
// was given), noise levels and aggregation from the flags.
func spectrumSettings(est *estimatorFlags, noise *noiseFlags, agg string, cfg *eval.Config) error {
	var err error
	var preset eigenscore.Preset
	if cfg.Estimator, preset, err = est.resolve(); err != nil {
		return err
	}
	if !est.cmd.Flags().Changed("draws") {
		cfg.Draws = preset.Draws
	}
	if cfg.Sigmas, cfg.Timesteps, err = noise.resolve(); err != nil {
		return err
	}
	cfg.Aggregation, err = features.ParseAggregation(agg)
	return err
}
