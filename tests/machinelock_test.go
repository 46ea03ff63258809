package tests

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestTwoAgentsNeverRunHooksAtOnce runs two agents on one machine lock with
// one shared journal: no two hook intervals overlap, and machine-lock.log
// records holds by both units.
func TestTwoAgentsNeverRunHooksAtOnce(t *testing.T) {
	root := t.TempDir()
	lock := filepath.Join(root, "machine-lock")
	journal := filepath.Join(root, "journal.log")
	var units []*unitDir
	for _, name := range []string{"journal/0", "journal/1"} {
		u := newUnit(t, root, name, "journal", lock)
		if err := os.WriteFile(u.path("charm", "journal.path"), []byte(journal+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		units = append(units, u)
	}
	for _, u := range units {
		u.start()
	}
	for _, u := range units {
		u.waitState("installed and started", started)
	}
	j := readJournal(t, journal)
	type interval struct {
		hook, unit string
		from, to   int64
	}
	open := map[int]entry{}
	var ivs []interval
	for _, e := range j {
		switch e.Event {
		case "start":
			open[e.PID] = e
		case "end", "fail":
			s, ok := open[e.PID]
			if !ok {
				t.Fatalf("end without start: %+v", e)
			}
			delete(open, e.PID)
			ivs = append(ivs, interval{e.Hook, e.Unit, s.NS, e.NS})
		}
	}
	if len(open) != 0 || len(ivs) < 8 {
		t.Fatalf("want at least 8 complete hook runs (4 per unit), got %d and %d unfinished:\n%v", len(ivs), len(open), j)
	}
	sort.Slice(ivs, func(a, b int) bool { return ivs[a].from < ivs[b].from })
	for i := 1; i < len(ivs); i++ {
		if ivs[i].from < ivs[i-1].to {
			t.Fatalf("hooks overlap: %+v and %+v", ivs[i-1], ivs[i])
		}
	}
	data, err := os.ReadFile(filepath.Join(root, "machine-lock.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		if n := strings.Count(string(data), "unit="+u.unit+" "); n < 4 {
			t.Fatalf("machine-lock.log has %d holds by %s, want at least 4:\n%s", n, u.unit, data)
		}
	}
}
