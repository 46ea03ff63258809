package tests

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/operation"
)

// TestRestartDuringStepDownHandsOverAtOnce: the leader's agent is stopped
// (SIGTERM) while its step-down is pending, before leader-deposed could
// run, and started again. The restarted agent runs leader-deposed and must
// then release the lease, so that the successor's leader-elected starts
// within a second of it (DESIGN.md §4.4 rule 6), not when the lease
// expires. G is long here, so that waiting for expiry cannot pass for it.
func TestRestartDuringStepDownHandsOverAtOnce(t *testing.T) {
	const g = 10 * time.Second
	f := &leaderFixture{t: t, c: startCluster(t, 1)}
	f.journal = filepath.Join(f.c.root, "journal.log")
	for i := range 2 {
		u := f.c.addUnit("journal/"+string(rune('0'+i)), "journal", func(cfg *agent.Config) {
			cfg.LeadershipGuarantee = agent.Duration(g)
			cfg.RetryInitial = agent.Duration(200 * time.Millisecond)
			// A stop waits this long for the machine lock the test holds.
			cfg.StopTimeout = agent.Duration(500 * time.Millisecond)
		})
		for name, content := range map[string]string{"journal.path": f.journal, "ask-leader": "2"} {
			if err := os.WriteFile(u.path("charm", name), []byte(content+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		f.units = append(f.units, u)
	}
	for _, u := range f.units {
		u.start()
	}
	leader := f.waitLeader("", 0, 0)
	_, term := f.leader()
	old := f.unit(leader)

	// Hold the leader's machine lock: no hook of its can start, so its
	// leader-deposed cannot run before the agent stops.
	lock, err := os.OpenFile(old.path("machine-lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if res := f.c.run("leadership", "revoke", "journal"); res.code != 0 {
		t.Fatalf("revoke: exit %d: %s", res.code, res.stderr)
	}
	if err := old.p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("agent did not stop cleanly: %v", err)
	}
	mark := len(f.entries())
	if n := f.ended(leader, "leader-deposed", 0); n != 0 {
		t.Fatalf("%s ran leader-deposed before it stopped", leader)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	old.start()

	// Any unit may lead the next term: an expired lease can go back to
	// the old leader, which is the failure this test is about.
	next := f.waitLeader("", term, mark)
	var deposedEnd, electedStart int64
	for _, r := range hookRuns(f.entries()[mark:]) {
		if r.Unit == leader && r.Hook == "leader-deposed" && r.End != 0 && deposedEnd == 0 {
			deposedEnd = r.End
		}
		if r.Unit == next && r.Hook == "leader-elected" && electedStart == 0 {
			electedStart = r.Start
		}
	}
	if deposedEnd == 0 || electedStart == 0 {
		t.Fatalf("no leader-deposed on the restarted %s or no leader-elected on %s: %+v", leader, next, hookRuns(f.entries()[mark:]))
	}
	gap := time.Duration(electedStart - deposedEnd)
	t.Logf("%s's leader-elected started %v after the restarted %s's leader-deposed ended", next, gap, leader)
	if next == leader {
		t.Fatalf("the lease went back to %s, whose leader-elected started %v after its leader-deposed ended: it was never released", leader, gap)
	}
	if gap < 0 || gap >= time.Second {
		t.Fatalf("successor's leader-elected started %v after the restarted leader's leader-deposed ended; want within a second", gap)
	}
	st, _, err := operation.NewStateFile(agent.StatePath(old.dir)).Read()
	if err != nil || st.Leader {
		t.Fatalf("restarted unit's state = %+v, %v; want no longer leader", st, err)
	}

	for _, u := range f.units {
		u.stop(syscall.SIGTERM)
	}
	if err := checkLeadership(readAnswers(t, f.journal+".leader"), hookRuns(f.entries()), g); err != nil {
		t.Fatalf("leadership contract broken:\n%v", err)
	}
}
