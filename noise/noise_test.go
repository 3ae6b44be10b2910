package noise

import "testing"

// Streams are determined by their name and differ when any part of it
// differs.
func TestStreams(t *testing.T) {
	first := func(seed uint64, p Purpose, key, index uint64) uint64 { return Stream(seed, p, key, index).Uint64() }
	base := first(1, NoisyImage, 42, 0)
	if first(1, NoisyImage, 42, 0) != base {
		t.Fatal("the same stream gave different numbers")
	}
	for name, v := range map[string]uint64{
		"seed":    first(2, NoisyImage, 42, 0),
		"purpose": first(1, Directions, 42, 0),
		"key":     first(1, NoisyImage, 43, 0),
		"index":   first(1, NoisyImage, 42, 1),
	} {
		if v == base {
			t.Errorf("another %s gave the same stream", name)
		}
	}
	img := []float32{0.1, -0.5, 1}
	if ImageKey("fit", img) == ImageKey("score", img) || LevelKey(7, 0) == LevelKey(7, 1) {
		t.Error("set names or levels do not separate keys")
	}
}
