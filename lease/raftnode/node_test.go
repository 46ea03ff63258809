package raftnode_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/lease/raftnode"

	"github.com/google/go-cmp/cmp"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease"
)

// populateCluster writes leases, terms, pins, settings, config (with a
// schema), statuses and a dying unit through c.
func populateCluster(t *testing.T, c *client) {
	t.Helper()
	for _, u := range []string{"db/0", "db/1", "web/0"} {
		c.must(t, lease.RegisterUnit{Name: u, TokenHash: lease.HashToken(u), ConfigSchema: schema})
	}
	for _, op := range []lease.Op{
		claim("db/0", time.Hour), revoke("db/0"), claim("db/1", time.Hour), // term 2
		claim("web/0", time.Hour), pin("web", "operator"),
		leaderSet("db/1", 2, map[string]string{"primary": "db/1"}),
		lease.SetConfig{App: "db", Changes: map[string]string{"port": "6432", "name": "main"}},
		lease.SetApplicationStatus{App: "db", Unit: "db/1", Term: 2, Status: "active", Message: "ok"},
		lease.SetUnitStatus{Unit: "db/0", Kind: lease.StatusWorkload, Status: "blocked", Message: "m"},
		lease.RequestUnitRemoval{Name: "db/0"},
		lease.Resolve{Unit: "db/0", NoRetry: true},
	} {
		c.must(t, op)
	}
}

// durable is the part of the state a restart must bring back exactly (the
// global time moves on).
type durable struct {
	Apps    []lease.Application
	Units   []lease.Unit
	Members map[string]lease.Member
}

func durableState(f *lease.FSM) durable {
	return durable{Apps: f.Applications(), Units: f.Units(), Members: f.Members()}
}

func TestSingleNodeRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		// snapshot, if set, makes the node snapshot before it is closed.
		snapshot func(t *testing.T, n *raftnode.Node, cfg raftnode.Config)
	}{
		{name: "from the log alone"},
		{name: "from a snapshot taken on request and the log after it", snapshot: func(t *testing.T, n *raftnode.Node, _ raftnode.Config) {
			if err := n.Snapshot(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "from a snapshot taken at the threshold", snapshot: func(t *testing.T, n *raftnode.Node, cfg raftnode.Config) {
			testutil.WaitUntil(t, testWait, "an automatic snapshot", func() bool {
				entries, _ := os.ReadDir(filepath.Join(cfg.DataDir, "snapshots"))
				return len(entries) > 0
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := nodeConfig(t, "node-1", t.TempDir(), true)
			if tc.snapshot != nil {
				// Keep only one trailing entry after a snapshot, so that the
				// state must come back from it.
				cfg.TrailingLogs = 1
				cfg.SnapshotThreshold = 16
				cfg.SnapshotInterval = 50 * time.Millisecond
			}
			n := openNode(t, cfg)
			waitLeader(t, n)
			c := &client{nodes: []*raftnode.Node{n}}
			populateCluster(t, c)
			if tc.snapshot != nil {
				tc.snapshot(t, n, cfg)
				// Some commands after the snapshot, replayed from the log.
				c.must(t, lease.SetConfig{App: "db", Changes: map[string]string{"name": "after"}})
				c.must(t, extend("db/1", 2*time.Hour))
			}
			if err := n.Barrier(context.Background()); err != nil {
				t.Fatal(err)
			}
			before := durableState(n.FSM())
			addr := n.RaftAddr()
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.snapshot != nil {
				wantCompactedLog(t, cfg.DataDir)
			}

			// Restart: the ID and the port come from node.json.
			cfg.ID, cfg.Bootstrap = "", false
			cfg.Logger = newTestLogger(t)
			n = openNode(t, cfg)
			if n.ID() != "node-1" || n.RaftAddr() != addr {
				t.Errorf("restarted as %s at %s, want node-1 at %s", n.ID(), n.RaftAddr(), addr)
			}
			waitLeader(t, n)
			if err := n.Barrier(context.Background()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, durableState(n.FSM())); diff != "" {
				t.Errorf("state after restart (-before +after):\n%s", diff)
			}
			// And it goes on from there: the next claim of db takes term 3.
			c = &client{nodes: []*raftnode.Node{n}}
			c.must(t, revoke("db/1"))
			if res := c.must(t, claim("db/1", time.Hour)); res.Lease.Term != 3 {
				t.Errorf("term after restart %d, want 3", res.Lease.Term)
			}
		})
	}
}

// wantCompactedLog checks that raft dropped the log's first entries, so a
// restart cannot rebuild the state from the log alone.
func wantCompactedLog(t *testing.T, dir string) {
	t.Helper()
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	first, err := store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first <= 1 {
		t.Errorf("log starts at %d: no compaction, the snapshot is not exercised", first)
	}
}

func TestOpenNodeRefusesAnotherNodesDataDir(t *testing.T) {
	cfg := nodeConfig(t, "node-1", t.TempDir(), true)
	n := openNode(t, cfg)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.ID = "node-2"
	if _, err := raftnode.Open(context.Background(), cfg); err == nil {
		t.Fatal("opened node-1's data directory as node-2")
	}
	cfg.ID, cfg.DataDir = "", t.TempDir()
	if _, err := raftnode.Open(context.Background(), cfg); err == nil {
		t.Fatal("opened a new data directory without an ID")
	}
}

func TestFollowerRefusesWritesWithTheLeadersAddresses(t *testing.T) {
	n1 := openNode(t, nodeConfig(t, "node-1", t.TempDir(), true))
	n2 := openNode(t, nodeConfig(t, "node-2", t.TempDir(), false))
	waitLeader(t, n1)
	ctx := context.Background()
	if err := n1.AddVoter(ctx, "node-2", n2.RaftAddr()); err != nil {
		t.Fatal(err)
	}
	if err := n1.AddVoter(ctx, "node-2", n2.RaftAddr()); err != nil {
		t.Fatalf("adding again: %v", err)
	}
	waitIndex(t, n2, n1.FSM().Index())
	_, err := n2.Apply(ctx, lease.RegisterUnit{Name: "db/0", TokenHash: lease.HashToken("x")})
	var nl *raftnode.NotLeaderError
	if !errors.As(err, &nl) || !errors.Is(err, raftnode.ErrNotRaftLeader) {
		t.Fatalf("follower apply: %v", err)
	}
	want := raftnode.NotLeaderError{LeaderID: "node-1", LeaderRaftAddr: n1.RaftAddr(), LeaderAPIAddr: "http://node-1.example:8080"}
	if *nl != want {
		t.Errorf("not-leader error %+v, want %+v", *nl, want)
	}
	if err := n2.AddVoter(ctx, "node-3", "127.0.0.1:1"); !errors.Is(err, raftnode.ErrNotRaftLeader) {
		t.Errorf("follower add voter: %v", err)
	}
	servers, err := n2.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantServers := []raftnode.Server{
		{ID: "node-1", RaftAddr: n1.RaftAddr(), APIAddr: "http://node-1.example:8080", Suffrage: "voter", State: "leader"},
		{ID: "node-2", RaftAddr: n2.RaftAddr(), Suffrage: "voter", State: "follower"},
	}
	if diff := cmp.Diff(wantServers, servers); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	if n2.RaftState() != "follower" || n1.RaftState() != "leader" {
		t.Errorf("states %s %s", n1.RaftState(), n2.RaftState())
	}
	if err := n1.RemoveServer(ctx, "node-2"); err != nil {
		t.Fatal(err)
	}
	servers, err = n1.Servers(ctx)
	if err != nil || len(servers) != 1 {
		t.Errorf("servers after removal %+v, %v", servers, err)
	}
}

func TestBackupRestoreIntoANewCluster(t *testing.T) {
	ctx := context.Background()
	old := openNode(t, nodeConfig(t, "node-1", t.TempDir(), true))
	waitLeader(t, old)
	populateCluster(t, &client{nodes: []*raftnode.Node{old}})
	var backup bytes.Buffer
	if err := old.Backup(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	want := durableState(old.FSM())

	cfg := nodeConfig(t, "node-9", t.TempDir(), true)
	cfg.APIAddr = "http://new.example:8080"
	fresh := openNode(t, cfg)
	waitLeader(t, fresh)
	c := &client{nodes: []*raftnode.Node{fresh}}
	c.must(t, lease.RegisterUnit{Name: "gone/0", TokenHash: lease.HashToken("g")})
	if err := fresh.Restore(ctx, bytes.NewReader(backup.Bytes())); err != nil {
		t.Fatal(err)
	}
	got := durableState(fresh.FSM())
	if diff := cmp.Diff(want.Apps, got.Apps); diff != "" {
		t.Errorf("applications after restore (-backup +restored):\n%s", diff)
	}
	if diff := cmp.Diff(want.Units, got.Units); diff != "" {
		t.Errorf("units after restore (-backup +restored):\n%s", diff)
	}
	if m := got.Members; len(m) != 1 || m["node-9"].APIAddr != "http://new.example:8080" {
		t.Errorf("members after restore %+v: want the new cluster's", m)
	}
	// The restored cluster goes on: time advances, commands apply.
	g := fresh.FSM().GlobalTime()
	testutil.WaitUntil(t, testWait, "the global time to advance after restore", func() bool {
		return fresh.FSM().GlobalTime().After(g)
	})
	c.must(t, revoke("db/1"))
	if err := fresh.Restore(ctx, bytes.NewReader([]byte(`{"format":7}`))); !errors.Is(err, lease.ErrSnapshotFormat) {
		t.Errorf("restore of a bad backup: %v", err)
	}
}
