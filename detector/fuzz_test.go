package detector

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// FuzzDecode checks that Decode never panics, and that a detector it
// accepts scores finite positive features without panicking or returning
// NaN/±Inf, re-encodes to JSON that Decode accepts as the same detector.
func FuzzDecode(f *testing.F) {
	_, good := fitted(f)
	f.Add(good)
	for _, r := range [][2]string{
		{`"std":[`, `"std":[0,`},
		{`"std":[`, `"std":[-1,`},
		{`"acceptance":0.9`, `"acceptance":1.5`},
		{`"default_score":"two-sided"`, `"default_score":"bogus"`},
		{`"fit_size":50`, `"fit_size":1`},
		{`"log_precision":[`, `"log_precision":[1e300,`},
		{`"mean":[`, `"mean":[1e308,`},
		{`"thresholds":{`, `"thresholds":{"bogus":1,`},
	} {
		if !bytes.Contains(good, []byte(r[0])) {
			f.Fatalf("seed JSON lacks %s: %s", r[0], good)
		}
		f.Add(bytes.Replace(good, []byte(r[0]), []byte(r[1]), 1))
	}
	f.Add(append(append([]byte(nil), good...), " {}"...))
	f.Add([]byte(`{"features":["x"],"mean":[1],"std":[1e-300],"log_mean":[0],"log_precision":[1e300],"default_score":"one-sided","acceptance":0.5,"thresholds":{"one-sided":0,"two-sided":0},"fit_size":3}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{}`))

	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(b)
		if err != nil {
			if d != nil {
				t.Fatal("Decode returned a detector with its error")
			}
			return
		}
		m := len(d.Mean)
		rows := make([][]float64, 0, 6)
		for _, x := range []float64{1, 1e-300, 1e300, math.SmallestNonzeroFloat64, math.MaxFloat64} {
			r := make([]float64, m)
			for j := range r {
				r[j] = x
			}
			rows = append(rows, r)
		}
		mixed := make([]float64, m)
		for j := range mixed {
			mixed[j] = math.Pow(10, float64(j%7)-3)
		}
		rows = append(rows, mixed)
		scores := map[Score][]float64{}
		for _, s := range Scores {
			for _, r := range rows {
				v, err := d.Score(r, s)
				if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
					t.Fatalf("%s score of %v is %v", s, r, v)
				}
				if err != nil {
					v = math.NaN() // marks an error below
				}
				d.Flag(v, s)
				scores[s] = append(scores[s], v)
			}
		}
		again, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("accepted detector does not re-encode: %v", err)
		}
		d2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded detector rejected: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(d, d2) {
			t.Fatalf("re-encoded detector differs:\n%+v\n%+v", d, d2)
		}
		for _, s := range Scores {
			for i, r := range rows {
				v, err := d2.Score(r, s)
				want := scores[s][i]
				if (err != nil) != math.IsNaN(want) || err == nil && v != want {
					t.Fatalf("%s score of %v: %v, %v after re-encoding, want %v", s, r, v, err, want)
				}
			}
		}
	})
}
