package raftnode_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease"
	"github.com/uniter-dev/uniter/lease/raftnode"
)

// freezeClock is a fake clock whose readings can be frozen: while frozen,
// Now blocks every caller, which is what a paused process (GC, SIGSTOP, a
// stolen VM) looks like to the code that reads the clock. Its timers are
// the fake's, which fire when the test advances it, frozen or not.
type freezeClock struct {
	*clocktest.Clock
	mu      sync.Mutex
	thaw    chan struct{} // non-nil while frozen; closed by unfreeze
	blocked int           // callers of Now waiting for the thaw
	reads   int           // calls of Now
}

func (c *freezeClock) Now() time.Time {
	c.mu.Lock()
	c.reads++
	thaw := c.thaw
	if thaw != nil {
		c.blocked++
	}
	c.mu.Unlock()
	if thaw != nil {
		<-thaw
		c.mu.Lock()
		c.blocked--
		c.mu.Unlock()
	}
	return c.Clock.Now()
}

func (c *freezeClock) freeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.thaw = make(chan struct{})
}

func (c *freezeClock) unfreeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.thaw)
	c.thaw = nil
}

func (c *freezeClock) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blocked
}

func (c *freezeClock) readCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// TestPausedLeaderKeepsLeases is finding 4 of issue 14, driven by a fake
// clock on a one-node cluster: the leader's advancer is paused for longer
// than the slack (it is stuck reading the clock when its tick fires), a
// client extends the lease at the end of the pause, and the pause ends.
// Without the freshness gate the extend was applied at the pre-pause
// global time, the first advance after the pause jumped by the pause, and
// the lease was released before t0 + d, t0 being the call's start on the
// caller's clock (the fake clock, which is real time here). With it, the
// lease is kept until t0 + d and released after.
func TestPausedLeaderKeepsLeases(t *testing.T) {
	const (
		tick  = time.Second
		d     = 10 * time.Second
		pause = 5 * tick // > slack (3 ticks with the default AdvanceTimeout)
	)
	wall := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := &freezeClock{Clock: clocktest.New(wall)}
	cfg := nodeConfig(t, "node-1", t.TempDir(), true)
	cfg.Clock, cfg.Tick = clk, tick
	n := openNode(t, cfg)
	waitLeader(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	// settle waits until the advancer is between ticks: its timer armed,
	// so the advance of the last tick has been applied (or has failed).
	settle := func() {
		t.Helper()
		if err := clk.WaitForWaiters(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	settle()
	cl := &client{nodes: []*raftnode.Node{n}}
	cl.must(t, lease.RegisterUnit{Name: "db/0", TokenHash: lease.HashToken("db/0")})
	cl.must(t, claim("db/0", d))

	// The pause: the advancer's tick fires while it cannot read the clock.
	clk.freeze()
	clk.Advance(pause)
	testutil.WaitUntil(t, testWait, "the advancer to be stuck in the pause", func() bool { return clk.waiting() == 1 })
	t0 := clk.Clock.Now() // the client starts its call at the end of the pause
	type answer struct {
		res lease.Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := n.Apply(ctx, extend("db/0", d))
		done <- answer{res, err}
	}()
	// Let the extend get as far as it can before the pause ends: applied
	// (it did not read the clock) or stuck reading it too.
	var got answer
	testutil.WaitUntil(t, testWait, "the extend to be applied or to read the clock", func() bool {
		select {
		case got = <-done:
			done <- got
			return true
		default:
			return clk.waiting() == 2
		}
	})
	clk.unfreeze()
	got = <-done
	if got.err != nil || got.res.Err != nil {
		t.Fatalf("extend after the pause: %v, %v", got.err, got.res.Err)
	}
	settle()
	t.Logf("extend started at T+%v applied with expiry T+%v; global time now T+%v",
		t0.Sub(wall), got.res.Lease.Expiry.Sub(wall), n.FSM().GlobalTime().Sub(wall))

	// Real time runs on, a tick at a time: the lease may go only once the
	// extend's guarantee t0 + d has passed, and must go within a slack and
	// a tick after it (else this test drove the time too little).
	end := t0.Add(d + 3*tick + 2*tick)
	for clk.Clock.Now().Before(end) {
		clk.Advance(tick)
		settle()
		now := clk.Clock.Now()
		l, _ := n.FSM().Lease("db")
		if l.Holder == "db/0" {
			continue
		}
		if now.Before(t0.Add(d)) {
			t.Fatalf("lease lost at T+%v (global time T+%v), before the extend's guarantee T+%v (started at T+%v for %v)",
				now.Sub(wall), n.FSM().GlobalTime().Sub(wall), t0.Add(d).Sub(wall), t0.Sub(wall), d)
		}
		t.Logf("lease released at T+%v, guarantee T+%v", now.Sub(wall), t0.Add(d).Sub(wall))
		return
	}
	t.Fatalf("lease still held at T+%v, past its guarantee T+%v and the slack", clk.Clock.Now().Sub(wall), t0.Add(d).Sub(wall))
}

// TestStaleLeaderHoldsLeaseCommands: on a leader whose newest applied
// advance is older than Slack - Tick on its clock, a claim or extend is
// held until the advancer's next advance is applied, and then stamped
// with that time; if none comes within a slack it is refused, unproposed,
// with ErrRetryable. Other commands are not held.
func TestStaleLeaderHoldsLeaseCommands(t *testing.T) {
	const (
		tick = time.Second
		d    = 10 * time.Second
	)
	wall := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := &freezeClock{Clock: clocktest.New(wall)}
	cfg := nodeConfig(t, "node-1", t.TempDir(), true)
	// Slack 1.5 s, so the gate's limit is 500 ms: less than a tick.
	cfg.Clock, cfg.Tick, cfg.AdvanceTimeout = clk, tick, 500*time.Millisecond
	n := openNode(t, cfg)
	waitLeader(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := clk.WaitForWaiters(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cl := &client{nodes: []*raftnode.Node{n}}
	cl.must(t, lease.RegisterUnit{Name: "db/0", TokenHash: lease.HashToken("db/0")})
	cl.must(t, claim("db/0", d))

	// 700 ms after the last advance, and its next is 300 ms away.
	clk.Advance(700 * time.Millisecond)
	before := n.FSM().Index()
	_, err := n.Apply(ctx, extend("db/0", d))
	if !errors.Is(err, raftnode.ErrRetryable) {
		t.Fatalf("extend on a stale leader: %v, want ErrRetryable", err)
	}
	if got := n.FSM().Index(); got != before {
		t.Fatalf("refused extend was proposed: index %d -> %d", before, got)
	}
	if res, err := n.Apply(ctx, lease.SetConfig{App: "db", Changes: map[string]string{"k": "v"}}); err != nil || res.Err != nil {
		t.Fatalf("set-config on a stale leader: %v, %v; only claims and extends are held", err, res.Err)
	}

	// Held this time: once the gate has read the clock, the tick comes.
	reads := clk.readCount()
	type answer struct {
		res lease.Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := n.Apply(ctx, claim("db/0", d))
		done <- answer{res, err}
	}()
	testutil.WaitUntil(t, testWait, "the gate to read the clock", func() bool { return clk.readCount() > reads })
	clk.Advance(300 * time.Millisecond)
	got := <-done
	if got.err != nil || got.res.Err != nil {
		t.Fatalf("held claim: %v, %v", got.err, got.res.Err)
	}
	if start := got.res.Lease.Start; !start.Equal(wall.Add(tick)) {
		t.Errorf("held claim stamped T+%v, want the next advance's T+%v", start.Sub(wall), tick)
	}
}
