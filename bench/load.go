package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/uniter-dev/uniter/bench/report"
)

// loadClients is the number of concurrent clients of B5 and B9.
const loadClients = 64

// loadResult is what a closed-loop load run measured.
type loadResult struct {
	ops, errs int
	latency   []float64 // ms, of every successful op
	elapsed   time.Duration
	firstErr  error
}

// opsPerSec is the rate of successful operations.
func (r loadResult) opsPerSec() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// runLoad runs a closed loop for window: each of clients goroutines calls
// op(ctx, client, seq) back to back, seq counting that client's calls.
func runLoad(ctx context.Context, clients int, window time.Duration, op func(ctx context.Context, client, seq int) error) loadResult {
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	per := make([]loadResult, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &per[i]
			for seq := 0; ctx.Err() == nil; seq++ {
				t := time.Now()
				err := op(ctx, i, seq)
				switch {
				case ctx.Err() != nil:
					// cut off by the window: not counted
				case err != nil:
					r.errs++
					if r.firstErr == nil {
						r.firstErr = err
					}
				default:
					r.ops++
					r.latency = append(r.latency, float64(time.Since(t))/1e6)
				}
			}
		}()
	}
	wg.Wait()
	total := loadResult{elapsed: time.Since(start)}
	for _, r := range per {
		total.ops += r.ops
		total.errs += r.errs
		total.latency = append(total.latency, r.latency...)
		if total.firstErr == nil {
			total.firstErr = r.firstErr
		}
	}
	return total
}

// throughput is the outcome of one topology's trials.
type throughput struct {
	opsPerSec []float64 // one per trial
	latency   []float64 // ms, every op of every trial
	errs      int
	firstErr  error
}

// loadFacts are a throughput row's setup and its failed ops.
type loadFacts struct {
	Clients   int    `json:"clients"`
	Nodes     int    `json:"nodes"`
	FailedOps int    `json:"failed_ops"`
	FirstErr  string `json:"first_err"`
}

// facts are the facts of the rows of one topology of nodes.
func (t throughput) facts(nodes int) loadFacts {
	f := loadFacts{Clients: loadClients, Nodes: nodes, FailedOps: t.errs}
	if t.firstErr != nil {
		f.FirstErr = t.firstErr.Error()
	}
	return f
}

// opsRow is the ops/s of one topology of nodes: one value per trial.
func (t throughput) opsRow(metric string, nodes int) report.Row {
	return newRow(metric, "ops/s", t.opsPerSec).WithFacts(t.facts(nodes))
}

// latencyRow is the latency of every op of every trial of one topology.
func (t throughput) latencyRow(metric string, nodes int) report.Row {
	return newRow(metric, "ms", t.latency).WithPercentiles(t.latency).WithFacts(t.facts(nodes))
}

// loadTrials runs B5's trials of op (which B9 repeats against etcd) with
// loadClients clients: a 1 s warm-up (connections, first writes), then 3
// trials of 2 s (full pass: 5 of 8 s), each logged as label's. A trial in
// which no op succeeded fails the run.
func loadTrials(ctx context.Context, s *Suite, label string, op func(ctx context.Context, client, seq int) error) (throughput, error) {
	t, err := interleavedTrials(ctx, s, []namedLoad{{label, op}})
	if err != nil {
		return throughput{}, err
	}
	return t[0], nil
}

// namedLoad is one load of interleavedTrials.
type namedLoad struct {
	label string
	op    func(ctx context.Context, client, seq int) error
}

// interleavedTrials is loadTrials for several loads, one trial of each in
// turn, so that the machine's drift (it is shared) falls on all of them
// alike and their ratios mean something.
func interleavedTrials(ctx context.Context, s *Suite, loads []namedLoad) ([]throughput, error) {
	for _, l := range loads {
		runLoad(ctx, loadClients, loadWarmup, l.op) // warm-up: connections, first writes
	}
	out := make([]throughput, len(loads))
	n, window := loadPlan(s)
	for i := range n {
		for j, l := range loads {
			r := runLoad(ctx, loadClients, window, l.op)
			if r.ops == 0 {
				return out, fmt.Errorf("%s: no op succeeded: %v", l.label, r.firstErr)
			}
			s.logf("%s trial %d/%d: %.0f ops/s, %d errors", l.label, i+1, n, r.opsPerSec(), r.errs)
			out[j].add(r)
		}
	}
	return out, nil
}

// loadWarmup is the warm-up before B5's and B9's trials.
const loadWarmup = time.Second

// loadPlan is the number and length of B5's and B9's trials: 3 of 2 s
// (full pass: 5 of 8 s).
func loadPlan(s *Suite) (trials int, window time.Duration) {
	return s.trials(3, 5), pick(s, 2*time.Second, 8*time.Second)
}

// add counts one trial's result.
func (t *throughput) add(r loadResult) {
	t.opsPerSec = append(t.opsPerSec, r.opsPerSec())
	t.latency = append(t.latency, r.latency...)
	t.errs += r.errs
	if t.firstErr == nil {
		t.firstErr = r.firstErr
	}
}
