package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/eigenscore/eigenscore/eval"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
	"github.com/eigenscore/eigenscore/method"
	"github.com/eigenscore/eigenscore/metrics"
	"github.com/eigenscore/eigenscore/report"
)

// toReport converts suite results into the report's input.
func toReport(s *eval.SuiteResult, command string) (report.Suite, error) {
	out := report.Suite{
		Title:    "eigenscore OOD evaluation — suite " + s.Suite,
		Protocol: string(s.Protocol),
		Machine:  fmt.Sprintf("%d cores, %s/%s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH),
		Command:  command,
	}
	for _, r := range s.Pairs {
		p := report.Pair{Name: r.ID + " → " + r.OOD, ID: r.ID, OOD: r.OOD, Model: r.Denoiser}
		for _, n := range eval.ResultOrder() {
			m, ok := r.Methods[n]
			if !ok {
				continue
			}
			p.Methods = append(p.Methods, report.Method{Name: string(n), Report: m.Report, CI: m.CI, NFEPerImage: m.NFEPerImage,
				Seconds: m.Seconds, IDScores: m.IDScores, OODScores: m.OODScores, UsesOOD: m.UsesOOD})
		}
		if f := r.Features[method.Spectra]; f != nil {
			for j, sigma := range r.Config.Sigmas {
				st := report.SigmaStats{Sigma: sigma}
				st.IDMean, st.IDStd = eigenStats(f[eval.ID].Eigen, j)
				st.OODMean, st.OODStd = eigenStats(f[eval.OOD].Eigen, j)
				p.Spectra = append(p.Spectra, st)
			}
		}
		for _, fa := range r.PerFeature {
			p.PerSigma = append(p.PerSigma, report.PerSigmaAUROC{Feature: fa.Feature, AUROC: fa.AUROC})
		}
		for _, e := range r.Examples {
			p.Examples = append(p.Examples, report.Example{
				Label: fmt.Sprintf("%s #%d (σ=%.3g)", strings.ToUpper(string(e.Role)), e.Index, e.Sigma),
				Shape: e.Shape, Input: e.Image, Vectors: e.Vectors, Values: e.Values,
			})
		}
		p.TailMethod = string(eval.TailMethod(r))
		for _, t := range r.Tails {
			label := fmt.Sprintf("%s #%d, least OOD", strings.ToUpper(string(t.Role)), t.Index)
			if t.Most {
				label = fmt.Sprintf("%s #%d, most OOD", strings.ToUpper(string(t.Role)), t.Index)
			}
			label += fmt.Sprintf(" (score %.3g, p %.3g)", t.Result.Score, t.Result.PValue)
			panel, err := report.ExplanationOf(string(t.Role)+" test", t.Index, p.TailMethod, t.Image, t.Result)
			if err != nil {
				return out, err
			}
			p.Tails = append(p.Tails, report.Tail{Label: label, Panel: panel})
		}
		out.Pairs = append(out.Pairs, p)
	}
	return out, nil
}

// eigenStats returns, per eigenvalue index, the mean and sd over images of
// the per-image mean eigenvalue at level j.
func eigenStats(eig [][][]float64, j int) (mean, sd []float64) {
	if len(eig) == 0 {
		return nil, nil
	}
	k := len(eig[0][j])
	mean, sd = make([]float64, k), make([]float64, k)
	for l := 0; l < k; l++ {
		col := make([]float64, len(eig))
		for i := range eig {
			col[i] = eig[i][j][l]
		}
		m, s := metrics.MeanStd(col)
		mean[l], sd[l] = m, s
	}
	return mean, sd
}

func writeReport(path string, s report.Suite, csv bool) error {
	err := atomicfile.Write(path, func(w io.Writer) error {
		if csv {
			return report.WriteCSV(w, s)
		}
		return report.WriteHTML(w, s)
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
