package tests

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/testutil"
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
	runs := hookRuns(readJournal(t, journal))
	var ivs []hookRun
	for _, r := range runs {
		if r.End == 0 {
			t.Fatalf("unfinished hook run %+v", r)
		}
		ivs = append(ivs, r)
	}
	if len(ivs) < 8 {
		t.Fatalf("want at least 8 complete hook runs (4 per unit), got %d", len(ivs))
	}
	sort.Slice(ivs, func(a, b int) bool { return ivs[a].Start < ivs[b].Start })
	for i := 1; i < len(ivs); i++ {
		if ivs[i].Start < ivs[i-1].End {
			t.Fatalf("hooks overlap: %+v and %+v", ivs[i-1], ivs[i])
		}
	}
	// A hold is logged as the lock is released, just after the state file
	// says the hook committed: wait for the last lines.
	var data []byte
	holds := func(u *unitDir) int { return strings.Count(string(data), "unit="+u.unit+" ") }
	testutil.WaitUntil(t, 10*time.Second, "machine-lock.log to record 4 holds by each unit", func() bool {
		data, _ = os.ReadFile(filepath.Join(root, "machine-lock.log"))
		return holds(units[0]) >= 4 && holds(units[1]) >= 4
	})
}
