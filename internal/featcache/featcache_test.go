package featcache

import (
	"bytes"
	"compress/gzip"
	"encoding/gob"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type features struct {
	Rows  [][]float64
	Names []string
	NFE   int64
}

func sample(rows, cols int) features {
	r := rand.New(rand.NewPCG(1, 2))
	f := features{NFE: 12345}
	for i := 0; i < rows; i++ {
		row := make([]float64, cols)
		for j := range row {
			row[j] = r.NormFloat64() * 3
		}
		f.Rows = append(f.Rows, row)
	}
	for j := 0; j < cols; j++ {
		f.Names = append(f.Names, "feature-"+string(rune('a'+j)))
	}
	return f
}

// captureLog sends slog's default output to a buffer for the rest of the
// test.
func captureLog(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestRoundTrip(t *testing.T) {
	c := Cache{Dir: t.TempDir()}
	key := Key("recon", []any{[]float64{0.1, 0.2}, 8, uint64(7)}, "model", "set", []float32{1, 2, 3})
	want := sample(5, 4)
	if err := c.Store(key, &want); err != nil {
		t.Fatal(err)
	}
	var got features
	if !c.Load(key, &got) {
		t.Fatal("Load of a stored entry reported false")
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// A miss is a plain false.
	if c.Load(Key("other"), &got) {
		t.Error("Load of a missing key reported true")
	}
	// Load replaces the value whole: gob omits zero fields, so decoding in
	// place into a used value would keep its stale NFE and Names.
	zero := features{Rows: [][]float64{{1}}}
	if err := c.Store(key, &zero); err != nil {
		t.Fatal(err)
	}
	got = features{Rows: [][]float64{{9, 9}}, Names: []string{"stale"}, NFE: 99}
	if !c.Load(key, &got) || !reflect.DeepEqual(got, zero) {
		t.Errorf("Load into a used value gave %+v, want %+v", got, zero)
	}
	// The entry's file sits where documented, with no temporary left.
	p := c.path(key)
	if !exists(p) {
		t.Errorf("no file at %s", p)
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("%d files beside the entry, want 1", len(ents))
	}
}

// TestEveryBitFlip flips each bit of a stored entry in turn, header and
// payload, and requires Load either to reject the file (and remove it) or
// to return exactly the stored value. Silent changes are what the old
// gob-in-gzip cache suffered from.
func TestEveryBitFlip(t *testing.T) {
	logs := captureLog(t)
	c := Cache{Dir: t.TempDir()}
	key := Key("flip")
	want := sample(6, 6)
	if err := c.Store(key, &want); err != nil {
		t.Fatal(err)
	}
	p := c.path(key)
	orig, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	bits := 8 * len(orig)
	if bits < 2000 {
		t.Fatalf("entry has only %d bits; make the sample larger", bits)
	}
	var detected, intact, silent, leftBehind int
	for bit := 0; bit < bits; bit++ {
		b := bytes.Clone(orig)
		b[bit/8] ^= 1 << (bit % 8)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		// A used value: a rejected Load must leave it as it was.
		got := features{NFE: -1}
		if !c.Load(key, &got) {
			detected++
			if got.NFE != -1 || got.Rows != nil || got.Names != nil {
				t.Errorf("bit %d: rejected Load changed the value to %+v", bit, got)
			}
			if exists(p) {
				leftBehind++
			}
			continue
		}
		if reflect.DeepEqual(got, want) {
			intact++
		} else {
			silent++
			if silent <= 5 {
				t.Errorf("bit %d (byte %d of %d): Load returned a changed value", bit, bit/8, len(orig))
			}
		}
	}
	t.Logf("%d-byte entry: %d single-bit flips tried, %d detected, %d loaded intact, %d silent changes",
		len(orig), bits, detected, intact, silent)
	if silent != 0 {
		t.Errorf("%d of %d flips silently changed the value", silent, bits)
	}
	if leftBehind != 0 {
		t.Errorf("%d rejected entries were not removed", leftBehind)
	}
	// With a digest over the whole file every flip should be caught; allow
	// nothing less than 99%.
	if detected*100 < bits*99 {
		t.Errorf("only %d of %d flips detected", detected, bits)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != detected {
		t.Errorf("%d warnings logged for %d rejected entries", n, detected)
	}
	if !strings.Contains(logs.String(), "file="+p) || !strings.Contains(logs.String(), "reason=") {
		t.Errorf("warnings do not name the file and the reason:\n%.500s", logs.String())
	}
}

func TestTruncation(t *testing.T) {
	logs := captureLog(t)
	c := Cache{Dir: t.TempDir()}
	key := Key("truncate")
	want := sample(3, 3)
	if err := c.Store(key, &want); err != nil {
		t.Fatal(err)
	}
	p := c.path(key)
	orig, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	n := len(orig)
	for _, l := range []int{0, 1, 8, headerSize - 1, headerSize, headerSize + 1, headerSize + 10, n / 2, n - 8, n - 4, n - 1} {
		if err := os.WriteFile(p, orig[:l], 0o644); err != nil {
			t.Fatal(err)
		}
		logs.Reset()
		var got features
		if c.Load(key, &got) {
			t.Errorf("entry truncated to %d of %d bytes loaded", l, n)
		}
		// The reason names the truncation, not just a checksum mismatch.
		if want := "header says"; l >= headerSize && !strings.Contains(logs.String(), want) {
			t.Errorf("truncated to %d bytes: warning %q does not say %q", l, logs.String(), want)
		}
		if exists(p) {
			t.Errorf("entry truncated to %d bytes was not removed", l)
		}
	}
	// Appended bytes are rejected as well.
	if err := os.WriteFile(p, append(bytes.Clone(orig), 0), 0o644); err != nil {
		t.Fatal(err)
	}
	var got features
	if c.Load(key, &got) {
		t.Error("entry with a byte appended loaded")
	}
}

// TestVerifiedButBad covers the checks made after the digest matches,
// which no flip of a Store'd file can reach: entries built here with a
// correct header around a bad payload.
func TestVerifiedButBad(t *testing.T) {
	captureLog(t)
	want := sample(2, 2)
	gobOf := func(vs ...any) []byte {
		var b bytes.Buffer
		enc := gob.NewEncoder(&b)
		for _, v := range vs {
			if err := enc.Encode(v); err != nil {
				t.Fatal(err)
			}
		}
		return b.Bytes()
	}
	gz := func(raw []byte) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(raw)
		w.Close()
		return b.Bytes()
	}
	good := gz(gobOf(&want))
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-8] ^= 1 // the CRC-32 in gzip's trailer
	cases := map[string][]byte{
		"two gob values":           gz(gobOf(&want, &want)),
		"gob value and junk":       gz(append(gobOf(&want), 1, 2, 3)),
		"junk after gzip stream":   append(bytes.Clone(good), 0, 0, 0, 0),
		"second gzip stream":       append(bytes.Clone(good), good...),
		"gzip CRC mismatch":        badCRC,
		"not gzip":                 gobOf(&want),
		"wrong type":               gz(gobOf("a string")),
		"empty payload":            nil,
		"truncated gzip, good sum": good[:len(good)-3],
	}
	c := Cache{Dir: t.TempDir()}
	for name, payload := range cases {
		key := Key(name)
		p := c.path(key)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, encodeEntry(Version, key, payload), 0o644); err != nil {
			t.Fatal(err)
		}
		got := features{NFE: -1}
		if c.Load(key, &got) {
			t.Errorf("%s: loaded", name)
		}
		if got.NFE != -1 {
			t.Errorf("%s: rejected Load changed the value to %+v", name, got)
		}
		if exists(p) {
			t.Errorf("%s: not removed", name)
		}
	}
	// The hand-built entry itself is good, so the cases above fail for the
	// reason they name.
	key := Key("good")
	p := c.path(key)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, encodeEntry(Version, key, good), 0o644); err != nil {
		t.Fatal(err)
	}
	var got features
	if !c.Load(key, &got) || !reflect.DeepEqual(got, want) {
		t.Errorf("hand-built good entry: got %+v", got)
	}
	// An entry of another format version, or filed under another key, is
	// rejected even with a matching digest.
	if err := os.WriteFile(p, encodeEntry(Version+1, key, good), 0o644); err != nil {
		t.Fatal(err)
	}
	if c.Load(key, &got) {
		t.Error("entry of another format version loaded")
	}
	if err := os.WriteFile(p, encodeEntry(Version, Key("elsewhere"), good), 0o644); err != nil {
		t.Fatal(err)
	}
	if c.Load(key, &got) {
		t.Error("entry made for another key loaded")
	}
}

func TestKey(t *testing.T) {
	parts := []any{"eigen", []any{[]float64{0.5, 1}, 16, uint64(3)}, "model-1", "cifar10", []float32{0.25, -1, 3}}
	k := Key(parts...)
	if !validKey(k) {
		t.Fatalf("key %q is not 32 lowercase hex digits", k)
	}
	if k2 := Key(parts...); k2 != k {
		t.Errorf("same parts gave %s and %s", k, k2)
	}
	if kv := keyWithVersion(Version, parts...); kv != k {
		t.Errorf("Key %s differs from keyWithVersion(Version) %s", k, kv)
	}
	for _, v := range []int{0, 1, Version - 1, Version + 1, 100} {
		if v != Version && keyWithVersion(v, parts...) == k {
			t.Errorf("version %d gives the same key as version %d", v, Version)
		}
	}
	for i := range parts {
		for _, alt := range []any{"other", 17, []float32{0.25, -1, 3.0000002}, []float32{0.25, -1}, nil} {
			if reflect.DeepEqual(alt, parts[i]) {
				continue
			}
			changed := append([]any(nil), parts...)
			changed[i] = alt
			kc := Key(changed...)
			if kc == k {
				t.Errorf("changing part %d to %v keeps the key", i, alt)
			}
		}
	}
	// Distinct part lists that an untagged concatenation would confuse.
	le := func(s string) []float32 { // the float32 whose little-endian bytes are s
		b := []byte(s)
		return []float32{math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)}
	}
	pairs := [][2][]any{
		{{"ab", "c"}, {"a", "bc"}},
		{{1234}, {le("1234")}},
		{{[]float32{1, 2}}, {[]float32{1}, []float32{2}}},
		{{}, {[]float32{}}},
		{{float32(0)}, {float32(math.Copysign(0, -1))}}, // JSON writes -0
		{{[]float32{0}}, {[]float32{float32(math.Copysign(0, -1))}}},
		{{"a"}, {"a", nil}},
	}
	for _, p := range pairs {
		if Key(p[0]...) == Key(p[1]...) {
			t.Errorf("Key(%v) == Key(%v)", p[0], p[1])
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Key of an unmarshallable part did not panic")
			}
		}()
		Key(make(chan int))
	}()
}

func TestEmptyDir(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(wd)
	var c Cache
	v := sample(1, 1)
	if err := c.Store(Key("x"), &v); err != nil {
		t.Errorf("Store with empty Dir: %v", err)
	}
	got := features{NFE: -1}
	if c.Load(Key("x"), &got) {
		t.Error("Load with empty Dir reported true")
	}
	if got.NFE != -1 {
		t.Error("Load with empty Dir changed the value")
	}
	if after, _ := os.ReadDir(wd); len(after) != len(before) {
		t.Errorf("Store with empty Dir created files in %s", wd)
	}
}

func TestBadInput(t *testing.T) {
	captureLog(t)
	c := Cache{Dir: t.TempDir()}
	v := sample(1, 1)
	for _, k := range []string{"", "ab", "../../../../etc/passwd", strings.ToUpper(Key("x")), Key("x") + "0"} {
		if err := c.Store(k, &v); err == nil {
			t.Errorf("Store with key %q succeeded", k)
		}
		if c.Load(k, &v) {
			t.Errorf("Load with key %q succeeded", k)
		}
	}
	if err := c.Store(Key("ch"), make(chan int)); err == nil {
		t.Error("Store of an unencodable value succeeded")
	}
	if exists(c.path(Key("ch"))) {
		t.Error("failed Store left an entry")
	}
	if ents, _ := os.ReadDir(c.Dir); len(ents) != 0 {
		t.Errorf("failed Stores left %d files", len(ents))
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Load into a non-pointer did not panic")
			}
		}()
		key := Key("np")
		if err := c.Store(key, &v); err != nil {
			t.Fatal(err)
		}
		c.Load(key, v)
	}()
}
