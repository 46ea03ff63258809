package lease_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/lease"
)

// everyOp has one populated value of every command type.
var everyOp = []lease.Op{
	lease.Claim{App: "db", Unit: "db/0", Duration: dur},
	lease.Extend{App: "db", Unit: "db/0", Duration: dur, Term: 3},
	lease.Revoke{App: "db", Unit: "db/0", Term: 3},
	lease.RequestStepDown{App: "db", Term: 3},
	lease.PinLease{App: "db", Entity: "op", Reason: "r", Until: ptr(at(time.Hour))},
	lease.UnpinLease{App: "db", Entity: "op"},
	lease.AdvanceTime{Old: at(0), New: at(time.Second), Slack: slack},
	lease.SetLeaderSettings{App: "db", Unit: "db/0", Term: 3, Changes: map[string]string{"a": "", "b": "c"}},
	lease.SetConfig{App: "db", Changes: map[string]string{"a": "b"}},
	lease.SetUnitStatus{Unit: "db/0", Kind: lease.StatusAgent, Status: "idle", Message: "m"},
	lease.SetApplicationVersion{Unit: "db/0", Version: "1.2"},
	lease.RegisterUnit{Name: "db/0", TokenHash: lease.HashToken("t"), ConfigSchema: map[string]lease.Option{
		"port": {Type: lease.OptionInt, Default: ptr("5432"), Description: "d"}, "name": {Type: lease.OptionString}},
		Endpoints: map[string]lease.Endpoint{"server": {Role: lease.RoleProvider, Interface: "pgsql"}},
		Actions:   map[string]lease.ActionSpec{"greet": {Description: "d", Schema: []byte(`{"type":"object"}`)}}},
	lease.DeregisterUnit{Name: "db/0"},
	lease.RequestUnitRemoval{Name: "db/0"},
	lease.Resolve{Unit: "db/0", NoRetry: true, After: 2},
	lease.SetApplicationStatus{App: "db", Unit: "db/0", Term: 3, Status: "active", Message: "m"},
	lease.RecordMember{ID: "n1", ProtoMin: 1, ProtoMax: 2, APIAddr: "a:1", RaftAddr: "r:2"},
	lease.ForgetMember{ID: "n1"},
	lease.SetEffectiveVersion{Old: 1, New: 2},
	lease.AddRelation{A: lease.EndpointRef{App: "web", Endpoint: "db"}, B: lease.EndpointRef{App: "db"}},
	lease.RemoveRelation{Relation: 3},
	lease.EnterScope{Relation: 3, Unit: "db/0", Data: map[string]string{"private-address": "10.0.0.1"}},
	lease.LeaveScope{Relation: 3, Unit: "db/0"},
	lease.SetRelationData{Relation: 3, Unit: "db/0", App: true, Term: 2, Changes: map[string]*string{"a": ptr("b"), "c": nil}},
	lease.EnqueueOperation{Key: "k", Unit: "db/leader", Kind: lease.OperationAction, Action: "greet", Params: []byte(`{"name":"x"}`)},
	lease.StartOperation{ID: 3, Unit: "db/0"},
	lease.LogOperation{ID: 3, Unit: "db/0", Seq: 1, Message: "half way"},
	lease.FinishOperation{ID: 3, Unit: "db/0", Status: lease.OperationFailed, Message: "no", Results: []byte(`{"a":{"b":"c"}}`)},
	lease.AbortOperation{ID: 3, Unit: "db/0", Message: "agent restarted"},
	lease.CancelOperation{ID: 3},
	lease.CommitRelationData{Unit: "db/0", Term: 2, Relations: []lease.RelationChanges{
		{Relation: 3, Unit: map[string]*string{"a": ptr("b")}, App: map[string]*string{"c": nil}}, {Relation: 0}}},
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, op := range everyOp {
		data, err := lease.Encode(op)
		if err != nil {
			t.Fatalf("encode %s: %v", op.Type(), err)
		}
		got, err := lease.Decode(data)
		if err != nil {
			t.Fatalf("decode %s: %v", op.Type(), err)
		}
		if diff := cmp.Diff(op, got); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", op.Type(), diff)
		}
		if seen[op.Type()] {
			t.Errorf("type %q used twice", op.Type())
		}
		seen[op.Type()] = true
	}
}

func TestMalformedCommandsAreErrorResults(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want error
	}{
		{"future version", `{"version":2,"type":"claim","payload":{}}`, lease.ErrUnsupportedVersion},
		{"missing version", `{"type":"claim","payload":{}}`, lease.ErrUnsupportedVersion},
		{"unknown type", `{"version":1,"type":"frobnicate","payload":{}}`, lease.ErrUnknownCommand},
		{"unknown envelope field", `{"version":1,"type":"claim","payload":{},"x":1}`, lease.ErrInvalidCommand},
		{"unknown payload field", `{"version":1,"type":"claim","payload":{"app":"db","color":"red"}}`, lease.ErrInvalidCommand},
		{"payload of the wrong shape", `{"version":1,"type":"claim","payload":[1]}`, lease.ErrInvalidCommand},
		{"missing payload", `{"version":1,"type":"claim"}`, lease.ErrInvalidCommand},
		{"not JSON", `claim db/0`, lease.ErrInvalidCommand},
		{"trailing data", `{"version":1,"type":"forget-member","payload":{"id":"x"}} {}`, lease.ErrInvalidCommand},
		{"empty", ``, lease.ErrInvalidCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			before := h.s.Clone()
			res := h.s.ApplyData(99, []byte(tc.data))
			if !errors.Is(res.Err, tc.want) {
				t.Errorf("err = %v, want %v", res.Err, tc.want)
			}
			if diff := cmp.Diff(before, h.s, ignoreScratch); diff != "" {
				t.Errorf("malformed command changed the state:\n%s", diff)
			}
		})
	}
}

func TestStaleIndexIsAnErrorResult(t *testing.T) {
	h := newHarness(t)
	before := h.s.Clone()
	if res := h.s.Apply(h.s.Index, claim("db/0", dur)); !errors.Is(res.Err, lease.ErrInvalidCommand) {
		t.Errorf("err = %v", res.Err)
	}
	if diff := cmp.Diff(before, h.s, ignoreScratch); diff != "" {
		t.Errorf("stale index changed the state:\n%s", diff)
	}
}

func TestNilOpIsAnErrorResult(t *testing.T) {
	if res := lease.NewState().Apply(1, nil); !errors.Is(res.Err, lease.ErrInvalidCommand) {
		t.Errorf("err = %v", res.Err)
	}
	if _, err := lease.Encode(nil); !errors.Is(err, lease.ErrInvalidCommand) {
		t.Errorf("encode nil: %v", err)
	}
}
