package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cifarRecords builds n records with the given label bytes per record and
// pixel byte k of record r equal to (7*r + 3*k) mod 256.
func cifarRecords(t testing.TB, labels [][]byte) []byte {
	t.Helper()
	var out []byte
	for r, ls := range labels {
		out = append(out, ls...)
		for k := range cifarImageBytes {
			out = append(out, byte(7*r+3*k))
		}
	}
	return out
}

func writeTemp(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantErr checks that err is non-nil and mentions every one of subs.
func wantErrMention(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", subs)
	}
	t.Logf("error: %v", err)
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestLoadCIFAR10(t *testing.T) {
	dir := t.TempDir()
	a := writeTemp(t, dir, "data_batch_1.bin", cifarRecords(t, [][]byte{{3}, {9}}))
	b := writeTemp(t, dir, "data_batch_2.bin", cifarRecords(t, [][]byte{{0}}))
	d, err := LoadCIFAR10(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if d.C != 3 || d.H != 32 || d.W != 32 || d.Len() != 3 {
		t.Fatalf("shape %dx%dx%d, %d images; want 3x32x32, 3", d.C, d.H, d.W, d.Len())
	}
	if got := d.Labels; len(got) != 3 || got[0] != 3 || got[1] != 9 || got[2] != 0 {
		t.Fatalf("labels %v, want [3 9 0]", got)
	}
	// Image 2 is record 0 of the second file.
	for img, rec := range []int{0, 1, 0} {
		px := d.Image(img)
		for _, chk := range [][3]int{{0, 0, 0}, {0, 0, 31}, {1, 5, 7}, {2, 31, 31}} {
			c, y, x := chk[0], chk[1], chk[2]
			k := c*1024 + y*32 + x
			if got, want := px[k], ByteToUnit(byte(7*rec+3*k)); got != want {
				t.Errorf("image %d c%d y%d x%d = %v, want %v", img, c, y, x, got, want)
			}
		}
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCIFAR100(t *testing.T) {
	dir := t.TempDir()
	p := writeTemp(t, dir, "train.bin", cifarRecords(t, [][]byte{{19, 99}, {4, 42}}))
	fine, err := LoadCIFAR100(true, p)
	if err != nil {
		t.Fatal(err)
	}
	coarse, err := LoadCIFAR100(false, p)
	if err != nil {
		t.Fatal(err)
	}
	if fine.Labels[0] != 99 || fine.Labels[1] != 42 || coarse.Labels[0] != 19 || coarse.Labels[1] != 4 {
		t.Fatalf("fine %v coarse %v, want [99 42] and [19 4]", fine.Labels, coarse.Labels)
	}
	if got, want := fine.Image(1)[5], ByteToUnit(byte(7+15)); got != want {
		t.Errorf("pixel = %v, want %v", got, want)
	}
}

func TestLoadCIFARErrors(t *testing.T) {
	dir := t.TempDir()
	short := writeTemp(t, dir, "short.bin", cifarRecords(t, [][]byte{{1}})[:3000])
	wantErrMention(t, loaderErr(LoadCIFAR10(short)), "short.bin", "3000 bytes", "record size 3073")

	badLabel := writeTemp(t, dir, "badlabel.bin", cifarRecords(t, [][]byte{{1}, {10}}))
	wantErrMention(t, loaderErr(LoadCIFAR10(badLabel)), "badlabel.bin", "record 1", "= 10", "0-9")

	// A CIFAR-10 file read as CIFAR-100 has the wrong record size.
	wantErrMention(t, loaderErr(LoadCIFAR100(true, badLabel)), "badlabel.bin", "record size 3074")

	badCoarse := writeTemp(t, dir, "coarse.bin", cifarRecords(t, [][]byte{{20, 5}}))
	wantErrMention(t, loaderErr(LoadCIFAR100(true, badCoarse)), "coarse.bin", "label byte 0 = 20", "0-19")

	wantErrMention(t, loaderErr(LoadCIFAR10(filepath.Join(dir, "missing.bin"))), "missing.bin")
	wantErrMention(t, loaderErr(LoadCIFAR10(writeTemp(t, dir, "empty.bin", nil))), "empty.bin", "empty")
	wantErrMention(t, loaderErr(LoadCIFAR10()), "no batch files")
}

// loaderErr drops a loader's dataset.
func loaderErr(_ *Dataset, err error) error { return err }
