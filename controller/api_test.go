package controller_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/internal/clock"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease"
)

// TestUnitLifecycle drives every write an agent and an operator make, and
// checks each one changed what it should.
func TestUnitLifecycle(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 60*time.Second)
	op := newClient(t, admin, c.APIAddr())
	db0 := newClient(t, tokDB0, c.APIAddr())
	fsm := c.Node().FSM()

	// Config: schema from registration, values checked against it.
	cfg, err := db0.Config(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Schema["port"].Type != "int" || *cfg.Schema["port"].Default != "80" || len(cfg.Values) != 0 {
		t.Errorf("config %+v", cfg)
	}
	if err := op.SetConfig(ctx, "db", map[string]string{"port": "5432"}); err != nil {
		t.Fatal(err)
	}
	if err := op.SetConfig(ctx, "db", map[string]string{"port": "x"}); !errors.Is(err, api.ErrInvalidConfig) {
		t.Errorf("bad config value: %v, want invalid config", err)
	}
	// Leader settings: fenced by term.
	if err := db0.SetLeaderSettings(ctx, "db", "db/0", 1, map[string]string{"primary": "db/0"}); err != nil {
		t.Fatal(err)
	}
	if err := db0.SetLeaderSettings(ctx, "db", "db/0", 2, map[string]string{"primary": "x"}); !errors.Is(err, api.ErrNotLeader) {
		t.Errorf("stale term: %v, want not leader", err)
	}
	ls, err := db0.LeaderSettings(ctx, "db")
	if err != nil || ls.Values["primary"] != "db/0" || ls.Version != 2 { // versions start at 1
		t.Errorf("leader settings %+v, %v", ls, err)
	}
	// Statuses and version.
	for _, err := range []error{
		db0.SetUnitStatus(ctx, "db/0", "workload", "active", "ready"),
		db0.SetUnitStatus(ctx, "db/0", "agent", "idle", ""),
		db0.SetApplicationStatus(ctx, "db", "db/0", 1, "active", "serving"),
		db0.SetApplicationVersion(ctx, "db/0", "16.2"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db0.Extend(ctx, "db", "db/0", 2*time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	u, _ := fsm.Unit("db/0")
	a, _ := fsm.Application("db")
	if u.Workload.Status != "active" || u.Agent.Status != "idle" || u.ApplicationVersion != "16.2" ||
		a.Status.Message != "serving" || a.Config.Values["port"] != "5432" || a.Lease.Duration != 2*time.Hour {
		t.Errorf("state after writes: unit %+v app %+v", u, a)
	}
	// Operator: resolved and removal show in the unit's view.
	view, idx, err := db0.WatchUnit(ctx, "db/0", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Resolved(ctx, "db/0", true); err != nil {
		t.Fatal(err)
	}
	if err := op.RemoveUnit(ctx, "db/0"); err != nil {
		t.Fatal(err)
	}
	view2, idx2, err := db0.WatchUnit(ctx, "db/0", idx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := api.UnitView{Life: "dying", ResolvedID: 1, ResolvedNoRetry: true, ConfigVersion: 2, LeaderSettingsVersion: 2, Lease: view.Lease,
		Operations: []api.QueuedOperation{}}
	if idx2 <= idx {
		t.Errorf("index %d after %d", idx2, idx)
	}
	if view2.Life == "alive" { // the watch may wake on the first change only
		view2, _, err = db0.WatchUnit(ctx, "db/0", idx2, time.Minute)
	}
	if diff := cmp.Diff(want, view2); err != nil || diff != "" {
		t.Errorf("unit view (-want +got):\n%s %v", diff, err)
	}
	// The unit itself deregisters, releasing its lease.
	if err := db0.DeregisterUnit(ctx, "db/0"); err != nil {
		t.Fatal(err)
	}
	if l, _ := fsm.Lease("db"); !l.Vacant() || l.Term != 1 {
		t.Errorf("lease after deregistering the holder: %+v", l)
	}
	if _, err := db0.Config(ctx, "db"); !errors.Is(err, client.ErrUnauthorized) || err.Error() != "unauthorized" {
		t.Errorf("deregistered unit's token: %v, want unauthorized", err)
	}
}

// TestPinsAndStepDown: operator lease commands through the client.
func TestPinsAndStepDown(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 30*time.Second)
	op := newClient(t, admin, c.APIAddr())
	if err := op.Pin(ctx, "db", "upgrade", "maintenance", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := op.RequestStepDown(ctx, "db"); !errors.Is(err, api.ErrPinned) {
		t.Errorf("step-down while pinned: %v", err)
	}
	st, err := op.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pins := st.Applications["db"].Pinned
	if len(pins) != 1 || pins[0].Entity != "upgrade" || pins[0].Until == nil ||
		pins[0].Until.Sub(pins[0].Since) < 9*time.Minute {
		t.Errorf("pins %+v", pins)
	}
	if err := op.Unpin(ctx, "db", "upgrade"); err != nil {
		t.Fatal(err)
	}
	if err := op.RequestStepDown(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	l, _, err := newClient(t, tokDB0, c.APIAddr()).WatchLease(ctx, "db", 0, 0)
	if err != nil || !l.StepDown || l.Holder != "db/0" {
		t.Errorf("lease after step-down request: %+v %v", l, err)
	}
	if err := op.Pin(ctx, "web", "x", "", 0); !errors.Is(err, api.ErrNoLeader) || err.Error() != "application has no leader" {
		t.Errorf("pin of a vacant lease: %v", err)
	}
}

// TestLeaseAnswersCarryIndexes: claim and extend answers, refusals
// included, carry the raft index at which the lease was written or read,
// on the same scale as the watch's modify index, so an agent can order
// them.
func TestLeaseAnswersCarryIndexes(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 30*time.Second)
	db0, db1 := newClient(t, tokDB0, c.APIAddr()), newClient(t, tokDB1, c.APIAddr())
	l, extended, err := db0.ExtendWithIndex(ctx, "db", "db/0", time.Hour, 1)
	if err != nil || l.Holder != "db/0" || extended == 0 {
		t.Fatalf("extend = %+v at %d, %v", l, extended, err)
	}
	if _, watched, err := db1.WatchLease(ctx, "db", 0, 0); err != nil || watched != extended {
		t.Errorf("watch index %d, %v; want the extend's %d", watched, err, extended)
	}
	l, denied, err := db1.ClaimWithIndex(ctx, "db", "db/1", time.Minute)
	if !errors.Is(err, api.ErrClaimDenied) || l.Holder != "db/0" || denied <= extended {
		t.Errorf("denied claim = %+v at %d, %v; want db/0's lease, read after %d", l, denied, err, extended)
	}
	if err := newClient(t, admin, c.APIAddr()).RequestStepDown(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	l, pending, err := db0.ClaimWithIndex(ctx, "db", "db/0", time.Minute)
	if !errors.Is(err, api.ErrStepDownPending) || l.Holder != "db/0" || l.Term != 1 || !l.StepDown || pending <= denied {
		t.Errorf("claim by the holder stepping down = %+v at %d, %v; want its own lease, step-down pending, read after %d", l, pending, err, denied)
	}
}

// TestBlockingQuery: a watch returns as soon as the lease changes, and
// after its wait when nothing does.
func TestBlockingQuery(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 30*time.Second)
	db1 := newClient(t, tokDB1, c.APIAddr())
	_, idx, err := db1.WatchLease(ctx, "db", 0, 0)
	if err != nil || idx == 0 {
		t.Fatalf("index %d, %v", idx, err)
	}

	start := time.Now()
	l, idx2, err := db1.WatchLease(ctx, "db", idx, 300*time.Millisecond)
	if elapsed := time.Since(start); err != nil || idx2 != idx || elapsed < 300*time.Millisecond || elapsed > 10*time.Second {
		t.Errorf("idle watch: index %d (want %d) after %v, %v", idx2, idx, elapsed, err)
	}
	if l.Holder != "db/0" {
		t.Errorf("idle watch lease %+v", l)
	}

	type result struct {
		l   api.Lease
		idx uint64
		err error
	}
	got := make(chan result, 1)
	start = time.Now()
	go func() {
		l, i, err := db1.WatchLease(ctx, "db", idx, 20*time.Second)
		got <- result{l, i, err}
	}()
	if err := newClient(t, tokDB0, c.APIAddr()).Revoke(ctx, "db", "db/0", 1); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if elapsed := time.Since(start); r.err != nil || r.idx <= idx || r.l.Holder != "" || elapsed > 10*time.Second {
		t.Errorf("watch across a revoke: %+v after %v", r, elapsed)
	}
}

// TestStatusSchema: GET /v1/status has exactly DESIGN.md §5's shape, and a
// unit whose agent stops reporting turns lost.
func TestStatusSchema(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{lostAfter: 500 * time.Millisecond})
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 30*time.Second)
	if err := newClient(t, tokDB0, c.APIAddr()).SetUnitStatus(ctx, "db/0", "agent", "idle", ""); err != nil {
		t.Fatal(err)
	}
	resp := newRaw(t, c.APIAddr()).json("GET", "/v1/status", admin, "")
	var doc map[string]any
	mustJSON(t, resp.body, &doc)
	keys := func(v any) []string { return slices.Sorted(maps.Keys(v.(map[string]any))) }
	apps := doc["applications"].(map[string]any)
	db := apps["db"].(map[string]any)
	unit := db["units"].(map[string]any)["db/0"].(map[string]any)
	node := doc["controller"].(map[string]any)["nodes"].([]any)[0]
	for _, check := range []struct {
		got, want []string
	}{
		{keys(doc), []string{"applications", "controller", "relations"}},
		{keys(doc["controller"]), []string{"effective_version", "nodes"}},
		{keys(apps), []string{"db", "web"}},
		{keys(db), []string{"leader", "pinned", "status", "term", "units"}},
		{keys(unit), []string{"agent", "leader", "life", "workload"}},
		{keys(unit["agent"]), []string{"message", "since", "status"}},
		{keys(node), []string{"address", "id", "proto_max", "proto_min", "raft_address", "raft_state", "suffrage"}},
	} {
		if diff := cmp.Diff(check.want, check.got); diff != "" {
			t.Errorf("keys (-want +got):\n%s", diff)
		}
	}
	if db["leader"] != "db/0" || apps["web"].(map[string]any)["leader"] != nil || unit["leader"] != true {
		t.Errorf("leaders in %s", resp.body)
	}
	if v := doc["controller"].(map[string]any)["effective_version"]; v != float64(c.Node().FSM().EffectiveVersion()) || v == float64(0) {
		t.Errorf("effective version %v, want %d", v, c.Node().FSM().EffectiveVersion())
	}
	m := c.Node().FSM().Members()[c.Node().ID()]
	if n := node.(map[string]any); m.ProtoMax == 0 || n["proto_min"] != float64(m.ProtoMin) || n["proto_max"] != float64(m.ProtoMax) {
		t.Errorf("node protocol range %v..%v, want the member record's %d..%d", n["proto_min"], n["proto_max"], m.ProtoMin, m.ProtoMax)
	}
	if n := node.(map[string]any); n["address"] != c.APIAddr() || n["raft_state"] != "leader" {
		t.Errorf("node %v", n)
	}
	op := newClient(t, admin, c.APIAddr())
	testutil.WaitUntil(t, 10*time.Second, "db/0 to be lost", func() bool {
		st, err := op.Status(ctx)
		return err == nil && st.Applications["db"].Units["db/0"].Agent.Status == "lost"
	})
	st, _ := op.Status(ctx)
	if a := st.Applications["db"].Units["db/1"].Agent; a.Status != "allocating" {
		t.Errorf("a unit that never reported is %q, want allocating", a.Status)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Fatal(err)
	}
}

// TestBlockingQueryCap: beyond MaxBlocking concurrent blocking queries a
// node answers 503 busy (and the client would try another node).
func TestBlockingQueryCap(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	var logged testutil.Buffer
	srv, err := controller.NewServer(controller.Config{Node: c.Node(), AdminTokenHash: lease.HashToken(admin),
		Clock: clock.Real, Logger: zerolog.New(&logged), MaxBlocking: 1})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv.Handler())
	defer hs.Close()
	raw := &rawHTTP{t: t, base: hs.URL, hc: hs.Client()}
	idx := c.Node().FSM().ApplicationIndex("db")
	path := fmt.Sprintf("/v1/leases/db?index=%d", idx)

	ctx, cancel := context.WithCancel(t.Context())
	held := make(chan int, 1)
	go func() {
		for { // until it holds the only slot (a probe below may hold it briefly)
			req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL+path+"&wait=1m", nil)
			req.Header.Set("Authorization", "bearer "+tokDB0) // the scheme is case-insensitive
			resp, err := raw.hc.Do(req)
			if err != nil {
				held <- 0
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				held <- resp.StatusCode
				return
			}
		}
	}()
	testutil.WaitUntil(t, 10*time.Second, "a second blocking query to be refused", func() bool {
		return raw.json("GET", path+"&wait=10ms", tokDB0, "").status == http.StatusServiceUnavailable
	})
	resp := raw.json("GET", path+"&wait=10ms", tokDB0, "")
	checkErrorBody(t, resp, api.CodeBusy)
	// The operator hears of it once, not once per refusal.
	if n := strings.Count(logged.String(), `"message":"blocking query limit reached`); n != 1 {
		t.Errorf("%d warnings about the limit, want 1; log:\n%s", n, logged.String())
	}
	if !strings.Contains(logged.String(), `"max_blocking":1`) {
		t.Errorf("the warning does not name the limit:\n%s", logged.String())
	}
	if r := raw.json("GET", "/v1/leases/db", tokDB0, ""); r.status != http.StatusOK {
		t.Errorf("a non-blocking read was refused: %d %s", r.status, r.body)
	}
	cancel()
	if code := <-held; code == http.StatusOK {
		t.Errorf("the first query answered %d before any change", code)
	}
	testutil.WaitUntil(t, 10*time.Second, "the slot to be free", func() bool {
		return raw.json("GET", path+"&wait=10ms", tokDB0, "").status == http.StatusOK
	})
}

// TestEmptySchemaRefusesEveryKey: a charm without options registers an
// empty schema (not "no schema"), so every config key is refused.
func TestEmptySchemaRefusesEveryKey(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	ctx := ctxTimeout(t, 30*time.Second)
	op := newClient(t, admin, c.APIAddr())
	if err := op.RegisterUnit(ctx, "cache/0", tokWeb, map[string]api.Option{}); err != nil {
		t.Fatal(err)
	}
	if err := op.SetConfig(ctx, "cache", map[string]string{"x": "1"}); !errors.Is(err, api.ErrInvalidConfig) {
		t.Errorf("config key with an empty schema: %v", err)
	}
	cfg, err := op.Config(ctx, "cache")
	if err != nil || cfg.Schema == nil || len(cfg.Schema) != 0 {
		t.Errorf("config %+v, %v", cfg, err)
	}
}

// TestUnitWatchWakesOnItsApplicationAndItsEnd: a unit's blocking query
// waits on the unit and on its application, so a change to either wakes
// it, and so does the unit's deregistration (it then answers unknown-unit).
func TestUnitWatchWakesOnItsApplicationAndItsEnd(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 60*time.Second)
	db0 := newClient(t, tokDB0, c.APIAddr())
	_, idx, err := db0.WatchUnit(ctx, "db/0", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	const wait = 30 * time.Second // far longer than the test: only a change returns it
	type result struct {
		view api.UnitView
		idx  uint64
		err  error
		took time.Duration
	}
	watch := func(after uint64) <-chan result {
		got := make(chan result, 1)
		go func() {
			start := time.Now()
			v, i, err := db0.WatchUnit(ctx, "db/0", after, wait)
			got <- result{v, i, err, time.Since(start)}
		}()
		return got
	}
	// A change to the application only (its leader settings).
	got := watch(idx)
	if err := db0.SetLeaderSettings(ctx, "db", "db/0", 1, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.idx <= idx || r.took >= wait {
		t.Fatalf("watch across an application change: index %d (was %d) after %v, %v", r.idx, idx, r.took, r.err)
	}
	// Another unit's change leaves it waiting (its index has not moved);
	// the unit's own deregistration ends it.
	got = watch(r.idx)
	if err := newClient(t, tokDB1, c.APIAddr()).SetUnitStatus(ctx, "db/1", "agent", "idle", ""); err != nil {
		t.Fatal(err)
	}
	if err := newClient(t, admin, c.APIAddr()).DeregisterUnit(ctx, "db/0"); err != nil {
		t.Fatal(err)
	}
	r = <-got
	if !errors.Is(r.err, api.ErrUnknownUnit) || r.took >= wait {
		t.Errorf("watch across the unit's deregistration: %+v", r)
	}
}
