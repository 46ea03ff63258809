package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/report"
)

// registry is the suite, in the order it runs: one row per benchmark of
// BENCHMARKS.md. The runner, BENCH_ONLY and the report's list of
// benchmarks all read it; adding a benchmark is adding a row (and, for the
// words of latest.md, its labels and notes in report/template.md.tmpl).
var registry = []benchmark{
	{id: "B1", title: "failover after a crash", run: runFailover,
		measures: "SIGKILL the leader's agent → the successor's leader-elected starts",
		goal:     "p50 ≤ G + 2 s",
		targets:  []target{{"failover", "median", "<=", msOf(failoverG + 2*time.Second), "p50 ≤ G+2 s = 5000 ms"}}},
	{id: "B2", title: "handover by step-down", run: runStepDown,
		measures: "step-down request → the successor's leader-elected starts, minus leader-deposed",
		goal:     "p99 < 500 ms",
		targets:  []target{{"handover", "p99", "<", 500, "p99 < 500 ms"}}},
	{id: "B3", title: "is-leader from a hook", run: runIsLeader,
		measures: "one is-leader call from a hook, against /bin/true",
		goal:     "p50 ≤ 2 ms; ratio to the /bin/true loop reported",
		targets: []target{
			{"loop_per_call", "median", "<=", 2, "p50 ≤ 2 ms"},
			{"exec_per_call", "median", "<=", 2, "p50 ≤ 2 ms"},
		}},
	{id: "B4", title: "executor overhead", run: runExecutor,
		measures: "a trivial hook through the executor, against exec'ing it directly",
		goal:     "added cost per hook ≤ 2 ms; hooks/s reported",
		targets:  []target{{"added_per_hook", "median", "<=", 2, "≤ 2 ms"}}},
	{id: "B5", title: "lease store throughput", run: runThroughput,
		measures: "claims and extends through the HTTP API from 64 clients, 1 and 3 nodes",
		goal:     "≥ 5,000 ops/s on 3 nodes; p99 latency reported (≤ 20 ms on 3 nodes)",
		targets: []target{
			{"ops_3node", "median", ">=", 5000, "≥ 5000 ops/s"},
			{"latency_3node", "p99", "<=", 20, "p99 ≤ 20 ms"},
		}},
	{id: "B6", title: "scale", run: runScale,
		measures: "leaders renewing and three agents per application, each parking its one unit watch, against a 3-node controller",
		goal:     "zero leases lost; largest node ≤ 250 MiB RSS; ≤ 5 KiB of controller RSS per watching agent; CPU reported",
		targets: []target{
			{"leases_lost", "max", "<=", 0, "0 in every trial"},
			{"controller_rss", "max", "<=", 250, "≤ 250 MiB"},
			{"rss_per_watcher", "max", "<=", 5, "≤ 5 KiB"},
		}},
	{id: "B6b", title: "status at scale", run: runStatusScale,
		measures: "one application's status from a 3-node controller holding 100,000 units of 30,000 applications, leaders renewing",
		goal:     "0 leases lost; status of one application ≤ 10 ms p99",
		targets: []target{
			{"leases_lost", "max", "<=", 0, "0"},
			{"app_status_latency", "p99", "<=", statusTarget, "p99 ≤ 10 ms"},
		}},
	{id: "B7", title: "flap storm", run: runFlapStorm,
		measures: "1,000 leadership changes in 10 s under a real agent, three storms",
		goal:     "no deadlock; hooks run ≤ changes; agent goroutines and RSS flat; final state right",
		targets: []target{
			{"hooks_over_changes", "max", "<=", 0, "≤ 0 (hooks ≤ changes)"},
			{"threads_growth", "max", "<=", 1, "flat (≤ +1)"},
			{"rss_growth", "max", "<=", 1, "flat (≤ +1 MiB)"},
			{"final_state", "min", ">=", 2, "2 of 2"},
		}},
	{id: "B8", title: "footprint", run: runFootprint,
		measures: "RSS and CPU of an idle agent and of its idle 1-node controller",
		goal:     "agent ≤ 20 MB RSS, ~0 % CPU",
		targets: []target{
			{"agent_rss", "max", "<=", 20, "≤ 20 MB"},
			{"agent_cpu", "median", "<=", 0.5, "~0 % (≤ 0.5 %)"},
		}},
	{id: "B9", title: "etcd side by side", run: runEtcdBaseline,
		measures: "B1's failover and B5's throughput for a current etcd through its Go client (clientv3, gRPC): lease grant+keep-alive and CAS-renewed lease records, same TTL, same machine",
		goal:     "report the ratio: ours / etcd; B5 ≥ 2× etcd's own client, grant+keep-alive and CAS-renewed records, 1 and 3 nodes",
		// The ratio rows exist when B5 ran in the same pass (B5 before B9).
		targets: []target{
			{"uniter_vs_etcd_ops_1node", "ratio", ">=", 2, "≥ 2× clientv3"},
			{"uniter_vs_etcd_cas_1node", "ratio", ">=", 2, "≥ 2× clientv3 CAS"},
			{"uniter_vs_etcd_ops_3node", "ratio", ">=", 2, "≥ 2× clientv3"},
			{"uniter_vs_etcd_cas_3node", "ratio", ">=", 2, "≥ 2× clientv3 CAS"},
		}},
	{id: "B10", title: "leadership churn soak", run: runChurnSoak,
		measures: "the end-to-end leadership churn over and over for 30 min, every true is-leader answer checked against the controller's lease history",
		goal:     "0 violations; true answers checked reported (thousands, not dozens)",
		targets: []target{
			{"answers_checked", "min", ">=", 1000, "≥ 1000 (thousands)"},
			{"violations", "max", "<=", 0, "0"},
		}},
}

// benchmark is one row of the registry.
type benchmark struct {
	// id is BENCHMARKS.md's id, and what BENCH_ONLY names.
	id    string
	title string
	// measures is what the benchmark measures, in a line.
	measures string
	// goal is the design's target, in its words; targets are the parts
	// of it judged on the rows (none for a benchmark that only reports).
	goal    string
	targets []target
	run     func(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error)
}

// target is a criterion judged on the row of one metric: its stat
// (median, min, max, p50, p99) op (<=, <, >=, >, ==) value, in the row's
// unit; text is how the report states it.
type target struct {
	metric, stat, op string
	value            float64
	text             string
}

// info is what the report says of the benchmark.
func (b benchmark) info() report.Benchmark {
	return report.Benchmark{ID: b.id, Title: b.title, Measures: b.measures, Target: b.goal}
}

// judge stamps the benchmark's id and title on rows and judges every row
// whose metric a target names. missing lists the targets no row answered.
func (b benchmark) judge(rows []report.Row) (judged []report.Row, missing []string) {
	answered := map[string]bool{}
	for _, row := range rows {
		row.ID, row.Name = b.id, b.title
		for _, t := range b.targets {
			if row.NotMeasured == "" && t.metric == row.Metric {
				row = row.WithTarget(report.Target{Stat: t.stat, Op: t.op, Value: t.value, Text: t.text})
				answered[t.metric] = true
			}
		}
		judged = append(judged, row)
	}
	for _, t := range b.targets {
		if !answered[t.metric] {
			missing = append(missing, t.metric)
		}
	}
	return judged, missing
}

// ParseOnly reads BENCH_ONLY (or -only): benchmark ids separated by
// commas, in any case (b6b is B6b), with spaces ignored. Empty means every benchmark.
// An id the registry does not hold is an error that names the ones it
// does.
func ParseOnly(v string) ([]string, error) {
	var ids []string
	for id := range strings.SplitSeq(v, ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		b := lookup(id)
		if b == nil {
			return nil, unknownID(strings.ToUpper(id))
		}
		ids = append(ids, b.id)
	}
	return ids, nil
}

// selected is the registry's rows that only names, in the registry's
// order (every row if only is empty).
func selected(only []string) ([]benchmark, error) {
	var out []benchmark
	for _, id := range only {
		if lookup(id) == nil {
			return nil, unknownID(id)
		}
	}
	for _, b := range registry {
		if len(only) == 0 || slices.Contains(only, b.id) {
			out = append(out, b)
		}
	}
	return out, nil
}

// lookup is the registry's row of id (in any case), or nil.
func lookup(id string) *benchmark {
	for i := range registry {
		if strings.EqualFold(registry[i].id, id) {
			return &registry[i]
		}
	}
	return nil
}

func unknownID(id string) error {
	ids := make([]string, len(registry))
	for i, b := range registry {
		ids[i] = b.id
	}
	return fmt.Errorf("unknown benchmark %q: the ids are %s", id, strings.Join(ids, ", "))
}

// msOf is d in milliseconds.
func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
