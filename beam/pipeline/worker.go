package pipeline

import (
	"fmt"
	"sync"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/denoise/onnx"
	"github.com/eigenscore/eigenscore/models"
)

// scorer is what a worker process scores with: the detector and the open
// model, shared by every DoFn instance of the process and closed when the
// last one is torn down, so the ONNX Runtime sessions live as long as the
// worker, not a bundle.
type scorer struct {
	det   *eigenscore.Detector
	model *eigenscore.Model
	refs  int
}

// worker holds the process's scorers by (detector, model) files.
var worker = struct {
	sync.Mutex
	scorers map[[2]string]*scorer
}{scorers: map[[2]string]*scorer{}}

// acquire returns the process's scorer for the detector file (and model
// override), loading and opening it on first use.
func acquire(detector, model string, ort onnx.Options) (*scorer, error) {
	worker.Lock()
	defer worker.Unlock()
	key := [2]string{detector, model}
	if s := worker.scorers[key]; s != nil {
		s.refs++
		return s, nil
	}
	det, err := eigenscore.Load(detector)
	if err != nil {
		return nil, err
	}
	source := det.Model().Source
	if model != "" {
		source = model
	}
	m, err := models.OpenSource(source, &ort)
	if err != nil {
		return nil, fmt.Errorf("opening the model %s of detector %s: %w", source, detector, err)
	}
	if m.ID() != det.Model().ID {
		m.Close()
		return nil, fmt.Errorf("model %s is %s, but detector %s was fitted with %s", source, m.ID(), detector, det.Model().ID)
	}
	s := &scorer{det: det, model: m, refs: 1}
	worker.scorers[key] = s
	return s, nil
}

// release drops a reference to the scorer, closing its model with the last.
func release(detector, model string) error {
	worker.Lock()
	defer worker.Unlock()
	key := [2]string{detector, model}
	s := worker.scorers[key]
	if s == nil {
		return nil
	}
	if s.refs--; s.refs > 0 {
		return nil
	}
	delete(worker.scorers, key)
	return s.model.Close()
}
