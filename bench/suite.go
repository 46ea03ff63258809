// Package bench is uniter's benchmark harness (`make bench`): it runs B1–B9
// of the design's BENCHMARKS.md against real processes (the uniter binary
// built for the run, controller nodes, unit agents, hook processes, etcd)
// and writes bench/results/latest.md and latest.json. Every figure is the
// median of repeated trials with min and max; where a baseline exists it
// is measured in the same run and reported as a ratio.
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
	// Only lists the benchmark ids to run (all if empty).
	Only []string
	// Root is the module's root directory (holds go.mod, testcharms/).
	Root string
	// Out is where latest.md and latest.json go.
	Out string
	// Work is the directory for the run's data; empty: a new temporary
	// directory, removed at the end unless Keep.
	Work string
	Keep bool
	// Self is this harness's own binary, run as the etcd election
	// candidate of B9.
	Self string
	// Log receives progress lines.
	Log io.Writer
	// B6 overrides B6's load, "APPS/WATCHERS/WINDOW" (e.g.
	// "10000/3000/1m"), to take the scale benchmark apart.
	B6 string
}

// benchmark is one of B1–B9.
type benchmark struct {
	id, name string
	run      func(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error)
}

// benchmarks is the suite, in the order it runs.
var benchmarks = []benchmark{
	{"B1", "failover after a crash", runB1},
	{"B2", "handover by step-down", runB2},
	{"B3", "is-leader from a hook", runB3},
	{"B4", "executor overhead", runB4},
	{"B5", "lease store throughput", runB5},
	{"B6", "scale", runB6},
	{"B7", "flap storm", runB7},
	{"B8", "footprint", runB8},
	{"B9", "etcd side by side", runB9},
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
	s.logf("building uniter (CGO_ENABLED=0) into %s", work)
	bin, err := deploy.Build(ctx, opts.Root, work)
	if err != nil {
		return r, err
	}
	s.bin = bin
	for _, b := range benchmarks {
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, b.id) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		r.Rows = append(r.Rows, s.runOne(ctx, b, work)...)
		r.Finished = time.Now().UTC()
		if err := r.Write(opts.Out); err != nil {
			return r, err
		}
	}
	r.Finished = time.Now().UTC()
	return r, r.Write(opts.Out)
}

// runOne runs one benchmark in a directory of its own. A failure becomes
// a "not measured" row after the rows it did measure.
func (s *Suite) runOne(ctx context.Context, b benchmark, work string) []report.Row {
	start := time.Now()
	s.logf("%s %s: starting", b.id, b.name)
	env := deploy.Env{Bin: s.bin, Dir: filepath.Join(work, b.id)}
	if err := os.MkdirAll(env.Dir, 0o755); err != nil {
		return []report.Row{report.NotMeasured(b.id, b.name, err.Error())}
	}
	rows, err := b.run(ctx, s, env)
	if err != nil {
		s.logf("%s: %v", b.id, err)
		rows = append(rows, report.NotMeasured(b.id, b.name, oneLine(err.Error())))
	}
	s.logf("%s %s: done in %s", b.id, b.name, time.Since(start).Round(100*time.Millisecond))
	return rows
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
