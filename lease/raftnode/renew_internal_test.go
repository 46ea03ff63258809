package raftnode

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/lease"
)

// TestRenewalsTable: a renewal is recorded only if its lease survives
// every advance proposed so far (expiry + slack >= horizon); take moves
// the horizon and empties the table; a failed write-back's renewals come
// back, merged with newer ones of the same term and dropped for a later
// term; two renewals of one lease keep the longer duration.
func TestRenewalsTable(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const slack = 150 * time.Millisecond
	r := func(app string, term uint64, d time.Duration) lease.Renewal {
		return lease.Renewal{App: app, Unit: app + "/0", Term: term, Duration: d}
	}
	var tab renewals
	tab.reset(t0)
	if !tab.add(r("a", 1, time.Second), t0, slack) {
		t.Fatal("a lease ending at the horizon refused")
	}
	if !tab.add(r("a", 1, 500*time.Millisecond), t0, slack) {
		t.Fatal("a second renewal refused")
	}
	got := tab.take(t0.Add(time.Second))
	if diff := cmp.Diff([]lease.Renewal{r("a", 1, time.Second)}, got); diff != "" {
		t.Errorf("taken (-want +got):\n%s", diff)
	}
	if tab.len() != 0 {
		t.Errorf("%d renewals left after take", tab.len())
	}
	// An advance to t0+1s is proposed: a lease that ends before it,
	// slack included, may be released by it.
	if tab.add(r("b", 1, time.Second), t0.Add(time.Second-slack-time.Nanosecond), slack) {
		t.Error("a lease an advance in flight may release was renewed from memory")
	}
	if !tab.add(r("b", 1, time.Second), t0.Add(time.Second-slack), slack) {
		t.Error("a lease that outlives the advance in flight was refused")
	}
	// The write-back failed: the renewals come back.
	tab.add(r("a", 2, 200*time.Millisecond), t0.Add(time.Minute), slack)
	tab.putBack([]lease.Renewal{r("a", 1, time.Second), r("b", 1, 3*time.Second), r("c", 1, time.Second)})
	got = tab.take(t0.Add(2 * time.Second))
	want := []lease.Renewal{r("a", 2, 200*time.Millisecond), r("b", 1, 3*time.Second), r("c", 1, time.Second)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after put back (-want +got):\n%s", diff)
	}
	// The horizon never moves back.
	tab.take(t0)
	if tab.add(r("d", 1, time.Second), t0.Add(time.Second), slack) {
		t.Error("the horizon moved back")
	}
}
