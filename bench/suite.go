// Package bench is uniter's benchmark harness (`make bench`): it runs the
// benchmarks of the design's BENCHMARKS.md, listed in the registry
// (registry.go), against real processes (the uniter binary built for the
// run, controller nodes, unit agents, hook processes, etcd) and writes
// bench/results/latest.json and latest.md. Every figure is the median of
// repeated trials with min and max; where a baseline exists it is measured
// in the same run and reported as a ratio. Benchmarks return numbers; the
// runner judges them against the registry's targets, and the words of
// latest.md are report/template.md.tmpl's.
//
// The harness never decides pass or fail by timing alone in `make test`:
// its tests cover only its pure parts (statistics, parsing, result files).
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/report"
)

// Options configure a run.
type Options struct {
	// Quick runs fewer trials and smaller loads (BENCH_QUICK=1): the
	// whole suite in under 5 minutes on 2 cores.
	Quick bool
	// Only lists the benchmark ids to run (all if empty); an id the
	// registry does not hold is an error.
	Only []string
	// Root is the module's root directory (holds go.mod, testcharms/).
	Root string
	// Out is where latest.md and latest.json go.
	Out string
	// Work is the directory for the run's data; empty: a new temporary
	// directory, removed at the end unless Keep.
	Work string
	Keep bool
	// Self is this harness's own binary, run as the watcher fleets of
	// B6.
	Self string
	// Log receives progress lines.
	Log io.Writer
	// B6 overrides B6's load, "APPS/WATCHERS/WINDOW" (e.g.
	// "10000/3000/1m"), to take the scale benchmark apart.
	B6 string
}

// Suite is one run in progress.
type Suite struct {
	opts Options
	bin  string

	mu sync.Mutex
	// shared holds samples one benchmark publishes for another's ratio
	// (B9 compares with B1 and B5 of the same run).
	shared map[string][]float64
}

// Run runs the selected benchmarks and writes the results after each one,
// so an interrupted run still leaves what it measured.
func Run(ctx context.Context, opts Options) (report.Report, error) {
	benchmarks, err := selected(opts.Only)
	if err != nil {
		return report.Report{}, err
	}
	if err := raiseFileLimit(); err != nil {
		fmt.Fprintf(opts.Log, "warning: %v\n", err)
	}
	work := opts.Work
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "uniter-bench-"); err != nil {
			return report.Report{}, fmt.Errorf("cannot make work directory: %w", err)
		}
		if !opts.Keep {
			defer os.RemoveAll(work)
		}
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return report.Report{}, fmt.Errorf("cannot make work directory: %w", err)
	}
	s := &Suite{opts: opts, shared: map[string][]float64{}}
	r := report.Report{Machine: report.ReadMachine(work), Quick: opts.Quick, Started: time.Now().UTC()}
	for _, b := range benchmarks {
		r.Benchmarks = append(r.Benchmarks, b.info())
	}
	s.logf("building uniter (CGO_ENABLED=0) into %s", work)
	bin, err := deploy.Build(ctx, opts.Root, work)
	if err != nil {
		return r, err
	}
	s.bin = bin
	for _, b := range benchmarks {
		if ctx.Err() != nil {
			break
		}
		rows, notes := s.runOne(ctx, b, work)
		r.Rows, r.Notes = append(r.Rows, rows...), append(r.Notes, notes...)
		r.Finished = time.Now().UTC()
		if err := r.Write(opts.Out); err != nil {
			return r, err
		}
	}
	r.Finished = time.Now().UTC()
	return r, r.Write(opts.Out)
}

// runOne runs one benchmark in a directory of its own and judges its rows
// against its targets. A failure becomes a "not measured" row after the
// rows it did measure; a benchmark that ran to the end without a row for
// one of its targets leaves a run note.
func (s *Suite) runOne(ctx context.Context, b benchmark, work string) (rows []report.Row, notes []string) {
	start := time.Now()
	s.logf("%s %s: starting", b.id, b.title)
	env := deploy.Env{Bin: s.bin, Dir: filepath.Join(work, b.id)}
	if err := os.MkdirAll(env.Dir, 0o755); err != nil {
		return []report.Row{report.NotMeasured(b.id, b.title, err.Error())}, nil
	}
	rows, err := b.run(ctx, s, env)
	rows, missing := b.judge(rows)
	if err != nil {
		s.logf("%s: %v", b.id, err)
		rows = append(rows, report.NotMeasured(b.id, b.title, oneLine(err.Error())))
	} else {
		for _, m := range missing {
			notes = append(notes, fmt.Sprintf("%s: no row for the target on %s", b.id, m))
		}
	}
	s.logf("%s %s: done in %s", b.id, b.title, time.Since(start).Round(100*time.Millisecond))
	return rows, notes
}

// trials is quick or full, by the run's mode.
func (s *Suite) trials(quick, full int) int {
	if s.opts.Quick {
		return quick
	}
	return full
}

// pick is quick or full, by the run's mode.
func pick[T any](s *Suite, quick, full T) T {
	if s.opts.Quick {
		return quick
	}
	return full
}

func (s *Suite) logf(format string, args ...any) {
	if s.opts.Log != nil {
		fmt.Fprintf(s.opts.Log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

// charm is the path of a test charm.
func (s *Suite) charm(name string) string { return filepath.Join(s.opts.Root, "testcharms", name) }

// Keys of what one benchmark publishes for another's ratio (B9 quotes B1
// and B5 of the same run).
const (
	publishedFailover = "B1.failover"
	publishedOps      = "B5.ops.%d" // by node count
)

// newRow is a row of the benchmark being run: the runner stamps its id
// and title, and judges it against the registry's targets.
func newRow(metric, unit string, samples []float64) report.Row {
	return report.NewRow("", "", metric, unit, samples)
}

// publish records samples for a later benchmark's ratio.
func (s *Suite) publish(key string, samples []float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shared[key] = slices.Clone(samples)
}

// published returns what an earlier benchmark of this run published.
func (s *Suite) published(key string) []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shared[key]
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
