// Package journal reads the journal the journal test charm writes (see
// testcharms/journal/README.md): one line per hook start and end,
//
//	<hook> <unit> <pid> <monotonic-ns> start|end|fail
//
// with CLOCK_MONOTONIC timestamps, which Now reads too, so the harness can
// time an event it caused against a hook that started in another process.
package journal

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Entry is one journal line.
type Entry struct {
	Hook  string
	Unit  string
	PID   int
	NS    int64 // CLOCK_MONOTONIC, ns
	Event string
}

// Run is one hook run: its start line and, once it ended, its end (or
// fail) line.
type Run struct {
	Hook, Unit string
	PID        int
	Start, End int64 // ns; End is 0 while the hook runs
	Failed     bool
}

// Duration is the run's time from start to end line.
func (r Run) Duration() time.Duration { return time.Duration(r.End - r.Start) }

// Now is CLOCK_MONOTONIC in ns: the clock of the journal's timestamps.
// (Go's time.Now has a monotonic reading, but not one that can be
// compared with another process's.)
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("cannot read CLOCK_MONOTONIC: %v", err))
	}
	return ts.Nano()
}

// Parse parses journal text. A last line without its newline is still
// being written and is left out; any other malformed line is an error.
func Parse(data []byte) ([]Entry, error) {
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var out []Entry
	for n, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		e, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("cannot parse journal line %d: %w", n+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseLine(line string) (Entry, error) {
	f := strings.Fields(line)
	if len(f) != 5 {
		return Entry{}, fmt.Errorf("%q: want 5 fields", line)
	}
	pid, err1 := strconv.Atoi(f[2])
	ns, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil {
		return Entry{}, fmt.Errorf("%q: bad pid or timestamp", line)
	}
	switch f[4] {
	case "start", "end", "fail":
	default:
		return Entry{}, fmt.Errorf("%q: unknown event %q", line, f[4])
	}
	return Entry{Hook: f[0], Unit: f[1], PID: pid, NS: ns, Event: f[4]}, nil
}

// Read reads and parses the journal at path; a missing journal is empty.
func Read(path string) ([]Entry, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read journal: %w", err)
	}
	return Parse(data)
}

// Runs pairs start lines with their end lines (by unit and pid), in order
// of start.
func Runs(entries []Entry) []Run {
	var runs []Run
	open := map[string]int{} // unit/pid → index in runs
	for _, e := range entries {
		key := e.Unit + "/" + strconv.Itoa(e.PID)
		if e.Event == "start" {
			open[key] = len(runs)
			runs = append(runs, Run{Hook: e.Hook, Unit: e.Unit, PID: e.PID, Start: e.NS})
			continue
		}
		if i, ok := open[key]; ok {
			runs[i].End, runs[i].Failed = e.NS, e.Event == "fail"
			delete(open, key)
		}
	}
	return runs
}

// Running reports whether any run has not ended.
func Running(runs []Run) bool {
	for _, r := range runs {
		if r.End == 0 {
			return true
		}
	}
	return false
}

// First returns the first run that satisfies ok.
func First(runs []Run, ok func(Run) bool) (Run, bool) {
	for _, r := range runs {
		if ok(r) {
			return r, true
		}
	}
	return Run{}, false
}

// Count counts the runs that satisfy ok.
func Count(runs []Run, ok func(Run) bool) int {
	n := 0
	for _, r := range runs {
		if ok(r) {
			n++
		}
	}
	return n
}

// WaitFor polls the journal at path until some run satisfies ok, ctx ends
// or timeout passes.
func WaitFor(ctx context.Context, path string, timeout time.Duration, ok func(Run) bool) (Run, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		entries, err := Read(path)
		if err != nil {
			return Run{}, err
		}
		if r, found := First(Runs(entries), ok); found {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return Run{}, fmt.Errorf("cannot find the awaited hook in the journal within %v: %w", timeout, context.Cause(ctx))
		case <-tick.C:
		}
	}
}
