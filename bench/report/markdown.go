package report

import (
	"fmt"
	"strconv"
	"strings"
)

// Markdown renders the report as bench/results/latest.md.
func (r Report) Markdown() string {
	var b strings.Builder
	mode := "full"
	if r.Quick {
		mode = "quick (BENCH_QUICK=1)"
	}
	fmt.Fprintf(&b, "# uniter benchmarks: latest run\n\n")
	fmt.Fprintf(&b, "Run %s, %s pass, took %s. Written by `make bench` (bench/cmd/bench); "+
		"BENCHMARKS.md at the repo root explains the figures.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), mode, r.Finished.Sub(r.Started).Round(1e9))
	r.Machine.markdown(&b)
	b.WriteString("\n## Results\n\n")
	b.WriteString("Median, min and max are over the trials (for per-call latencies, over the calls). " +
		"Ratios are measured in the same run: ours / baseline.\n\n")
	b.WriteString("| id | metric | unit | trials | median | min | max | p50 | p99 | baseline (median) | ratio | target | met |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|\n")
	for _, row := range r.Rows {
		b.WriteString(row.markdownLine())
	}
	notes := false
	for _, row := range r.Rows {
		if row.Note == "" && row.NotMeasured == "" {
			continue
		}
		if !notes {
			b.WriteString("\n## Notes\n\n")
			notes = true
		}
		text := row.Note
		if row.NotMeasured != "" {
			text = "not measured: " + row.NotMeasured
		}
		fmt.Fprintf(&b, "- **%s %s**: %s\n", row.ID, row.Metric, text)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Run notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

func (row Row) markdownLine() string {
	if row.NotMeasured != "" {
		return fmt.Sprintf("| %s | %s: not measured | | | | | | | | | | | |\n", row.ID, row.Name)
	}
	cells := []string{
		row.ID, row.Metric, row.Unit, strconv.Itoa(row.Trials),
		Num(row.Median), Num(row.Min), Num(row.Max), numPtr(row.P50), numPtr(row.P99), "", "", "", "",
	}
	if row.Baseline != nil {
		cells[9] = fmt.Sprintf("%s: %s", row.Baseline.Name, Num(row.Baseline.Median))
		cells[10] = Num(row.Baseline.Ratio) + "×"
	}
	if row.Target != nil {
		cells[11] = row.Target.Text
	}
	if row.Met != nil {
		cells[12] = "no"
		if *row.Met {
			cells[12] = "**yes**"
		}
	}
	return "| " + strings.Join(cells, " | ") + " |\n"
}

// Num formats a figure with about three significant digits, without an
// exponent: 0.0123, 1.23, 12.3, 1234.
func Num(x float64) string {
	ax := x
	if ax < 0 {
		ax = -ax
	}
	switch {
	case ax == 0:
		return "0"
	case ax >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case ax >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case ax >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	case ax >= 0.01:
		return strconv.FormatFloat(x, 'f', 3, 64)
	default:
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
}

func numPtr(x *float64) string {
	if x == nil {
		return ""
	}
	return Num(*x)
}
