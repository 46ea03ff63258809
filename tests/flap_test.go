package tests

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/operation"
)

// soloFixture is one real agent of the journal charm on a 1-node
// controller, plus units registered without agents that the test drives
// through the API to move the lease under the agent's feet.
type soloFixture struct {
	t       *testing.T
	c       *cluster
	u       *agentUnit
	journal string
}

func newSoloFixture(t *testing.T) *soloFixture {
	f := &soloFixture{t: t, c: startCluster(t, 1)}
	f.u = f.c.addUnit("journal/0", "journal", func(cfg *agent.Config) {
		cfg.UpdateStatusInterval = agent.Duration(time.Second)
		cfg.StopTimeout = agent.Duration(10 * time.Second)
	})
	f.journal = f.u.path("charm", "journal.log")
	if err := os.WriteFile(f.u.path("charm", "ask-leader"), []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.u.start()
	testutil.WaitUntil(t, 60*time.Second, "journal/0 to lead and start", func() bool {
		st := f.state()
		return st.Leader && st.Started && st.Op == nil
	})
	return f
}

func (f *soloFixture) state() operation.State {
	st, _, err := operation.NewStateFile(agent.StatePath(f.u.dir)).Read()
	if err != nil && !errors.Is(err, operation.ErrNoState) {
		f.t.Fatal(err)
	}
	return st
}

func (f *soloFixture) entries() []entry { return readJournal(f.t, f.journal) }

// ghost registers a unit with no agent and returns a client acting as it.
func (f *soloFixture) ghost(unit string) *client.Client {
	f.t.Helper()
	a, err1 := agent.NewContextID()
	b, err2 := agent.NewContextID()
	if err := errors.Join(err1, err2); err != nil {
		f.t.Fatal(err)
	}
	token := a + b
	ctx := context.Background()
	if err := f.c.client().RegisterUnit(ctx, unit, token, nil); err != nil {
		f.t.Fatal(err)
	}
	return f.c.clientAs(token)
}

// lease returns the application's lease.
func (f *soloFixture) lease() (holder string, term uint64) {
	l, _, err := f.c.client().WatchLease(context.Background(), "journal", 0, 0)
	if err != nil {
		return "", 0
	}
	return l.Holder, l.Term
}

// TestLostAndRegainedRunsDeposedThenElected freezes the leader's agent,
// lets another unit take and release the lease meanwhile, and resumes it:
// it must depose the old term, then be elected for the new one.
func TestLostAndRegainedRunsDeposedThenElected(t *testing.T) {
	f := newSoloFixture(t)
	ghost := f.ghost("journal/9")
	_, term := f.lease()
	f.u.p.signal(syscall.SIGSTOP)
	ctx := context.Background()
	testutil.WaitUntil(t, 30*time.Second, "the ghost to take the expired lease", func() bool {
		_, err := ghost.Claim(ctx, "journal", "journal/9", time.Minute)
		return err == nil
	})
	if err := ghost.Revoke(ctx, "journal", "journal/9", term+1); err != nil {
		t.Fatal(err)
	}
	mark := len(f.entries())
	f.u.p.signal(syscall.SIGCONT)
	testutil.WaitUntil(t, 30*time.Second, "journal/0 to lead again", func() bool {
		st := f.state()
		return st.Leader && st.LeaderTerm == term+2 && st.Op == nil
	})
	var hooks []string
	for _, e := range f.entries()[mark:] {
		if e.Event == "start" {
			hooks = append(hooks, e.Hook)
		}
	}
	if len(hooks) < 2 || hooks[0] != "leader-deposed" || !contains(hooks, "leader-elected") ||
		index(hooks, "leader-deposed") > index(hooks, "leader-elected") {
		t.Fatalf("hooks after resuming = %v; want leader-deposed first, then leader-elected", hooks)
	}
	// leader-deposed ran with is-leader false, for the term given up.
	for _, a := range readAnswers(t, f.journal+".leader") {
		if a.Hook == "leader-deposed" && (a.Leader || a.Term != term) {
			t.Fatalf("inside leader-deposed: %+v; want False for term %d", a, term)
		}
	}
}

func contains(xs []string, x string) bool { return index(xs, x) >= 0 }

func index(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// TestDeposedLeaderCannotWriteSettings: a leader whose agent is frozen
// loses its lease; the hook it was running then calls leader-set, and the
// controller refuses it by term with Juju's error text.
func TestDeposedLeaderCannotWriteSettings(t *testing.T) {
	f := newSoloFixture(t)
	ghost := f.ghost("journal/9")
	block := f.u.path("charm", "block-update-status")
	if err := os.WriteFile(f.u.path("charm", "leader-set-update-status"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(block, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mark := len(f.entries())
	testutil.WaitUntil(t, 30*time.Second, "update-status to be blocked", func() bool {
		return count(f.entries()[mark:], "update-status", "start") > 0
	})
	f.u.p.signal(syscall.SIGSTOP)
	testutil.WaitUntil(t, 30*time.Second, "another unit to take the lease", func() bool {
		_, err := ghost.Claim(context.Background(), "journal", "journal/9", time.Minute)
		return err == nil
	})
	f.u.p.signal(syscall.SIGCONT)
	os.Remove(block) // the hook goes on and calls leader-set
	rcPath := f.u.path("charm", "leader-set.rc")
	testutil.WaitUntil(t, 30*time.Second, "the hook's leader-set", func() bool { return exists(rcPath) })
	rc, _ := os.ReadFile(rcPath)
	stderr, _ := os.ReadFile(f.u.path("charm", "leader-set.err"))
	want := "ERROR cannot write leadership settings: cannot write settings: not the leader\n"
	if strings.TrimSpace(string(rc)) != "1" || string(stderr) != want {
		t.Fatalf("leader-set by the deposed leader: exit %q, stderr %q; want 1 and %q", rc, stderr, want)
	}
	ls, err := f.c.client().LeaderSettings(context.Background(), "journal")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ls.Values["fenced"]; ok {
		t.Fatalf("the deposed leader's write landed: %v", ls.Values)
	}
}

// procStatus reads a field (VmRSS in kB, Threads) of /proc/PID/status.
func procStatus(t *testing.T, pid int, field string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestFlapStormIsBounded moves the lease a thousand times in about ten
// seconds between units with no agents, while a real agent competes for
// it: no deadlock, a bounded number of hooks, flat threads and memory,
// and a right final state.
func TestFlapStormIsBounded(t *testing.T) {
	f := newSoloFixture(t)
	ghosts := []*client.Client{f.ghost("journal/8"), f.ghost("journal/9")}
	names := []string{"journal/8", "journal/9"}
	pid := f.u.p.cmd.Process.Pid
	// The agent steps down first, so the ghosts can start flapping. The
	// revoke does not wait for a successor: the ghosts only claim below, and
	// by then the agent would have taken its lease back.
	if res := f.c.run("leadership", "revoke", "journal", "--wait", "0"); res.code != 0 {
		t.Fatalf("revoke: %s", res.stderr)
	}
	testutil.WaitUntil(t, 30*time.Second, "journal/0 to step down", func() bool { return !f.state().Leader })
	threads0, rss0 := procStatus(t, pid, "Threads"), procStatus(t, pid, "VmRSS")
	mark := len(f.entries())
	ctx := context.Background()
	var changes atomic.Int64
	// A thousand changes, as fast as this machine goes (about 10 s on an
	// idle 2-core one); a loaded CI machine gets 30 s.
	stop := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for i := range ghosts {
		wg.Add(1)
		go func() { // each ghost claims and releases as fast as it can
			defer wg.Done()
			for changes.Load() < 1000 && time.Now().Before(stop) {
				l, err := ghosts[i].Claim(ctx, "journal", names[i], time.Minute)
				if err != nil {
					continue // another unit holds it
				}
				changes.Add(1)
				if err := ghosts[i].Revoke(ctx, "journal", names[i], l.Term); err == nil {
					changes.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if changes.Load() < 300 {
		t.Fatalf("only %d lease changes in 30 s: no storm to speak of", changes.Load())
	}
	// The storm is over: the agent must end up leading, with state to match.
	testutil.WaitUntil(t, 30*time.Second, "journal/0 to lead after the storm", func() bool {
		holder, term := f.lease()
		st := f.state()
		return holder == "journal/0" && st.Leader && st.LeaderTerm == term && st.Op == nil
	})
	hooks := 0
	for _, e := range f.entries()[mark:] {
		if e.Event == "start" && strings.HasPrefix(e.Hook, "leader-") {
			hooks++
		}
	}
	t.Logf("%d lease changes, %d leadership hooks", changes.Load(), hooks)
	if int64(hooks) > changes.Load() {
		t.Fatalf("%d leadership hooks for %d changes", hooks, changes.Load())
	}
	threads1, rss1 := procStatus(t, pid, "Threads"), procStatus(t, pid, "VmRSS")
	if threads1 > threads0+4 || rss1 > rss0+20*1024 {
		t.Fatalf("agent grew during the storm: threads %d → %d, RSS %d → %d kB", threads0, threads1, rss0, rss1)
	}
	if holder, _ := f.lease(); holder != "journal/0" {
		t.Fatalf("final holder %q", holder)
	}
}

// TestMinionRestartRunsSettingsChangedOnlyOnChange restarts a minion twice:
// with nothing changed while it was down it runs no leader-settings-changed;
// after the leader wrote new settings meanwhile it runs exactly one.
func TestMinionRestartRunsSettingsChangedOnlyOnChange(t *testing.T) {
	c := startCluster(t, 1)
	var units []*agentUnit
	for _, name := range []string{"journal/0", "journal/1"} {
		u := c.addUnit(name, "journal", func(cfg *agent.Config) { cfg.UpdateStatusInterval = agent.Duration(time.Second) })
		u.start()
		units = append(units, u)
	}
	stateOf := func(u *agentUnit) operation.State {
		st, _, _ := operation.NewStateFile(agent.StatePath(u.dir)).Read()
		return st
	}
	testutil.WaitUntil(t, 60*time.Second, "both units started, one leading", func() bool {
		a, b := stateOf(units[0]), stateOf(units[1])
		return a.Started && b.Started && a.Leader != b.Leader && a.Op == nil && b.Op == nil
	})
	leader, minion := units[0], units[1]
	if stateOf(minion).Leader {
		leader, minion = minion, leader
	}
	journal := func() []entry { return readJournal(t, minion.path("charm", "journal.log")) }
	restart := func() int {
		t.Helper()
		if err := minion.p.stop(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		mark := len(journal())
		return mark
	}
	waitWorking := func(mark int) {
		t.Helper()
		testutil.WaitUntil(t, 30*time.Second, "the minion back at work", func() bool {
			return count(journal()[mark:], "update-status", "end") >= 2
		})
	}

	mark := restart()
	minion.start()
	waitWorking(mark)
	if n := count(journal()[mark:], "leader-settings-changed", "start"); n != 0 {
		t.Fatalf("leader-settings-changed ran %d times after a restart with no change", n)
	}

	mark = restart()
	knob := leader.path("charm", "leader-set-update-status")
	if err := os.WriteFile(knob, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, 30*time.Second, "the leader to write settings", func() bool {
		ls, err := c.client().LeaderSettings(context.Background(), "journal")
		return err == nil && ls.Values["fenced"] != ""
	})
	os.Remove(knob)
	minion.start()
	waitWorking(mark)
	if n := count(journal()[mark:], "leader-settings-changed", "end"); n != 1 {
		t.Fatalf("leader-settings-changed ran %d times after a change while down, want 1", n)
	}
}
