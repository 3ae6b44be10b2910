package eval

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
)

// Cache stores per-chunk features on disk, keyed by everything that
// determines them (model, image content, method and its parameters, seed),
// so that a killed run resumes where it stopped. Entries are written to a
// temporary file and renamed, so an interrupted write leaves no corrupt
// entry. A Cache with an empty Dir stores nothing.
type Cache struct{ Dir string }

// Key hashes the parts into a cache key.
func Key(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		switch v := p.(type) {
		case []float32:
			buf := make([]byte, 4*len(v))
			for i, f := range v {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(f))
			}
			h.Write(buf)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				panic(fmt.Sprintf("eval: cache key part %T: %v", p, err)) // programming error: keys are plain values
			}
			h.Write(b)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func (c Cache) path(key string) string {
	return filepath.Join(c.Dir, "features", key[:2], key+".gob.gz")
}

// Load decodes the entry for key into v and reports whether it was there.
func (c Cache) Load(key string, v any) bool {
	if c.Dir == "" {
		return false
	}
	f, err := os.Open(c.path(key))
	if err != nil {
		return false
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return false
	}
	return gob.NewDecoder(gz).Decode(v) == nil
}

// Store writes v under key atomically.
func (c Cache) Store(key string, v any) error {
	if c.Dir == "" {
		return nil
	}
	p := c.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(p, func(w io.Writer) error {
		gz := gzip.NewWriter(w)
		if err := gob.NewEncoder(gz).Encode(v); err != nil {
			return err
		}
		return gz.Close()
	})
}

// chunkImages is the number of images per cache entry.
const chunkImages = 50

// chunks splits ds into consecutive sub-datasets of chunkImages images that
// keep ds's name, so per-image noise keys stay those of the full set.
func chunks(ds *data.Dataset) []chunk {
	var out []chunk
	for s := 0; s < ds.Len(); s += chunkImages {
		e := min(s+chunkImages, ds.Len())
		out = append(out, chunk{start: s, ds: &data.Dataset{Name: ds.Name, C: ds.C, H: ds.H, W: ds.W, Pixels: ds.Pixels[s*ds.Dim() : e*ds.Dim()]}})
	}
	return out
}

type chunk struct {
	start int
	ds    *data.Dataset
}
