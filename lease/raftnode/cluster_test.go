package raftnode_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/lease/raftnode"

	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease"
)

// testCluster is three real nodes on loopback TCP with BoltDB in temp dirs.
type testCluster struct {
	t     *testing.T
	cfgs  []raftnode.Config
	nodes []*raftnode.Node // nil while a node is down
}

func newTestCluster(t *testing.T, size int) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	for i := range size {
		id := fmt.Sprintf("node-%d", i+1)
		cfg := nodeConfig(t, id, t.TempDir(), i == 0)
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, openNode(t, cfg))
	}
	leader := waitLeader(t, c.nodes[0])
	for _, n := range c.nodes[1:] {
		if err := leader.AddVoter(context.Background(), n.ID(), n.RaftAddr()); err != nil {
			t.Fatalf("add voter %s: %v", n.ID(), err)
		}
	}
	c.caughtUp()
	return c
}

func (c *testCluster) client() *client { return &client{nodes: c.nodes} }

// caughtUp waits until every running node has applied what the leader
// had applied after a barrier.
func (c *testCluster) caughtUp() *raftnode.Node {
	c.t.Helper()
	leader := waitLeader(c.t, c.nodes...)
	if err := leader.Barrier(context.Background()); err != nil {
		c.t.Fatalf("barrier: %v", err)
	}
	index := leader.FSM().Index()
	for _, n := range c.nodes {
		if n != nil {
			waitIndex(c.t, n, index)
		}
	}
	return leader
}

func (c *testCluster) kill(n *raftnode.Node) int {
	c.t.Helper()
	for i, m := range c.nodes {
		if m == n {
			if err := n.Close(); err != nil {
				c.t.Fatalf("close %s: %v", n.ID(), err)
			}
			c.nodes[i] = nil
			return i
		}
	}
	c.t.Fatalf("%s is not running", n.ID())
	return -1
}

func (c *testCluster) closeAll() {
	for i, n := range c.nodes {
		if n != nil {
			if err := n.Close(); err != nil {
				c.t.Errorf("close %s: %v", n.ID(), err)
			}
			c.nodes[i] = nil
		}
	}
}

func TestClusterFailoverKeepsLeases(t *testing.T) {
	c := newTestCluster(t, 3)
	cl := c.client()
	cl.must(t, lease.RegisterUnit{Name: "db/0", TokenHash: lease.HashToken("db/0")})
	cl.must(t, lease.RegisterUnit{Name: "db/1", TokenHash: lease.HashToken("db/1")})
	claimed := cl.must(t, claim("db/0", 30*time.Second)).Lease
	old := c.caughtUp()

	// Kill the leader. Read the time just before, so that "before" is as
	// late as it can be.
	realBefore := time.Now()
	globalBefore := old.FSM().GlobalTime()
	killed := c.kill(old)

	// Writes resume through the new leader within seconds.
	cl = c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := cl.apply(ctx, lease.SetConfig{App: "db", Changes: map[string]string{"after": "failover"}})
	if err != nil || res.Err != nil {
		t.Fatalf("no write through a new leader within 5s: %v %v", err, res.Err)
	}
	resumed := time.Since(realBefore)
	leader := c.caughtUp()
	// Let the new leader's advancer run a few ticks, then read the global
	// time before the real time, so that "after" is as early as it can be.
	testutil.WaitUntil(t, testWait, "the new leader to advance the time", func() bool {
		return leader.FSM().GlobalTime().Sub(globalBefore) > 3*testTick
	})
	globalAfter := leader.FSM().GlobalTime()
	realAfter := time.Now()

	// The lease is neither lost nor shortened: same holder, term, expiry.
	l, _ := leader.FSM().Lease("db")
	if l.Holder != "db/0" || l.Term != claimed.Term || !l.Expiry.Equal(claimed.Expiry) {
		t.Errorf("lease after failover %+v, want holder db/0 term %d expiry %v", l, claimed.Term, claimed.Expiry)
	}
	// The global time paused during the failover. It started at the wall
	// time, and the new leader's advancer carries on from the global time
	// it finds, proposed before the kill; raft took at least most of a
	// heartbeat timeout to notice the dead leader, so the global time now
	// lags the wall time by that much, and the lease has that much more
	// left than the wall time alone would say. (A tick of tolerance for the
	// last heartbeat before the kill.)
	globalMoved, realMoved := globalAfter.Sub(globalBefore), realAfter.Sub(realBefore)
	lag := realAfter.Sub(globalAfter)
	t.Logf("writes resumed after %v; global time moved %v in %v; it lags the wall time by %v", resumed, globalMoved, realMoved, lag)
	if lag < testHeartbeat-testTick {
		t.Errorf("the global time lags the wall time by %v after the failover, want at least %v: no pause", lag, testHeartbeat-testTick)
	}

	// The killed node restarts from its data dir and catches up.
	cfg := c.cfgs[killed]
	cfg.Bootstrap = false
	cfg.Logger = newTestLogger(t)
	c.nodes[killed] = openNode(t, cfg)
	c.caughtUp()
	back := c.nodes[killed]
	if v := back.FSM().State().Applications["db"].Config.Values["after"]; v != "failover" {
		t.Errorf("restarted node missed the write made while it was down: %q", v)
	}
	if l2, _ := back.FSM().Lease("db"); l2.Holder != "db/0" || !l2.Expiry.Equal(claimed.Expiry) {
		t.Errorf("restarted node's lease %+v", l2)
	}
	c.closeAll()
}

// TestLeadershipFlapping forces 50 leadership transfers in a row while 32
// clients claim and extend: nothing deadlocks, every call answers within
// a bound, the global time never runs ahead of real time, and no goroutine
// is left behind.
func TestLeadershipFlapping(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	// t.Cleanup functions run after this, so compare goroutines ourselves.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	baseline := runtime.NumGoroutine()

	c := newTestCluster(t, 3)
	defer c.closeAll() // before goleak checks, also on failure
	const (
		apps     = 8
		clients  = 32
		flaps    = 50
		callMax  = 10 * time.Second
		leaseDur = 2 * time.Second
	)
	cl := c.client()
	var unitNames []string
	for i := range clients {
		u := fmt.Sprintf("app%c/%d", 'a'+i%apps, i/apps)
		unitNames = append(unitNames, u)
		cl.must(t, lease.RegisterUnit{Name: u, TokenHash: lease.HashToken(u)})
	}
	leader := c.caughtUp()
	realStart, globalStart := time.Now(), leader.FSM().GlobalTime()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopClients := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopClients()
	var granted, denied, retried atomic.Int64
	var slow atomic.Value // first call over callMax
	shared := c.client()
	for _, u := range unitNames {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, op := range []lease.Op{claim(u, leaseDur), extend(u, leaseDur)} {
					n := shared.leader("")
					start := time.Now()
					res, err := n.Apply(context.Background(), op)
					if d := time.Since(start); d > callMax {
						slow.CompareAndSwap(nil, fmt.Sprintf("%s by %s took %v", op.Type(), u, d))
					}
					switch {
					case err != nil && retryable(err):
						retried.Add(1)
						select { // back off, as the API's clients will
						case <-stop:
						case <-time.After(10 * time.Millisecond):
						}
					case err != nil:
						slow.CompareAndSwap(nil, fmt.Sprintf("%s by %s: unexpected %v", op.Type(), u, err))
					case res.Err == nil:
						granted.Add(1)
					default:
						denied.Add(1)
					}
				}
			}
		})
	}

	ctx := context.Background()
	for i := 0; i < flaps; {
		leader := waitLeader(t, c.nodes...)
		tctx, cancel := context.WithTimeout(ctx, callMax)
		start := time.Now()
		err := leader.TransferLeadership(tctx)
		cancel()
		if d := time.Since(start); d > callMax {
			t.Fatalf("transfer %d took %v", i, d)
		}
		if err != nil {
			if !retryable(err) {
				t.Logf("transfer %d: %v", i, err)
			}
			continue // the leader moved under us: try again
		}
		i++
		// Every fifth time, let the new leader's advancer run for a while,
		// so that anchoring across many failovers is exercised too.
		if i%5 == 0 {
			g := waitLeader(t, c.nodes...).FSM().GlobalTime()
			testutil.WaitUntil(t, testWait, "the new leader to advance the time", func() bool {
				for _, n := range c.nodes {
					if n.FSM().GlobalTime().Sub(g) > 2*testTick {
						return true
					}
				}
				return false
			})
		}
		// The global time never runs ahead of real time: it started at
		// the wall time (genesis) and every advance adds only time that
		// has passed on its proposer's clock since its anchor. (Comparing
		// how far each moved since globalStart would not do: globalStart
		// was proposed up to a tick and an apply latency before realStart.)
		for _, n := range c.nodes {
			g := n.FSM().GlobalTime()
			if now := time.Now(); g.After(now) { // now read after the global time
				t.Fatalf("after flap %d, %s's global time %v is %v ahead of the wall time", i, n.ID(), g, g.Sub(now))
			}
		}
	}
	stopClients()
	if msg := slow.Load(); msg != nil {
		t.Error(msg)
	}
	t.Logf("%d flaps: %d granted, %d denied, %d retryable", flaps, granted.Load(), denied.Load(), retried.Load())
	if granted.Load() == 0 {
		t.Error("no claim or extend succeeded")
	}

	leader = c.caughtUp()
	globalEnd := leader.FSM().GlobalTime()
	realMoved, globalMoved := time.Since(realStart), globalEnd.Sub(globalStart)
	t.Logf("global time moved %v in %v of real time", globalMoved, realMoved)
	if now := time.Now(); globalEnd.After(now) {
		t.Errorf("global time ran %v ahead of the wall time", globalEnd.Sub(now))
	}
	for _, n := range c.nodes {
		if err := n.FSM().State().Validate(); err != nil {
			t.Errorf("%s: %v", n.ID(), err)
		}
	}
	c.closeAll()
	testutil.WaitUntil(t, testWait, "goroutines back to the baseline", func() bool {
		return runtime.NumGoroutine() <= baseline
	})
}
