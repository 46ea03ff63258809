package raftnode_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/lease"
	"github.com/uniter-dev/uniter/lease/raftnode"

	"github.com/uniter-dev/uniter/internal/clock/clocktest"
)

// versionCluster is three protocol-1 nodes whose clock is a fake that
// never moves: after the bootstrap's genesis no timer of theirs ever
// fires, so whatever happens is driven by the FSM's change notification.
func versionCluster(t *testing.T) (*testCluster, *clocktest.Clock) {
	t.Helper()
	clk := clocktest.New(base)
	c := &testCluster{t: t}
	for i := range 3 {
		id := "node-" + string(rune('1'+i))
		cfg := nodeConfig(t, id, t.TempDir(), i == 0)
		cfg.Clock, cfg.ProtoMax = clk, 1
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, openNode(t, cfg))
	}
	leader := waitLeader(t, c.nodes[0])
	for _, n := range c.nodes[1:] {
		// As the join endpoint does: record the member, then add it.
		announce(t, c, n)
		if err := leader.AddVoter(context.Background(), n.ID(), n.RaftAddr()); err != nil {
			t.Fatalf("add voter %s: %v", n.ID(), err)
		}
	}
	c.caughtUp()
	return c, clk
}

// announce records n's range through whichever node leads, as the
// announce endpoint does, and returns the result.
func announce(t *testing.T, c *testCluster, n *raftnode.Node) lease.Result {
	t.Helper()
	lo, hi := n.ProtocolRange()
	return c.client().must(t, lease.RecordMember{ID: n.ID(), ProtoMin: lo, ProtoMax: hi, RaftAddr: n.RaftAddr()})
}

// upgrade restarts node i on its data with protocol range 1..hi.
func upgrade(t *testing.T, c *testCluster, i int, hi uint64) *raftnode.Node {
	t.Helper()
	if c.nodes[i] != nil {
		c.kill(c.nodes[i])
	}
	cfg := c.cfgs[i]
	cfg.Bootstrap, cfg.ProtoMax, cfg.Logger = false, hi, newTestLogger(t)
	c.nodes[i] = openNode(t, cfg)
	return c.nodes[i]
}

// TestEffectiveVersionRisesOnAnnounce upgrades a 3-node cluster one node
// at a time, the raft leader last, with clocks that never move (no timer
// in the path): the version stays 1 and a protocol-2 command is refused
// until the last node announces 1..2; then the version rises to 2 in the
// next entries, on every node, and the command is accepted. A node that
// was down meanwhile, restarted with a protocol-1 binary, fails as soon
// as it has caught up, and then refuses its data directory.
func TestEffectiveVersionRisesOnAnnounce(t *testing.T) {
	c, clk := versionCluster(t)
	cl := c.client()
	cl.must(t, lease.RegisterUnit{Name: "db/0", TokenHash: lease.HashToken("db/0")})
	cas := lease.SetConfig{App: "db", Changes: map[string]string{"k": "v"}, IfVersion: ptr(uint64(1))}
	refused := func(when string) {
		t.Helper()
		leader := c.caughtUp()
		before := leader.FSM().Index()
		res, err := leader.Apply(context.Background(), cas)
		if err != nil || !errors.Is(res.Err, lease.ErrNeedsProtocol) || leader.FSM().Index() != before {
			t.Fatalf("%s: protocol-2 command: %+v, %v (index %d → %d)", when, res, err, before, leader.FSM().Index())
		}
		if v := leader.FSM().EffectiveVersion(); v != 1 {
			t.Fatalf("%s: effective version %d", when, v)
		}
	}
	refused("all at 1..1")
	announce(t, c, upgrade(t, c, 2, 2))
	refused("node-3 upgraded")
	announce(t, c, upgrade(t, c, 1, 2))
	refused("node-2 upgraded")
	// node-3 goes down (recorded 1..2); the leader, node-1, is upgraded
	// last: node-2 takes over, and node-1 announces through it.
	c.kill(c.nodes[2])
	c.kill(c.nodes[0])
	last := upgrade(t, c, 0, 2)
	ann := announce(t, c, last)
	for _, n := range c.nodes {
		if n == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		v, err := n.FSM().WaitEffectiveVersion(ctx, 2)
		cancel()
		if err != nil || v != 2 {
			t.Fatalf("%s: effective version %d, %v", n.ID(), v, err)
		}
	}
	// The raise is the entry right after the announcement: the next one,
	// or three later if the raft leadership moved back to node-1 in
	// between (raft's no-op, the new leader's barrier and its advancer's
	// first proposal of the time it found, which stamps it), or even
	// earlier if node-1 then recorded itself before the test's
	// announcement did.
	if at := c.nodes[1].FSM().Index(); at > ann.Index+4 {
		t.Errorf("raised at index %d, announced at %d: want the entry right after", at, ann.Index)
	}
	if !clk.Now().Equal(base) {
		t.Fatal("the fake clock moved")
	}
	if res := cl.must(t, cas); res.Version != 2 {
		t.Errorf("protocol-2 command at protocol 2: %+v", res)
	}

	// node-3 comes back with a protocol-1 binary. node.json says it last
	// saw version 1, so it opens, catches up, and then fails.
	old := upgrade(t, c, 2, 1)
	select {
	case <-old.Failed():
	case <-time.After(testWait):
		t.Fatal("a protocol-1 node kept running in a protocol-2 cluster")
	}
	if err := old.Err(); !errors.Is(err, lease.ErrVersionUnsupported) ||
		err.Error() != "this node speaks controller protocol 1..1 but the cluster runs 2: upgrade uniter on this node" {
		t.Fatalf("failure %v", err)
	}
	// And it now refuses the directory before it opens raft.
	c.kill(old)
	cfg := c.cfgs[2]
	cfg.Bootstrap, cfg.ProtoMax = false, 1
	if _, err := raftnode.Open(context.Background(), cfg); !errors.Is(err, lease.ErrVersionUnsupported) {
		t.Fatalf("reopen with protocol 1..1: %v", err)
	}
	c.closeAll()
}

// TestOldNodeRefusesNewerData: a node that ran at protocol 2 cannot be
// opened by a 1..1 binary, whether node.json or only the snapshot says so,
// and the data directory is left as it was.
func TestOldNodeRefusesNewerData(t *testing.T) {
	cfg := nodeConfig(t, "node-1", t.TempDir(), true)
	cfg.ProtoMax = 2
	n := openNode(t, cfg)
	waitLeader(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if v, err := n.FSM().WaitEffectiveVersion(ctx, 2); err != nil || v != 2 {
		t.Fatalf("a single 1..2 node runs %d (%v)", v, err)
	}
	if err := n.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	idPath := filepath.Join(cfg.DataDir, "node.json")
	testVersion := func(what string) {
		t.Helper()
		before, _ := os.ReadFile(idPath)
		old := cfg
		old.ProtoMax = 1
		_, err := raftnode.Open(context.Background(), old)
		if !errors.Is(err, lease.ErrVersionUnsupported) || !strings.Contains(err.Error(), "upgrade uniter on this node") {
			t.Fatalf("%s: open with protocol 1..1 = %v", what, err)
		}
		if after, _ := os.ReadFile(idPath); string(after) != string(before) {
			t.Errorf("%s: node.json changed", what)
		}
	}
	testVersion("node.json")
	// Forget the version in node.json: the snapshot still tells.
	var id map[string]any
	data, _ := os.ReadFile(idPath)
	if err := json.Unmarshal(data, &id); err != nil || id["effective_version"] != 2.0 {
		t.Fatalf("node.json %s (%v)", data, err)
	}
	delete(id, "effective_version")
	data, _ = json.Marshal(id)
	if err := os.WriteFile(idPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	testVersion("snapshot")
}
