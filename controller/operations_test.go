package controller_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/charm"
	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
)

const testActionsYAML = `
greet:
  description: Say hello.
  params:
    name: {type: string, minLength: 1}
    greeting: {type: string, default: hello}
  required: [name]
  additionalProperties: false
backup:
  description: Back up.
`

// wireActions are the actions of testActionsYAML as unit add sends them.
func wireActions(t *testing.T) map[string]api.ActionSpec {
	t.Helper()
	actions, err := charm.ParseActions("db", []byte(testActionsYAML))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]api.ActionSpec{}
	for name, a := range actions {
		schema, err := json.Marshal(a.Schema)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = api.ActionSpec{Description: a.Description, Schema: schema}
	}
	return out
}

// seedActions is seed at protocol 4, with db's units registering the
// actions of testActionsYAML; db/0 leads db.
func seedActions(t *testing.T) (*controller.Controller, string) {
	t.Helper()
	c, admin := bootstrap(t, nodeOpts{protoMax: 4})
	waitVersion(t, c, 4)
	seed(t, c.APIAddr(), admin)
	op := newClient(t, admin, c.APIAddr())
	for unit, tok := range map[string]string{"db/0": tokDB0, "db/1": tokDB1} {
		if err := op.Register(ctxTimeout(t, 10*time.Second), api.RegisterUnitRequest{Unit: unit, Token: tok, Actions: wireActions(t)}); err != nil {
			t.Fatalf("register %s with actions: %v", unit, err)
		}
	}
	return c, admin
}

func decodeObject(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object %s: %v", raw, err)
	}
	return m
}

// TestActionsLifecycle: an operator runs an action on the leader, its
// unit's agent sees it in its watch, starts it, logs and finishes it, and
// the operator reads the results; a unit may act only on its own
// operations, and only a pending one can be cancelled.
func TestActionsLifecycle(t *testing.T) {
	c, admin := seedActions(t)
	ctx := ctxTimeout(t, 60*time.Second)
	op := newClient(t, admin, c.APIAddr())
	db0, db1, web := newClient(t, tokDB0, c.APIAddr()), newClient(t, tokDB1, c.APIAddr()), newClient(t, tokWeb, c.APIAddr())

	actions, err := db1.Actions(ctx, "db")
	if err != nil || len(actions) != 2 || actions["greet"].Description != "Say hello." {
		t.Fatalf("db's actions as its unit reads them: %v, %v", actions, err)
	}
	if _, err := web.Actions(ctx, "db"); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("web/0 reading db's actions: %v, want forbidden", err)
	}
	if a, err := op.Actions(ctx, "web"); err != nil || len(a) != 0 || a == nil {
		t.Errorf("web's actions %v, %v; want {}", a, err)
	}

	// db/leader resolves to db/0 now.
	o, idx, err := op.EnqueueAction(ctx, "db/leader", "greet", map[string]any{"name": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Unit != "db/0" || o.Status != api.OperationPending || o.Kind != api.OperationAction || idx == 0 {
		t.Fatalf("enqueued %+v at index %d", o, idx)
	}
	if p := decodeObject(t, o.Params); p["name"] != "x" || p["greeting"] != "hello" {
		t.Errorf("params %s, want the schema's default inserted", o.Params)
	}
	// The unit's agent sees it in its watch.
	view, _, err := db0.WatchUnit(ctx, "db/0", 0, 0)
	if err != nil || len(view.Operations) != 1 || view.Operations[0] != (api.QueuedOperation{ID: o.ID, Kind: "action", Action: "greet", Status: "pending"}) {
		t.Fatalf("db/0's watch shows %+v (%v)", view.Operations, err)
	}
	if v, _, _ := db1.WatchUnit(ctx, "db/1", 0, 0); v.Operations == nil || len(v.Operations) != 0 {
		t.Errorf("db/1's watch shows %+v, want []", v.Operations)
	}

	// Only db/0's agent may start it.
	for name, cl := range map[string]*client.Client{"db/1": db1, "admin": op} {
		if _, err := cl.StartOperation(ctx, o.ID); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("%s starting db/0's operation: %v, want forbidden", name, err)
		}
	}
	started, err := db0.StartOperation(ctx, o.ID)
	if err != nil || started.Status != api.OperationRunning || started.Started == nil || string(started.Params) != string(o.Params) {
		t.Fatalf("start: %+v, %v", started, err)
	}
	if _, err := op.CancelOperation(ctx, o.ID); !errors.Is(err, api.ErrOperationStatus) || client.StatusCode(err) != http.StatusConflict ||
		!strings.Contains(err.Error(), "it is running; only a pending operation can be cancelled") {
		t.Errorf("cancel of a running operation: %v", err)
	}
	// The operator follows it with a blocking query.
	finished := make(chan api.Operation, 1)
	go func() {
		index := idx
		for {
			got, next, err := op.WatchOperation(ctx, o.ID, index, 10*time.Second)
			if err != nil {
				t.Errorf("watch operation: %v", err)
				close(finished)
				return
			}
			if got.Finished() {
				finished <- got
				return
			}
			index = next
		}
	}()
	for i, msg := range []string{"half way", "almost"} {
		if err := db0.LogOperation(ctx, o.ID, i, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := db0.LogOperation(ctx, o.ID, 1, "almost"); err != nil { // a retry
		t.Fatal(err)
	}
	if err := db1.LogOperation(ctx, o.ID, 2, "not mine"); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("db/1 logging to db/0's operation: %v", err)
	}
	if _, err := db1.FinishOperation(ctx, o.ID, api.OperationCompleted, "", nil); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("db/1 finishing db/0's operation: %v", err)
	}
	big := map[string]any{"stdout": strings.Repeat("x", 70<<10)}
	if _, err := db0.FinishOperation(ctx, o.ID, api.OperationCompleted, "", big); !errors.Is(err, api.ErrLimitExceeded) ||
		client.StatusCode(err) != http.StatusRequestEntityTooLarge || !strings.Contains(err.Error(), "the limit is 65536") {
		t.Errorf("results over the limit: %v", err)
	}
	done, err := db0.FinishOperation(ctx, o.ID, api.OperationCompleted, "", map[string]any{"greeting": "hello x"})
	if err != nil || done.Status != api.OperationCompleted {
		t.Fatalf("finish: %+v, %v", done, err)
	}
	got := <-finished
	if got.Status != api.OperationCompleted || decodeObject(t, got.Results)["greeting"] != "hello x" || len(got.Log) != 2 ||
		got.Log[0].Message != "half way" || got.Log[0].Time.IsZero() || got.Completed == nil {
		t.Errorf("the operator saw %+v", got)
	}
	if v, _, _ := db0.WatchUnit(ctx, "db/0", 0, 0); len(v.Operations) != 0 {
		t.Errorf("db/0's queue after the finish: %+v", v.Operations)
	}
	if _, err := db1.Operation(ctx, o.ID); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("db/1 reading db/0's operation: %v", err)
	}
	if mine, err := db0.Operation(ctx, o.ID); err != nil || mine.ID != o.ID {
		t.Errorf("db/0 reading its own operation: %+v, %v", mine, err)
	}

	// Cancel: pending only, by the admin only.
	p, _, err := op.EnqueueAction(ctx, "db/1", "backup", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db1.CancelOperation(ctx, p.ID); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("a unit cancelling: %v", err)
	}
	if cancelled, err := op.CancelOperation(ctx, p.ID); err != nil || cancelled.Status != api.OperationCancelled {
		t.Errorf("cancel of a pending operation: %+v, %v", cancelled, err)
	}
	if _, err := db1.StartOperation(ctx, p.ID); !errors.Is(err, api.ErrOperationStatus) {
		t.Errorf("start of a cancelled operation: %v", err)
	}

	// Abort: the agent found its running operation interrupted.
	e, _, err := op.EnqueueExec(ctx, "db/1", "is-leader", time.Minute)
	if err != nil || e.Kind != api.OperationExec || e.Command != "is-leader" || e.Timeout != "1m0s" {
		t.Fatalf("exec: %+v, %v", e, err)
	}
	if _, err := db1.StartOperation(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	if aborted, err := db1.AbortOperation(ctx, e.ID, "agent restarted"); err != nil || aborted.Status != api.OperationAborted {
		t.Errorf("abort: %+v, %v", aborted, err)
	}

	// Listings.
	for _, tc := range []struct {
		filter client.OperationFilter
		want   []string
	}{
		{client.OperationFilter{}, []string{o.ID, p.ID, e.ID}},
		{client.OperationFilter{App: "db", Statuses: []string{api.OperationCancelled, api.OperationAborted}}, []string{p.ID, e.ID}},
		{client.OperationFilter{Unit: "db/0"}, []string{o.ID}},
		{client.OperationFilter{App: "web"}, nil},
	} {
		list, err := op.Operations(ctx, tc.filter)
		var ids []string
		for _, l := range list {
			ids = append(ids, l.ID)
			if l.Params != nil || l.Results != nil || l.Log != nil {
				t.Errorf("listing carries the params, results or log of %s", l.ID)
			}
		}
		if err != nil || !slices.Equal(ids, tc.want) {
			t.Errorf("Operations(%+v) = %v (%v), want %v", tc.filter, ids, err, tc.want)
		}
	}
	if _, err := db0.Operations(ctx, client.OperationFilter{}); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("a unit listing operations: %v", err)
	}
}

// TestEnqueueRefusals: bad params, unknown actions and units, and a
// vacant leader are refused with their codes, and nothing is enqueued.
func TestEnqueueRefusals(t *testing.T) {
	c, admin := seedActions(t)
	ctx := ctxTimeout(t, 60*time.Second)
	op := newClient(t, admin, c.APIAddr())
	raw := newRaw(t, c.APIAddr())
	if err := newClient(t, tokDB0, c.APIAddr()).Revoke(ctx, "db", "db/0", 1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"missing required", `{"unit":"db/0","action":"greet","params":{}}`, 400, "invalid-params",
			`cannot run action "greet": validation failed: (root) : "name" property is missing and required, given {}`},
		{"undeclared param", `{"unit":"db/0","action":"greet","params":{"name":"x","colour":"red"}}`, 400, "invalid-params",
			`additional property "colour" is not allowed`},
		{"wrong type", `{"unit":"db/0","action":"greet","params":{"name":7}}`, 400, "invalid-params",
			`(root).name : invalid type. Expected: string, given: integer`},
		{"params not an object", `{"unit":"db/0","action":"greet","params":[1]}`, 400, "bad-request", `params of action "greet" are not a JSON object`},
		{"unknown action", `{"unit":"db/0","action":"restore"}`, 404, "unknown-action",
			`action "restore" not defined on application "db" (its actions: backup, greet)`},
		{"application without actions", `{"unit":"web/0","action":"greet"}`, 404, "unknown-action", "its units registered no actions"},
		{"unknown unit", `{"unit":"db/9","action":"backup"}`, 404, "unknown-unit", `unit "db/9"`},
		{"unknown application", `{"unit":"nope/0","action":"backup"}`, 404, "unknown-unit", ""},
		{"vacant leader", `{"unit":"db/leader","action":"backup"}`, 409, "no-leader", "application has no leader"},
		{"bad unit", `{"unit":"db","action":"backup"}`, 400, "bad-request", `invalid unit "db": want APP/N or APP/leader`},
		{"action and command", `{"unit":"db/0","action":"backup","command":"ls"}`, 400, "bad-request", "give either an action"},
		{"neither", `{"unit":"db/0"}`, 400, "bad-request", "give either an action"},
		{"bad exec timeout", `{"unit":"db/0","command":"ls","timeout":"forever"}`, 400, "bad-request", "bad timeout"},
		{"exec timeout too long", `{"unit":"db/0","command":"ls","timeout":"48h"}`, 400, "bad-request", "out of range"},
		{"unknown field", `{"unit":"db/0","action":"backup","colour":1}`, 400, "bad-request", "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := raw.json("POST", "/v1/operations", admin, tt.body)
			var body api.Error
			mustJSON(t, r.body, &body)
			if r.status != tt.status || body.Code != tt.code || !strings.Contains(body.Error, tt.msg) {
				t.Errorf("%d %s, want %d %s containing %q", r.status, r.body, tt.status, tt.code, tt.msg)
			}
		})
	}
	if list, err := op.Operations(ctx, client.OperationFilter{}); err != nil || len(list) != 0 {
		t.Fatalf("refused requests enqueued %+v (%v)", list, err)
	}
	// The client's sentinels.
	_, _, err := op.EnqueueAction(ctx, "db/0", "greet", map[string]any{})
	if !errors.Is(err, api.ErrInvalidParams) {
		t.Errorf("bad params through the client: %v", err)
	}
	if _, _, err := op.EnqueueAction(ctx, "db/leader", "backup", nil); !errors.Is(err, api.ErrNoLeader) {
		t.Errorf("vacant leader through the client: %v", err)
	}
	if _, _, err := newClient(t, tokDB0, c.APIAddr()).EnqueueExec(ctx, "db/0", "ls", 0); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("a unit enqueuing: %v", err)
	}
	// A retry with the same key queues nothing more.
	req := api.EnqueueRequest{Key: "same", Unit: "db/1", Command: "true"}
	first, _, err1 := op.Enqueue(ctx, req)
	again, _, err2 := op.Enqueue(ctx, req)
	if err1 != nil || err2 != nil || first.ID != again.ID {
		t.Errorf("two enqueues with one key: %s (%v), %s (%v)", first.ID, err1, again.ID, err2)
	}
	if r := raw.json("GET", "/v1/operations/x", admin, ""); r.status != http.StatusBadRequest {
		t.Errorf("bad operation id: %d %s", r.status, r.body)
	}
	if _, err := op.Operation(ctx, "99"); !errors.Is(err, api.ErrUnknownOperation) || client.StatusCode(err) != http.StatusNotFound {
		t.Errorf("unknown operation: %v", err)
	}
	if r := raw.json("GET", "/v1/operations?status=waiting", admin, ""); r.status != http.StatusBadRequest {
		t.Errorf("unknown status filter: %d %s", r.status, r.body)
	}
}

// TestActionsNeedProtocol4: a cluster on protocol 3 refuses every
// operation with needs-protocol, and registers units without their
// actions (so that unit add still works).
func TestActionsNeedProtocol4(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{protoMax: 3})
	waitVersion(t, c, 3)
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 30*time.Second)
	op := newClient(t, admin, c.APIAddr())
	if err := op.Register(ctx, api.RegisterUnitRequest{Unit: "db/0", Token: tokDB0, Actions: wireActions(t)}); err != nil {
		t.Fatalf("registration with actions at protocol 3: %v", err)
	}
	if a, err := op.Actions(ctx, "db"); err != nil || len(a) != 0 {
		t.Errorf("actions at protocol 3: %v, %v", a, err)
	}
	raw := newRaw(t, c.APIAddr())
	for _, body := range []string{`{"unit":"db/0","action":"greet","params":{"name":"x"}}`, `{"unit":"db/0","command":"ls"}`} {
		r := raw.json("POST", "/v1/operations", admin, body)
		var e api.Error
		mustJSON(t, r.body, &e)
		want := "actions (enqueue-operation) needs cluster protocol 4; the cluster runs 3 (upgrade every controller node)"
		if r.status != http.StatusConflict || e.Code != "needs-protocol" || e.Error != want {
			t.Errorf("enqueue at protocol 3: %d %s", r.status, r.body)
		}
	}
	if r := raw.json("POST", "/v1/operations/1/cancel", admin, ""); r.status != http.StatusConflict || !strings.Contains(string(r.body), "needs-protocol") {
		t.Errorf("cancel at protocol 3: %d %s", r.status, r.body)
	}
}

// TestRegisterRefusesBadActions: a malformed action schema is refused at
// registration, and nothing is registered.
func TestRegisterRefusesBadActions(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{protoMax: 4})
	waitVersion(t, c, 4)
	ctx := ctxTimeout(t, 30*time.Second)
	op := newClient(t, admin, c.APIAddr())
	for name, actions := range map[string]map[string]api.ActionSpec{
		"bad name":         {"Greet": {Schema: json.RawMessage(`{}`)}},
		"bad schema":       {"greet": {Schema: json.RawMessage(`{"type":"text"}`)}},
		"schema is a list": {"greet": {Schema: json.RawMessage(`[]`)}},
	} {
		err := op.Register(ctx, api.RegisterUnitRequest{Unit: "db/0", Token: tokDB0, Actions: actions})
		if client.StatusCode(err) != http.StatusBadRequest {
			t.Errorf("%s: %v, want 400", name, err)
		}
	}
	if _, ok := c.Node().FSM().Unit("db/0"); ok {
		t.Error("a refused registration registered the unit")
	}
}
