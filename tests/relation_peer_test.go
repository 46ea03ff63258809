package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/testutil"
)

// peerEntry is one line of the peer-python charm's peer.log.
type peerEntry struct {
	Hook      string            `json:"hook"`
	Unit      string            `json:"unit"`
	Lib       string            `json:"lib"`
	Remote    *string           `json:"remote"`
	Departing *string           `json:"departing"`
	Members   []string          `json:"members"`
	AppData   map[string]string `json:"app_data"`
	Wrote     map[string]string `json:"wrote"`
	After     map[string]string `json:"app_data_after"`
	Leader    bool              `json:"leader"`
	Term      string            `json:"term"`
	Error     string            `json:"error"`
}

func peerLog(t *testing.T, u *agentUnit) []peerEntry {
	t.Helper()
	data, err := os.ReadFile(u.path("charm", "peer.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	// A line being written may be read in part: only whole lines count.
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	var out []peerEntry
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var e peerEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("bad peer.log line in %s: %v", u.unit, err)
		}
		out = append(out, e)
	}
	return out
}

// appBagHistory is what a watch of a relation saw of one application's
// databag: each distinct version's values, in order.
type appBagHistory struct {
	mu       sync.Mutex
	versions []uint64
	values   []map[string]string
}

func (h *appBagHistory) snapshot() ([]uint64, []map[string]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]uint64(nil), h.versions...), append([]map[string]string(nil), h.values...)
}

// watchAppBag follows relation's databag of app with blocking queries
// until the test ends.
func watchAppBag(t *testing.T, c *cluster, relation, app string) *appBagHistory {
	t.Helper()
	h := &appBagHistory{}
	cl := c.client()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		var index uint64
		for ctx.Err() == nil {
			r, next, err := cl.WatchRelation(ctx, relation, index, 5*time.Second)
			if err != nil {
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			index = next
			bag, ok := r.AppData[app]
			h.mu.Lock()
			if ok && (len(h.versions) == 0 || h.versions[len(h.versions)-1] != bag.Version) {
				h.versions = append(h.versions, bag.Version)
				h.values = append(h.values, bag.Values)
			}
			h.mu.Unlock()
		}
	}()
	return h
}

// TestPeerRelationCounterSurvivesLeaderKill (issue 12, must show 1): three
// units of the ops-style peer charm, run by real agents (calling the tools
// as ops 3.x, ops 2.x and charmhelpers do, one library each), each see the
// other two join the peer relation; the leader keeps a counter in the peer
// application databag. After the leader's agent is SIGKILLed, the new
// leader's leader-elected reads the old counter and increments it, and
// every minion's -changed sees the new value (and shows it in its status).
// From the controller's databag history: the counter never goes back and
// no counter value is written by two terms.
func TestPeerRelationCounterSurvivesLeaderKill(t *testing.T) {
	c := startCluster(t, 1)
	waitProtocol4(t, c)
	history := watchAppBag(t, c, "0", "peer-python")
	units := map[string]*agentUnit{}
	names := []string{"peer-python/0", "peer-python/1", "peer-python/2"}
	for _, n := range names {
		u := c.addUnit(n, "peer-python", nil)
		u.start()
		units[n] = u
	}
	sawJoined := func(u *agentUnit, others []string) bool {
		joined := map[string]bool{}
		for _, e := range peerLog(t, u) {
			if e.Hook == "cluster-relation-joined" && e.Remote != nil {
				joined[*e.Remote] = true
			}
		}
		for _, o := range others {
			if !joined[o] {
				return false
			}
		}
		return true
	}
	others := func(self string) []string {
		var out []string
		for _, n := range names {
			if n != self {
				out = append(out, n)
			}
		}
		return out
	}
	for _, n := range names {
		testutil.WaitUntil(t, 90*time.Second, n+" to see the other two join", func() bool { return sawJoined(units[n], others(n)) })
	}
	leader1, term1 := waitPeerCounter(t, c, units, "1")
	minionsShow(t, c, units, names, leader1, "1")

	// SIGKILL the leader's agent: its lease runs out, another unit leads.
	// (A hook it was running outlives it, in its own process group, and
	// fails for want of the agent's socket: its log lines are left out.)
	units[leader1].p.stop(syscall.SIGKILL)
	leader2, term2 := waitPeerCounter(t, c, units, "2")
	if leader2 == leader1 || term2 <= term1 {
		t.Fatalf("after the kill: leader %s term %d, before %s term %d", leader2, term2, leader1, term1)
	}
	var elected *peerEntry
	for _, e := range peerLog(t, units[leader2]) {
		if e.Hook == "leader-elected" {
			e := e
			elected = &e
		}
	}
	if elected == nil || elected.AppData["counter"] != "1" || elected.Wrote["counter"] != "2" || elected.After["counter"] != "2" {
		t.Fatalf("%s's leader-elected: %+v, want it to read counter 1, write 2 and read its own write", leader2, elected)
	}
	var alive []string
	for _, n := range names {
		if n != leader1 {
			alive = append(alive, n)
		}
	}
	minionsShow(t, c, units, alive, leader2, "2")

	libs := map[string]bool{}
	for _, u := range units {
		for _, e := range peerLog(t, u) {
			libs[e.Lib] = true
			orphan := u.unit == leader1 && strings.Contains(e.Error, "agent.sock: connect: ")
			if e.Error != "" && !orphan {
				t.Errorf("%s: %s failed:\n%s", u.unit, e.Hook, e.Error)
			}
			if e.Hook == "cluster-relation-joined" && len(e.Members) == 0 {
				t.Errorf("%s: relation-list empty in -joined", u.unit)
			}
		}
	}
	if !libs["ops3"] || !libs["ops2"] || !libs["charmhelpers"] {
		t.Errorf("libraries exercised: %v, want ops3, ops2 and charmhelpers", libs)
	}
	// The controller's history: counters only grow, one term each.
	versions, values := history.snapshot()
	termOf := map[string]string{}
	last := 0
	for i, v := range values {
		if len(v) == 0 && last == 0 {
			continue // the empty bag before the first leader wrote
		}
		n, err := strconv.Atoi(v["counter"])
		if err != nil {
			t.Fatalf("version %d: counter %q", versions[i], v["counter"])
		}
		if n < last {
			t.Errorf("counter went back from %d to %d at version %d", last, n, versions[i])
		}
		last = n
		if prev, ok := termOf[v["counter"]]; ok && prev != v["term"] {
			t.Errorf("counter %s written by terms %s and %s", v["counter"], prev, v["term"])
		}
		termOf[v["counter"]] = v["term"]
	}
	if last != 2 || termOf["1"] != strconv.FormatUint(term1, 10) || termOf["2"] != strconv.FormatUint(term2, 10) {
		t.Errorf("databag history %v (versions %v), want counter 1 by term %d then 2 by term %d", values, versions, term1, term2)
	}
}

// waitPeerCounter waits until the peer charm's leader has run
// leader-elected writing counter want, and returns the lease's holder and
// term.
func waitPeerCounter(t *testing.T, c *cluster, units map[string]*agentUnit, want string) (string, uint64) {
	t.Helper()
	testutil.WaitUntil(t, 90*time.Second, "a leader writing counter "+want, func() bool {
		holder, _ := c.leader("peer-python")
		if holder == "" {
			return false
		}
		for _, e := range peerLog(t, units[holder]) {
			if e.Hook == "leader-elected" && e.Wrote["counter"] == want {
				return true
			}
		}
		return false
	})
	return c.leader("peer-python")
}

// minionsShow waits until every unit of names but the leader has run a
// -changed that saw counter want and shows it in its status.
func minionsShow(t *testing.T, c *cluster, units map[string]*agentUnit, names []string, leader, want string) {
	t.Helper()
	msg := "leader=" + leader + " counter=" + want
	for _, n := range names {
		if n == leader {
			continue
		}
		testutil.WaitUntil(t, 60*time.Second, n+" to show "+msg, func() bool {
			saw := false
			for _, e := range peerLog(t, units[n]) {
				saw = saw || (e.Hook == "cluster-relation-changed" && e.AppData["counter"] == want && !e.Leader)
			}
			return saw && c.unitStatus("peer-python", n).Workload.Message == msg
		})
	}
}
