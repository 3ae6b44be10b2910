// Package noise derives every random stream of eigenscore from the seed a
// user sets, so that the same seed gives the same scores whatever the batch
// size, the order of work or the number of workers.
//
// # The rule
//
// A stream is named by (seed, purpose, key, index): purpose says what the
// numbers are for, key says for which item (an image at a noise level, a
// data set's role, …) and index counts repetitions (draws, attempts,
// probes). Streams with different names are independent PCG streams.
//
// Every method that looks at a noisy image y = x + σ·n sees the same y for
// the same (image, σ, draw r): its n is Stream(seed, NoisyImage, key, r),
// with key = LevelKey(ImageKey(set, x), level). So EigenScore's draw r, the
// denoising error's draw r and the score norm's draw r are evaluated at one
// y, and the Hutchinson trace's probes all sit at draw 0's y. Differences
// between methods are then differences of the methods, not of their noise.
// The spectrum estimator's starting directions (Directions), the trace's
// probes (Probes), data-set sampling (Sample, Split), bootstrap resampling
// and synthetic data have purposes of their own, so adding draws or probes
// to one method never shifts another's noise.
package noise

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// Purpose names what a stream's numbers are used for.
type Purpose uint64

const (
	// NoisyImage: n in y = x + σ·n for (image at a level, draw).
	NoisyImage Purpose = iota + 1
	// Directions: the subspace iteration's k starting directions for
	// (image at a level, attempt).
	Directions
	// Probes: Rademacher probe vectors of the Hutchinson trace for
	// (image at a level, probe).
	Probes
	// Sample: which images of a data set are drawn for a role.
	Sample
	// Split: the paper protocol's validation/test halves of a role.
	Split
	// Bootstrap: resampling of scores for confidence intervals.
	Bootstrap
	// Synthetic: the pixels of a synthetic OOD set (key: its name).
	Synthetic
	// Bench: inputs of throughput benchmarks.
	Bench
)

// Stream returns the random stream (seed, purpose, key, index).
func Stream(seed uint64, p Purpose, key, index uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, mix(mix(uint64(p))^key)+index))
}

// ImageKey identifies an image by the name of its set and its pixels, so
// that an image gets the same streams however its set is split into
// batches, chunks or files, and images of differently named sets never
// share streams.
func ImageKey(set string, img []float32) uint64 {
	h := fnv.New64a()
	h.Write([]byte(set))
	h.Write([]byte{0})
	var b [4]byte
	for _, v := range img {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		h.Write(b[:])
	}
	return h.Sum64()
}

// LevelKey is the key of an image at the level-th noise level of a run.
func LevelKey(imageKey uint64, level int) uint64 { return mix(imageKey ^ mix(uint64(level)+1)) }

// SigmaKey is the key shared by every image at noise level σ (common random
// numbers across images).
func SigmaKey(sigma float64) uint64 { return mix(math.Float64bits(sigma)) }

// RoleKey is the key of a named role (e.g. "fit", "id", "ood").
func RoleKey(role string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(role))
	return h.Sum64()
}

// Noisy writes y = x + σ·n into y, with n drawn from rng. It is the one
// place a noisy image is made, so that every method rounds it alike.
func Noisy(y []float64, x []float32, sigma float64, rng *rand.Rand) {
	for j, v := range x {
		y[j] = float64(v) + sigma*rng.NormFloat64()
	}
}

// mix is the SplitMix64 finaliser: a bijection that spreads nearby inputs
// over the whole 64-bit range.
func mix(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}
