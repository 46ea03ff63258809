package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/operation"
)

// handOverFixture is n units of the journal charm of application app on a
// one-node controller, sharing one journal and recording two is-leader
// answers per hook, with the error-state backoff starting at retry.
func handOverFixture(t *testing.T, c *cluster, app string, n int, retry time.Duration) *leaderFixture {
	t.Helper()
	f := &leaderFixture{t: t, c: c, journal: filepath.Join(c.root, app+".journal")}
	for i := range n {
		u := c.addUnit(fmt.Sprintf("%s/%d", app, i), "journal", func(cfg *agent.Config) {
			cfg.UpdateStatusInterval = agent.Duration(time.Minute)
			cfg.RetryInitial = agent.Duration(retry)
			cfg.StopTimeout = agent.Duration(10 * time.Second)
		})
		for name, content := range map[string]string{"journal.path": f.journal, "ask-leader": "2"} {
			if err := os.WriteFile(u.path("charm", name), []byte(content+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		f.units = append(f.units, u)
	}
	return f
}

// unitStatus is app's unit as `uniter status` shows it.
func (c *cluster) unitStatus(app, unit string) api.UnitStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.client().Status(ctx)
	if err != nil {
		return api.UnitStatus{}
	}
	return st.Applications[app].Units[unit]
}

// TestFailingDeposedBacksOffAndHandsOver: a leader whose leader-deposed
// fails twice, then succeeds, is asked to step down. Its lease is released
// after the first failure, so another unit leads at once, before the
// deposed unit's first retry; leader-deposed is retried on the error-state
// backoff (runs spaced by 2 s, then 4 s), never back to back; meanwhile
// the unit shows in error on leader-deposed, runs nothing else, and never
// answers is-leader true.
func TestFailingDeposedBacksOffAndHandsOver(t *testing.T) {
	const retry = 2 * time.Second
	c := startCluster(t, 1)
	f := handOverFixture(t, c, "journal", 3, retry)
	for _, u := range f.units {
		u.start()
	}
	old := f.waitLeader("", 0, 0)
	_, term := f.leader()
	if err := os.WriteFile(f.unit(old).path("charm", "fail-leader-deposed"), []byte("2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mark := len(f.entries())

	res := c.run("leadership", "revoke", "journal")
	if res.code != 0 {
		t.Fatalf("revoke: exit %d: %s", res.code, res.stderr)
	}
	next := f.waitLeader(old, term, mark)
	if want := fmt.Sprintf("leadership of journal moved from %s to %s (term ", old, next); !strings.HasPrefix(res.stdout, want) {
		t.Errorf("revoke said %q, want it to start with %q", res.stdout, want)
	}
	sawError := false // `uniter status` shows the unit in error on leader-deposed meanwhile
	testutil.WaitUntil(t, 60*time.Second, old+"'s leader-deposed to succeed", func() bool {
		us := c.unitStatus("journal", old)
		sawError = sawError || (us.Agent.Status == "error" && us.Agent.Message == `hook failed: "leader-deposed"`)
		return f.ended(old, "leader-deposed", mark) == 1
	})
	if !sawError {
		t.Errorf("uniter status never showed %s in error on leader-deposed", old)
	}
	testutil.WaitUntil(t, 30*time.Second, old+" to be idle", func() bool { return c.unitStatus("journal", old).Agent.Status == "idle" })

	var deposed []hookRun
	var electedStart int64
	for _, r := range hookRuns(f.entries()[mark:]) {
		switch {
		case r.Unit == old && r.Hook == "leader-deposed":
			deposed = append(deposed, r)
		case r.Unit == old && len(deposed) > 0 && len(deposed) < 3:
			t.Errorf("%s ran %s while its leader-deposed was failing", old, r.Hook)
		case r.Unit == next && r.Hook == "leader-elected" && electedStart == 0:
			electedStart = r.Start
		}
	}
	if len(deposed) != 3 {
		t.Fatalf("%s ran leader-deposed %d times, want 3 (two failures, then success): %+v", old, len(deposed), deposed)
	}
	for i, want := range []time.Duration{retry, 2 * retry} {
		gap := time.Duration(deposed[i+1].Start - deposed[i].End)
		t.Logf("leader-deposed retry %d started %v after the failure", i+1, gap)
		if gap < want {
			t.Errorf("leader-deposed retry %d started %v after the failure, want the backoff of %v", i+1, gap, want)
		}
	}
	// The successor did not wait for the lease to run out (G + 0.5 s and
	// the controller's slack), nor for leader-deposed to succeed.
	handover := time.Duration(electedStart - deposed[0].End)
	t.Logf("%s's leader-elected started %v after %s's first leader-deposed failed", next, handover, old)
	if electedStart == 0 || handover < 0 || handover > guarantee/2 {
		t.Errorf("%s's leader-elected started %v after %s's first leader-deposed failed; want well under G", next, handover, old)
	}
	if electedStart > deposed[1].Start {
		t.Errorf("%s's leader-elected started after %s's leader-deposed was retried", next, old)
	}
	for _, a := range readAnswers(t, f.journal+".leader") {
		if a.Unit == old && a.Leader && a.NS > deposed[0].Start {
			t.Errorf("%s answered is-leader true in %s after its step-down began", old, a.Hook)
		}
	}
	if err := checkLeadership(readAnswers(t, f.journal+".leader"), hookRuns(f.entries()), guarantee); err != nil {
		t.Fatalf("leadership contract broken:\n%v", err)
	}
}

// TestRevokeOfLeaderInErrorMovesLeadership: the leader is stuck in error
// on a failing leader-elected, so it never committed its leadership.
// `uniter leadership revoke` moves the lease to another unit at once (not
// after it runs out, and not back to the same unit) and says so; the old
// leader leaves error state, its leader-elected skipped as the lease is
// gone. An application with a single unit is told the lease comes back.
func TestRevokeOfLeaderInErrorMovesLeadership(t *testing.T) {
	c := startCluster(t, 1)
	f := handOverFixture(t, c, "journal", 3, 500*time.Millisecond)
	stuck := f.units[0]
	if err := os.WriteFile(stuck.path("charm", "fail-leader-elected"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stuck.start()
	testutil.WaitUntil(t, 60*time.Second, stuck.unit+" to lead, in error on leader-elected", func() bool {
		who, _ := f.leader()
		us := c.unitStatus("journal", stuck.unit)
		return who == stuck.unit && us.Agent.Status == "error" && us.Agent.Message == `hook failed: "leader-elected"`
	})
	_, term := f.leader()
	for _, u := range f.units[1:] {
		u.start()
	}
	for _, u := range f.units[1:] {
		testutil.WaitUntil(t, 60*time.Second, u.unit+" to start", func() bool { return f.ended(u.unit, "start", 0) == 1 })
	}
	if who, tm := f.leader(); who != stuck.unit || tm != term {
		t.Fatalf("lease held by %s in term %d before the revoke, want %s in term %d", who, tm, stuck.unit, term)
	}

	mark := len(f.entries())
	start := time.Now()
	res := c.run("leadership", "revoke", "journal")
	took := time.Since(start)
	if res.code != 0 {
		t.Fatalf("revoke: exit %d: %s", res.code, res.stderr)
	}
	moved := regexp.MustCompile(`^leadership of journal moved from journal/0 to (journal/[12]) \(term (\d+)\)\n$`).FindStringSubmatch(res.stdout)
	if moved == nil {
		t.Fatalf("revoke said %q, want that leadership moved from %s to another unit", res.stdout, stuck.unit)
	}
	after := len(f.entries()) // the lease has moved: a retry of leader-elected is skipped from here on
	t.Logf("revoke took %v: %s", took, strings.TrimSpace(res.stdout))
	if took > guarantee {
		t.Errorf("revoke took %v: the lease waited to run out", took)
	}
	next := f.waitLeader(stuck.unit, term, mark)
	if next != moved[1] {
		t.Errorf("%s leads, the CLI said %s", next, moved[1])
	}
	testutil.WaitUntil(t, 30*time.Second, stuck.unit+" to leave error state", func() bool {
		return c.unitStatus("journal", stuck.unit).Agent.Status == "idle"
	})
	if who, _ := f.leader(); who != next {
		t.Errorf("lease moved on to %s after the hand-over to %s", who, next)
	}
	for i, r := range hookRuns(f.entries()[mark:]) {
		if r.Unit == stuck.unit && (r.Hook == "leader-deposed" || (r.Hook == "leader-elected" && mark+i >= after)) {
			t.Errorf("%s ran %s after the revoke: it had nothing to depose, and its leader-elected is moot", stuck.unit, r.Hook)
		}
	}

	t.Run("single unit", func(t *testing.T) {
		solo := handOverFixture(t, c, "solo", 1, 500*time.Millisecond).units[0]
		solo.start()
		term := waitCommittedLeader(t, c, "solo", solo, 0)
		res := c.run("leadership", "revoke", "solo")
		want := "solo/0 released leadership of solo; it is the application's only alive unit, so it will take the lease back\n"
		if res.code != 0 || res.stdout != want {
			t.Fatalf("revoke of a single unit's leadership: exit %d, said %q (stderr %q), want %q", res.code, res.stdout, res.stderr, want)
		}
		waitCommittedLeader(t, c, "solo", solo, term)
	})
}

// waitCommittedLeader waits until u holds app's lease in a term after
// after and has committed its leader-elected for it; it returns the term.
func waitCommittedLeader(t *testing.T, c *cluster, app string, u *agentUnit, after uint64) uint64 {
	t.Helper()
	var term uint64
	testutil.WaitUntil(t, 60*time.Second, u.unit+" to lead "+app+" with leader-elected done", func() bool {
		var who string
		who, term = c.leader(app)
		if who != u.unit || term <= after {
			return false
		}
		st, _, err := operation.NewStateFile(agent.StatePath(u.dir)).Read()
		return err == nil && st.Leader && st.LeaderTerm == term && st.Op == nil
	})
	return term
}

// TestRevokeOfBusyLeaderMovesLeadership: the leader is held in a long hook
// when it is asked to step down, so it cannot run leader-deposed and
// release; its lease runs out instead, and then goes to another unit,
// never back to the busy one (protocol 3's hand-over), which the CLI
// reports. Once the hook ends, the old leader runs leader-deposed.
func TestRevokeOfBusyLeaderMovesLeadership(t *testing.T) {
	c := startCluster(t, 1)
	f := handOverFixture(t, c, "journal", 3, 500*time.Millisecond)
	for _, u := range f.units {
		u.start()
	}
	old := f.waitLeader("", 0, 0)
	_, term := f.leader()
	for _, u := range f.units {
		testutil.WaitUntil(t, 60*time.Second, u.unit+" to start", func() bool { return f.ended(u.unit, "start", 0) == 1 })
	}
	block := f.unit(old).path("charm", "block-config-changed")
	if err := os.WriteFile(block, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mark := len(f.entries())
	if res := c.run("config", "set", "journal", "message=busy"); res.code != 0 {
		t.Fatalf("config set: exit %d: %s", res.code, res.stderr)
	}
	testutil.WaitUntil(t, 30*time.Second, old+" to be held in config-changed", func() bool {
		for _, e := range f.entries()[mark:] {
			if e.Unit == old && e.Hook == "config-changed" && e.Event == "start" {
				return true
			}
		}
		return false
	})

	start := time.Now()
	res := c.run("leadership", "revoke", "journal", "--wait", "20s")
	took := time.Since(start)
	if res.code != 0 {
		t.Fatalf("revoke: exit %d: %s", res.code, res.stderr)
	}
	moved := regexp.MustCompile(`^leadership of journal moved from (\S+) to (journal/\d) \(term (\d+)\)\n$`).FindStringSubmatch(res.stdout)
	if moved == nil || moved[1] != old || moved[2] == old {
		t.Fatalf("revoke said %q, want that leadership moved from %s to another unit", res.stdout, old)
	}
	t.Logf("revoke of a busy leader took %v (the lease ran out): %s", took, strings.TrimSpace(res.stdout))
	next := f.waitLeader(old, term, mark)
	if next != moved[2] {
		t.Errorf("%s leads, the CLI said %s", next, moved[2])
	}
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	f.waitEnded(old, "leader-deposed", mark)
	testutil.WaitUntil(t, 30*time.Second, old+" to be idle", func() bool { return c.unitStatus("journal", old).Agent.Status == "idle" })
	if who, _ := f.leader(); who != next {
		t.Errorf("lease moved on to %s after the hand-over to %s", who, next)
	}
	for _, r := range hookRuns(f.entries()[mark:]) {
		if r.Unit == old && r.Hook == "leader-elected" {
			t.Errorf("%s took leadership back: it ran leader-elected after stepping down", old)
		}
	}
	if err := checkLeadership(readAnswers(t, f.journal+".leader"), hookRuns(f.entries()), guarantee); err != nil {
		t.Fatalf("leadership contract broken:\n%v", err)
	}
}
