package bench

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/proc"
	"github.com/uniter-dev/uniter/bench/report"
)

func TestReadIsLeaderLoops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b3.out")
	data := "1 100.000000 102.500000 103.400000 True\n2 200.000000 203.000000 203.800000 True\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	leader, truth, err := readIsLeaderLoops(path)
	if err != nil {
		t.Fatal(err)
	}
	approx := cmpopts.EquateApprox(0, 1e-9)
	if diff := cmp.Diff([]float64{2.5, 3}, leader, approx); diff != "" {
		t.Errorf("is-leader per call (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]float64{0.9, 0.8}, truth, approx); diff != "" {
		t.Errorf("/bin/true per call (-want +got):\n%s", diff)
	}
	for name, bad := range map[string]string{
		"not leader": "1 1 2 3 False\n",
		"short":      "1 1 2 3\n",
		"not number": "1 x 2 3 True\n",
		"empty":      "",
	} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readIsLeaderLoops(path); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestIsLeaderRowsJudgeTheTarget(t *testing.T) {
	rows := judged(t, "B3", isLeaderRows([]float64{2.9, 3.0, 3.1}, []float64{0.8, 0.9, 1.0}, []float64{1.5, 1.6, 9}, []float64{0.5, 0.6, 0.7}))
	if len(rows) != 2 {
		t.Fatalf("got %d rows", len(rows))
	}
	if rows[0].Met == nil || *rows[0].Met {
		t.Error("a 3 ms loop met the 2 ms target")
	}
	if rows[1].Met == nil || !*rows[1].Met {
		t.Error("a 1.6 ms p50 missed the 2 ms target")
	}
	if got := rows[0].Baseline.Ratio; got < 3.33 || got > 3.34 {
		t.Errorf("loop ratio = %v, want 3.0/0.9", got)
	}
}

func TestParseScaleSize(t *testing.T) {
	got, err := parseScaleSize("10000/3000/1m", time.Second)
	want := scaleSize{apps: 10000, watchers: 3000, window: time.Minute, ramp: time.Second}
	if err != nil || got != want {
		t.Errorf("parseScaleSize = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "1/2", "a/2/1m", "1/2/x", "0/2/1m", "1/-1/1m", "1/2/0s"} {
		if _, err := parseScaleSize(bad, time.Second); err == nil {
			t.Errorf("parseScaleSize(%q) succeeded", bad)
		}
	}
}

func TestCPUParts(t *testing.T) {
	at := time.Unix(0, 0)
	var samples []proc.Sample
	for i := range 11 { // 10 s, 1 tick per second, then 5 ticks per second
		ticks := uint64(i)
		if i > 5 {
			ticks = 5 + uint64(i-5)*5
		}
		samples = append(samples, proc.Sample{At: at.Add(time.Duration(i) * time.Second), CPUTicks: ticks})
	}
	got := cpuParts(samples)
	if diff := cmp.Diff([]float64{1, 1, 3, 5, 5}, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("cpuParts (-want +got):\n%s", diff)
	}
	if got := cpuParts(samples[:1]); len(got) != 0 {
		t.Errorf("cpuParts of one sample = %v", got)
	}
}

func TestRotate(t *testing.T) {
	addrs := []string{"a", "b", "c"}
	for i, want := range [][]string{{"a", "b", "c"}, {"b", "c", "a"}, {"c", "a", "b"}, {"a", "b", "c"}} {
		if diff := cmp.Diff(want, rotate(addrs, i)); diff != "" {
			t.Errorf("rotate(%d) (-want +got):\n%s", i, diff)
		}
	}
	if addrs[0] != "a" {
		t.Error("rotate changed its input")
	}
}

func TestLeadershipLogCounts(t *testing.T) {
	dir := t.TempDir()
	logs := []string{
		`{"level":"info","message":"leadership gained"}`,
		`{"level":"info","message":"leadership lost"}`,
		`{"level":"warn","message":"leadership flapped"}`,
		`{"level":"info","message":"leadership gained"}`,
		`{"level":"info","message":"ran hook"}`,
	}
	if err := os.MkdirAll(filepath.Join(dir, "log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "log", "agent.log"), []byte(strings.Join(logs, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	u := &deploy.Unit{Dir: dir}
	got, err := leadershipLogCounts(u)
	if err != nil || got != (logCounts{Gained: 2, Lost: 1, Flapped: 1}) {
		t.Errorf("counts = %+v, %v", got, err)
	}
	if d := got.sub(logCounts{Gained: 1}); d != (logCounts{Gained: 1, Lost: 1, Flapped: 1}) {
		t.Errorf("sub = %+v", d)
	}
}

func TestThroughputRows(t *testing.T) {
	tp := throughput{opsPerSec: []float64{100, 200, 300}, latency: []float64{1, 2, 3}, errs: 2, firstErr: errors.New("busy")}
	rows := []report.Row{tp.opsRow("ops_3node", 3), tp.latencyRow("latency_3node", 3)}
	if rows[0].Median != 200 || rows[1].P99 == nil || *rows[1].P99 != 3 {
		t.Errorf("rows = %+v", rows)
	}
	md := render(t, judged(t, "B5", rows))
	for _, want := range []string{"| B5 | claim+extend, 64 clients, 3 nodes: ops/s | ops/s | 3 | 200 |", "2 failed ops (first: busy)."} {
		if !strings.Contains(md, want) {
			t.Errorf("latest.md lacks %q:\n%s", want, md)
		}
	}
}

// goodChecks are the final checks of a storm that went well.
var goodChecks = finalChecks{FakeHolder: "flap/100", FakeTerm: 1002, Agent: "flap/0", Holder: "flap/0", Term: 1003}

// TestStormRowsJudgeEveryTrial: one storm that ran more hooks than it
// drove changes, or that grew, fails B7 even if the others were fine.
func TestStormRowsJudgeEveryTrial(t *testing.T) {
	good := stormTrial{changes: 1000, took: 10 * time.Second, elected: 180, deposed: 180, checks: goodChecks}
	tests := []struct {
		name   string
		bad    func(*stormTrial)
		metric string // the row that must fail
	}{
		{"more hooks than changes", func(tr *stormTrial) { tr.changes, tr.elected = 300, 200 }, "hooks_over_changes"},
		{"threads grew", func(tr *stormTrial) { tr.mid.Threads, tr.after.Threads = 9, 12 }, "threads_growth"},
		{"RSS grew", func(tr *stormTrial) { tr.mid.RSSKB, tr.after.RSSKB = 10<<10, 14<<10 }, "rss_growth"},
		{"wrong final state", func(tr *stormTrial) { tr.checks.Holder = "flap/100" }, "final_state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := good
			tt.bad(&bad)
			for _, r := range judged(t, "B7", stormRows([]stormTrial{good, bad, good})) {
				if r.Met == nil {
					continue
				}
				if want := r.Metric != tt.metric; *r.Met != want {
					t.Errorf("%s: met = %v, want %v", r.Metric, *r.Met, want)
				}
				if r.Trials != 3 {
					t.Errorf("%s: %d trials, want 3", r.Metric, r.Trials)
				}
			}
		})
	}
}

func TestWatchDelta(t *testing.T) {
	at := time.Unix(1000, 0)
	before := []watchCounts{
		{At: at, Returns: 100, Busy: 10},
		{At: at.Add(100 * time.Millisecond), Returns: 50, Errs: 1, FirstErr: "old"},
	}
	after := []watchCounts{
		{At: at.Add(20 * time.Second), Returns: 2100, Busy: 30},
		{At: at.Add(10100 * time.Millisecond), Returns: 1050, Errs: 3, FirstErr: "old"},
	}
	got := watchDelta(before, after)
	want := watchRates{answers: 100 + 100, busy: 1, errs: 2, firstErr: "old"}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(watchRates{}), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("watchDelta (-want +got):\n%s", diff)
	}
	if got := watchDelta(after[:1], after[:1]); got != (watchRates{}) {
		t.Errorf("watchDelta over no time = %+v", got)
	}
}

func TestWatchCountsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleet.json")
	var c fleetCounts
	c.returns.Add(7)
	c.busy.Add(2)
	if err := c.write(path); err != nil {
		t.Fatal(err)
	}
	got, err := readCounts(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Returns != 7 || got.Busy != 2 || got.Errs != 0 || got.At.IsZero() {
		t.Errorf("counts = %+v", got)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

// scaleTestTrial is a trial with lost leases lost (refused), on three nodes.
func scaleTestTrial(lost int64, leader0, leader string, rss ...float64) scaleTrial {
	n := &scaleCounts{extendLatency: []float64{1, 2}}
	n.refused.Add(lost)
	t := scaleTrial{counts: n, leader0: leader0, leader: leader, watch: watchRates{answers: 500}}
	for i, r := range rss {
		t.nodes = append(t.nodes, scaleNode{id: fmt.Sprintf("node-%d", i+1), sampled: true, rss: r, cpu: r / 10, base: r - 10})
	}
	return t
}

func TestScaleRowsJudgeEveryTrial(t *testing.T) {
	size := scaleSize{apps: 1000, watchers: 3000, window: 20 * time.Second}
	clean := []scaleTrial{
		scaleTestTrial(0, "node-1", "node-1", 60, 70, 65),
		scaleTestTrial(0, "node-1", "node-1", 61, 72, 66),
		scaleTestTrial(0, "node-1", "node-1", 62, 71, 80),
	}
	rows := judged(t, "B6", scaleRows(size, clean, 3000))
	if len(rows) != 6 {
		t.Fatalf("got %d rows", len(rows))
	}
	// Each node grew by 10 MiB: 30 MiB over 3,000 watchers, 10.24 KiB each.
	if w := rows[2]; w.Metric != "rss_per_watcher" || w.Trials != 3 || math.Abs(w.Median-10.24) > 1e-9 || w.Met == nil || *w.Met {
		t.Errorf("RSS per watcher: metric %s, trials %d, median %v, met %v; want 3 trials of 10.24 KiB, over the 5 KiB target",
			w.Metric, w.Trials, w.Median, w.Met)
	}
	if rows[1].Met == nil || !*rows[1].Met {
		t.Errorf("largest node at 80 MiB: met %v, want the 250 MiB target met", rows[1].Met)
	}
	if rows[0].Trials != 3 || rows[0].Met == nil || !*rows[0].Met {
		t.Errorf("no lease lost in 3 trials: trials %d, met %v", rows[0].Trials, rows[0].Met)
	}
	if diff := cmp.Diff([]float64{70, 72, 80}, rows[1].Samples); diff != "" {
		t.Errorf("RSS per trial, largest node (-want +got):\n%s", diff)
	}
	if rows[4].Trials != 6 {
		t.Errorf("extend latency over %d extends, want every extend of every trial (6)", rows[3].Trials)
	}
	md := render(t, rows)
	for _, want := range []string{
		"leases lost per trial (1000 apps, 3000 agents' unit watches, 20 s)",
		"before the watchers started: 52.0, 61.0, 70.0 MiB",
		"was node-1 throughout",
		"trial 3: 62.0, 71.0, 80.0 MiB",
		"Watchers are capped by --max-blocking 3000.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("latest.md lacks %q:\n%s", want, md)
		}
	}

	lossy := []scaleTrial{clean[0], scaleTestTrial(1, "node-1", "node-2", 60, 70, 65), clean[2]}
	lossy[1].nodes[2].sampled = false
	rows = judged(t, "B6", scaleRows(size, lossy, 0))
	if rows[0].Median != 0 || rows[0].Max != 1 || rows[0].Met == nil || *rows[0].Met {
		t.Errorf("one lease lost in trial 2: median %v, max %v, met %v", rows[0].Median, rows[0].Max, rows[0].Met)
	}
	if rows[2].Metric != "rss_per_watcher" || rows[2].Trials != 2 {
		t.Errorf("RSS per watcher: %s over %d trials, want the 2 with every node read", rows[2].Metric, rows[2].Trials)
	}
	md = render(t, rows)
	for _, want := range []string{
		"in trial 2 (node-1 → node-2), between trials 2 and 3 (node-2 → node-1): the cluster held elections",
		"Trial 2: 0 claims, 0 extends (0/s); 0 failed claims and 0 failed extends; 1 refused",
		"trial 2: 60.0, 70.0, –",
		"the controller's default cap on blocking queries",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("latest.md lacks %q:\n%s", want, md)
		}
	}
	if scaleRows(size, nil, 0) != nil {
		t.Error("rows without a trial")
	}
}

func TestScaleTrialLost(t *testing.T) {
	tr := scaleTestTrial(1, "", "")
	tr.counts.lapsed.Add(1)
	tr.counts.expired.Add(1)
	if got := tr.lost(); got != 3 {
		t.Errorf("refused + lapsed + expired = %d, want 3", got)
	}
	tr.notHeld = 5
	if got := tr.lost(); got != 5 {
		t.Errorf("with 5 not held = %d, want 5", got)
	}
}
