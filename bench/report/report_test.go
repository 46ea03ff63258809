package report_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/bench/report"
)

func TestTargetMet(t *testing.T) {
	row := report.NewRow("B1", "failover", "kill to leader-elected", "ms", []float64{4000, 5000, 6000}).
		WithPercentiles([]float64{4000, 5000, 6000})
	tests := []struct {
		target report.Target
		want   bool
	}{
		{report.Target{Stat: "median", Op: "<=", Value: 5000}, true},
		{report.Target{Stat: "median", Op: "<", Value: 5000}, false},
		{report.Target{Stat: "p99", Op: "<", Value: 6000}, false},
		{report.Target{Stat: "max", Op: ">=", Value: 6000}, true},
		{report.Target{Stat: "min", Op: ">", Value: 3999}, true},
	}
	for _, tt := range tests {
		got := row.WithTarget(tt.target)
		if got.Met == nil || *got.Met != tt.want {
			t.Errorf("%+v: met = %v, want %v", tt.target, got.Met, tt.want)
		}
	}
	if _, ok := (report.Target{Stat: "p50", Op: "<="}).Met(report.NewRow("B", "n", "m", "ms", []float64{1})); ok {
		t.Error("a p50 target was judged on a row without percentiles")
	}
	// A ratio target reads the same-run baseline's ratio, and is not
	// judged on a row without one.
	vs := report.NewRow("B9", "etcd", "ours", "ops/s", []float64{9000, 10000, 11000}).WithBaseline("etcd", 5000)
	for _, tt := range []struct {
		value float64
		want  bool
	}{{2, true}, {2.01, false}} {
		if got := vs.WithTarget(report.Target{Stat: "ratio", Op: ">=", Value: tt.value}); got.Met == nil || *got.Met != tt.want {
			t.Errorf("ratio 2 ≥ %v: met = %v, want %v", tt.value, got.Met, tt.want)
		}
	}
	if _, ok := (report.Target{Stat: "ratio", Op: ">=", Value: 2}).Met(row); ok {
		t.Error("a ratio target was judged on a row without a baseline")
	}
	if got := report.NewRow("B", "n", "m", "ms", nil).WithTarget(report.Target{Stat: "median", Op: "<=", Value: 1}); got.Met != nil {
		t.Error("a row without trials was judged")
	}
}

func TestBaselineRatio(t *testing.T) {
	row := report.NewRow("B3", "is-leader", "per call", "ms", []float64{2, 3, 4}).WithBaseline("/bin/true", 0.5)
	if row.Baseline.Ratio != 6 {
		t.Errorf("ratio = %v, want 6", row.Baseline.Ratio)
	}
	row = report.NewRow("B3", "is-leader", "per call", "ms", []float64{2}).WithBaseline("nothing", 0)
	if row.Baseline.Ratio != 0 || math.IsNaN(row.Baseline.Ratio) {
		t.Errorf("ratio over a zero baseline = %v, want 0 (JSON cannot carry NaN)", row.Baseline.Ratio)
	}
}

func TestWrite(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := report.Report{
		Machine: report.Machine{Cores: 2, MemTotalMB: 24000, GoVersion: "go1.26", Kernel: "6.1", DataDirFS: "ext4"},
		Quick:   true, Started: start, Finished: start.Add(90 * time.Second),
		Rows: []report.Row{
			report.NewRow("B1", "failover", "kill to leader-elected", "ms", []float64{4100, 3900, 4000}).
				WithTarget(report.Target{Stat: "median", Op: "<=", Value: 5000, Text: "p50 ≤ 5000 ms"}),
			report.NotMeasured("B9", "etcd side by side", "cannot build etcd"),
		},
	}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back report.Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("latest.json does not parse: %v", err)
	}
	if diff := cmp.Diff(r, back); diff != "" {
		t.Errorf("JSON round trip (-wrote +read):\n%s", diff)
	}
	md, err := os.ReadFile(filepath.Join(dir, "latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"quick (BENCH_QUICK=1) pass, took 1m30s",
		"| cores | 2 |",
		"| B1 | kill to leader-elected | ms | 3 | 4000 | 3900 | 4100 |  |  |  |  | p50 ≤ 5000 ms | **yes** |",
		"| B9 | etcd side by side: not measured |",
		"not measured: cannot build etcd",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("latest.md lacks %q:\n%s", want, md)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "latest.md.tmp")); err == nil {
		t.Error("a temporary file was left behind")
	}
}

func TestMemTotalKB(t *testing.T) {
	got, err := report.MemTotalKB("MemTotal:       24683748 kB\nMemFree:        23265580 kB\n")
	if err != nil || got != 24683748 {
		t.Errorf("MemTotalKB = %d, %v", got, err)
	}
	if _, err := report.MemTotalKB("MemFree: 1 kB\n"); err == nil {
		t.Error("no error without MemTotal")
	}
}

func TestNum(t *testing.T) {
	for x, want := range map[float64]string{0: "0", 1234.5: "1234", 12.34: "12.3", 1.234: "1.23", 0.1234: "0.123", 0.001234: "0.00123"} {
		if got := report.Num(x); got != want {
			t.Errorf("Num(%v) = %q, want %q", x, got, want)
		}
	}
}

// failoverFacts stand in for the bench package's facts of B1: a struct
// here, a map once read back from latest.json.
type failoverFacts struct {
	Units      int     `json:"units"`
	GuaranteeS float64 `json:"g_s"`
	RenewalS   float64 `json:"renewal_s"`
}

// TestMarkdownIsLatestJSON: latest.md says what latest.json holds, words
// from the template, figures from the rows and their facts.
func TestMarkdownIsLatestJSON(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := report.Report{
		Started: start, Finished: start.Add(time.Minute),
		Benchmarks: []report.Benchmark{{ID: "B1", Title: "failover after a crash", Measures: "kill → elected", Target: "p50 ≤ G + 2 s"}},
		Rows: []report.Row{
			report.NewRow("B1", "failover after a crash", "failover", "ms", []float64{3000, 3400}).
				WithFacts(failoverFacts{Units: 3, GuaranteeS: 3, RenewalS: 1.75}),
		},
		Notes: []string{"B1: no row for the target on x"},
	}
	md, err := r.Markdown()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| B1 | failover after a crash | kill → elected | p50 ≤ G + 2 s |",
		"| B1 | failover: SIGKILL leader agent → successor's leader-elected start | ms | 2 | 3200 |",
		"- **B1 failover: SIGKILL leader agent → successor's leader-elected start**: 3 units, G = 3 s (claims of G+0.5 s renewed every 1.75 s)",
		"## Run notes\n\n- B1: no row for the target on x\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("latest.md lacks %q:\n%s", want, md)
		}
	}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := report.RenderJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(filepath.Join(dir, "latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(md, fromJSON); diff != "" {
		t.Errorf("rendered from the report and from latest.json (-report +json):\n%s", diff)
	}
	if diff := cmp.Diff(md, string(written)); diff != "" {
		t.Errorf("latest.md as written (-rendered +written):\n%s", diff)
	}
}

// TestRenderFailureIsSaid: a note whose facts lack a key fails loudly,
// and latest.md is still whole, saying so in the note's place.
func TestRenderFailureIsSaid(t *testing.T) {
	r := report.Report{Rows: []report.Row{
		report.NewRow("B1", "failover after a crash", "failover", "ms", []float64{3000}).WithFacts(map[string]any{"units": 3}),
	}}
	md, err := r.Markdown()
	if err == nil || !strings.Contains(err.Error(), "g_s") {
		t.Errorf("error = %v, want one naming the missing fact g_s", err)
	}
	if !strings.Contains(md, "| B1 | failover: SIGKILL") || !strings.Contains(md, "note B1 failover: not rendered") {
		t.Errorf("latest.md does not say which note failed:\n%s", md)
	}
	dir := t.TempDir()
	if err := r.Write(dir); err == nil {
		t.Error("Write hid the template's failure")
	}
	if _, err := os.Stat(filepath.Join(dir, "latest.md")); err != nil {
		t.Errorf("latest.md not written: %v", err)
	}
}

func TestHasLabel(t *testing.T) {
	if !report.HasLabel("B5", "ops_3node") || report.HasLabel("B5", "ops_4node") || report.HasLabel("B10", "ops_3node") {
		t.Error("HasLabel does not follow the template's labels")
	}
}
