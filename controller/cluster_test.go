package controller_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// startCluster bootstraps one node and joins two more through its API;
// it returns the nodes, the admin token and the data directories.
func startCluster(t *testing.T) ([]*controller.Controller, string, []string) {
	t.Helper()
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	n1, admin := bootstrap(t, nodeOpts{dataDir: dirs[0]})
	nodes := []*controller.Controller{n1}
	for _, dir := range dirs[1:] {
		nodes = append(nodes, startNode(t, nodeOpts{dataDir: dir, join: n1.APIAddr(), adminToken: admin}))
	}
	testutil.WaitUntil(t, 20*time.Second, "every node to know all three members", func() bool {
		for _, n := range nodes {
			if len(n.Node().FSM().Members()) != 3 {
				return false
			}
		}
		return true
	})
	return nodes, admin, dirs
}

// TestStoppingLeaderHandsOff: a raft leader that stops gracefully hands
// raft leadership to another voter first, so the cluster elects at once
// instead of after a heartbeat timeout; a stopping follower hands off
// nothing.
func TestStoppingLeaderHandsOff(t *testing.T) {
	logs := make([]*testutil.Buffer, 3)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	logs[0] = &testutil.Buffer{}
	n1, admin := bootstrap(t, nodeOpts{dataDir: dirs[0], logTo: logs[0]})
	nodes := []*controller.Controller{n1}
	for i, dir := range dirs[1:] {
		logs[i+1] = &testutil.Buffer{}
		nodes = append(nodes, startNode(t, nodeOpts{dataDir: dir, join: n1.APIAddr(), adminToken: admin, logTo: logs[i+1]}))
	}
	testutil.WaitUntil(t, 20*time.Second, "every node to know all three members", func() bool {
		for _, n := range nodes {
			if len(n.Node().FSM().Members()) != 3 {
				return false
			}
		}
		return true
	})
	leader, follower, other := roles(t, nodes)
	logOf := func(c *controller.Controller) *testutil.Buffer { return logs[slices.Index(nodes, c)] }
	const handed = "handed off raft leadership before stopping"

	const gained = "raft leadership gained"
	before := strings.Count(logOf(other).String(), gained)
	closeNode(t, follower)
	if strings.Contains(logOf(follower).String(), handed) {
		t.Fatalf("a follower said it handed off leadership:\n%s", logOf(follower))
	}
	if !leader.Node().IsLeader() {
		t.Fatal("stopping a follower moved raft leadership")
	}
	// Two voters of three are left; the leader hands off to the other one.
	closeNode(t, leader)
	if out := logOf(leader).String(); !strings.Contains(out, handed) {
		t.Fatalf("the stopping leader did not hand off raft leadership:\n%s", out)
	}
	// The remaining node won the election the leader started for it, with
	// the leader's vote: alone of three voters now, it could not have won
	// one after the leader stopped.
	testutil.WaitUntil(t, 10*time.Second, "the remaining node to have gained raft leadership", func() bool {
		return strings.Count(logOf(other).String(), gained) > before
	})
}

// roles returns the raft leader and the two followers.
func roles(t *testing.T, nodes []*controller.Controller) (leader, follower, other *controller.Controller) {
	t.Helper()
	var followers []*controller.Controller
	for _, n := range nodes {
		if n.Node().IsLeader() {
			leader = n
		} else {
			followers = append(followers, n)
		}
	}
	if leader == nil || len(followers) != 2 {
		t.Fatal("no single raft leader")
	}
	return leader, followers[0], followers[1]
}

// TestFollowerForwardsWrites: a client that only knows a follower can do
// every write; reads and blocking queries are answered by the follower.
func TestFollowerForwardsWrites(t *testing.T) {
	nodes, admin, _ := startCluster(t)
	leader, follower, other := roles(t, nodes)
	ctx := ctxTimeout(t, 60*time.Second)
	op := newClient(t, admin, follower.APIAddr())
	if err := op.RegisterUnit(ctx, "db/0", tokDB0, nil); err != nil {
		t.Fatalf("register through a follower: %v", err)
	}
	testutil.WaitUntil(t, 10*time.Second, "the registration to reach the follower", func() bool {
		_, ok := follower.Node().FSM().Unit("db/0")
		return ok
	})
	db0 := newClient(t, tokDB0, follower.APIAddr())
	l, err := db0.Claim(ctx, "db", "db/0", time.Minute)
	if err != nil || l.Holder != "db/0" || l.Term != 1 {
		t.Fatalf("claim through a follower: %+v, %v", l, err)
	}
	if l, _ := leader.Node().FSM().Lease("db"); l.Holder != "db/0" {
		t.Errorf("the leader's FSM has %+v", l)
	}
	// A blocking query on the third node waits for the claim to reach it.
	claimed := leader.Node().FSM().ApplicationIndex("db")
	l, idx, err := newClient(t, tokDB0, other.APIAddr()).WatchLease(ctx, "db", claimed-1, 10*time.Second)
	if err != nil || l.Holder != "db/0" || idx != claimed {
		t.Errorf("watch on another follower: %+v %d %v", l, idx, err)
	}
	// A denial comes back through the forwarding intact.
	if err := db0.SetLeaderSettings(ctx, "db", "db/0", 9, map[string]string{"a": "b"}); !errors.Is(err, api.ErrNotLeader) {
		t.Errorf("fenced write through a follower: %v", err)
	}
	// A write that was already forwarded once is not forwarded again.
	_, follower, _ = roles(t, nodes)
	resp := newRaw(t, follower.APIAddr()).json("POST", "/v1/leases/db/extend", tokDB0,
		`{"unit":"db/0","duration":"1m"}`, api.HeaderForwarded, "somewhere")
	if resp.status != http.StatusServiceUnavailable {
		t.Errorf("twice-forwarded write: %d %s", resp.status, resp.body)
	}
	checkErrorBody(t, resp, api.CodeUnavailable)
	// Every answer to a write names the raft leader's API address, so a
	// client can send its next writes there; reads carry no hint.
	leader, follower, _ = roles(t, nodes)
	for _, n := range []*controller.Controller{follower, leader} {
		resp = newRaw(t, n.APIAddr()).json("POST", "/v1/leases/db/extend", tokDB0, `{"unit":"db/0","duration":"1m"}`)
		if got := resp.header.Get(api.HeaderLeader); resp.status != http.StatusOK || got != leader.APIAddr() {
			t.Errorf("write on %s: status %d, leader hint %q, want %q", n.APIAddr(), resp.status, got, leader.APIAddr())
		}
	}
	if resp = newRaw(t, follower.APIAddr()).json("GET", "/v1/leases/db", tokDB0, ""); resp.header.Get(api.HeaderLeader) != "" {
		t.Errorf("read answered with a leader hint %q", resp.header.Get(api.HeaderLeader))
	}
	// A caller the cluster does not know learns nothing from it.
	for _, n := range []*controller.Controller{follower, leader} {
		resp = newRaw(t, n.APIAddr()).json("POST", "/v1/leases/db/extend", "unknown-token-0123456789", `{"unit":"db/0","duration":"1m"}`)
		if resp.status != http.StatusUnauthorized || resp.header.Get(api.HeaderLeader) != "" {
			t.Errorf("unknown token's write on %s: %d, leader hint %q", n.APIAddr(), resp.status, resp.header.Get(api.HeaderLeader))
		}
	}

	// A unit registered a moment ago can use any node at once: a follower
	// that does not know the token yet forwards the request to the leader.
	onLeader := newClient(t, admin, leader.APIAddr())
	for i := range 20 {
		unit, tok := fmt.Sprintf("web/%d", i), fmt.Sprintf("web-token-%d-0123456789abcdef", i)
		if err := onLeader.RegisterUnit(ctx, unit, tok, nil); err != nil {
			t.Fatal(err)
		}
		if err := newClient(t, tok, other.APIAddr()).SetUnitStatus(ctx, unit, "agent", "idle", ""); err != nil {
			t.Fatalf("new unit %s on a follower: %v", unit, err)
		}
	}
	resp = newRaw(t, other.APIAddr()).json("GET", "/v1/leases/db", "unknown-token-0123456789", "")
	if resp.status != http.StatusUnauthorized {
		t.Errorf("unknown token on a follower: %d %s", resp.status, resp.body)
	}
	checkErrorBody(t, resp, api.CodeUnauthorized)

	st, err := op.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, n := range st.Controller.Nodes {
		states = append(states, n.RaftState)
	}
	slices.Sort(states)
	if !slices.Equal(states, []string{"follower", "follower", "leader"}) {
		t.Errorf("node states %v", st.Controller.Nodes)
	}
}

// TestRemoveNode: an operator removes a node through a follower.
func TestRemoveNode(t *testing.T) {
	nodes, admin, _ := startCluster(t)
	ctx := ctxTimeout(t, 60*time.Second)
	op := newClient(t, admin, nodes[1].APIAddr())
	gone := nodes[2].Node().ID()
	if err := op.RemoveNode(ctx, gone); err != nil {
		t.Fatal(err)
	}
	got, err := op.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || slices.ContainsFunc(got, func(n api.Node) bool { return n.ID == gone }) {
		t.Errorf("nodes after removing %s: %+v", gone, got)
	}
	if _, ok := nodes[0].Node().FSM().Members()[gone]; ok {
		t.Errorf("%s is still a member", gone)
	}
	// A client that follows the members drops the removed node's address
	// at its next answer.
	fc, err := client.New(client.Config{Addresses: []string{nodes[2].APIAddr(), nodes[1].APIAddr()}, Token: admin, FollowMembers: true, CACert: caBundle()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fc.Close)
	testutil.WaitUntil(t, 10*time.Second, "the followed members to drop "+gone, func() bool {
		if _, err := fc.Nodes(ctx); err != nil {
			return false
		}
		return client.SameAddresses(fc.Addresses(), []string{nodes[0].APIAddr(), nodes[1].APIAddr()})
	})
}

// TestAnswersCarryTheMembers: every answer to an authenticated request,
// on every node, lists the three members' API addresses; an anonymous
// caller is told nothing.
func TestAnswersCarryTheMembers(t *testing.T) {
	nodes, admin, _ := startCluster(t)
	var want []string
	for _, n := range nodes {
		want = append(want, n.APIAddr())
	}
	slices.Sort(want)
	for _, n := range nodes {
		raw := newRaw(t, n.APIAddr())
		if got := raw.json("GET", "/v1/status", admin, "").header.Get(api.HeaderMembers); got != strings.Join(want, ",") {
			t.Errorf("node %s answers members %q, want %q", n.Node().ID(), got, strings.Join(want, ","))
		}
		if got := raw.json("GET", "/v1/status", "", "").header.Get(api.HeaderMembers); got != "" {
			t.Errorf("node %s told an anonymous caller the members: %q", n.Node().ID(), got)
		}
	}
}

// TestRestartJoinedNode: a node that joined earlier restarts from its data
// directory without needing the node it joined through, and catches up.
func TestRestartJoinedNode(t *testing.T) {
	nodes, admin, dirs := startCluster(t)
	closeNode(t, nodes[2])
	ctx := ctxTimeout(t, 30*time.Second)
	if err := newClient(t, admin, nodes[1].APIAddr()).RegisterUnit(ctx, "db/0", tokDB0, nil); err != nil {
		t.Fatal(err)
	}
	back := startNode(t, nodeOpts{dataDir: dirs[2], join: "127.0.0.1:1", adminToken: admin})
	testutil.WaitUntil(t, 20*time.Second, "the restarted node to catch up", func() bool {
		_, ok := back.Node().FSM().Unit("db/0")
		return ok
	})
	if l, err := newClient(t, tokDB0, back.APIAddr()).Claim(ctx, "db", "db/0", time.Minute); err != nil || l.Holder != "db/0" {
		t.Errorf("claim through the restarted node: %+v, %v", l, err)
	}
}

// TestNodeWithoutLeaderDoesNotSayUnauthorized: a node that has lost its
// quorum cannot tell an unknown token from a registration it has not
// applied, so it answers 503 (the client retries elsewhere) and never 401,
// which an agent takes as final and stops on. Known tokens still read.
func TestNodeWithoutLeaderDoesNotSayUnauthorized(t *testing.T) {
	nodes, admin, _ := startCluster(t)
	ctx := ctxTimeout(t, 60*time.Second)
	if err := newClient(t, admin, nodes[0].APIAddr()).RegisterUnit(ctx, "db/0", tokDB0, nil); err != nil {
		t.Fatal(err)
	}
	// The survivor must know the unit before the others go.
	survivor := nodes[2]
	testutil.WaitUntil(t, 10*time.Second, "the registration to reach the survivor", func() bool {
		_, ok := survivor.Node().FSM().Unit("db/0")
		return ok
	})
	for _, n := range nodes[:2] {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitUntil(t, 20*time.Second, "the survivor to know no leader", func() bool {
		id, _ := survivor.Node().Leader()
		return id == "" && !survivor.Node().IsLeader()
	})
	raw := newRaw(t, survivor.APIAddr())
	resp := raw.json("GET", "/v1/leases/db", "unknown-token-0123456789", "")
	if resp.status != http.StatusServiceUnavailable {
		t.Errorf("unknown token without a leader: %d %s, want 503", resp.status, resp.body)
	}
	checkErrorBody(t, resp, api.CodeUnavailable)
	if resp := raw.json("GET", "/v1/leases/db", tokDB0, ""); resp.status != http.StatusOK {
		t.Errorf("a known unit's read without a leader: %d %s", resp.status, resp.body)
	}
}
