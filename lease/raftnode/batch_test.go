package raftnode_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease"
	"github.com/uniter-dev/uniter/lease/raftnode"
)

// batchCluster is size nodes speaking protocols 1..maxProto, tuned by
// tune, joined to the first, at the effective version they all speak.
func batchCluster(t *testing.T, size int, maxProto uint64, tune func(*raftnode.Config)) []*raftnode.Node {
	t.Helper()
	var nodes []*raftnode.Node
	for i := range size {
		cfg := nodeConfig(t, fmt.Sprintf("node-%d", i+1), t.TempDir(), i == 0)
		cfg.ProtoMax = maxProto
		if tune != nil {
			tune(&cfg)
		}
		nodes = append(nodes, openNode(t, cfg))
	}
	leader := waitLeader(t, nodes[0])
	for _, n := range nodes[1:] {
		if err := leader.AddVoter(context.Background(), n.ID(), n.RaftAddr()); err != nil {
			t.Fatalf("add voter %s: %v", n.ID(), err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if v, err := leader.FSM().WaitEffectiveVersion(ctx, maxProto); err != nil || v != maxProto {
		t.Fatalf("effective version %d (%v), want %d", v, err, maxProto)
	}
	return nodes
}

// concurrentLeases has one client per application (units "aN/0") claim
// and then extend its lease rounds times, all at once, through c, and
// checks every result: each client holds its own lease in term 1, and
// its extends never shorten it.
func concurrentLeases(t *testing.T, c *client, apps, rounds int) {
	concurrentLeasesUntil(t, c, apps, rounds, nil)
}

// concurrentLeasesUntil is concurrentLeases that, with rounds < 0, goes on
// until stop is closed.
func concurrentLeasesUntil(t *testing.T, c *client, apps, rounds int, stop <-chan struct{}) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, apps)
	for i := range apps {
		unit := fmt.Sprintf("a%d/0", i)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			var last time.Time
			for r := 0; r < rounds || rounds < 0; r++ {
				if rounds < 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
				var op lease.Op = lease.Claim{App: appOf(unit), Unit: unit, Duration: time.Minute}
				if r > 0 {
					op = lease.Extend{App: appOf(unit), Unit: unit, Duration: time.Minute, Term: 1}
				}
				res, err := c.apply(ctx, op)
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s %s: %w", unit, op.Type(), err)
					return
				case res.Err != nil || res.Lease == nil || res.Lease.Holder != unit || res.Lease.Term != 1:
					errs <- fmt.Errorf("%s %s: %+v", unit, op.Type(), res)
					return
				case res.Lease.Expiry.Before(last):
					errs <- fmt.Errorf("%s %s: expiry went back from %v to %v", unit, op.Type(), last, res.Lease.Expiry)
					return
				}
				last = res.Lease.Expiry
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func registerApps(t *testing.T, c *client, apps int) {
	t.Helper()
	for i := range apps {
		unit := fmt.Sprintf("a%d/0", i)
		c.must(t, lease.RegisterUnit{Name: unit, TokenHash: lease.HashToken("t-" + unit)})
	}
}

// TestBatchedApplies: on a 3-node cluster at protocol 6, concurrent
// claims and extends are grouped into batched log entries (fewer entries
// than commands), each caller gets its own right result, and every
// follower, applying the same entries (raft's ApplyBatch), ends with the
// leader's state.
func TestBatchedApplies(t *testing.T) {
	nodes := batchCluster(t, 3, lease.BatchProtocol, nil)
	c := &client{nodes: nodes}
	const apps = 32
	registerApps(t, c, apps)
	leader := waitLeader(t, nodes...)
	// Concurrency makes batches, but how many is up to the scheduler:
	// repeat the rounds until one batch carried more than one command.
	testutil.WaitUntil(t, testWait, "a batch of more than one command", func() bool {
		concurrentLeases(t, c, apps, 5)
		entries, commands := leader.BatchStats()
		t.Logf("%d commands in %d entries", commands, entries)
		return !t.Failed() && commands > entries
	})
	if err := leader.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := leader.FSM().State()
	for _, n := range nodes {
		waitIndex(t, n, want.Index)
		if diff := cmp.Diff(want, n.FSM().State(), cmpopts.IgnoreUnexported(lease.State{})); diff != "" {
			t.Errorf("%s's state differs from the leader's:\n%s", n.ID(), diff)
		}
	}
}

// TestNoBatchingBelowProtocol6: a cluster at protocol 5 (a node of an
// older release could be in it) and a node with batching turned off
// never propose a batch; their results are as right.
func TestNoBatchingBelowProtocol6(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proto uint64
		tune  func(*raftnode.Config)
	}{
		{"protocol 5", lease.BatchProtocol - 1, nil},
		{"NoBatching", lease.BatchProtocol, func(c *raftnode.Config) { c.NoBatching = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := batchCluster(t, 1, tc.proto, tc.tune)
			c := &client{nodes: nodes}
			registerApps(t, c, 16)
			concurrentLeases(t, c, 16, 5)
			if entries, commands := nodes[0].BatchStats(); entries != 0 || commands != 0 {
				t.Errorf("%d commands went through the batcher in %d entries", commands, entries)
			}
		})
	}
}

// TestBatchedApplyCancelled: a caller whose context has ended gets its
// error, and the batcher goes on serving the others.
func TestBatchedApplyCancelled(t *testing.T) {
	nodes := batchCluster(t, 1, lease.BatchProtocol, nil)
	c := &client{nodes: nodes}
	registerApps(t, c, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := nodes[0].Apply(ctx, lease.Claim{App: "a0", Unit: "a0/0", Duration: time.Minute}); err == nil {
		t.Fatal("a cancelled claim succeeded")
	}
	concurrentLeases(t, c, 1, 3)
}

// TestBatchedAppliesAcrossLeaderChange: while concurrent claims and
// extends are being batched, raft leadership moves twice; every write
// ends right (the client retries what a lost leadership left unknown, as
// each batchable command allows), and every node ends with the same
// state.
func TestBatchedAppliesAcrossLeaderChange(t *testing.T) {
	nodes := batchCluster(t, 3, lease.BatchProtocol, nil)
	c := &client{nodes: nodes}
	const apps = 16
	registerApps(t, c, apps)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		concurrentLeasesUntil(t, c, apps, -1, stop)
	}()
	moved := 0
	for range 2 {
		leader := waitLeader(t, nodes...)
		before, _ := leader.BatchStats()
		testutil.WaitUntil(t, testWait, "batched writes on the leader", func() bool {
			e, _ := leader.BatchStats()
			return e > before+5
		})
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		if err := leader.TransferLeadership(ctx); err != nil {
			t.Logf("transfer from %s: %v", leader.ID(), err) // a transfer may race an election
		} else {
			moved++
		}
		cancel()
	}
	// Writes go on under the new leader too before the load stops.
	leader := waitLeader(t, nodes...)
	before, _ := leader.BatchStats()
	testutil.WaitUntil(t, testWait, "batched writes on the new leader", func() bool {
		e, _ := leader.BatchStats()
		return e > before+5
	})
	close(stop)
	<-done
	if moved == 0 {
		t.Fatal("raft leadership never moved")
	}
	leader = waitLeader(t, nodes...)
	if err := leader.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := leader.FSM().State()
	for _, n := range nodes {
		waitIndex(t, n, want.Index)
		if diff := cmp.Diff(want, n.FSM().State(), cmpopts.IgnoreUnexported(lease.State{})); diff != "" {
			t.Errorf("%s's state differs from the leader's:\n%s", n.ID(), diff)
		}
	}
	var entries, commands uint64
	for _, n := range nodes {
		e, cmds := n.BatchStats()
		entries, commands = entries+e, commands+cmds
	}
	t.Logf("%d commands in %d batched entries over the leaders", commands, entries)
}
