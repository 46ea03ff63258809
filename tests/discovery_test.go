package tests

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// TestControllerFailoverMovesNoLeadership: three controller nodes, three
// agents added with `uniter unit add` through a client config that names
// only the bootstrap node. Killing the raft leader runs no leadership
// hook anywhere and leaves holder and term as they were after 3×G; every
// agent.yaml lists all three nodes. Removing the dead node takes its
// address out of every agent.yaml within a minute.
func TestControllerFailoverMovesNoLeadership(t *testing.T) {
	const g = 3 * time.Second
	c := startCluster(t, 3)
	var units []*agentUnit
	for i := range 3 {
		u := c.addUnit(fmt.Sprintf("journal/%d", i), "journal", nil)
		u.start()
		units = append(units, u)
	}
	journal := func(u *agentUnit) []entry { return readJournal(t, u.path("charm", "journal.log")) }
	holder, term := c.waitElected(units)
	all := c.addresses()
	lists := func(u *agentUnit, addrs []string) bool {
		cfg, err := agent.ReadConfig(u.dir)
		return err == nil && sameSet(cfg.Controller.Addresses, addrs)
	}
	for _, u := range units {
		if !lists(u, all) {
			cfg, _ := agent.ReadConfig(u.dir)
			t.Fatalf("%s's agent.yaml lists %v after unit add, want every member %v", u.unit, cfg.Controller.Addresses, all)
		}
	}
	marks := map[string]int{}
	for _, u := range units {
		marks[u.unit] = len(journal(u))
	}

	dead := c.raftLeader()
	if dead < 0 {
		t.Fatal("no raft leader")
	}
	c.nodes[dead].p.stop(syscall.SIGKILL)
	killed := time.Now()
	testutil.WaitUntil(t, 30*time.Second, "a new raft leader", func() bool { i := c.raftLeader(); return i >= 0 && i != dead })
	for time.Since(killed) < 3*g {
		if h, tm := c.leader("journal"); h != "" && (h != holder || tm != term) {
			t.Fatalf("leadership moved from %s (term %d) to %s (term %d) after a controller failover", holder, term, h, tm)
		}
	}
	if h, tm := c.leader("journal"); h != holder || tm != term {
		t.Fatalf("after 3×G the lease is %s term %d, want %s term %d", h, tm, holder, term)
	}
	for _, u := range units {
		for _, e := range journal(u)[marks[u.unit]:] {
			if e.Hook == "leader-elected" || e.Hook == "leader-deposed" {
				t.Errorf("%s ran %s %s during the controller failover", u.unit, e.Hook, e.Event)
			}
		}
		if !lists(u, all) {
			t.Errorf("%s's agent.yaml does not list every member after the failover", u.unit)
		}
	}

	id := fmt.Sprintf("node-%d", dead)
	if res := c.run("controller", "remove-node", id); res.code != 0 {
		t.Fatalf("remove-node %s: exit %d: %s", id, res.code, res.stderr)
	}
	left := slices.DeleteFunc(slices.Clone(all), func(a string) bool { return a == c.nodes[dead].api })
	for _, u := range units {
		testutil.WaitUntil(t, time.Minute, u.unit+"'s agent.yaml to drop "+id, func() bool { return lists(u, left) })
	}
	if h, tm := c.leader("journal"); h != holder || tm != term {
		t.Errorf("after remove-node the lease is %s term %d, want %s term %d", h, tm, holder, term)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
