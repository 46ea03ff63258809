package controller_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease"
)

// runningNode is a node run by controller.Run.
type runningNode struct {
	c      *controller.Controller // nil if Run failed before it served
	stop   context.CancelFunc
	result <-chan error
}

// runNode calls controller.Run for the node o describes and waits until
// it serves its API or Run returns.
func runNode(t *testing.T, o nodeOpts) runningNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	served := make(chan *controller.Controller, 1)
	result := make(chan error, 1)
	go func() {
		result <- controller.Run(ctx, nodeConfig(t, o), func(c *controller.Controller) error {
			served <- c
			return nil
		})
	}()
	n := runningNode{stop: cancel, result: result}
	select {
	case n.c = <-served:
	case err := <-result:
		result <- err
		close(served)
	case <-time.After(30 * time.Second):
		t.Fatal("controller.Run neither served nor returned")
	}
	return n
}

// wait waits for Run to return.
func (n runningNode) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-n.result:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("controller.Run did not return")
		return nil
	}
}

// TestRunStopsEverything runs a controller node with controller.Run and
// ends it each way it can end; once Run has returned (and the test's
// other nodes are closed) no goroutine may be left.
func TestRunStopsEverything(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run runs the node under test to its end, and returns Run's
		// error; it closes every other node it started.
		run   func(t *testing.T) error
		check func(t *testing.T, err error)
	}{{
		name: "stopped",
		run: func(t *testing.T) error {
			n := runNode(t, nodeOpts{})
			waitWritable(t, n.c)
			n.stop()
			return n.wait(t)
		},
		check: func(t *testing.T, err error) {
			if err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
		},
	}, {
		name: "join refused once the API serves",
		run: func(t *testing.T) error {
			leader, _ := bootstrap(t, nodeOpts{})
			n := runNode(t, nodeOpts{join: leader.APIAddr(), adminToken: "not-the-admin-token"})
			err := n.wait(t)
			closeNode(t, leader)
			return err
		},
		check: func(t *testing.T, err error) {
			if !errors.Is(err, client.ErrUnauthorized) || !strings.HasPrefix(err.Error(), "cannot join controller at ") {
				t.Fatalf("Run = %v, want the join refused", err)
			}
		},
	}, {
		name: "the node fails: its cluster moved past its protocol",
		run:  runFailingNode,
		check: func(t *testing.T, err error) {
			if !errors.Is(err, lease.ErrVersionUnsupported) || !strings.HasPrefix(err.Error(), "cannot run raft node: ") {
				t.Fatalf("Run = %v, want the node's failure", err)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			err := tc.run(t)
			tc.check(t, err)
			goleak.VerifyNone(t, ignore)
		})
	}
}

// runFailingNode makes a node fail while it runs: in a cluster at
// protocol 1, node 3 (1..2) stops; node 1 comes back as 1..2, so the
// version rises to 2; node 3 comes back with a 1..1 binary, catches up and
// fails. It returns node 3's Run error.
func runFailingNode(t *testing.T) error {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	n1, admin := bootstrap(t, nodeOpts{dataDir: dirs[0], protoMax: 1})
	n2 := startNode(t, nodeOpts{dataDir: dirs[1], join: n1.APIAddr(), adminToken: admin, protoMax: 2})
	n3 := startNode(t, nodeOpts{dataDir: dirs[2], join: n1.APIAddr(), adminToken: admin, protoMax: 2})
	testutil.WaitUntil(t, 20*time.Second, "node 3 to know all three members", func() bool {
		return len(n3.Node().FSM().Members()) == 3
	})
	closeNode(t, n3)
	closeNode(t, n1)
	n1 = startNode(t, nodeOpts{dataDir: dirs[0], protoMax: 2})
	waitVersion(t, n2, 2)
	old := runNode(t, nodeOpts{dataDir: dirs[2], join: n2.APIAddr(), adminToken: admin, protoMax: 1})
	err := old.wait(t)
	closeNode(t, n1)
	closeNode(t, n2)
	return err
}
