package eigenscore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/data"
	"github.com/eigenscore/eigenscore/models"
)

// Fit a detector on Fashion-MNIST training images with the shipped
// network, save it, load it back and score test images of Fashion-MNIST
// (in-distribution) and MNIST (out-of-distribution).
func Example() {
	ctx := context.Background()
	m, err := models.Open("fashion-mnist", nil) // the shipped network; Close releases ONNX Runtime
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	load := func(name string, split data.Split, n int) *data.Dataset {
		ds, err := data.Load(data.DataDir(""), data.Spec{Name: name}, split)
		if err != nil {
			log.Fatal(err)
		}
		return ds.Head(n)
	}
	// nil options: the recommended detector (EigenScore, 100 NFEs per
	// image with the fast preset), conformal thresholds at 95% ID
	// acceptance, seed 0.
	det, err := eigenscore.Fit(ctx, m, load("fashion-mnist", data.Train, 100), nil)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "eigenscore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "fm-detector.json")
	if err := det.Save(path); err != nil {
		log.Fatal(err)
	}
	det, err = eigenscore.Load(path)
	if err != nil {
		log.Fatal(err)
	}

	// The mean p-value of 20 test images: the share of ID images expected
	// to score as high, small for out-of-distribution images.
	meanP := func(name string) float64 {
		res, err := det.Score(ctx, m, load(name, data.Test, 20), nil)
		if err != nil {
			log.Fatal(err)
		}
		sum := 0.0
		for _, r := range res { // r.Score, r.PValue, r.Flagged, r.Features
			sum += r.PValue / float64(len(res))
		}
		return sum
	}
	fmt.Printf("%s fitted on %d images, threshold at %.0f%% ID acceptance\n", det.Method(), det.FitSize(), 100*det.Acceptance())
	names := det.FeatureNames()
	fmt.Printf("%d features, from %s to %s\n", len(names), names[0], names[len(names)-1])
	fmt.Println("MNIST digits have smaller p-values than Fashion-MNIST images:", meanP("mnist") < meanP("fashion-mnist"))
	// Output:
	// eigenscore fitted on 100 images, threshold at 95% ID acceptance
	// 5 features, from eig(σ=0.342) to eig(σ=1.24)
	// MNIST digits have smaller p-values than Fashion-MNIST images: true
}
