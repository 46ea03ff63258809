package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/operation"
)

// guarantee is G in the leadership end-to-end tests.
const guarantee = 3 * time.Second

// leaderFixture is three units of the journal charm, each on its own
// "machine", on a 3-node controller, recording every hook and is-leader
// answer in one journal.
type leaderFixture struct {
	t       *testing.T
	c       *cluster
	units   []*agentUnit
	journal string
}

func newLeaderFixture(t *testing.T, nodes int) *leaderFixture {
	f := &leaderFixture{t: t, c: startCluster(t, nodes)}
	f.journal = filepath.Join(f.c.root, "journal.log")
	for i := range 3 {
		u := f.c.addUnit("journal/"+string(rune('0'+i)), "journal", func(cfg *agent.Config) {
			cfg.UpdateStatusInterval = agent.Duration(time.Second)
			cfg.RetryInitial = agent.Duration(200 * time.Millisecond)
			cfg.StopTimeout = agent.Duration(10 * time.Second)
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
	f.waitLeader("", 0, 0)
	return f
}

func (f *leaderFixture) entries() []entry { return readJournal(f.t, f.journal) }

func (f *leaderFixture) unit(name string) *agentUnit { return unitNamed(f.t, f.units, name) }

func (f *leaderFixture) leader() (string, uint64) { return f.c.leader("journal") }

// waitLeader waits until a unit other than not leads in a term after
// term, and its leader-elected hook has ended after journal position
// from; it returns the unit.
func (f *leaderFixture) waitLeader(not string, after uint64, from int) string {
	f.t.Helper()
	var who string
	testutil.WaitUntil(f.t, 60*time.Second, "a new leader with leader-elected done", func() bool {
		var term uint64
		who, term = f.leader()
		if who == "" || who == not || term <= after {
			return false
		}
		if f.ended(who, "leader-elected", from) == 0 {
			return false
		}
		// Committed, so that losing it now is a loss of a committed
		// leadership, which leader-deposed must follow.
		st, _, err := operation.NewStateFile(agent.StatePath(f.unit(who).dir)).Read()
		return err == nil && st.Leader && st.LeaderTerm == term && st.Op == nil
	})
	return who
}

// ended counts who's runs of hook that ended after journal position from.
func (f *leaderFixture) ended(who, hook string, from int) int {
	n := 0
	j := f.entries()
	for _, e := range j[min(from, len(j)):] {
		if e.Unit == who && e.Hook == hook && e.Event == "end" {
			n++
		}
	}
	return n
}

// waitEnded waits for who's hook to end after journal position from.
func (f *leaderFixture) waitEnded(who, hook string, from int) {
	f.t.Helper()
	testutil.WaitUntil(f.t, 60*time.Second, who+" to run "+hook, func() bool { return f.ended(who, hook, from) > 0 })
}

// leadershipHooksSince lists leadership hooks started after position from.
func (f *leaderFixture) leadershipHooksSince(from int) []entry {
	var out []entry
	j := f.entries()
	for _, e := range j[min(from, len(j)):] {
		if e.Event == "start" && strings.HasPrefix(e.Hook, "leader-") && e.Hook != "leader-settings-changed" {
			out = append(out, e)
		}
	}
	return out
}

// TestLeadershipChurn runs the churn script of the leadership issue and
// then proves, from every recorded is-leader answer and hook run, that no
// two units were ever leader at once and that leader-deposed really ran.
func TestLeadershipChurn(t *testing.T) {
	f := newLeaderFixture(t, 3)
	leader, term := f.leader()

	t.Run("SIGKILL of the leader", func(t *testing.T) {
		old := f.unit(leader)
		old.p.signal(syscall.SIGKILL)
		old.p.stop(syscall.SIGKILL)
		mark := len(f.entries())
		leader = f.waitLeader(leader, term, mark)
		_, term = f.leader()
		old.start() // the restarted old leader learns it lost: leader-deposed runs
		f.waitEnded(old.unit, "leader-deposed", mark)
	})

	t.Run("SIGSTOP of the leader past its lease", func(t *testing.T) {
		old := f.unit(leader)
		old.p.signal(syscall.SIGSTOP)
		mark := len(f.entries())
		leader = f.waitLeader(leader, term, mark)
		_, term = f.leader()
		old.p.signal(syscall.SIGCONT)
		f.waitEnded(old.unit, "leader-deposed", mark)
	})

	t.Run("SIGTERM and restart keep leadership", func(t *testing.T) {
		u := f.unit(leader)
		if err := u.p.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("agent did not stop cleanly: %v", err)
		}
		mark := len(f.entries())
		u.start()
		// Two update-status hooks of the restarted leader prove it is
		// back at work; no leadership hook may have run anywhere.
		testutil.WaitUntil(t, 60*time.Second, "the restarted leader to work", func() bool { return f.ended(u.unit, "update-status", mark) >= 2 })
		if hooks := f.leadershipHooksSince(mark); len(hooks) != 0 {
			t.Fatalf("leadership hooks ran after a restart within the lease: %+v", hooks)
		}
		if who, tm := f.leader(); who != leader || tm != term {
			t.Fatalf("leadership moved on restart: %s term %d, was %s term %d", who, tm, leader, term)
		}
	})

	t.Run("raft leader of the controller killed", func(t *testing.T) {
		i := f.c.raftLeader()
		if i < 0 {
			t.Fatal("no raft leader")
		}
		mark := len(f.entries())
		f.c.nodes[i].p.stop(syscall.SIGKILL)
		testutil.WaitUntil(t, 60*time.Second, "a new raft leader", func() bool { j := f.c.raftLeader(); return j >= 0 && j != i })
		u := f.unit(leader)
		testutil.WaitUntil(t, 60*time.Second, "hooks to go on", func() bool { return f.ended(u.unit, "update-status", mark) >= 1 })
		f.c.start(i)
		testutil.WaitUntil(t, 60*time.Second, "the old node back", func() bool { return len(f.c.nodesSeen()) == len(f.c.nodes) })
	})

	t.Run("step-down hands over without waiting for expiry", func(t *testing.T) {
		leader, term = f.leader()
		mark := len(f.entries())
		if res := f.c.run("leadership", "revoke", "journal"); res.code != 0 {
			t.Fatalf("revoke: exit %d: %s", res.code, res.stderr)
		}
		next := f.waitLeader(leader, term, mark)
		runs := hookRuns(f.entries()[mark:])
		var deposedEnd, electedStart int64
		for _, r := range runs {
			if r.Unit == leader && r.Hook == "leader-deposed" && r.End != 0 {
				deposedEnd = r.End
			}
			if r.Unit == next && r.Hook == "leader-elected" && electedStart == 0 {
				electedStart = r.Start
			}
		}
		if deposedEnd == 0 || electedStart == 0 {
			t.Fatalf("no leader-deposed on %s or leader-elected on %s: %+v", leader, next, runs)
		}
		if gap := time.Duration(electedStart - deposedEnd); gap < 0 || gap > guarantee/2 {
			t.Fatalf("successor's leader-elected started %v after the old leader's leader-deposed ended; want well under G", gap)
		}
		leader, term = f.leader()
	})

	t.Run("step-down of a pinned application is refused", func(t *testing.T) {
		if res := f.c.run("leadership", "pin", "journal", "--entity", "e2e", "--reason", "test"); res.code != 0 {
			t.Fatalf("pin: exit %d: %s", res.code, res.stderr)
		}
		res := f.c.run("leadership", "revoke", "journal")
		if res.code != 1 || !strings.Contains(res.stderr, "pinned") {
			t.Fatalf("revoke of a pinned application: exit %d, stderr %q; want exit 1 saying it is pinned", res.code, res.stderr)
		}
		if res := f.c.run("leadership", "unpin", "journal", "--entity", "e2e"); res.code != 0 {
			t.Fatalf("unpin: exit %d: %s", res.code, res.stderr)
		}
	})

	for _, u := range f.units {
		u.stop(syscall.SIGTERM)
	}
	answers := readAnswers(t, f.journal+".leader")
	if len(answers) < 20 {
		t.Fatalf("only %d is-leader answers recorded", len(answers))
	}
	trues := 0
	for _, a := range answers {
		if a.Leader {
			trues++
		}
	}
	if trues == 0 {
		t.Fatal("no unit ever answered is-leader true")
	}
	if err := checkLeadership(answers, hookRuns(f.entries()), guarantee); err != nil {
		t.Fatalf("leadership contract broken:\n%v", err)
	}
	// leader-deposed ran with is-leader false inside it, every time.
	for _, a := range answers {
		if a.Hook == "leader-deposed" && a.Leader {
			t.Fatalf("is-leader true inside leader-deposed: %+v", a)
		}
	}
}
