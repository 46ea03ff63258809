package churn

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Now is CLOCK_MONOTONIC in nanoseconds: the clock of the journal charm's
// timestamps (its perl reads the same clock), so the harness can place an
// event it saw against a hook that ran in another process.
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("cannot read CLOCK_MONOTONIC: %v", err))
	}
	return ts.Nano()
}

// Answer is one is-leader answer the journal charm recorded in
// <journal>.leader.
type Answer struct {
	Unit   string
	Leader bool
	// Term is the hook's UNITER_LEADERSHIP_TERM.
	Term uint64
	// NS is CLOCK_MONOTONIC just after the call returned.
	NS   int64
	Hook string
	// Before is CLOCK_MONOTONIC just before the call (NS for a record
	// without it): the answer was decided within [Before, NS].
	Before int64
}

// Entry is one journal line: `<hook> <unit> <pid> <monotonic-ns> <event>`.
type Entry struct {
	Hook, Unit string
	PID        int
	NS         int64
	Event      string // start, end or fail
}

// Run is one hook run: its start and its end or fail line (End 0: not
// ended, or never will: an agent killed under it).
type Run struct {
	Unit, Hook string
	Start, End int64
	Failed     bool
}

// ReadAnswers parses the is-leader records at path (none if it does not
// exist yet). A last line without its newline is still being written and
// is left out.
func ReadAnswers(path string) ([]Answer, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	out := make([]Answer, 0, len(lines))
	for _, line := range lines {
		a, err := parseAnswer(line)
		if err != nil {
			return nil, fmt.Errorf("cannot read is-leader records: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}

func parseAnswer(line string) (Answer, error) {
	fs := strings.Fields(line)
	if len(fs) != 5 && len(fs) != 6 {
		return Answer{}, fmt.Errorf("%q: want 5 or 6 fields", line)
	}
	term, err1 := strconv.ParseUint(fs[2], 10, 64)
	ns, err2 := strconv.ParseInt(fs[3], 10, 64)
	if err1 != nil || err2 != nil || (fs[1] != "True" && fs[1] != "False") {
		return Answer{}, fmt.Errorf("%q: bad answer, term or timestamp", line)
	}
	a := Answer{Unit: fs[0], Leader: fs[1] == "True", Term: term, NS: ns, Hook: fs[4], Before: ns}
	if len(fs) == 6 {
		before, err := strconv.ParseInt(fs[5], 10, 64)
		if err != nil || before > ns {
			return Answer{}, fmt.Errorf("%q: bad timestamp before the call", line)
		}
		a.Before = before
	}
	return a, nil
}

// ReadJournal parses the journal at path (empty if it does not exist).
func ReadJournal(path string) ([]Entry, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(lines))
	for _, line := range lines {
		fs := strings.Fields(line)
		if len(fs) != 5 {
			return nil, fmt.Errorf("cannot read journal: %q: want 5 fields", line)
		}
		pid, err1 := strconv.Atoi(fs[2])
		ns, err2 := strconv.ParseInt(fs[3], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("cannot read journal: %q: bad pid or timestamp", line)
		}
		out = append(out, Entry{Hook: fs[0], Unit: fs[1], PID: pid, NS: ns, Event: fs[4]})
	}
	return out, nil
}

// Runs pairs start lines with their end or fail lines (by unit and pid),
// in order of start.
func Runs(entries []Entry) []Run {
	type key struct {
		unit string
		pid  int
	}
	open := map[key]int{}
	var runs []Run
	for _, e := range entries {
		k := key{e.Unit, e.PID}
		switch e.Event {
		case "start":
			open[k] = len(runs)
			runs = append(runs, Run{Unit: e.Unit, Hook: e.Hook, Start: e.NS})
		case "end", "fail":
			if i, ok := open[k]; ok {
				runs[i].End, runs[i].Failed = e.NS, e.Event == "fail"
				delete(open, k)
			}
		}
	}
	return runs
}

// readLines returns the complete lines of path, without empty ones.
func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var out []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if line != "" {
			out = append(out, line)
		}
	}
	return out, nil
}
