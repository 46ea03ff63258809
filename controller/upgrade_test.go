package controller_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/version"
	"github.com/uniter-dev/uniter/lease"
)

// waitVersion waits for node c's state to run effective version v.
func waitVersion(t *testing.T, c *controller.Controller, v uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if got, err := c.Node().FSM().WaitEffectiveVersion(ctx, v); err != nil || got != v {
		t.Fatalf("effective version %d (%v), want %d", got, err, v)
	}
}

// TestConditionalConfigNeedsProtocol2: a 1..1 node refuses the protocol-2
// feature with a clear 409; restarted on its data as 1..2 it records its
// range and the version rises, and the feature works.
func TestConditionalConfigNeedsProtocol2(t *testing.T) {
	dir := t.TempDir()
	c, admin := bootstrap(t, nodeOpts{dataDir: dir, protoMax: 1})
	ctx := ctxTimeout(t, 30*time.Second)
	op := newClient(t, admin, c.APIAddr())
	if err := op.RegisterUnit(ctx, "db/0", tokDB0, nil); err != nil {
		t.Fatal(err)
	}
	r := newRaw(t, c.APIAddr()).json("PATCH", "/v1/applications/db/config", admin, `{"changes":{"a":"1"},"if_version":1}`)
	var body api.Error
	mustJSON(t, r.body, &body)
	want := "conditional config set (if_version) needs cluster protocol 2; the cluster runs 1 (upgrade every controller node)"
	if r.status != http.StatusConflict || body.Code != "needs-protocol" || body.Error != want {
		t.Fatalf("protocol-2 feature at protocol 1: %d %s", r.status, r.body)
	}
	if cfg, _ := op.Config(ctx, "db"); len(cfg.Values) != 0 {
		t.Fatalf("the refused change was applied: %v", cfg.Values)
	}
	// The protocol-1 form works as ever.
	if err := op.SetConfig(ctx, "db", map[string]string{"a": "0"}); err != nil {
		t.Fatal(err)
	}
	closeNode(t, c)

	c = startNode(t, nodeOpts{dataDir: dir, protoMax: 2})
	waitVersion(t, c, 2)
	op = newClient(t, admin, c.APIAddr())
	cfg, err := op.Config(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.SetConfigIf(ctx, "db", map[string]string{"a": "1"}, cfg.Version); err != nil {
		t.Fatalf("conditional set at protocol 2: %v", err)
	}
	err = op.SetConfigIf(ctx, "db", map[string]string{"a": "2"}, cfg.Version)
	if !errors.Is(err, api.ErrStaleConfig) || client.StatusCode(err) != http.StatusConflict {
		t.Fatalf("conditional set on a stale version: %v", err)
	}
	if now, _ := op.Config(ctx, "db"); now.Values["a"] != "1" || now.Version != cfg.Version+1 {
		t.Fatalf("config %+v", now)
	}
}

// TestJoinRefusesTooOldNode: a 1..1 node cannot join a cluster that runs
// protocol 2; the leader refuses it before AddVoter, with a clear error
// that Start returns.
func TestJoinRefusesTooOldNode(t *testing.T) {
	leader, admin := bootstrap(t, nodeOpts{protoMax: 2})
	waitVersion(t, leader, 2)
	_, err := controller.Start(t.Context(), controller.NodeConfig{
		DataDir: t.TempDir(), ID: "old", APIAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		Join: leader.APIAddr(), AdminToken: admin, JoinCACert: caBundle(), ProtoMin: 1, ProtoMax: 1, Clock: clock.Real,
		Logger: zerolog.New(zerolog.NewTestWriter(t)), Tune: fastRaft,
	})
	if !errors.Is(err, api.ErrVersionUnsupported) ||
		!strings.Contains(err.Error(), "node old speaks controller protocol 1..1 but the cluster runs 2: upgrade uniter on node old") {
		t.Fatalf("join of a 1..1 node = %v", err)
	}
	servers, err := leader.Node().Servers(t.Context())
	if err != nil || len(servers) != 1 {
		t.Fatalf("raft configuration %+v (%v): the old node was added", servers, err)
	}
	if _, ok := leader.Node().FSM().Members()["old"]; ok {
		t.Fatal("the old node was recorded")
	}
}

// TestAnnounce: the node credential may announce a member (and nothing
// else); announcing an unknown node, at another raft address, or with a
// range that excludes the effective version is refused.
func TestAnnounce(t *testing.T) {
	// The binary speaks 1..version.ProtocolMax, which may be below what the
	// state machine implements (lease.MaxProtocol).
	_, binMax, err := version.Protocol()
	if err != nil {
		t.Fatal(err)
	}
	c, admin := bootstrap(t, nodeOpts{})
	waitVersion(t, c, binMax)
	hash := lease.HashToken(admin)
	nodeTok := controller.NodeToken(hash)
	ctx := ctxTimeout(t, 30*time.Second)
	n := c.Node()
	req := api.AnnounceRequest{ID: n.ID(), RaftAddr: n.RaftAddr(), APIAddr: c.APIAddr(), ProtoMin: 1, ProtoMax: binMax}
	if err := newClient(t, nodeTok, c.APIAddr()).Announce(ctx, req); err != nil {
		t.Fatalf("announce with the node credential: %v", err)
	}
	if err := newClient(t, admin, c.APIAddr()).RegisterUnit(ctx, "db/0", tokDB0, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		token  string
		req    api.AnnounceRequest
		status int
		want   string
	}{
		{"unit token", tokDB0, req, http.StatusForbidden, "may not announce"},
		{"unknown node", nodeTok, api.AnnounceRequest{ID: "n9", RaftAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2", ProtoMin: 1, ProtoMax: 2},
			http.StatusNotFound, `no controller node "n9"`},
		{"other raft address", nodeTok, api.AnnounceRequest{ID: n.ID(), RaftAddr: "127.0.0.1:1", APIAddr: c.APIAddr(), ProtoMin: 1, ProtoMax: 2},
			http.StatusBadRequest, "has raft address"},
		{"too old", nodeTok, api.AnnounceRequest{ID: n.ID(), RaftAddr: n.RaftAddr(), APIAddr: c.APIAddr(), ProtoMin: 1, ProtoMax: 1},
			http.StatusConflict, fmt.Sprintf("but the cluster runs %d", binMax)},
		{"bad range", nodeTok, api.AnnounceRequest{ID: n.ID(), RaftAddr: n.RaftAddr(), APIAddr: c.APIAddr(), ProtoMin: 2, ProtoMax: 1},
			http.StatusBadRequest, "invalid protocol range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := newClient(t, tc.token, c.APIAddr()).Announce(ctx, tc.req)
			if client.StatusCode(err) != tc.status || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("announce = %v (%d), want %d and %q", err, client.StatusCode(err), tc.status, tc.want)
			}
		})
	}
	if m := n.FSM().Members()[n.ID()]; m.ProtoMin != 1 || m.ProtoMax != binMax {
		t.Fatalf("member record %+v", m)
	}
	// The node credential can do nothing else.
	nodeCl := newClient(t, nodeTok, c.APIAddr())
	if err := nodeCl.RegisterUnit(ctx, "db/1", "db1-token-0123456789abcdef", nil); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("register a unit with the node credential: %v", err)
	}
	if _, err := nodeCl.Status(ctx); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("status with the node credential: %v", err)
	}
	if _, err := nodeCl.Claim(ctx, "db", "db/0", time.Minute); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("claim with the node credential: %v", err)
	}
	if err := newClient(t, admin, c.APIAddr()).RegisterUnit(ctx, "db/1", nodeTok, nil); client.StatusCode(err) != http.StatusBadRequest {
		t.Errorf("a unit token equal to the node credential: %v", err)
	}
	// The nodes view shows ranges and the effective version.
	view, _, err := newClient(t, admin, c.APIAddr()).Cluster(ctx, 0, 0)
	if err != nil || view.EffectiveVersion != binMax || len(view.Nodes) != 1 || view.Nodes[0].ProtoMax != binMax {
		t.Fatalf("cluster view %+v, %v", view, err)
	}
}
