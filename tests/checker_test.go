package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/tests/churn"
)

// answer is one is-leader answer recorded by the journal charm.
type answer = churn.Answer

func readAnswers(t *testing.T, path string) []answer {
	t.Helper()
	out, err := churn.ReadAnswers(path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// hookRun is one hook run: its unit, kind, and start and end (0: unfinished).
type hookRun = churn.Run

// hookRuns pairs journal start lines with their end or fail lines.
func hookRuns(j []entry) []hookRun {
	es := make([]churn.Entry, len(j))
	for i, e := range j {
		es[i] = churn.Entry{Hook: e.Hook, Unit: e.Unit, PID: e.PID, NS: e.NS, Event: e.Event}
	}
	return churn.Runs(es)
}

// TestCheckerCatchesViolations proves the checker (churn.Check) fails on
// the histories it must reject, each for the rule it breaks, so a green
// churn test means something.
func TestCheckerCatchesViolations(t *testing.T) {
	g := 3 * time.Second
	s := int64(time.Second)
	ms := int64(time.Millisecond)
	// at is a true (or false) answer decided at an instant: the old
	// records, without the time before the call.
	at := func(unit string, leader bool, term uint64, ns int64, hook string) answer {
		return answer{Unit: unit, Leader: leader, Term: term, NS: ns, Hook: hook, Before: ns}
	}
	// within is an answer decided somewhere within [before, after].
	within := func(unit string, leader bool, term uint64, before, after int64, hook string) answer {
		return answer{Unit: unit, Leader: leader, Term: term, NS: after, Hook: hook, Before: before}
	}
	run := func(unit, hook string, start, end int64) hookRun {
		return hookRun{Unit: unit, Hook: hook, Start: start, End: end}
	}
	// seen is the recorder's observation at ns of holder in term.
	seen := func(ns int64, index uint64, holder string, term uint64) churn.Observation {
		return churn.Observation{Sent: ns - 10*ms, At: ns, Index: index, Holder: holder, Term: term}
	}
	// longHook is a/0's update-status asking every 100 ms from 10 s to
	// 16 s, true until until, false after.
	longHook := func(until int64) []answer {
		var out []answer
		for ns := 10 * s; ns < 16*s; ns += 100 * ms {
			out = append(out, within("a/0", ns < until, 1, ns, ns+5*ms, "update-status"))
		}
		return out
	}
	movedAt14 := churn.History{seen(9*s, 10, "a/0", 1), seen(14*s, 20, "", 1), seen(14*s+50*ms, 21, "a/1", 2)}
	for _, tc := range []struct {
		name    string
		answers []answer
		runs    []hookRun
		hist    churn.History
		want    string // a violation naming this; "" for none
	}{
		{name: "two leaders within G", want: "answered true at",
			answers: []answer{at("a/0", true, 1, 10*s, "x"), at("a/1", true, 2, 11*s, "x")}},
		{name: "handover after deposed ended",
			answers: []answer{at("a/0", true, 1, 10*s, "x"), at("a/1", true, 2, 11*s, "x")},
			runs:    []hookRun{run("a/0", "leader-deposed", 10*s+1, 10*s+2)}},
		{name: "deposed still running at the second true", want: "no leader-deposed of the first ended between",
			answers: []answer{at("a/0", true, 1, 10*s, "x"), at("a/1", true, 2, 11*s, "x")},
			runs:    []hookRun{run("a/0", "leader-deposed", 10*s+1, 12*s)}},
		{name: "second true after G",
			answers: []answer{at("a/0", true, 1, 10*s, "x"), at("a/1", true, 2, 13*s+1, "x")}},
		{name: "second true maybe decided G later",
			answers: []answer{within("a/0", true, 1, 10*s, 10*s+5*ms, "x"), within("a/1", true, 2, 12*s+900*ms, 13*s+100*ms, "x")}},
		{name: "second true surely decided within G", want: "no leader-deposed of the first ended between",
			answers: []answer{within("a/0", true, 1, 10*s, 10*s+5*ms, "x"), within("a/1", true, 2, 12*s+900*ms, 12*s+990*ms, "x")}},
		{name: "equal timestamps", want: "answered true at 10000000000 and",
			answers: []answer{at("a/0", true, 1, 10*s, "x"), at("a/1", true, 2, 10*s, "x")}},
		{name: "equal timestamps, the other order", want: "answered true at 10000000000 and",
			answers: []answer{at("a/1", true, 2, 10*s, "x"), at("a/0", true, 1, 10*s, "x")}},
		{name: "equal timestamps, a deposed ended long before", want: "answered true at 10000000000 and",
			answers: []answer{at("a/0", true, 1, 10*s, "x"), at("a/1", true, 2, 10*s, "x")},
			runs:    []hookRun{run("a/0", "leader-deposed", 8*s, 9*s)}},
		{name: "true inside deposed", want: "after its leader-deposed began",
			answers: []answer{at("a/0", true, 1, 10*s+5, "leader-deposed")},
			runs:    []hookRun{run("a/0", "leader-deposed", 10*s, 11*s)}},
		{name: "true after deposed before elected", want: "after its leader-deposed began",
			answers: []answer{at("a/0", true, 1, 12*s, "update-status")},
			runs:    []hookRun{run("a/0", "leader-deposed", 10*s, 11*s), run("a/0", "leader-elected", 13*s, 14*s)}},
		{name: "true after re-election",
			answers: []answer{at("a/0", false, 1, 10*s+5, "leader-deposed"), at("a/0", true, 3, 13*s+5, "leader-elected")},
			runs:    []hookRun{run("a/0", "leader-deposed", 10*s, 11*s), run("a/0", "leader-elected", 13*s, 14*s)},
			hist:    churn.History{seen(9*s, 10, "a/0", 1), seen(10*s, 11, "", 1), seen(12*s, 12, "a/1", 2), seen(12*s+5*ms, 13, "", 2), seen(12*s+900*ms, 14, "a/0", 3)}},
		{name: "a wrong term: the controller gave it to another unit", want: "but the controller gave term 2 to a/0",
			answers: []answer{at("a/1", true, 2, 10*s, "update-status")},
			hist:    churn.History{seen(9*s, 10, "a/0", 2)}},
		{name: "a wrong term: an old one of the same unit", want: "after the controller's lease had moved on",
			answers: []answer{at("a/0", true, 1, 10*s, "update-status")},
			hist:    churn.History{seen(8*s, 10, "a/0", 1), seen(9*s, 11, "", 1), seen(9*s+100*ms, 12, "a/0", 2)}},
		{name: "the right term",
			answers: []answer{at("a/0", true, 2, 10*s, "update-status")},
			hist:    churn.History{seen(8*s, 10, "a/0", 1), seen(9*s, 11, "", 1), seen(9*s+100*ms, 12, "a/0", 2)}},
		{name: "one term, two units true", want: "two units true in one term",
			answers: []answer{at("a/0", true, 5, 10*s, "x"), at("a/1", true, 5, 20*s, "x")}},
		{name: "a true inside a long hook after the lease moved", want: "after the controller's lease had moved on",
			answers: longHook(16 * s), runs: []hookRun{run("a/0", "update-status", 10*s, 16*s)}, hist: movedAt14},
		{name: "a long hook true only while the lease is guaranteed for G",
			answers: longHook(11 * s), runs: []hookRun{run("a/0", "update-status", 10*s, 16*s)}, hist: movedAt14},
		{name: "a long hook true less than G before the lease moved", want: "a true answer must hold for G",
			answers: longHook(11*s + 200*ms), runs: []hookRun{run("a/0", "update-status", 10*s, 16*s)}, hist: movedAt14},
		{name: "a lease released less than G after a true, once leader-deposed ran",
			answers: longHook(11*s + 200*ms),
			runs:    []hookRun{run("a/0", "update-status", 10*s, 11*s+300*ms), run("a/0", "leader-deposed", 11*s+400*ms, 11*s+500*ms)},
			hist:    churn.History{seen(9*s, 10, "a/0", 1), seen(11*s+600*ms, 20, "", 1), seen(11*s+700*ms, 21, "a/1", 2)}},
		{name: "a lease that expired early (a paused raft leader)", want: "a true answer must hold for G",
			answers: []answer{within("a/0", true, 4, 10*s, 10*s+2*ms, "update-status")},
			hist:    churn.History{seen(9*s, 10, "a/0", 4), seen(12*s, 11, "", 4)}},
		{name: "a spurious leader-deposed, then leader-elected for the same term", want: "gave up term 7",
			answers: []answer{at("a/0", false, 7, 10*s+5, "leader-deposed"), at("a/0", true, 7, 11*s+5, "leader-elected")},
			runs:    []hookRun{run("a/0", "leader-deposed", 10*s, 10*s+10), run("a/0", "leader-elected", 11*s, 11*s+10)},
			hist:    churn.History{seen(9*s, 10, "a/0", 7)}},
		{name: "lost and regained as a new term",
			answers: []answer{at("a/0", false, 7, 10*s+5, "leader-deposed"), at("a/0", true, 8, 11*s+5, "leader-elected")},
			runs:    []hookRun{run("a/0", "leader-deposed", 10*s, 10*s+10), run("a/0", "leader-elected", 11*s, 11*s+10)},
			hist:    churn.History{seen(9*s, 10, "a/0", 7), seen(10*s, 11, "", 7), seen(10*s+100*ms, 12, "a/0", 8)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := churn.Check(tc.answers, tc.runs, tc.hist, g).Err()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check = %v, want no violation", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Check = %v, want a violation saying %q", err, tc.want)
			}
		})
	}
}

// TestCheckerCounts: the report counts the true answers it checked
// against the history, and those whose term the history never saw.
func TestCheckerCounts(t *testing.T) {
	s := int64(time.Second)
	answers := []answer{
		{Unit: "a/0", Leader: true, Term: 1, NS: 10 * s, Before: 10 * s},
		{Unit: "a/0", Leader: true, Term: 1, NS: 11 * s, Before: 11 * s},
		{Unit: "a/1", Leader: false, Term: 1, NS: 11 * s, Before: 11 * s},
		{Unit: "a/0", Leader: true, Term: 9, NS: 30 * s, Before: 30 * s},
	}
	hist := churn.History{{Sent: 8 * s, At: 9 * s, Index: 3, Holder: "a/0", Term: 1}}
	r := churn.Check(answers, nil, hist, 3*time.Second)
	if r.Answers != 4 || r.True != 3 || r.Checked != 2 || r.Unverified != 1 || r.Violations != 0 {
		t.Fatalf("report %+v: want 4 answers, 3 true, 2 checked, 1 unverified, no violation", r)
	}
}

// checkLeadership is churn.Check without a lease history (the rules that
// need one are skipped), for the scenario tests that do not record it.
func checkLeadership(answers []answer, runs []hookRun, g time.Duration) error {
	return churn.Check(answers, runs, nil, g).Err()
}
