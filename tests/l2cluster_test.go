package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// l2Event is one line of the l2-cluster charm's events.log:
// `<monotonic-ns> <unit> <hook> <hook-term> <what> <uuid|-> <term|->`.
type l2Event struct {
	NS         int64
	Unit, Hook string
	HookTerm   uint64
	What, UUID string
	Term       uint64 // 0 for "-"
}

func (e l2Event) String() string {
	return fmt.Sprintf("%d %s %s(term %d) %s %s %d", e.NS, e.Unit, e.Hook, e.HookTerm, e.What, e.UUID, e.Term)
}

// l2Bootstrap is a unit's service/bootstrap.json.
type l2Bootstrap struct {
	UUID  string `json:"uuid"`
	Term  uint64 `json:"term"`
	Unit  string `json:"unit"`
	State string `json:"state"` // bootstrapping, clustered, torn-down
	PID   int    `json:"pid"`
}

// l2Joined is a unit's service/joined.json.
type l2Joined struct {
	UUID string `json:"uuid"`
	Term uint64 `json:"term"`
}

// l2Fixture is three units of testcharms/l2-cluster on a 1-node controller
// with G = 3 s, sharing one directory (the charm's shared-dir).
type l2Fixture struct {
	t      *testing.T
	c      *cluster
	units  []*agentUnit
	shared string
}

func newL2Fixture(t *testing.T, minClusterSize int) *l2Fixture {
	f := &l2Fixture{t: t, c: startCluster(t, 1)}
	f.shared = filepath.Join(f.c.root, "l2-shared")
	for i := range 3 {
		u := f.c.addUnit(fmt.Sprintf("l2-cluster/%d", i), "l2-cluster", func(cfg *agent.Config) {
			cfg.UpdateStatusInterval = agent.Duration(time.Second)
			cfg.RetryInitial = agent.Duration(200 * time.Millisecond)
			cfg.StopTimeout = agent.Duration(10 * time.Second)
		})
		f.units = append(f.units, u)
	}
	if res := f.c.run("config", "set", "l2-cluster", "shared-dir="+f.shared, "min-cluster-size="+strconv.Itoa(minClusterSize)); res.code != 0 {
		t.Fatalf("config set: exit %d: %s", res.code, res.stderr)
	}
	// Runs before the agents' own cleanups: stop them (their hooks start
	// daemons), then end the daemons the charm left running.
	t.Cleanup(func() {
		for _, u := range f.units {
			if u.p != nil {
				u.p.signal(syscall.SIGCONT)
			}
			u.stop(syscall.SIGTERM)
		}
		for _, u := range f.units {
			if b, ok := f.bootstrap(u); ok && daemonAlive(b) {
				syscall.Kill(b.PID, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			t.Logf("events.log:\n%s", tail(f.readFile("events.log"), 6000))
		}
	})
	for _, u := range f.units {
		u.start()
	}
	return f
}

func (f *l2Fixture) readFile(name string) string {
	b, _ := os.ReadFile(filepath.Join(f.shared, name))
	return string(b)
}

func (f *l2Fixture) unit(name string) *agentUnit { return unitNamed(f.t, f.units, name) }

func (f *l2Fixture) leader() (string, uint64) { return f.c.leader("l2-cluster") }

// settings returns the application's leader settings at the controller.
func (f *l2Fixture) settings() map[string]string {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := f.c.client().LeaderSettings(ctx, "l2-cluster")
	if err != nil {
		f.t.Fatal(err)
	}
	return s.Values
}

func readJSON(t *testing.T, path string, v any) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v: %q", path, err, b)
	}
	return true
}

func (f *l2Fixture) bootstrap(u *agentUnit) (l2Bootstrap, bool) {
	var b l2Bootstrap
	ok := readJSON(f.t, u.path("charm", "service", "bootstrap.json"), &b)
	return b, ok
}

func (f *l2Fixture) joined(u *agentUnit) (l2Joined, bool) {
	var j l2Joined
	ok := readJSON(f.t, u.path("charm", "service", "joined.json"), &j)
	return j, ok
}

// daemonAlive reports whether b's daemon process runs (not a zombie), by
// its pid and its name l2-daemon-<uuid>.
func daemonAlive(b l2Bootstrap) bool {
	if b.PID <= 0 {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(b.PID), "cmdline"))
	if err != nil || !strings.HasPrefix(string(cmdline), "l2-daemon-"+b.UUID+"\x00") {
		return false
	}
	return !isZombie(b.PID)
}

func (f *l2Fixture) events() []l2Event {
	f.t.Helper()
	var out []l2Event
	sc := bufio.NewScanner(strings.NewReader(f.readFile("events.log")))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 7 {
			f.t.Fatalf("bad events.log line %q", sc.Text())
		}
		ns, err1 := strconv.ParseInt(fs[0], 10, 64)
		hookTerm, err2 := strconv.ParseUint(fs[3], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			f.t.Fatalf("bad events.log line %q: %v", sc.Text(), err)
		}
		e := l2Event{NS: ns, Unit: fs[1], Hook: fs[2], HookTerm: hookTerm, What: fs[4], UUID: fs[5]}
		if fs[6] != "-" {
			if e.Term, err1 = strconv.ParseUint(fs[6], 10, 64); err1 != nil {
				f.t.Fatalf("bad events.log line %q: %v", sc.Text(), err1)
			}
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b l2Event) int { return int(a.NS - b.NS) })
	return out
}

// ended reports whether u's hook has ended with hook-term term.
func (f *l2Fixture) ended(unit, hook string, term uint64) bool {
	for _, e := range f.events() {
		if e.Unit == unit && e.Hook == hook && e.HookTerm == term && e.What == "hook-end" {
			return true
		}
	}
	return false
}

// waitBootstrap waits for a leader other than not, in a term after after,
// whose bootstrap (of that term) joiners have joined; it returns the
// leader and its bootstrap.
func (f *l2Fixture) waitBootstrap(not string, after uint64, joiners ...*agentUnit) (*agentUnit, l2Bootstrap) {
	f.t.Helper()
	var leader *agentUnit
	var b l2Bootstrap
	testutil.WaitUntil(f.t, 30*time.Second, "a leader's bootstrap, joined", func() bool {
		name, term := f.leader()
		if name == "" || name == not || term <= after {
			return false
		}
		leader = f.unit(name)
		var ok bool
		if b, ok = f.bootstrap(leader); !ok || b.Term != term {
			return false
		}
		for _, u := range joiners {
			if j, ok := f.joined(u); !ok || j.UUID != b.UUID || j.Term != b.Term {
				return false
			}
		}
		return true
	})
	return leader, b
}

func others(units []*agentUnit, not ...*agentUnit) []*agentUnit {
	var out []*agentUnit
	for _, u := range units {
		if !slices.Contains(not, u) {
			out = append(out, u)
		}
	}
	return out
}

// checkL2History replays events.log and checks the seed-000 invariants:
//   - once a unit's leader-deposed for term T has ended, no unclustered
//     bootstrap of that unit with a term <= T is still active (not torn
//     down), so two active bootstraps never both outlive the older one's
//     leader-deposed (a clustered one is kept on purpose: it is the
//     service, and no new bootstrap follows it);
//   - nobody bootstraps while a clustered bootstrap is active;
//   - a unit joins only an active bootstrap, never an older one while a
//     newer one is active, and the terms it joins never go down;
//   - is-leader is never True inside leader-deposed;
//   - nobody was ever offered an older bootstrap (no refusal).
//
// It returns the bootstraps still active at the end.
func checkL2History(events []l2Event) (active map[string]l2Event, errs []string) {
	active = map[string]l2Event{} // by uuid: its bootstrap event
	clustered := map[string]bool{}
	lastJoin := map[string]uint64{}
	for _, e := range events {
		switch {
		case e.What == "bootstrap":
			for uuid := range active {
				if clustered[uuid] {
					errs = append(errs, fmt.Sprintf("bootstrap while %s is clustered: %v", uuid, e))
				}
			}
			active[e.UUID] = e
		case e.What == "clustered":
			if _, ok := active[e.UUID]; !ok {
				errs = append(errs, fmt.Sprintf("a bootstrap not active clustered: %v", e))
			}
			clustered[e.UUID] = true
		case e.What == "teardown":
			if _, ok := active[e.UUID]; !ok {
				errs = append(errs, fmt.Sprintf("teardown of a bootstrap not active: %v", e))
			}
			delete(active, e.UUID)
		case e.What == "join":
			b, ok := active[e.UUID]
			if !ok {
				errs = append(errs, fmt.Sprintf("joined a bootstrap that is not active: %v", e))
			}
			for _, o := range active {
				if o.Term > b.Term {
					errs = append(errs, fmt.Sprintf("joined %s of term %d while %s of term %d was active: %v", e.UUID, b.Term, o.UUID, o.Term, e))
				}
			}
			if e.Term < lastJoin[e.Unit] {
				errs = append(errs, fmt.Sprintf("joined term %d after term %d: %v", e.Term, lastJoin[e.Unit], e))
			}
			lastJoin[e.Unit] = e.Term
		case e.What == "is-leader" && e.UUID != "False":
			errs = append(errs, fmt.Sprintf("is-leader %s in leader-deposed: %v", e.UUID, e))
		case e.What == "refuse":
			errs = append(errs, fmt.Sprintf("offered an older bootstrap: %v", e))
		case e.What == "hook-end" && e.Hook == "leader-deposed":
			for _, b := range active {
				if b.Unit == e.Unit && b.Term <= e.HookTerm && !clustered[b.UUID] {
					errs = append(errs, fmt.Sprintf("bootstrap %s of term %d still active after %s's leader-deposed of term %d", b.UUID, b.Term, e.Unit, e.HookTerm))
				}
			}
		}
	}
	return active, errs
}

// TestL2ClusterSplitBrain is seed 000 replayed against l2-cluster: the
// leader bootstraps, the minions join, and the leader freezes (SIGSTOP)
// before the cluster has formed (min-cluster-size 5 > 3 units) until its
// lease is gone. A new leader bootstraps with a higher term and the
// remaining minion moves to it; when the old leader wakes (SIGCONT), its
// leader-deposed tears its unfinished bootstrap down (daemon stopped) and
// it joins the new one. Two active bootstraps never both outlive the older
// one's leader-deposed, and every minion ends joined to the newest term.
func TestL2ClusterSplitBrain(t *testing.T) {
	f := newL2Fixture(t, 5)
	var first string
	testutil.WaitUntil(t, 30*time.Second, "a leader", func() bool { first, _ = f.leader(); return first != "" })
	old, b1 := f.waitBootstrap("", 0, others(f.units, f.unit(first))...)
	if b1.State != "bootstrapping" || b1.Unit != old.unit || !daemonAlive(b1) {
		t.Fatalf("first bootstrap %+v (daemon alive %v)", b1, daemonAlive(b1))
	}
	if s := f.settings(); s["bootstrap_uuid"] != b1.UUID || s["bootstrap_term"] != strconv.FormatUint(b1.Term, 10) || s["clustered_uuid"] != "" {
		t.Fatalf("leader settings %v after the first bootstrap %+v", s, b1)
	}

	old.p.signal(syscall.SIGSTOP)
	frozen := time.Now()
	survivor := others(f.units, old)
	var next *agentUnit
	var b2 l2Bootstrap
	testutil.WaitUntil(t, 30*time.Second, "a new leader's bootstrap", func() bool {
		name, term := f.leader()
		if name == "" || name == old.unit || term <= b1.Term {
			return false
		}
		var ok bool
		next = f.unit(name)
		b2, ok = f.bootstrap(next)
		return ok && b2.Term == term
	})
	third := others(survivor, next)[0]
	testutil.WaitUntil(t, 30*time.Second, third.unit+" to join the new bootstrap", func() bool {
		j, ok := f.joined(third)
		return ok && j.UUID == b2.UUID
	})
	t.Logf("leader %s (term %d) frozen; %s bootstrapped term %d after %v", old.unit, b1.Term, next.unit, b2.Term, time.Since(frozen).Round(time.Millisecond))

	// The window seed 000 fell into: the frozen leader's bootstrap is
	// still up (nothing can run on a frozen unit), but nobody follows it.
	if b, _ := f.bootstrap(old); b.State != "bootstrapping" || !daemonAlive(b) {
		t.Fatalf("frozen leader's bootstrap %+v changed while it was frozen", b)
	}
	if b2.State != "bootstrapping" || b2.Term <= b1.Term || b2.UUID == b1.UUID || !daemonAlive(b2) {
		t.Fatalf("new bootstrap %+v after %+v", b2, b1)
	}

	old.p.signal(syscall.SIGCONT)
	testutil.WaitUntil(t, 30*time.Second, old.unit+"'s leader-deposed of term "+strconv.FormatUint(b1.Term, 10), func() bool {
		return f.ended(old.unit, "leader-deposed", b1.Term)
	})
	if b, _ := f.bootstrap(old); b.State != "torn-down" || b.UUID != b1.UUID || daemonAlive(b) {
		t.Fatalf("after leader-deposed, the old bootstrap is %+v (daemon alive %v); want torn-down", b, daemonAlive(b))
	}
	for _, u := range others(f.units, next) {
		testutil.WaitUntil(t, 30*time.Second, u.unit+" to have joined the new bootstrap", func() bool {
			return slices.ContainsFunc(f.events(), func(e l2Event) bool {
				return e.Unit == u.unit && e.What == "join" && e.UUID == b2.UUID
			})
		})
	}

	if who, term := f.leader(); who != next.unit || term != b2.Term {
		t.Fatalf("leadership moved again: %s term %d", who, term)
	}
	for _, u := range others(f.units, next) {
		if j, _ := f.joined(u); j.UUID != b2.UUID || j.Term != b2.Term {
			t.Errorf("%s joined %+v, want %s of term %d", u.unit, j, b2.UUID, b2.Term)
		}
	}
	if b, _ := f.bootstrap(next); b.State != "bootstrapping" || !daemonAlive(b) {
		t.Errorf("new leader's bootstrap %+v (daemon alive %v)", b, daemonAlive(b))
	}
	if s := f.settings(); s["bootstrap_uuid"] != b2.UUID || s["bootstrap_term"] != strconv.FormatUint(b2.Term, 10) || s["bootstrap_unit"] != next.unit {
		t.Errorf("leader settings %v, want the new bootstrap", s)
	}
	members, _ := filepath.Glob(filepath.Join(f.shared, "members", "*", "*"))
	slices.Sort(members)
	var wantMembers []string
	for _, u := range others(f.units, next) {
		wantMembers = append(wantMembers, filepath.Join(f.shared, "members", b2.UUID, strings.ReplaceAll(u.unit, "/", "-")))
	}
	slices.Sort(wantMembers)
	if !slices.Equal(members, wantMembers) {
		t.Errorf("member files %q, want %q", members, wantMembers)
	}
	active, errs := checkL2History(f.events())
	for _, e := range errs {
		t.Error(e)
	}
	if len(active) != 1 || active[b2.UUID].Term != b2.Term {
		t.Errorf("active bootstraps at the end: %v; want only %s", active, b2.UUID)
	}
}

// TestL2ClusterFormedClusterSurvivesFailover is the other half of "careful
// not to debootstrap on every leader-deposed": once min-cluster-size units
// have joined, the bootstrap is clustered; a frozen leader's successor
// takes over without bootstrapping, and the old leader's leader-deposed
// keeps the cluster (daemon running) and stays a member.
func TestL2ClusterFormedClusterSurvivesFailover(t *testing.T) {
	f := newL2Fixture(t, 3)
	var first string
	testutil.WaitUntil(t, 30*time.Second, "a leader", func() bool { first, _ = f.leader(); return first != "" })
	old, b := f.waitBootstrap("", 0, others(f.units, f.unit(first))...)
	testutil.WaitUntil(t, 30*time.Second, "the bootstrap to cluster", func() bool {
		b, _ = f.bootstrap(old)
		return b.State == "clustered" && f.settings()["clustered_uuid"] == b.UUID
	})

	old.p.signal(syscall.SIGSTOP)
	var next string
	var term uint64
	testutil.WaitUntil(t, 30*time.Second, "a new leader", func() bool {
		next, term = f.leader()
		return next != "" && next != old.unit && term > b.Term && f.ended(next, "leader-elected", term)
	})
	old.p.signal(syscall.SIGCONT)
	testutil.WaitUntil(t, 30*time.Second, old.unit+"'s leader-deposed", func() bool {
		return f.ended(old.unit, "leader-deposed", b.Term)
	})
	if got, _ := f.bootstrap(old); got.State != "clustered" || !daemonAlive(got) {
		t.Fatalf("a clustered bootstrap after leader-deposed: %+v (daemon alive %v); want kept", got, daemonAlive(got))
	}
	if _, ok := f.bootstrap(f.unit(next)); ok {
		t.Errorf("the new leader %s bootstrapped again", next)
	}
	for _, u := range f.units {
		if u.unit == next {
			continue
		}
		if j, _ := f.joined(u); j.UUID != b.UUID {
			t.Errorf("%s joined %+v, want %s", u.unit, j, b.UUID)
		}
	}
	events := f.events()
	active, errs := checkL2History(events)
	for _, e := range errs {
		t.Error(e)
	}
	if len(active) != 1 || active[b.UUID].Term != b.Term {
		t.Errorf("active bootstraps at the end: %v; want only %s", active, b.UUID)
	}
	takeover := slices.ContainsFunc(events, func(e l2Event) bool {
		return e.Unit == next && e.What == "takeover" && e.UUID == b.UUID
	})
	keep := slices.ContainsFunc(events, func(e l2Event) bool {
		return e.Unit == old.unit && e.Hook == "leader-deposed" && e.What == "keep" && e.UUID == b.UUID
	})
	if !takeover || !keep {
		t.Errorf("takeover by %s %v, keep by %s %v", next, takeover, old.unit, keep)
	}
}
