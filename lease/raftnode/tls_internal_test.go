package raftnode

import (
	"testing"
	"time"
)

// TestRefusalLogIsRateLimited: the first refusal is logged, the next ones
// within refusalLogEvery are counted, and the next warning says how many.
func TestRefusalLogIsRateLimited(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	r := refusalLog{now: func() time.Time { return now }}
	type step struct {
		advance     time.Duration
		wantLogged  bool
		wantSkipped int
	}
	for i, s := range []step{
		{0, true, 0},
		{time.Second, false, 0},
		{10 * time.Second, false, 0},
		{refusalLogEvery - 11*time.Second - time.Nanosecond, false, 0},
		{time.Nanosecond, true, 3},
		{refusalLogEvery, true, 0},
	} {
		now = now.Add(s.advance)
		skipped, ok := r.due()
		if ok != s.wantLogged || skipped != s.wantSkipped {
			t.Errorf("step %d: due() = %d, %v; want %d, %v", i, skipped, ok, s.wantSkipped, s.wantLogged)
		}
	}
}
