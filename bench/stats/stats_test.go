package stats_test

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/bench/stats"
)

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"one value", []float64{7}, 99, 7},
		{"p50 of ten is the fifth", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 50, 5},
		{"p99 of ten is the max", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99, 10},
		{"p100", []float64{1, 2, 3}, 100, 3},
		{"tiny p is the min", []float64{1, 2, 3}, 0.001, 1},
		{"p99 of 1..100", hundred, 99, 99},
		{"p50 of 1..100", hundred, 50, 50},
	}
	for _, tt := range tests {
		if got := stats.Percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: Percentile(%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
	if got := stats.Percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("Percentile of nothing = %v, want NaN", got)
	}
}

func TestSummarize(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 6}
	got := stats.Summarize(xs)
	want := stats.Summary{N: 6, Median: 3.5, Min: 1, Max: 6, Mean: 3.5, P50: 3, P99: 6}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Summarize (-want +got):\n%s", diff)
	}
	if xs[0] != 5 {
		t.Error("Summarize sorted its input in place")
	}
	if got := stats.Summarize(nil); got != (stats.Summary{}) {
		t.Errorf("Summarize(nil) = %+v", got)
	}
	if got := stats.Summarize([]float64{9, 1, 5}).Median; got != 5 {
		t.Errorf("odd median = %v", got)
	}
}

func TestMillisAndRatio(t *testing.T) {
	got := stats.Millis([]time.Duration{1500 * time.Microsecond, 2 * time.Second})
	if diff := cmp.Diff([]float64{1.5, 2000}, got); diff != "" {
		t.Errorf("Millis (-want +got):\n%s", diff)
	}
	if r := stats.Ratio(3, 2); r != 1.5 {
		t.Errorf("Ratio = %v", r)
	}
	if r := stats.Ratio(1, 0); !math.IsNaN(r) {
		t.Errorf("Ratio by zero = %v", r)
	}
}
