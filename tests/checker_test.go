package tests

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// answer is one is-leader answer recorded by the journal charm.
type answer struct {
	Unit   string
	Leader bool
	Term   uint64
	NS     int64
	Hook   string
}

func readAnswers(t *testing.T, path string) []answer {
	t.Helper()
	var out []answer
	for _, fs := range readFields(t, path, 5) {
		term, err1 := strconv.ParseUint(fs[2], 10, 64)
		ns, err2 := strconv.ParseInt(fs[3], 10, 64)
		if err1 != nil || err2 != nil || (fs[1] != "True" && fs[1] != "False") {
			t.Fatalf("bad is-leader record %q", fs)
		}
		out = append(out, answer{fs[0], fs[1] == "True", term, ns, fs[4]})
	}
	return out
}

// run is one hook run: its unit, kind, and start and end (0: unfinished).
type hookRun struct {
	Unit, Hook string
	Start, End int64
}

// hookRuns pairs journal start lines with their end or fail lines.
func hookRuns(j []entry) []hookRun {
	open := map[int]int{}
	var runs []hookRun
	for _, e := range j {
		switch e.Event {
		case "start":
			open[e.PID] = len(runs)
			runs = append(runs, hookRun{Unit: e.Unit, Hook: e.Hook, Start: e.NS})
		case "end", "fail":
			if i, ok := open[e.PID]; ok {
				runs[i].End = e.NS
				delete(open, e.PID)
			}
		}
	}
	return runs
}

// checkLeadership proves the two properties of the leadership contract
// over a run's records (DESIGN.md §4.4 rule 3):
//  1. a true answer by one unit at t is never followed by a true answer by
//     another unit before t+G, unless the first unit's leader-deposed ran
//     to its end in between;
//  2. no unit answers true between the start of its leader-deposed and the
//     start of its next leader-elected.
func checkLeadership(answers []answer, runs []hookRun, g time.Duration) error {
	var errs []error
	for _, a := range answers {
		if !a.Leader {
			continue
		}
		for _, b := range answers {
			if !b.Leader || b.Unit == a.Unit || b.NS <= a.NS || b.NS >= a.NS+g.Nanoseconds() {
				continue
			}
			if !ranBetween(runs, a.Unit, "leader-deposed", a.NS, b.NS) {
				errs = append(errs, fmt.Errorf("%s answered true at %d and %s at %d, %v later, with no leader-deposed of %s ended between",
					a.Unit, a.NS, b.Unit, b.NS, time.Duration(b.NS-a.NS), a.Unit))
			}
		}
	}
	for _, d := range runs {
		if d.Hook != "leader-deposed" {
			continue
		}
		next := nextStart(runs, d.Unit, "leader-elected", d.Start)
		for _, a := range answers {
			if a.Unit == d.Unit && a.Leader && a.NS >= d.Start && a.NS < next {
				errs = append(errs, fmt.Errorf("%s answered true at %d (in %s), after its leader-deposed began at %d",
					a.Unit, a.NS, a.Hook, d.Start))
			}
		}
	}
	return errors.Join(errs...)
}

// ranBetween: a run of unit's hook ended within [from, to].
func ranBetween(runs []hookRun, unit, hook string, from, to int64) bool {
	for _, r := range runs {
		if r.Unit == unit && r.Hook == hook && r.End != 0 && r.End >= from && r.End <= to {
			return true
		}
	}
	return false
}

// nextStart is the start of unit's first hook run after t (max int64 if none).
func nextStart(runs []hookRun, unit, hook string, after int64) int64 {
	next := int64(1<<63 - 1)
	for _, r := range runs {
		if r.Unit == unit && r.Hook == hook && r.Start > after && r.Start < next {
			next = r.Start
		}
	}
	return next
}

// TestCheckerCatchesViolations proves the checker fails on the histories
// it must reject, so a green churn test means something.
func TestCheckerCatchesViolations(t *testing.T) {
	g := 3 * time.Second
	s := int64(time.Second)
	for _, tc := range []struct {
		name    string
		answers []answer
		runs    []hookRun
		bad     bool
	}{
		{name: "two leaders within G", bad: true,
			answers: []answer{{"a/0", true, 1, 10 * s, "x"}, {"a/1", true, 2, 11 * s, "x"}}},
		{name: "handover after deposed ended", bad: false,
			answers: []answer{{"a/0", true, 1, 10 * s, "x"}, {"a/1", true, 2, 11 * s, "x"}},
			runs:    []hookRun{{"a/0", "leader-deposed", 10*s + 1, 10*s + 2}}},
		{name: "deposed still running at the second true", bad: true,
			answers: []answer{{"a/0", true, 1, 10 * s, "x"}, {"a/1", true, 2, 11 * s, "x"}},
			runs:    []hookRun{{"a/0", "leader-deposed", 10*s + 1, 12 * s}}},
		{name: "second true after G", bad: false,
			answers: []answer{{"a/0", true, 1, 10 * s, "x"}, {"a/1", true, 2, 13*s + 1, "x"}}},
		{name: "true inside deposed", bad: true,
			answers: []answer{{"a/0", true, 1, 10*s + 5, "leader-deposed"}},
			runs:    []hookRun{{"a/0", "leader-deposed", 10 * s, 11 * s}}},
		{name: "true after deposed before elected", bad: true,
			answers: []answer{{"a/0", true, 1, 12 * s, "update-status"}},
			runs:    []hookRun{{"a/0", "leader-deposed", 10 * s, 11 * s}, {"a/0", "leader-elected", 13 * s, 14 * s}}},
		{name: "true after re-election", bad: false,
			answers: []answer{{"a/0", true, 3, 13*s + 5, "leader-elected"}},
			runs:    []hookRun{{"a/0", "leader-deposed", 10 * s, 11 * s}, {"a/0", "leader-elected", 13 * s, 14 * s}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkLeadership(tc.answers, tc.runs, g)
			if (err != nil) != tc.bad {
				t.Fatalf("checkLeadership = %v, want violation %v", err, tc.bad)
			}
		})
	}
}
