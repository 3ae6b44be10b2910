package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/eigenscore/eigenscore/internal/testenv"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--data-dir", testenv.DataDir(), "--cache-dir", testenv.DataDir(), "-q"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestSpectrumExact(t *testing.T) {
	out, err := run(t, "spectrum", "--denoiser", "gmm", "--data", "fashion-mnist", "--n", "1", "--sigma", "0.724",
		"--exact", "--step", "1e-3", "--value-tol", "1e-4", "--iters", "1000")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "max_rel_err=") || !strings.Contains(out, "exact [") {
		t.Errorf("output lacks the exact comparison:\n%s", out)
	}
}

func TestEvalShippedModel(t *testing.T) {
	out, err := run(t, "eval", "--id", "fashion-mnist", "--ood", "mnist", "--n", "6", "--preset", "fast",
		"--methods", "eigenscore,recon-error-2s", "--bootstrap", "0", "--no-cache")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"eigenscore ", "recon-error-2s", "NFE/image"} {
		if !strings.Contains(out, want) {
			t.Errorf("eval output lacks %q:\n%s", want, out)
		}
	}
}

func TestBadInputErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--id", "cifar-11", "--n", "5"}, `unknown dataset "cifar-11"`},
		{[]string{"eval", "--ood", "mnist:3-1", "--n", "5"}, "bad class range"},
		{[]string{"eval", "--denoiser", "/nonexistent.onnx", "--n", "5"}, "/nonexistent.onnx"},
		{[]string{"eval", "--preset", "turbo"}, `unknown preset "turbo"`},
		{[]string{"eval", "--sigmas", "0.3,-1"}, "bad sigma"},
		{[]string{"eval", "--id", "svhn", "--n", "5"}, "unknown dataset"},
		{[]string{"spectrum", "--denoiser", "", "--exact"}, "--exact needs --denoiser gmm"},
	}
	for _, c := range cases {
		_, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to mention %q", c.args, err, c.want)
		}
	}
}
