package bench

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/bench/proc"
	"github.com/uniter-dev/uniter/bench/report"
	"github.com/uniter-dev/uniter/tests/churn"
)

// judged are rows as the runner leaves them: stamped with benchmark id's
// id and title, and judged against its targets.
func judged(t *testing.T, id string, rows []report.Row) []report.Row {
	t.Helper()
	b := lookup(id)
	if b == nil {
		t.Fatalf("no benchmark %s in the registry", id)
	}
	out, _ := b.judge(rows)
	return out
}

// render is latest.md of a report of rows; the template must render every
// label and note, and have a label for every row.
func render(t *testing.T, rows []report.Row) string {
	t.Helper()
	for _, row := range rows {
		if !report.HasLabel(row.ID, row.Metric) {
			t.Errorf("template.md.tmpl has no label %q for %s's row", row.Metric, row.ID)
		}
	}
	md, err := report.Report{Rows: rows}.Markdown()
	if err != nil {
		t.Fatalf("latest.md: %v", err)
	}
	return md
}

func TestRegistryRows(t *testing.T) {
	ids := map[string]bool{}
	for _, b := range registry {
		if b.id == "" || ids[b.id] {
			t.Errorf("benchmark id %q is empty or not unique", b.id)
		}
		ids[b.id] = true
		if b.title == "" || b.measures == "" || b.run == nil {
			t.Errorf("%s: a row needs a title, what it measures and its run function", b.id)
		}
		if b.goal == "" {
			t.Errorf("%s has no target: every row states the design's (even if it only says what is reported)", b.id)
		}
		metrics := map[string]bool{}
		for _, tg := range b.targets {
			if metrics[tg.metric] {
				t.Errorf("%s: two targets on %q", b.id, tg.metric)
			}
			metrics[tg.metric] = true
			if !report.HasLabel(b.id, tg.metric) {
				t.Errorf("%s: template.md.tmpl has no label for the target's metric %q", b.id, tg.metric)
			}
			if !slices.Contains([]string{"median", "min", "max", "p50", "p99", "ratio"}, tg.stat) || !slices.Contains([]string{"<=", "<", ">=", ">", "=="}, tg.op) {
				t.Errorf("%s %s: target %s %s is not one report.Target judges", b.id, tg.metric, tg.stat, tg.op)
			}
			if v := strconv.FormatFloat(tg.value, 'f', -1, 64); !strings.Contains(tg.text, v) {
				t.Errorf("%s %s: target text %q does not quote its value %s", b.id, tg.metric, tg.text, v)
			}
		}
	}
	for _, id := range []string{"B1", "B2", "B3", "B4", "B5", "B6", "B6b", "B7", "B8", "B9", "B10"} {
		if !ids[id] {
			t.Errorf("BENCHMARKS.md's %s is not in the registry", id)
		}
	}
}

// TestFailoverTarget: B1's target is G + 2 s, which its text quotes.
func TestFailoverTarget(t *testing.T) {
	tg := lookup("B1").targets[0]
	if tg.value != 5000 || failoverG != 3*time.Second {
		t.Errorf("B1's target is %v ms with G = %v; its text %q says 5000 ms with G = 3 s", tg.value, failoverG, tg.text)
	}
}

func TestParseOnly(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ", nil},
		{"B1", []string{"B1"}},
		{" b5, B1 ,,b9", []string{"B5", "B1", "B9"}},
		{"b6B,B6", []string{"B6b", "B6"}},
	}
	for _, tt := range tests {
		got, err := ParseOnly(tt.in)
		if err != nil || !cmp.Equal(tt.want, got) {
			t.Errorf("ParseOnly(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"B11", "B1,B6c", "failover", "B1;B2"} {
		_, err := ParseOnly(bad)
		if err == nil {
			t.Errorf("ParseOnly(%q) succeeded", bad)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "unknown benchmark") || !strings.Contains(msg, "B1, B2, B3, B4, B5, B6, B6b, B7, B8, B9, B10") {
			t.Errorf("ParseOnly(%q): error %q does not say the id is unknown and list the known ones", bad, msg)
		}
	}
}

func TestSelected(t *testing.T) {
	all, err := selected(nil)
	if err != nil || len(all) != len(registry) {
		t.Fatalf("selected(nil) = %d rows, %v; want all %d", len(all), err, len(registry))
	}
	some, err := selected([]string{"B5", "B1", "B5"})
	if err != nil || len(some) != 2 || some[0].id != "B1" || some[1].id != "B5" {
		t.Errorf("selected(B5, B1, B5) = %v, %v; want B1, B5 in the registry's order", some, err)
	}
	if _, err := selected([]string{"B1", "B11"}); err == nil || !strings.Contains(err.Error(), `"B11"`) {
		t.Errorf("selected(B1, B11): %v", err)
	}
}

func TestJudge(t *testing.T) {
	b := benchmark{id: "BX", title: "test", targets: []target{
		{"fast", "median", "<=", 2, "≤ 2 ms"},
		{"absent", "max", "<=", 0, "0"},
	}}
	rows, missing := b.judge([]report.Row{
		newRow("fast", "ms", []float64{1, 2, 3}),
		newRow("slow", "ms", []float64{5}),
		report.NotMeasured("", "", "broke"),
	})
	if rows[0].ID != "BX" || rows[0].Name != "test" || rows[2].ID != "BX" {
		t.Errorf("rows not stamped: %+v", rows)
	}
	if rows[0].Met == nil || !*rows[0].Met || rows[0].Target.Text != "≤ 2 ms" {
		t.Errorf("fast: target %+v, met %v", rows[0].Target, rows[0].Met)
	}
	if rows[1].Target != nil || rows[1].Met != nil || rows[2].Target != nil {
		t.Errorf("rows without a target were judged: %+v", rows[1:])
	}
	if diff := cmp.Diff([]string{"absent"}, missing); diff != "" {
		t.Errorf("missing targets (-want +got):\n%s", diff)
	}
}

// TestEveryRowRenders renders the rows of every benchmark as its run
// builds them: each has a label, each note renders from its facts, and
// every target finds its row.
func TestEveryRowRenders(t *testing.T) {
	samples := []float64{1, 2, 3}
	tp := throughput{opsPerSec: []float64{5000, 6000}, latency: samples}
	procs := []proc.Sample{
		{At: time.Unix(0, 0), RSSKB: 11 << 10, Threads: 8, FDs: 15},
		{At: time.Unix(10, 0), RSSKB: 11 << 10, Threads: 8, FDs: 15, CPUTicks: 1},
	}
	storm := stormTrial{changes: 1000, took: 10 * time.Second, elected: 180, deposed: 180, checks: goodChecks}
	failed := []finalChecks{
		{Agent: "flap/0", FakeErr: "cannot settle"},
		{Agent: "flap/0", FakeHolder: "flap/100", FakeTerm: 4, ReleaseErr: "not holder"},
		{Agent: "flap/0", FakeHolder: "flap/100", FakeTerm: 4, AgentErr: "timeout"},
		{Agent: "flap/0", FakeHolder: "flap/100", FakeTerm: 4, Holder: "flap/101", Term: 5},
	}
	var storms []stormTrial
	for _, c := range append(failed, goodChecks) {
		s := storm
		s.checks = c
		storms = append(storms, s)
	}
	scaled := []scaleTrial{scaleTestTrial(0, "node-1", "", 60, 70, 65)}
	scaled[0].verifyErr = errors.New("timeout")
	scaled[0].counts.expired.Add(2)
	scaled[0].counts.firstErr.Store("busy")
	scaled[0].watch.firstErr = "reset"
	etcd := etcdResult{keepAlive: tp, cas: tp, gateway: tp, version: "etcd Version: 3.7.3", client: "go.etcd.io/etcd/client/v3 v3.7.3"}
	byID := map[string][]report.Row{
		"B1": failoverRows(samples),
		"B2": stepDownRows(samples, samples),
		"B3": isLeaderRows(samples, samples, samples, samples),
		"B4": executorRows(samples, samples, samples, samples),
		"B5": append(throughputResult{spread: tp, manyUnits: tp, unbatched: tp, logRenewals: tp}.rows(1),
			throughputResult{spread: tp, onLeader: tp, forwarded: tp, unbatched: tp, logRenewals: tp}.rows(3)...),
		"B6": scaleRows(scaleSize{apps: 1, watchers: 3, window: time.Second}, scaled, 3),
		"B6b": statusRows(statusSize{apps: 3, units: 10, leaders: 2, samples: 4, workers: 2},
			registered{units: 10, took: 2 * time.Second},
			statusTrial{counts: &scaleCounts{}, notHeld: 1, verifyErr: errors.New("lease timeout"), readErrs: 1, firstErr: "status timeout", reads: 3, readS: 0.5, slowestAtS: 0.25},
			[]float64{1, 2, 30}),
		"B7": stormRows(storms),
		"B8": footprintRows(10*time.Second, procs, procs),
		"B9": slices.Concat(etcdFailoverRows("etcd Version: 3.7.3", samples, samples),
			etcd.rows(1, samples),
			etcd.rows(3, samples),
			// B9 without B5 in the pass: no ratio rows.
			etcd.rows(3, nil)),
		"B10": append(soakRows(soakTestFacts(nil)), soakRows(soakTestFacts([]string{"round 1, step: too slow", "two leaders"}))...),
	}
	var all []report.Row
	for _, b := range registry {
		rows, ok := byID[b.id]
		if !ok {
			t.Errorf("%s: no rows in this test; add them", b.id)
			continue
		}
		rows, missing := b.judge(rows)
		if len(missing) > 0 {
			t.Errorf("%s: no row for the targets on %v", b.id, missing)
		}
		all = append(all, rows...)
	}
	md := render(t, all)
	for _, want := range []string{
		"fake-holder check failed: cannot settle",
		"cannot release the lease: not holder",
		"agent-holder check failed: timeout",
		"agent-holder check failed: flap/101 took the lease",
		"released: flap/0 claimed term 1003 and committed leader=true for it",
		"The leases could not all be read back at the end of this trial (timeout)",
		"2 guarantees ran out in the pause before the trial",
		"10 units of 3 applications (3 to 4 units each)",
		"(first: status timeout); 1 took over 10 ms; the slowest started 0.250 s into the reads",
		"could not all be read back (lease timeout)",
		"(first: busy)",
		"(first: reset)",
		"The raft leader changed in trial 1 (node-1 → unknown)",
		"3 units, G = 3 s (claims of G+0.5 s renewed every 1.75 s)",
		"2 rounds of the churn of tests/churn",
		"4100 true, 0 of those for a term the lease recorder never saw",
		"1 found by the checker over the records",
		"first: round 1, step: too slow; two leaders.",
		"etcd Version: 3.7.3 built from go.etcd.io/etcd/server/v3, 1 node",
		"through go.etcd.io/etcd/client/v3 v3.7.3 (gRPC), one client shared by 64 goroutines",
		"Txn(If(ModRevision(key) == rev)).Then(Put(key, record))",
		"throughput, 1 node: uniter claim+extend (B5) vs etcd clientv3 CAS-renewed lease records",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("latest.md lacks %q:\n%s", want, md)
		}
	}
}

// soakTestFacts are B10's facts for a soak of two rounds that found the
// violations first (none if nil).
func soakTestFacts(first []string) soakFacts {
	f := soakFacts{Rounds: 2, WindowS: 180, StepViolations: len(first), First: first}
	f.fill(churn.Result{Report: churn.Report{Answers: 9000, True: 4100, Checked: 4100, Violations: min(len(first), 1)}, Terms: 30})
	return f
}
