package raftnode_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease"
	"github.com/uniter-dev/uniter/lease/raftnode"
)

// testSlack is the nodes' expiry slack with the test configuration (a
// tick plus the default AdvanceTimeout of two ticks).
const testSlack = 3 * testTick

// TestLeaderRenewalKeepsTheLease: at protocol 7 a holder's extend is
// answered from the leader's memory, not the log, and the leader writes
// it back before the global time could release the lease: the lease
// outlives the claim that the extend renewed, and the log ends up with
// the promised expiry.
func TestLeaderRenewalKeepsTheLease(t *testing.T) {
	nodes := batchCluster(t, 1, lease.LeaderRenewProtocol, nil)
	n := nodes[0]
	c := &client{nodes: nodes}
	registerApps(t, c, 1)
	claimed := c.must(t, lease.Claim{App: "a0", Unit: "a0/0", Duration: 4 * testTick}).Lease
	before := n.LeaderRenewals()
	res := c.must(t, lease.Extend{App: "a0", Unit: "a0/0", Duration: 40 * testTick, Term: claimed.Term})
	if got := n.LeaderRenewals() - before; got != 1 {
		t.Fatalf("%d renewals answered from memory, want 1", got)
	}
	promised := res.Lease.Expiry
	if !promised.After(claimed.Expiry) || res.Lease.Holder != "a0/0" || res.Lease.Term != claimed.Term {
		t.Fatalf("extend answered %+v after claim %+v", res.Lease, claimed)
	}
	// Past the claim's expiry and slack, the lease is still held, with
	// at least the promised expiry in the log.
	testutil.WaitUntil(t, testWait, "the global time past the claim's end", func() bool {
		return n.FSM().GlobalTime().After(claimed.Expiry.Add(testSlack + 2*testTick))
	})
	l, _ := n.FSM().Lease("a0")
	if l.Holder != "a0/0" || l.Term != claimed.Term || l.Expiry.Before(promised) {
		t.Errorf("lease after the claim's end %+v, want a0/0 in term %d until at least %v", l, claimed.Term, promised)
	}
}

// TestLeaderRenewalsReplicate: 3 nodes at protocol 7, many holders
// renewing at once: renewals are answered from memory, every answer is
// right (concurrentLeases checks them), and every follower ends with the
// leader's state once the renewals are written back.
func TestLeaderRenewalsReplicate(t *testing.T) {
	nodes := batchCluster(t, 3, lease.LeaderRenewProtocol, nil)
	c := &client{nodes: nodes}
	const apps = 16
	registerApps(t, c, apps)
	concurrentLeases(t, c, apps, 10)
	leader := waitLeader(t, nodes...)
	if leader.LeaderRenewals() == 0 {
		t.Fatal("no renewal answered from memory")
	}
	// A tick later the advancer has written them back.
	at := leader.FSM().GlobalTime()
	testutil.WaitUntil(t, testWait, "two advances", func() bool {
		return leader.FSM().GlobalTime().After(at.Add(2 * testTick))
	})
	if err := leader.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := leader.FSM().State()
	for _, n := range nodes {
		waitIndex(t, n, want.Index)
		got := n.FSM().State()
		// Only the leader's advances may differ in between; compare the
		// leases.
		for app, a := range want.Applications {
			if diff := cmp.Diff(a.Lease, got.Applications[app].Lease, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s's lease of %s differs from the leader's:\n%s", n.ID(), app, diff)
			}
		}
	}
}

// TestNewLeaderGivesGrace: a leader that dies with renewals it answered
// from memory and never wrote back is covered by its successor, which
// gives every held lease lease.LeaderRenewMax from the global time it
// found before it moves the time on.
func TestNewLeaderGivesGrace(t *testing.T) {
	nodes := batchCluster(t, 3, lease.LeaderRenewProtocol, nil)
	c := &client{nodes: nodes}
	registerApps(t, c, 1)
	claimed := c.must(t, lease.Claim{App: "a0", Unit: "a0/0", Duration: 4 * testTick}).Lease
	c.must(t, lease.Extend{App: "a0", Unit: "a0/0", Duration: 4 * testTick, Term: claimed.Term})
	old := waitLeader(t, nodes...)
	found := old.FSM().GlobalTime()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	var rest []*raftnode.Node
	for _, n := range nodes {
		if n != old {
			rest = append(rest, n)
		}
	}
	leader := waitLeader(t, rest...)
	testutil.WaitUntil(t, testWait, "the new leader to advance the time", func() bool {
		return leader.FSM().GlobalTime().After(found.Add(2 * testTick))
	})
	l, _ := leader.FSM().Lease("a0")
	if l.Holder != "a0/0" || l.Expiry.Before(found.Add(lease.LeaderRenewMax)) {
		t.Errorf("lease after the failover %+v, want a0/0 until at least %v (%v after the global time before it)",
			l, found.Add(lease.LeaderRenewMax), lease.LeaderRenewMax)
	}
}

// TestRenewalsToTheLog: below protocol 7, with NoLeaderRenew, and for
// renewals it may not answer (longer than LeaderRenewMax, or after a
// step-down request) the leader answers nothing from memory; the log
// gives the answer.
func TestRenewalsToTheLog(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proto uint64
		tune  func(*raftnode.Config)
		op    lease.Op
		err   error
	}{
		{"protocol 6", lease.LeaderRenewProtocol - 1, nil, lease.Extend{App: "a0", Unit: "a0/0", Duration: time.Second}, nil},
		{"NoLeaderRenew", lease.LeaderRenewProtocol, func(c *raftnode.Config) { c.NoLeaderRenew = true },
			lease.Extend{App: "a0", Unit: "a0/0", Duration: time.Second}, nil},
		{"longer than LeaderRenewMax", lease.LeaderRenewProtocol, nil,
			lease.Extend{App: "a0", Unit: "a0/0", Duration: lease.LeaderRenewMax + time.Second}, nil},
		{"another unit", lease.LeaderRenewProtocol, nil, lease.Extend{App: "a0", Unit: "a0/1", Duration: time.Second}, lease.ErrNotHolder},
		{"stale term", lease.LeaderRenewProtocol, nil, lease.Extend{App: "a0", Unit: "a0/0", Duration: time.Second, Term: 7}, lease.ErrNotHolder},
		{"step-down requested", lease.LeaderRenewProtocol, nil, lease.Claim{App: "a0", Unit: "a0/0", Duration: time.Second}, lease.ErrStepDownPending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := batchCluster(t, 1, tc.proto, tc.tune)
			c := &client{nodes: nodes}
			registerApps(t, c, 1)
			c.must(t, lease.RegisterUnit{Name: "a0/1", TokenHash: lease.HashToken("t-a0/1")})
			c.must(t, lease.Claim{App: "a0", Unit: "a0/0", Duration: time.Second})
			if tc.err == lease.ErrStepDownPending {
				c.must(t, lease.RequestStepDown{App: "a0"})
			}
			index := nodes[0].FSM().Index()
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			res, err := c.apply(ctx, tc.op)
			if err != nil || res.Err != tc.err {
				t.Fatalf("%s: %+v, %v; want error %v", tc.op.Type(), res, err, tc.err)
			}
			if got := nodes[0].LeaderRenewals(); got != 0 {
				t.Errorf("%d renewals answered from memory, want 0", got)
			}
			if res.Index <= index {
				t.Errorf("answered at index %d, not after %d: not from the log", res.Index, index)
			}
		})
	}
}
