// Package report holds the results of a benchmark run and writes them as
// bench/results/latest.json and latest.md. It does no measuring itself.
//
// Rows carry numbers only: the summary of their trials and, in Facts, the
// figures their notes quote. The words (each metric's label, the notes,
// the page around the table) live in template.md.tmpl, and latest.md is
// rendered from latest.json's content, so the two cannot disagree and a
// change of wording needs no new run (`go run ./bench/cmd/bench -render`).
package report

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/uniter-dev/uniter/bench/stats"
)

// Report is one run of the benchmark suite.
type Report struct {
	Machine  Machine   `json:"machine"`
	Quick    bool      `json:"quick"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Benchmarks are the benchmarks the run selected, in its order.
	Benchmarks []Benchmark `json:"benchmarks,omitempty"`
	Rows       []Row       `json:"rows"`
	// Notes are run-wide remarks (skipped benchmarks, warnings).
	Notes []string `json:"notes,omitempty"`
}

// Benchmark says what one benchmark of the run is: its registry row.
type Benchmark struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Measures string `json:"measures"`
	// Target is the design's target, in BENCHMARKS.md's words; the rows
	// carry the criteria that are judged.
	Target string `json:"target"`
}

// Row is one measured figure of one benchmark: the summary of its trials,
// the same-run baseline if there is one, and the target if there is one.
type Row struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Metric names the figure within its benchmark ("failover",
	// "ops_3node"): a key, stable from run to run, that targets and the
	// template's label and note are looked up by.
	Metric string `json:"metric"`
	Unit   string `json:"unit"`
	Trials int    `json:"trials"`
	// Median, Min and Max are over the trials (or over the samples, for
	// per-call latencies: then Trials counts the samples).
	Median   float64   `json:"median"`
	Min      float64   `json:"min"`
	Max      float64   `json:"max"`
	P50      *float64  `json:"p50,omitempty"`
	P99      *float64  `json:"p99,omitempty"`
	Baseline *Baseline `json:"baseline,omitempty"`
	Target   *Target   `json:"target,omitempty"`
	// Met is whether the target is met (absent without a target).
	Met *bool `json:"met,omitempty"`
	// Samples are the trial values, for whoever wants to look closer
	// (omitted when there are very many).
	Samples []float64 `json:"samples,omitempty"`
	// Facts are the figures the row's note quotes (the setup, counts per
	// trial, per node), as a value that encodes to a JSON object. Once
	// read back from JSON it is a map[string]any, and that is the form
	// the template sees.
	Facts       any    `json:"facts,omitempty"`
	NotMeasured string `json:"not_measured,omitempty"`
}

// Baseline is what a row is compared with in the same run.
type Baseline struct {
	Name   string  `json:"name"`
	Median float64 `json:"median"`
	// Ratio is the row's median over the baseline's.
	Ratio float64 `json:"ratio"`
}

// Target is a row's goal: Stat (median, p50, p99, max or min, in the
// row's unit, or ratio: the row's median over its same-run baseline's) Op
// (<=, <, >=, >, ==) Value. Text is how BENCHMARKS.md states it.
type Target struct {
	Stat  string  `json:"stat"`
	Op    string  `json:"op"`
	Value float64 `json:"value"`
	Text  string  `json:"text"`
}

// maxSamples bounds the samples a row keeps in the JSON.
const maxSamples = 200

// NewRow makes a row from the summary of samples.
func NewRow(id, name, metric, unit string, samples []float64) Row {
	s := stats.Summarize(samples)
	r := Row{ID: id, Name: name, Metric: metric, Unit: unit, Trials: s.N,
		Median: clean(s.Median), Min: clean(s.Min), Max: clean(s.Max)}
	if len(samples) <= maxSamples {
		r.Samples = samples
	}
	return r
}

// WithPercentiles sets the row's p50 and p99 from samples.
func (r Row) WithPercentiles(samples []float64) Row {
	s := stats.Summarize(samples)
	p50, p99 := clean(s.P50), clean(s.P99)
	r.P50, r.P99 = &p50, &p99
	return r
}

// WithBaseline compares the row's median with a baseline median.
func (r Row) WithBaseline(name string, median float64) Row {
	r.Baseline = &Baseline{Name: name, Median: clean(median), Ratio: clean(stats.Ratio(r.Median, median))}
	return r
}

// WithTarget sets the row's target and whether it is met.
func (r Row) WithTarget(t Target) Row {
	r.Target = &t
	met, ok := t.Met(r)
	if ok {
		r.Met = &met
	}
	return r
}

// WithFacts sets the figures the row's note quotes.
func (r Row) WithFacts(facts any) Row {
	r.Facts = facts
	return r
}

// NotMeasured is the row of a benchmark that could not run.
func NotMeasured(id, name, reason string) Row {
	return Row{ID: id, Name: name, Metric: "not measured", NotMeasured: reason}
}

// Met reports whether r meets t; ok is false if the statistic is missing.
func (t Target) Met(r Row) (met, ok bool) {
	var v float64
	switch t.Stat {
	case "median":
		v = r.Median
	case "min":
		v = r.Min
	case "max":
		v = r.Max
	case "p50":
		if r.P50 == nil {
			return false, false
		}
		v = *r.P50
	case "p99":
		if r.P99 == nil {
			return false, false
		}
		v = *r.P99
	case "ratio":
		if r.Baseline == nil {
			return false, false
		}
		v = r.Baseline.Ratio
	default:
		return false, false
	}
	if r.Trials == 0 {
		return false, false
	}
	switch t.Op {
	case "<=":
		return v <= t.Value, true
	case "<":
		return v < t.Value, true
	case ">=":
		return v >= t.Value, true
	case ">":
		return v > t.Value, true
	case "==":
		return v == t.Value, true
	}
	return false, false
}

// clean turns NaN and infinities into 0, which JSON can carry.
func clean(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

// Took is how long the run took, to the second.
func (r Report) Took() time.Duration { return r.Finished.Sub(r.Started).Round(time.Second) }

// Write writes the report as latest.json and latest.md in dir. latest.md
// is rendered from latest.json's content. If the template fails on some
// row, latest.md says so in that row's place, both files are written, and
// the error is returned.
func (r Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot write results: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode results: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "latest.json"), append(data, '\n')); err != nil {
		return err
	}
	md, renderErr := RenderJSON(data)
	if err := writeFile(filepath.Join(dir, "latest.md"), []byte(md)); err != nil {
		return err
	}
	return renderErr
}

// writeFile writes data to path through a temporary file and a rename.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
