// Package featcache is an on-disk cache of computed features, keyed by
// everything that determines them, so that a killed run resumes where it
// stopped and a repeated run skips work already done.
//
// Every entry is verified in full before it is used: a damaged, truncated
// or foreign file is reported with log/slog, removed, and treated as a
// miss, so the caller recomputes it. A cache entry can therefore cost time
// but never silently change a result.
//
// # On-disk format
//
// An entry is one file, written atomically (temporary file + rename, see
// internal/atomicfile), laid out as
//
//	offset  size  field
//	0       8     magic "ESFCACHE"
//	8       4     format version (Version), uint32 little-endian
//	12      4     reserved, zero
//	16      8     payload length in bytes, uint64 little-endian
//	24      32    SHA-256 over bytes 0..24 of the header, the key, and the payload
//	56      ...   payload: gzip stream of one gob-encoded value
//
// Why this layout rather than relying on gzip alone: gzip's CRC-32 is only
// checked by a reader that reads the stream to EOF, and gob stops reading
// as soon as it has one value, so with a bare gob-in-gzip file most
// corruption goes unnoticed (that is what happened with the previous
// cache). A digest in a fixed-size header is checked over the whole file
// before anything is decoded, independently of how the decoders behave.
// SHA-256 (not CRC-32) is used because it is cheap next to computing
// features and no realistic damage escapes it; it is not a MAC, and the
// cache directory is trusted. The explicit length detects truncation and
// appended bytes without parsing the payload. Hashing the header fields
// and the key as well means a flipped header bit, or an intact entry
// copied or renamed under another key, is also rejected. After the digest
// has matched, the gzip stream is still read to EOF (so its CRC-32 is
// checked too) and gob must consume the decompressed data exactly, as
// defence in depth against a writer bug.
package featcache

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"

	"github.com/eigenscore/eigenscore/internal/atomicfile"
)

// Version is the cache format and feature-derivation version. It is hashed
// into every key (see Key) and written into every entry's header, so
// entries made under another Version are never found.
//
// Bump it whenever the way features are computed changes (an algorithm,
// a default, a random-number stream, the type of the cached value or its
// fields) or the way entries are stored changes. Forgetting to bump it
// makes a run silently reuse features derived the old way.
//
// Version 1 was the unversioned gob-in-gzip format of eval.Cache; its
// files (*.gob.gz) are never read by this package.
const Version = 2

const (
	magic      = "ESFCACHE"
	headerSize = 8 + 4 + 4 + 8 + sha256.Size // 56
	keyHexLen  = 32                          // Key returns 128 bits in hex
	fileExt    = ".fcache"
)

// Cache stores values on disk under keys made by Key. Entries are written
// to a temporary file and renamed, so an interrupted write leaves no
// partial entry, and every entry is verified in full when loaded. A Cache
// with an empty Dir stores nothing: Load reports false and Store does
// nothing and returns nil. A Cache may be used from several goroutines and
// processes at once; concurrent Stores of one key leave one of the values.
type Cache struct{ Dir string }

// Key hashes Version and then the parts, in order, into a cache key of 32
// lowercase hex digits (128 bits). A []float32 part is hashed as the
// little-endian bits of its elements (so -0 and 0, or two NaN payloads,
// differ); any other part is hashed as its JSON encoding, which omits
// unexported struct fields and sorts map keys. Each part is hashed with a
// type tag and its length, so no two different part lists give the same
// byte stream. Equal parts give equal keys, in any process. A part that
// cannot be marshalled to JSON (a channel, a function, a NaN float64) is a
// programming error, and Key panics.
func Key(parts ...any) string { return keyWithVersion(Version, parts...) }

// keyWithVersion is Key for a given format version; tests use it to check
// that the version changes the key.
func keyWithVersion(version int, parts ...any) string {
	h := sha256.New()
	fmt.Fprintf(h, "featcache\x00v%d\x00", version)
	var n [8]byte
	part := func(tag byte, b []byte) {
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write([]byte{tag})
		h.Write(n[:])
		h.Write(b)
	}
	for _, p := range parts {
		switch v := p.(type) {
		case []float32:
			buf := make([]byte, 4*len(v))
			for i, f := range v {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(f))
			}
			part('f', buf)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				panic(fmt.Sprintf("featcache: key part %T: %v", p, err)) // programming error: keys are plain values
			}
			part('j', b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:keyHexLen]
}

// validKey reports whether key has the shape Key produces, which also
// keeps it from naming a path outside the cache directory.
func validKey(key string) bool {
	if len(key) != keyHexLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (c Cache) path(key string) string {
	return filepath.Join(c.Dir, "features", key[:2], key+fileExt)
}

// Store gob-encodes v and writes it under key, replacing any entry there.
// The write is atomic: a reader or a later run sees the old entry, the new
// one, or none, never a part. Store returns an error, and leaves the cache
// as it was, if key was not made by Key, v cannot be gob-encoded, or the
// file cannot be written. With an empty Dir it does nothing and returns
// nil.
func (c Cache) Store(key string, v any) error {
	if c.Dir == "" {
		return nil
	}
	if !validKey(key) {
		return fmt.Errorf("featcache: invalid key %q", key)
	}
	var payload bytes.Buffer
	gz := gzip.NewWriter(&payload)
	if err := gob.NewEncoder(gz).Encode(v); err != nil {
		return fmt.Errorf("featcache: encode %T: %w", v, err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("featcache: compress: %w", err)
	}
	entry := encodeEntry(Version, key, payload.Bytes())
	p := c.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(p, func(w io.Writer) error {
		_, err := w.Write(entry)
		return err
	})
}

// encodeEntry lays out header and payload as described in the package
// documentation.
func encodeEntry(version uint32, key string, payload []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(payload))
	copy(b, magic)
	binary.LittleEndian.PutUint32(b[8:], version)
	binary.LittleEndian.PutUint64(b[16:], uint64(len(payload)))
	sum := digest(b[:24], key, payload)
	copy(b[24:], sum[:])
	return append(b, payload...)
}

func digest(head []byte, key string, payload []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(head)
	h.Write([]byte(key))
	h.Write(payload)
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

// verify checks an entry read from disk and returns its payload.
func verify(b []byte, key string) ([]byte, error) {
	if len(b) < headerSize {
		return nil, fmt.Errorf("%d bytes, shorter than the %d-byte header", len(b), headerSize)
	}
	if string(b[:8]) != magic {
		return nil, errors.New("bad magic bytes")
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != Version {
		return nil, fmt.Errorf("format version %d, want %d", v, Version)
	}
	if r := binary.LittleEndian.Uint32(b[12:]); r != 0 {
		return nil, fmt.Errorf("reserved header field %#x, want 0", r)
	}
	payload := b[headerSize:]
	if n := binary.LittleEndian.Uint64(b[16:]); n != uint64(len(payload)) {
		return nil, fmt.Errorf("payload is %d bytes, header says %d", len(payload), n)
	}
	if sum := digest(b[:24], key, payload); !bytes.Equal(sum[:], b[24:headerSize]) {
		return nil, errors.New("SHA-256 checksum mismatch")
	}
	return payload, nil
}

// decode decompresses and decodes a verified payload into v, which must be
// a non-nil pointer. It decodes into a fresh value and assigns it to *v
// only on success, so on failure *v is unchanged.
func decode(payload []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic(fmt.Sprintf("featcache: Load into %T, want a non-nil pointer", v))
	}
	br := bytes.NewReader(payload)
	gz, err := gzip.NewReader(br)
	if err != nil {
		return fmt.Errorf("gzip header: %w", err)
	}
	gz.Multistream(false)
	// Read to EOF so that gzip checks its CRC-32 and length trailer.
	raw, err := io.ReadAll(gz)
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	// bytes.Reader is an io.ByteReader, so gzip read exactly its stream.
	if br.Len() != 0 {
		return fmt.Errorf("%d bytes after the gzip stream", br.Len())
	}
	rr := bytes.NewReader(raw)
	tmp := reflect.New(rv.Type().Elem())
	if err := gob.NewDecoder(rr).Decode(tmp.Interface()); err != nil {
		return fmt.Errorf("gob decode into %T: %w", v, err)
	}
	if rr.Len() != 0 {
		return fmt.Errorf("%d bytes after the gob value", rr.Len())
	}
	rv.Elem().Set(tmp.Elem())
	return nil
}

// Load reads the entry for key into v, which must be a non-nil pointer
// (Load panics otherwise, a programming error), and reports whether it
// did. It returns true only if the entry exists, its whole content matches
// the SHA-256 digest in its header, the gzip stream reads to its end with
// a matching CRC-32, and gob decodes exactly one value of v's type with no
// data left over.
//
// Load assigns *v only when it returns true, and then replaces *v whole
// with a freshly decoded value (gob omits zero fields, so decoding in
// place could leave stale fields; Load does not). When it returns false,
// *v is unchanged.
//
// A missing entry, or an empty Dir, is a plain miss. An entry that exists
// but is damaged, unreadable, or does not decode as v's type is logged
// with slog.Warn (naming the file and the reason), removed, and reported
// as a miss, so the caller recomputes and Stores it again.
func (c Cache) Load(key string, v any) bool {
	if c.Dir == "" {
		return false
	}
	if !validKey(key) {
		slog.Warn("featcache: invalid key, not loading", "key", key)
		return false
	}
	p := c.path(key)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err == nil {
		var payload []byte
		if payload, err = verify(b, key); err == nil {
			if err = decode(payload, v); err == nil {
				return true
			}
		}
	}
	c.discard(p, err)
	return false
}

// discard reports and removes a damaged entry.
func (c Cache) discard(p string, reason error) {
	attrs := []any{"file", p, "reason", reason.Error()}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		attrs = append(attrs, "remove_error", err.Error())
	}
	slog.Warn("featcache: discarding damaged cache entry; it will be recomputed", attrs...)
}
