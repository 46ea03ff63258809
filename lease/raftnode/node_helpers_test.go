package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/lease/raftnode"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease"
)

// Raft timings for tests: fast enough to keep the package quick, slow
// enough for -race on two busy cores.
const (
	testTick         = 50 * time.Millisecond
	testApplyTimeout = 2 * time.Second
	testHeartbeat    = 200 * time.Millisecond
	testWait         = 15 * time.Second // bound on waiting for any cluster event
)

// testLogWriter forwards to t.Log until the test's cleanups end, then
// drops: raft's goroutines may log while they wind down.
type testLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	open bool
}

func newTestLogger(t testing.TB) zerolog.Logger {
	w := &testLogWriter{t: t, open: true}
	t.Cleanup(func() { // registered first, so it runs last
		w.mu.Lock()
		defer w.mu.Unlock()
		w.open = false
	})
	return zerolog.New(zerolog.ConsoleWriter{Out: w, NoColor: true, TimeFormat: "15:04:05.000"}).
		With().Timestamp().Logger().Level(zerolog.InfoLevel)
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open {
		w.t.Log(string(p))
	}
	return len(p), nil
}

func nodeConfig(t testing.TB, id, dir string, bootstrap bool) raftnode.Config {
	return raftnode.Config{
		ID:                 id,
		DataDir:            dir,
		RaftAddr:           "127.0.0.1:0",
		TLS:                nodeTLS(t, mustCA(t)),
		APIAddr:            "http://" + id + ".example:8080",
		Bootstrap:          bootstrap,
		Clock:              clock.Real,
		Logger:             newTestLogger(t),
		Tick:               testTick,
		ApplyTimeout:       testApplyTimeout,
		HeartbeatTimeout:   testHeartbeat,
		ElectionTimeout:    testHeartbeat,
		LeaderLeaseTimeout: testHeartbeat / 2,
	}
}

func openNode(t testing.TB, cfg raftnode.Config) *raftnode.Node {
	t.Helper()
	n, err := raftnode.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open node %s: %v", cfg.ID, err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close %s: %v", n.ID(), err)
		}
	})
	return n
}

// waitLeader waits until one of nodes leads with its time started, and
// returns it.
func waitLeader(t testing.TB, nodes ...*raftnode.Node) *raftnode.Node {
	t.Helper()
	var leader *raftnode.Node
	testutil.WaitUntil(t, testWait, "a raft leader with the global time started", func() bool {
		for _, n := range nodes {
			if n != nil && n.IsLeader() && !n.FSM().GlobalTime().IsZero() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// retryable reports whether a Node.Apply error means "try again".
func retryable(err error) bool {
	return errors.Is(err, raftnode.ErrNotRaftLeader) || errors.Is(err, raftnode.ErrRetryable)
}

// client sends commands through whichever node leads, as the HTTP API
// will: it follows NotLeaderError and retries retryable errors.
type client struct {
	nodes []*raftnode.Node
	mu    sync.Mutex
	// maxCall is the longest single Node.Apply call seen.
	maxCall time.Duration
}

func (c *client) leader(hint string) *raftnode.Node {
	for _, n := range c.nodes {
		if n != nil && n.ID() == hint {
			return n
		}
	}
	for _, n := range c.nodes {
		if n != nil && n.IsLeader() {
			return n
		}
	}
	for _, n := range c.nodes {
		if n != nil {
			return n
		}
	}
	return nil
}

// apply retries op until it gets a Result or ctx ends.
func (c *client) apply(ctx context.Context, op lease.Op) (lease.Result, error) {
	hint := ""
	for {
		n := c.leader(hint)
		start := time.Now()
		res, err := n.Apply(ctx, op)
		c.note(time.Since(start))
		var nl *raftnode.NotLeaderError
		switch {
		case err == nil:
			return res, nil
		case errors.As(err, &nl):
			hint = nl.LeaderID
		case retryable(err), errors.Is(err, raftnode.ErrNodeClosed):
			hint = ""
		default:
			return res, err
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("gave up on %s: %w", op.Type(), err)
		}
		select { // back off a little, as a real client would
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (c *client) note(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxCall = max(c.maxCall, d)
}

func (c *client) must(t testing.TB, op lease.Op) lease.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	res, err := c.apply(ctx, op)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("%s %+v: %v", op.Type(), op, err)
	}
	return res
}

// waitIndex waits until n's FSM has applied index.
func waitIndex(t testing.TB, n *raftnode.Node, index uint64) {
	t.Helper()
	testutil.WaitUntil(t, testWait, fmt.Sprintf("%s to reach index %d", n.ID(), index), func() bool {
		return n.FSM().Index() >= index
	})
}
