package lease_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/lease"
)

var dbActions = map[string]lease.ActionSpec{
	"greet":  {Description: "Say hello.", Schema: json.RawMessage(`{"type": "object", "properties": {"name": {"type": "string"}}}`)},
	"backup": {Description: "Back up.", Schema: json.RawMessage(`{"type":"object"}`)},
}

func registerActions(unit string, actions map[string]lease.ActionSpec) lease.Op {
	return lease.RegisterUnit{Name: unit, TokenHash: lease.HashToken("token-" + unit), Actions: actions}
}

// opSetup raises the effective version to 4, gives db its charm's actions
// and db/0 the lease, then applies more.
func opSetup(more ...lease.Op) []lease.Op {
	return with([]lease.Op{lease.SetEffectiveVersion{Old: 1, New: 4},
		registerActions("db/0", dbActions), claim("db/0", dur)}, more...)
}

func enqueue(unit, action, params string) lease.EnqueueOperation {
	return lease.EnqueueOperation{Unit: unit, Kind: lease.OperationAction, Action: action, Params: json.RawMessage(params)}
}

func execOn(unit, command string) lease.EnqueueOperation {
	return lease.EnqueueOperation{Unit: unit, Kind: lease.OperationExec, Command: command, Timeout: time.Minute}
}

func start(id uint64, unit string) lease.Op { return lease.StartOperation{ID: id, Unit: unit} }

func finish(id uint64, unit, status, results string) lease.Op {
	return lease.FinishOperation{ID: id, Unit: unit, Status: status, Results: json.RawMessage(results)}
}

func logTo(id uint64, unit string, seq int, msg string) lease.Op {
	return lease.LogOperation{ID: id, Unit: unit, Seq: seq, Message: msg}
}

// wantOperation checks operation id in the state, and that a result
// carrying an operation reports the state's.
func wantOperation(id uint64, check func(t *testing.T, o *lease.Operation)) func(*testing.T, *lease.State, lease.Result) {
	return func(t *testing.T, s *lease.State, res lease.Result) {
		t.Helper()
		o, ok := s.Operations[id]
		if !ok {
			t.Fatalf("operation %d is missing", id)
		}
		check(t, o)
		if res.Operation != nil {
			if diff := cmp.Diff(*o, *res.Operation); diff != "" {
				t.Errorf("result operation differs from state (-state +result):\n%s", diff)
			}
		}
	}
}

func wantStatus(id uint64, status string) func(*testing.T, *lease.State, lease.Result) {
	return wantOperation(id, func(t *testing.T, o *lease.Operation) {
		t.Helper()
		if o.Status != status {
			t.Errorf("operation %d is %s, want %s", id, o.Status, status)
		}
	})
}

func TestEnqueueOperation(t *testing.T) {
	runCases(t, []tcase{{
		name:  "action",
		setup: opSetup(adv(0, 2*time.Second)),
		op:    enqueue("db/1", "greet", `{"times": 10000000000000000001, "name":"x"}`),
		check: all(wantOperation(1, func(t *testing.T, o *lease.Operation) {
			want := lease.Operation{ID: 1, Unit: "db/1", Kind: lease.OperationAction, Action: "greet",
				Params: json.RawMessage(`{"name":"x","times":10000000000000000001}`), Status: lease.OperationPending,
				Enqueued: at(2 * time.Second), ModifyIndex: o.ModifyIndex}
			if diff := cmp.Diff(want, *o); diff != "" {
				t.Errorf("operation (-want +got):\n%s", diff)
			}
		}), func(t *testing.T, s *lease.State, res lease.Result) {
			if s.LastOperationID != 1 || s.Units["db/1"].ModifyIndex != res.Index || s.Operations[1].ModifyIndex != res.Index {
				t.Errorf("last id %d, unit index %d, operation index %d; want 1 and %d", s.LastOperationID,
					s.Units["db/1"].ModifyIndex, s.Operations[1].ModifyIndex, res.Index)
			}
		}),
	}, {
		name:  "no params is {}",
		setup: opSetup(),
		op:    enqueue("db/1", "backup", ""),
		check: wantOperation(1, func(t *testing.T, o *lease.Operation) {
			if string(o.Params) != "{}" {
				t.Errorf("params %s, want {}", o.Params)
			}
		}),
	}, {
		name:  "the leader, resolved when applied",
		setup: opSetup(revoke("db/0"), claim("db/2", dur), enqueue("db/0", "backup", "")),
		op:    enqueue("db/leader", "backup", ""),
		check: wantOperation(2, func(t *testing.T, o *lease.Operation) {
			if o.Unit != "db/2" {
				t.Errorf("db/leader resolved to %s, want db/2", o.Unit)
			}
		}),
	}, {
		name:  "exec",
		setup: opSetup(),
		op:    execOn("web/0", "is-leader --format=json"),
		check: wantOperation(1, func(t *testing.T, o *lease.Operation) {
			if o.Kind != lease.OperationExec || o.Command != "is-leader --format=json" || o.Timeout != time.Minute || o.Params != nil {
				t.Errorf("exec operation %+v", o)
			}
		}),
	}, {
		name:  "a replay with the same key is the same operation",
		setup: opSetup(lease.EnqueueOperation{Key: "k1", Unit: "db/leader", Kind: lease.OperationExec, Command: "ls", Timeout: time.Minute}, revoke("db/0"), claim("db/1", dur)),
		op:    lease.EnqueueOperation{Key: "k1", Unit: "db/leader", Kind: lease.OperationExec, Command: "ls", Timeout: time.Minute},
		check: all(wantOperation(1, func(t *testing.T, o *lease.Operation) {
			if o.Unit != "db/0" || o.Key != "k1" {
				t.Errorf("replayed operation %+v", o)
			}
		}), func(t *testing.T, s *lease.State, res lease.Result) {
			if len(s.Operations) != 1 || res.Operation == nil || res.Operation.ID != 1 {
				t.Errorf("replay queued another operation: %d operations, result %+v", len(s.Operations), res.Operation)
			}
		}),
	}, {
		name:  "another key is another operation",
		setup: opSetup(lease.EnqueueOperation{Key: "k1", Unit: "db/1", Kind: lease.OperationExec, Command: "ls", Timeout: time.Minute}),
		op:    lease.EnqueueOperation{Key: "k2", Unit: "db/1", Kind: lease.OperationExec, Command: "ls", Timeout: time.Minute},
		check: wantStatus(2, lease.OperationPending),
	}, {
		name: "ids are never reused", setup: opSetup(enqueue("db/1", "backup", ""), lease.CancelOperation{ID: 1}),
		op: enqueue("db/1", "backup", ""), check: wantStatus(2, lease.OperationPending),
	},
		{name: "vacant leader", setup: opSetup(revoke("db/0")), op: enqueue("db/leader", "backup", ""), wantErr: lease.ErrNoLeader},
		{name: "leader of an unknown application", setup: opSetup(), op: enqueue("nope/leader", "backup", ""), wantErr: lease.ErrUnknownApplication},
		{name: "unknown unit", setup: opSetup(), op: enqueue("db/7", "backup", ""), wantErr: lease.ErrUnknownUnit},
		{name: "malformed unit", setup: opSetup(), op: enqueue("db-7", "backup", ""), wantErr: lease.ErrInvalidCommand},
		{name: "dying unit", setup: opSetup(lease.RequestUnitRemoval{Name: "db/1"}), op: enqueue("db/1", "backup", ""), wantErr: lease.ErrUnitDying},
		{name: "unknown action", setup: opSetup(), op: enqueue("db/1", "restore", ""), wantErr: lease.ErrUnknownAction,
			check: wantErrText(`action "restore" not defined on unit "db/1"`)},
		{name: "application without actions", setup: opSetup(), op: enqueue("web/0", "greet", ""), wantErr: lease.ErrUnknownAction},
		{name: "params not an object", setup: opSetup(), op: enqueue("db/1", "greet", `["x"]`), wantErr: lease.ErrInvalidCommand},
		{name: "params null", setup: opSetup(), op: enqueue("db/1", "greet", `null`), wantErr: lease.ErrInvalidCommand},
		{name: "params with trailing data", setup: opSetup(), op: enqueue("db/1", "greet", `{} {}`), wantErr: lease.ErrInvalidCommand},
		{name: "params too large", setup: opSetup(),
			op:      enqueue("db/1", "greet", `{"name":"`+strings.Repeat("x", lease.MaxOperationParamsBytes)+`"}`),
			wantErr: lease.ErrTooLarge, check: wantErrText("params are 16395 bytes; the limit is 16384")},
		{name: "action without a name", setup: opSetup(), op: enqueue("db/1", "", ""), wantErr: lease.ErrInvalidCommand},
		{name: "action with a command", setup: opSetup(), op: lease.EnqueueOperation{Unit: "db/1", Kind: lease.OperationAction, Action: "greet", Command: "ls"}, wantErr: lease.ErrInvalidCommand},
		{name: "exec without a command", setup: opSetup(), op: execOn("db/1", "  "), wantErr: lease.ErrInvalidCommand},
		{name: "exec without a timeout", setup: opSetup(), op: lease.EnqueueOperation{Unit: "db/1", Kind: lease.OperationExec, Command: "ls"}, wantErr: lease.ErrInvalidCommand},
		{name: "exec command too large", setup: opSetup(), op: execOn("db/1", strings.Repeat("x", lease.MaxOperationParamsBytes+1)), wantErr: lease.ErrTooLarge},
		{name: "key too long", setup: opSetup(), op: lease.EnqueueOperation{Key: strings.Repeat("k", 65), Unit: "db/1", Kind: lease.OperationExec, Command: "ls", Timeout: time.Minute},
			wantErr: lease.ErrInvalidCommand},
		{name: "unknown kind", setup: opSetup(), op: lease.EnqueueOperation{Unit: "db/1", Kind: "hook"}, wantErr: lease.ErrInvalidCommand},
	})
}

func TestEnqueueOperationQueueLimit(t *testing.T) {
	h := newHarness(t)
	for _, op := range opSetup() {
		h.must(op)
	}
	for range lease.MaxQueuedOperations {
		h.must(execOn("db/1", "true"))
	}
	res := h.apply(execOn("db/1", "true"))
	if !errors.Is(res.Err, lease.ErrTooLarge) || !strings.Contains(res.Err.Error(), "unit db/1 has 64 queued operations; the limit is 64") {
		t.Fatalf("65th queued operation: %v", res.Err)
	}
	// A finished one frees a place; other units have their own queues.
	h.must(start(1, "db/1"))
	h.must(finish(1, "db/1", lease.OperationCompleted, ""))
	h.must(execOn("db/1", "true"))
	h.must(execOn("db/2", "true"))
}

func TestOperationLifecycle(t *testing.T) {
	queued := opSetup(enqueue("db/1", "greet", `{"name":"x"}`), adv(0, 3*time.Second))
	running := with(queued, start(1, "db/1"), adv(3*time.Second, 5*time.Second))
	runCases(t, []tcase{{
		name: "start", setup: queued, op: start(1, "db/1"),
		check: wantOperation(1, func(t *testing.T, o *lease.Operation) {
			if o.Status != lease.OperationRunning || !o.Started.Equal(at(3*time.Second)) || !o.Completed.IsZero() {
				t.Errorf("started operation %+v", o)
			}
		}),
	}, {
		name: "start again is a replay", setup: running, op: start(1, "db/1"), check: wantStatus(1, lease.OperationRunning),
	}, {
		name: "log", setup: with(running, logTo(1, "db/1", 0, "one")), op: logTo(1, "db/1", 1, "two"),
		check: wantOperation(1, func(t *testing.T, o *lease.Operation) {
			want := []lease.OperationMessage{{Time: at(5 * time.Second), Message: "one"}, {Time: at(5 * time.Second), Message: "two"}}
			if diff := cmp.Diff(want, o.Log); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		}),
	}, {
		name: "log replay", setup: with(running, logTo(1, "db/1", 0, "one")), op: logTo(1, "db/1", 0, "one"),
		check: wantOperation(1, func(t *testing.T, o *lease.Operation) {
			if len(o.Log) != 1 {
				t.Errorf("a replayed message was logged twice: %v", o.Log)
			}
		}),
	}, {
		name: "finish completed", setup: running,
		op: finish(1, "db/1", lease.OperationCompleted, `{"greeting":"hello x","n":{"a":"1"}}`),
		check: wantOperation(1, func(t *testing.T, o *lease.Operation) {
			if o.Status != lease.OperationCompleted || string(o.Results) != `{"greeting":"hello x","n":{"a":"1"}}` ||
				!o.Completed.Equal(at(5*time.Second)) {
				t.Errorf("finished operation %+v", o)
			}
		}),
	}, {
		name: "finish failed", setup: running,
		op: lease.FinishOperation{ID: 1, Unit: "db/1", Status: lease.OperationFailed, Message: "no"},
		check: wantOperation(1, func(t *testing.T, o *lease.Operation) {
			if o.Status != lease.OperationFailed || o.Message != "no" || o.Results != nil {
				t.Errorf("failed operation %+v", o)
			}
		}),
	}, {
		name: "finish replay", setup: with(running, finish(1, "db/1", lease.OperationFailed, "")),
		op: finish(1, "db/1", lease.OperationFailed, ""), check: wantStatus(1, lease.OperationFailed),
	}, {
		name: "abort", setup: running, op: lease.AbortOperation{ID: 1, Unit: "db/1", Message: "agent restarted"},
		check: wantOperation(1, func(t *testing.T, o *lease.Operation) {
			if o.Status != lease.OperationAborted || o.Message != "agent restarted" || o.Completed.IsZero() {
				t.Errorf("aborted operation %+v", o)
			}
		}),
	}, {
		name: "abort replay", setup: with(running, lease.AbortOperation{ID: 1, Unit: "db/1"}),
		op: lease.AbortOperation{ID: 1, Unit: "db/1"}, check: wantStatus(1, lease.OperationAborted),
	}, {
		name: "cancel pending", setup: queued, op: lease.CancelOperation{ID: 1},
		check: wantOperation(1, func(t *testing.T, o *lease.Operation) {
			if o.Status != lease.OperationCancelled || !o.Started.IsZero() || !o.Completed.Equal(at(3*time.Second)) {
				t.Errorf("cancelled operation %+v", o)
			}
		}),
	}, {
		name: "cancel replay", setup: with(queued, lease.CancelOperation{ID: 1}), op: lease.CancelOperation{ID: 1},
		check: wantStatus(1, lease.OperationCancelled),
	},
		{name: "cancel running", setup: running, op: lease.CancelOperation{ID: 1}, wantErr: lease.ErrOperationStatus,
			check: all(wantErrText("cannot cancel operation 1: it is running; only a pending operation can be cancelled"),
				wantStatus(1, lease.OperationRunning))},
		{name: "cancel finished", setup: with(running, finish(1, "db/1", lease.OperationCompleted, "")),
			op: lease.CancelOperation{ID: 1}, wantErr: lease.ErrOperationStatus},
		{name: "cancel unknown", setup: queued, op: lease.CancelOperation{ID: 9}, wantErr: lease.ErrUnknownOperation},
		{name: "start by another unit", setup: queued, op: start(1, "db/2"), wantErr: lease.ErrInvalidCommand,
			check: wantErrText(`it is unit db/1's, not "db/2"'s`)},
		{name: "finish by another unit", setup: running, op: finish(1, "db/0", lease.OperationCompleted, ""), wantErr: lease.ErrInvalidCommand},
		{name: "log by another unit", setup: running, op: logTo(1, "db/0", 0, "x"), wantErr: lease.ErrInvalidCommand},
		{name: "abort by another unit", setup: running, op: lease.AbortOperation{ID: 1, Unit: "web/0"}, wantErr: lease.ErrInvalidCommand},
		{name: "start unknown", setup: queued, op: start(2, "db/1"), wantErr: lease.ErrUnknownOperation},
		{name: "start cancelled", setup: with(queued, lease.CancelOperation{ID: 1}), op: start(1, "db/1"), wantErr: lease.ErrOperationStatus},
		{name: "finish pending", setup: queued, op: finish(1, "db/1", lease.OperationCompleted, ""), wantErr: lease.ErrOperationStatus},
		{name: "finish completed as failed", setup: with(running, finish(1, "db/1", lease.OperationCompleted, "")),
			op: finish(1, "db/1", lease.OperationFailed, ""), wantErr: lease.ErrOperationStatus},
		{name: "finish with a bad status", setup: running, op: finish(1, "db/1", lease.OperationAborted, ""), wantErr: lease.ErrInvalidCommand},
		{name: "finish with results not an object", setup: running, op: finish(1, "db/1", lease.OperationCompleted, `"x"`), wantErr: lease.ErrInvalidCommand},
		{name: "results too large", setup: running,
			op:      finish(1, "db/1", lease.OperationCompleted, `{"stdout":"`+strings.Repeat("x", lease.MaxOperationResultsBytes)+`"}`),
			wantErr: lease.ErrTooLarge, check: wantErrText("results are 65549 bytes; the limit is 65536")},
		{name: "finish message too large", setup: running,
			op:      lease.FinishOperation{ID: 1, Unit: "db/1", Status: lease.OperationFailed, Message: strings.Repeat("x", 1025)},
			wantErr: lease.ErrTooLarge},
		{name: "abort pending", setup: queued, op: lease.AbortOperation{ID: 1, Unit: "db/1"}, wantErr: lease.ErrOperationStatus},
		{name: "log to pending", setup: queued, op: logTo(1, "db/1", 0, "x"), wantErr: lease.ErrOperationStatus},
		{name: "log out of order", setup: running, op: logTo(1, "db/1", 1, "x"), wantErr: lease.ErrInvalidCommand},
		{name: "log empty", setup: running, op: logTo(1, "db/1", 0, ""), wantErr: lease.ErrInvalidCommand},
		{name: "log message too large", setup: running, op: logTo(1, "db/1", 0, strings.Repeat("x", 1025)), wantErr: lease.ErrTooLarge,
			check: wantErrText("message is 1025 bytes; the limit is 1024")},
	})
}

func TestOperationLogLimit(t *testing.T) {
	h := newHarness(t)
	for _, op := range opSetup(execOn("db/1", "x"), start(1, "db/1")) {
		h.must(op)
	}
	for i := range lease.MaxOperationMessages {
		h.must(logTo(1, "db/1", i, fmt.Sprint(i)))
	}
	res := h.apply(logTo(1, "db/1", lease.MaxOperationMessages, "one more"))
	if !errors.Is(res.Err, lease.ErrTooLarge) || !strings.Contains(res.Err.Error(), "operation has 100 messages; the limit is 100") {
		t.Fatalf("message past the limit: %v", res.Err)
	}
}

func TestFinishedOperationsArePruned(t *testing.T) {
	h := newHarness(t)
	for _, op := range opSetup(execOn("db/1", "kept"), start(1, "db/1")) {
		h.must(op)
	}
	for i := range lease.MaxRetainedOperations + 2 {
		id := h.must(execOn("db/2", "x")).Operation.ID
		if i%2 == 0 {
			h.must(lease.CancelOperation{ID: id})
		} else {
			h.must(start(id, "db/2"))
			h.must(finish(id, "db/2", lease.OperationCompleted, ""))
		}
	}
	s := h.s
	if n := len(s.Operations); n != lease.MaxRetainedOperations+1 {
		t.Fatalf("%d operations kept, want %d finished and the running one", n, lease.MaxRetainedOperations)
	}
	for _, id := range []uint64{2, 3} {
		if _, ok := s.Operations[id]; ok {
			t.Errorf("oldest finished operation %d was kept", id)
		}
	}
	if o := s.Operations[1]; o == nil || o.Status != lease.OperationRunning {
		t.Errorf("the running operation was pruned: %+v", o)
	}
	if _, ok := s.Operations[4]; !ok {
		t.Error("operation 4 was pruned")
	}
}

func TestDeregisterEndsTheUnitsQueue(t *testing.T) {
	runCases(t, []tcase{{
		name: "pending cancelled, running aborted, finished kept",
		setup: opSetup(execOn("db/1", "a"), execOn("db/1", "b"), execOn("db/1", "c"), execOn("db/2", "d"),
			start(1, "db/1"), start(3, "db/1"), finish(3, "db/1", lease.OperationCompleted, "")),
		op: lease.DeregisterUnit{Name: "db/1"},
		check: func(t *testing.T, s *lease.State, _ lease.Result) {
			for id, want := range map[uint64]string{1: lease.OperationAborted, 2: lease.OperationCancelled,
				3: lease.OperationCompleted, 4: lease.OperationPending} {
				if o := s.Operations[id]; o.Status != want {
					t.Errorf("operation %d is %s, want %s", id, o.Status, want)
				}
			}
			if m := s.Operations[1].Message; m != "unit db/1 was removed" {
				t.Errorf("aborted operation's message %q", m)
			}
		},
	}})
}

func TestRegisterUnitActions(t *testing.T) {
	v4 := lease.SetEffectiveVersion{Old: 1, New: 4}
	runCases(t, []tcase{{
		name: "set, canonical", setup: []lease.Op{v4}, op: registerActions("db/0", dbActions),
		check: func(t *testing.T, s *lease.State, res lease.Result) {
			a := s.Applications["db"]
			if got := string(a.Actions["greet"].Schema); got != `{"properties":{"name":{"type":"string"}},"type":"object"}` {
				t.Errorf("schema %s", got)
			}
			if a.ModifyIndex != res.Index {
				t.Error("new actions did not move the application's index")
			}
		},
	}, {
		name: "nil leaves them alone", setup: []lease.Op{v4, registerActions("db/0", dbActions)},
		op: lease.RegisterUnit{Name: "db/1", TokenHash: lease.HashToken("token-db/1")},
		check: func(t *testing.T, s *lease.State, _ lease.Result) {
			if len(s.Applications["db"].Actions) != 2 {
				t.Errorf("actions %v", s.Applications["db"].Actions)
			}
		},
	}, {
		name: "empty replaces them", setup: []lease.Op{v4, registerActions("db/0", dbActions)},
		op: registerActions("db/1", map[string]lease.ActionSpec{}),
		check: func(t *testing.T, s *lease.State, _ lease.Result) {
			if a := s.Applications["db"].Actions; a == nil || len(a) != 0 {
				t.Errorf("actions %v, want none (but not nil)", a)
			}
		},
	}, {
		name: "the same again changes nothing", setup: []lease.Op{v4, registerActions("db/0", dbActions)},
		op: registerActions("db/0", dbActions),
		check: func(t *testing.T, s *lease.State, res lease.Result) {
			if s.Applications["db"].ModifyIndex == res.Index {
				t.Error("a registration with the same actions moved the application's index")
			}
		},
	},
		{name: "bad name", setup: []lease.Op{v4}, op: registerActions("db/0", map[string]lease.ActionSpec{"Bad": {Schema: json.RawMessage(`{}`)}}),
			wantErr: lease.ErrInvalidCommand},
		{name: "schema not an object", setup: []lease.Op{v4}, op: registerActions("db/0", map[string]lease.ActionSpec{"a": {Schema: json.RawMessage(`[]`)}}),
			wantErr: lease.ErrInvalidCommand},
		{name: "no schema", setup: []lease.Op{v4}, op: registerActions("db/0", map[string]lease.ActionSpec{"a": {}}),
			wantErr: lease.ErrInvalidCommand},
	})
}

func TestOperationsNeedProtocol4(t *testing.T) {
	for _, op := range []lease.Op{
		enqueue("db/0", "greet", ""), execOn("db/0", "ls"), start(1, "db/0"), logTo(1, "db/0", 0, "x"),
		finish(1, "db/0", lease.OperationCompleted, ""), lease.AbortOperation{ID: 1, Unit: "db/0"},
		lease.CancelOperation{ID: 1}, registerActions("db/0", dbActions), registerActions("new/0", map[string]lease.ActionSpec{}),
	} {
		t.Run(op.Type(), func(t *testing.T) {
			h := newHarness(t)
			h.must(lease.SetEffectiveVersion{Old: 1, New: 3})
			before := h.s.Clone()
			res := h.apply(op)
			var pe *lease.ProtocolError
			if !errors.As(res.Err, &pe) || pe.Need != 4 || pe.Have != 3 || !strings.HasPrefix(pe.Feature, "actions (") {
				t.Fatalf("%s at protocol 3: %v", op.Type(), res.Err)
			}
			if diff := cmp.Diff(before, h.s, ignoreScratch); diff != "" {
				t.Errorf("refused %s changed the state:\n%s", op.Type(), diff)
			}
		})
	}
	// Without actions, register-unit encodes as in protocol 1.
	data, err := lease.Encode(lease.RegisterUnit{Name: "new/0", TokenHash: "h"})
	if want := `{"version":1,"type":"register-unit","payload":{"name":"new/0","token_hash":"h","config_schema":null}}`; err != nil || string(data) != want {
		t.Errorf("register-unit without actions encodes as %s (%v)", data, err)
	}
}

// populateOperations is populate at protocol 4 with operations in every
// status, actions for db, and a pruned-free id counter past them.
func (h *fsmHarness) populateOperations() {
	h.populate()
	for _, op := range []lease.Op{
		lease.RecordMember{ID: "n1", ProtoMin: 1, ProtoMax: 4, APIAddr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2"},
		lease.SetEffectiveVersion{Old: 2, New: 4},
		registerActions("db/0", dbActions), lease.RegisterUnit{Name: "zero/0", TokenHash: lease.HashToken("z"), Actions: map[string]lease.ActionSpec{}},
		enqueue("db/1", "greet", `{"name":"<x>"}`), enqueue("db/1", "backup", ""),
		lease.EnqueueOperation{Key: "k3", Unit: "web/0", Kind: lease.OperationExec, Command: "hostname", Timeout: time.Minute},
		enqueue("db/0", "backup", ""), enqueue("db/0", "backup", ""),
		start(1, "db/1"), logTo(1, "db/1", 0, "half way"), finish(1, "db/1", lease.OperationCompleted, `{"greeting":"hi"}`),
		start(2, "db/1"), start(3, "web/0"), logTo(3, "web/0", 0, "x"),
		lease.CancelOperation{ID: 4}, start(5, "db/0"), lease.AbortOperation{ID: 5, Unit: "db/0", Message: "crash"},
		execOn("db/1", "false"), start(6, "db/1"), lease.FinishOperation{ID: 6, Unit: "db/1", Status: lease.OperationFailed, Message: "exit 1"},
		execOn("db/1", "queued"),
	} {
		h.must(op)
	}
}

func TestSnapshotFormat3HoldsOperations(t *testing.T) {
	h := newFSMHarness(t)
	h.populateOperations()
	sink := snapshot(t, h.fsm)
	if !bytes.HasPrefix(sink.Bytes(), []byte(`{"format":3,"state":{`)) || !bytes.Contains(sink.Bytes(), []byte(`"last_operation_id":7`)) {
		t.Fatalf("snapshot at protocol 4: %.200s", sink.Bytes())
	}
	// Both go on alike: the next id, the queue, the statuses.
	next := roundTrip(t, h, sink)
	restored := next.fsm
	for _, op := range []lease.Op{
		enqueue("db/0", "greet", ""), enqueue("db/2", "greet", ""), start(7, "db/1"), lease.CancelOperation{ID: 2}, logTo(3, "web/0", 1, "y"),
		finish(3, "web/0", lease.OperationCompleted, `{"return-code":0}`), lease.DeregisterUnit{Name: "db/1"},
	} {
		if diff := cmp.Diff(h.apply(op), next.apply(op), cmp.Comparer(sameErr)); diff != "" {
			t.Errorf("%s results differ:\n%s", op.Type(), diff)
		}
	}
	if diff := cmp.Diff(h.fsm.State(), restored.State(), ignoreScratch); diff != "" {
		t.Errorf("states differ after the same commands (-original +restored):\n%s", diff)
	}
}

func TestRestoreRefusesBadOperationSnapshots(t *testing.T) {
	h := newFSMHarness(t)
	h.populateOperations()
	good := snapshot(t, h.fsm).Bytes()
	for _, tc := range []struct {
		name string
		edit func(file, state map[string]any)
		want string
	}{
		{"operations in format 2", func(f, _ map[string]any) { f["format"] = 2 }, ""}, // the version alone refuses it
		{"operations at protocol 3, format 2", func(f, s map[string]any) {
			f["format"], s["effective_version"] = 2, 3
			delete(s["applications"].(map[string]any)["db"].(map[string]any), "actions")
			delete(s["applications"].(map[string]any)["zero"].(map[string]any), "actions")
		}, "format 2 cannot hold actions or operations"},
		{"actions alone in format 2", func(f, s map[string]any) {
			f["format"], s["effective_version"] = 2, 3
			delete(s, "operations")
			delete(s, "last_operation_id")
		}, "format 2 cannot hold actions or operations"},
		{"id beyond the counter", func(_, s map[string]any) { s["last_operation_id"] = 3 }, "invalid operation"},
		{"unknown status", func(_, s map[string]any) { opJSON(s, 7)["status"] = "waiting" }, `unknown status "waiting"`},
		{"queued for a unit that is gone", func(_, s map[string]any) { opJSON(s, 7)["unit"] = "db/9" }, `not registered`},
		{"running without a start", func(_, s map[string]any) { delete(opJSON(s, 2), "started") }, "running with start time"},
		{"finished without a completion", func(_, s map[string]any) { delete(opJSON(s, 1), "completed") }, "completed with completion time"},
		{"bad action name", func(_, s map[string]any) {
			s["applications"].(map[string]any)["db"].(map[string]any)["actions"].(map[string]any)["Bad"] =
				map[string]any{"description": "", "schema": map[string]any{}}
		}, `invalid action name "Bad"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := lease.NewFSM().Restore(strings.NewReader(mutateSnapshot(t, good, tc.edit)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func opJSON(state map[string]any, id int) map[string]any {
	return state["operations"].(map[string]any)[fmt.Sprint(id)].(map[string]any)
}

func TestOperationReadsAndWatches(t *testing.T) {
	h := newFSMHarness(t)
	h.populateOperations()
	f := h.fsm
	ids := func(ops []lease.Operation) []uint64 {
		var out []uint64
		for _, o := range ops {
			if o.Params != nil || o.Results != nil || o.Log != nil {
				t.Errorf("listing of operation %d carries params, results or log", o.ID)
			}
			out = append(out, o.ID)
		}
		return out
	}
	for _, tc := range []struct {
		filter lease.OperationFilter
		want   []uint64
	}{
		{lease.OperationFilter{}, []uint64{1, 2, 3, 4, 5, 6, 7}},
		{lease.OperationFilter{App: "db"}, []uint64{1, 2, 4, 5, 6, 7}},
		{lease.OperationFilter{App: "d"}, nil},
		{lease.OperationFilter{Unit: "web/0"}, []uint64{3}},
		{lease.OperationFilter{Statuses: []string{lease.OperationFailed, lease.OperationAborted}}, []uint64{5, 6}},
		{lease.OperationFilter{App: "db", Statuses: []string{lease.OperationRunning}}, []uint64{2}},
	} {
		if got := ids(f.Operations(tc.filter)); !cmp.Equal(got, tc.want) {
			t.Errorf("Operations(%+v) = %v, want %v", tc.filter, got, tc.want)
		}
	}
	if got := ids(f.UnitQueue("db/1")); !cmp.Equal(got, []uint64{2, 7}) {
		t.Errorf("db/1's queue %v, want [2 7]", got)
	}
	o, ok := f.Operation(1)
	if !ok || string(o.Params) != `{"name":"\u003cx\u003e"}` || len(o.Log) != 1 || string(o.Results) != `{"greeting":"hi"}` {
		t.Fatalf("operation 1 = %+v, %v", o, ok)
	}
	o.Log[0].Message, o.Params[0] = "changed", 'X'
	if again, _ := f.Operation(1); again.Log[0].Message != "half way" || again.Params[0] != '{' {
		t.Error("Operation returned shared data")
	}

	// A log message wakes the operation's watchers, not its unit's: the
	// queue did not change. A finish wakes both.
	unitCh, opCh := f.WatchUnit("web/0"), f.WatchOperation(3)
	h.must(logTo(3, "web/0", 1, "more"))
	if !closed(opCh) || closed(unitCh) {
		t.Errorf("log: operation woken %v (want true), unit woken %v (want false)", closed(opCh), closed(unitCh))
	}
	unitCh, opCh = f.WatchUnit("web/0"), f.WatchOperation(3)
	other := f.WatchOperation(2)
	h.must(finish(3, "web/0", lease.OperationCompleted, ""))
	if !closed(opCh) || !closed(unitCh) || closed(other) {
		t.Errorf("finish: operation %v, unit %v (want both woken), other operation %v", closed(opCh), closed(unitCh), closed(other))
	}
	if f.OperationIndex(3) != h.index || f.UnitIndex("web/0") != h.index {
		t.Errorf("indexes %d and %d, want %d", f.OperationIndex(3), f.UnitIndex("web/0"), h.index)
	}
	// A new operation wakes its unit, whose agent learns of it.
	unitCh = f.WatchUnit("db/0")
	h.must(enqueue("db/0", "greet", ""))
	if !closed(unitCh) {
		t.Error("enqueue did not wake the unit's watchers")
	}
}

func TestWaitOperation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFSMHarness(t)
		h.populateOperations()
		wait := func(id uint64) chan uint64 {
			done := make(chan uint64, 1)
			after := h.fsm.OperationIndex(id)
			go func() {
				idx, err := h.fsm.WaitOperation(t.Context(), id, after)
				if err != nil {
					t.Errorf("wait: %v", err)
				}
				done <- idx
			}()
			synctest.Wait()
			return done
		}
		done := wait(2)
		h.must(logTo(3, "web/0", 1, "another operation"))
		h.must(enqueue("db/1", "backup", ""))
		synctest.Wait()
		select {
		case idx := <-done:
			t.Fatalf("woke at %d for another operation's change", idx)
		default:
		}
		res := h.must(logTo(2, "db/1", 0, "this one"))
		if idx := <-done; idx != res.Index {
			t.Errorf("woke at %d, want %d", idx, res.Index)
		}
		// An operation not there yet (or pruned) answers on any change.
		done = wait(99)
		res = h.must(adv(time.Minute, 2*time.Minute))
		if idx := <-done; idx != res.Index {
			t.Errorf("wait on a missing operation woke at %d, want %d", idx, res.Index)
		}
	})
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
