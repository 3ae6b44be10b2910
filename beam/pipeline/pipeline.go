package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/internal/atomicfile"
)

func init() {
	register.DoFn4x1[context.Context, string, func(Item), func(Failure), error](&expandFn{})
	register.DoFn4x1[context.Context, Item, func(Stats), func(Failure), error](&scoreFn{})
	register.DoFn4x1[context.Context, []byte, func(*Stats) bool, func(*Failure) bool, error](&summaryFn{})
	register.Emitter1[Item]()
	register.Emitter1[Stats]()
	register.Emitter1[Failure]()
	register.Iter1[Stats]()
	register.Iter1[Failure]()
}

// Summary is summary.json: the job's counts and the part files that hold
// its rows. Its presence marks the output folder complete.
type Summary struct {
	Images      int64    `json:"images"`
	Flagged     int64    `json:"flagged"`
	FlaggedRate float64  `json:"flagged_rate"`
	NFE         int64    `json:"nfe"`
	Items       int      `json:"items"`
	Resumed     int      `json:"items_resumed"`
	Failures    int      `json:"failures"`
	Format      Format   `json:"format"`
	Method      string   `json:"method"`
	Features    []string `json:"features"`
	Parts       []string `json:"parts"`
}

// Build adds the scoring pipeline to s. It checks the configuration and
// reads the detector (for the model's image shape and the summary); the
// output folder is claimed by Run.
func Build(s beam.Scope, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	det, err := eigenscore.Load(cfg.Detector)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	shape := det.Shape()
	s = s.Scope("eigenscore")
	patterns := beam.CreateList(s, cfg.Inputs)
	items, badInputs := beam.ParDo2(s, &expandFn{Cfg: cfg, Shape: shape}, patterns)
	// Spread the items of one large file over the workers.
	items = beam.Reshuffle(s, items)
	stats, badImages := beam.ParDo2(s, &scoreFn{Cfg: cfg}, items)
	bad := beam.Flatten(s, badInputs, badImages)
	beam.ParDo0(s, &summaryFn{Cfg: cfg, Method: string(det.Method()), Features: det.FeatureNames()},
		beam.Impulse(s), beam.SideInput{Input: stats}, beam.SideInput{Input: bad})
	return nil
}

// summaryFn writes summary.json and failures.jsonl once every item is done.
type summaryFn struct {
	Cfg      Config
	Method   string
	Features []string
}

func (f *summaryFn) ProcessElement(ctx context.Context, _ []byte, stats func(*Stats) bool, bad func(*Failure) bool) error {
	sum := Summary{Format: f.Cfg.Format, Method: f.Method, Features: f.Features, Parts: []string{}}
	var st Stats
	for stats(&st) {
		sum.Items++
		sum.Images += st.Images
		sum.Flagged += st.Flagged
		sum.NFE += st.NFE
		if st.Resumed {
			sum.Resumed++
		}
		sum.Parts = append(sum.Parts, st.Part)
	}
	sort.Strings(sum.Parts)
	var fails []Failure
	var fl Failure
	for bad(&fl) {
		fails = append(fails, fl)
	}
	sort.Slice(fails, func(i, j int) bool { return fails[i].Input < fails[j].Input })
	sum.Failures = len(fails)
	if sum.Images > 0 {
		sum.FlaggedRate = float64(sum.Flagged) / float64(sum.Images)
	}
	err := atomicfile.Write(filepath.Join(f.Cfg.Output, failuresFile), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, fl := range fails {
			if err := enc.Encode(fl); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("eigenscore-beam: %w", err)
	}
	return writeJSON(filepath.Join(f.Cfg.Output, summaryFile), sum)
}

// Run scores cfg's inputs on the named Beam runner ("prism" runs in this
// process) and returns the summary. It claims the output folder first: a
// new folder starts the job, a folder of the same job resumes it (items
// already done are not scored again), any other folder is refused.
func Run(ctx context.Context, runner string, cfg Config) (*Summary, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	j, err := describe(cfg)
	if err != nil {
		return nil, err
	}
	if err := claimOutput(j, cfg.Output); err != nil {
		return nil, err
	}
	p, s := beam.NewPipelineWithRoot()
	if err := Build(s, cfg); err != nil {
		return nil, err
	}
	if _, err := beam.Run(ctx, runner, p); err != nil {
		return nil, fmt.Errorf("pipeline: %w (the output folder %s is incomplete; run again to resume)", err, cfg.Output)
	}
	return ReadSummary(cfg.Output)
}

// ReadSummary reads the summary of a completed output folder.
func ReadSummary(output string) (*Summary, error) {
	b, err := os.ReadFile(filepath.Join(output, summaryFile))
	if err != nil {
		return nil, fmt.Errorf("pipeline: %s has no complete output: %w", output, err)
	}
	var sum Summary
	if err := json.Unmarshal(b, &sum); err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", filepath.Join(output, summaryFile), err)
	}
	return &sum, nil
}
