// Package schedule converts DDPM timesteps to the noise levels σ that an
// EDM-style denoiser takes.
//
// DDPM's linear schedule has β_t rising linearly from 1e-4 to 0.02 over 1000
// steps; ᾱ_t = Π_{s≤t}(1 − β_s) with t counted from 0, and the variance-
// exploding noise level of step t is σ_t = sqrt(1/ᾱ_t − 1).
package schedule

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Linear is the DDPM linear-β schedule.
type Linear struct {
	Steps              int
	BetaStart, BetaEnd float64
}

// DDPM is the schedule of Ho et al. (2020) used by the reference protocol.
var DDPM = Linear{Steps: 1000, BetaStart: 1e-4, BetaEnd: 0.02}

// AlphaBar returns ᾱ_t for t in [0, Steps).
func (l Linear) AlphaBar(t int) float64 {
	logA := 0.0
	for s := 0; s <= t; s++ {
		beta := l.BetaStart + (l.BetaEnd-l.BetaStart)*float64(s)/float64(l.Steps-1)
		logA += math.Log1p(-beta)
	}
	return math.Exp(logA)
}

// Sigma returns σ_t = sqrt(1/ᾱ_t − 1).
func (l Linear) Sigma(t int) float64 { return math.Sqrt(1/l.AlphaBar(t) - 1) }

// Sigmas maps timesteps to σ, checking that each is in range.
func (l Linear) Sigmas(ts []int) ([]float64, error) {
	out := make([]float64, len(ts))
	for i, t := range ts {
		if t < 0 || t >= l.Steps {
			return nil, fmt.Errorf("schedule: timestep %d out of range [0, %d)", t, l.Steps)
		}
		out[i] = l.Sigma(t)
	}
	return out, nil
}

// ParseTimesteps parses "100:300:50" (start:stop:step, inclusive) or
// "100,150,200".
func ParseTimesteps(s string) ([]int, error) {
	if parts := strings.Split(s, ":"); len(parts) == 3 {
		var v [3]int
		for i, p := range parts {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				return nil, fmt.Errorf("schedule: bad timestep range %q, want start:stop:step", s)
			}
			v[i] = n
		}
		if v[2] <= 0 || v[0] > v[1] {
			return nil, fmt.Errorf("schedule: bad timestep range %q, want start <= stop and step > 0", s)
		}
		var out []int
		for t := v[0]; t <= v[1]; t += v[2] {
			out = append(out, t)
		}
		return out, nil
	}
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("schedule: bad timestep %q in %q", p, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseSigmas parses "0.34,0.72,1.24"; every value must be positive and finite.
func ParseSigmas(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("schedule: bad sigma %q in %q, want a positive number", p, s)
		}
		out = append(out, v)
	}
	return out, nil
}
