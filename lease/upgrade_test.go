package lease_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/uniter-dev/uniter/lease"
)

func TestProtocolCommands(t *testing.T) {
	ifv := func(v uint64) lease.Op {
		return lease.SetConfig{App: "db", Changes: map[string]string{"k": "v"}, IfVersion: ptr(v)}
	}
	n1 := lease.RecordMember{ID: "n1", ProtoMin: 1, ProtoMax: 2}
	to2 := lease.SetEffectiveVersion{Old: 1, New: 2}
	runCases(t, []tcase{{
		name:    "conditional config set needs protocol 2",
		op:      ifv(1),
		wantErr: lease.ErrNeedsProtocol,
		check: func(t *testing.T, _ *lease.State, res lease.Result) {
			var pe *lease.ProtocolError
			if !errors.As(res.Err, &pe) || pe.Need != 2 || pe.Have != 1 ||
				!strings.Contains(res.Err.Error(), "the cluster runs 1 (upgrade every controller node)") {
				t.Errorf("refusal %v", res.Err)
			}
		},
	}, {
		name:  "conditional config set at protocol 2",
		setup: []lease.Op{n1, to2},
		op:    ifv(1),
		check: func(t *testing.T, s *lease.State, res lease.Result) {
			if c := s.Applications["db"].Config; c.Values["k"] != "v" || c.Version != 2 || res.Version != 2 {
				t.Errorf("config %+v, result version %d", c, res.Version)
			}
		},
	}, {
		name:    "conditional config set on a changed config",
		setup:   []lease.Op{n1, to2, lease.SetConfig{App: "db", Changes: map[string]string{"x": "1"}}},
		op:      ifv(1),
		wantErr: lease.ErrStaleConfig,
		check: func(t *testing.T, _ *lease.State, res lease.Result) {
			if res.Version != 2 {
				t.Errorf("result version %d, want the current 2", res.Version)
			}
		},
	}, {
		name:    "the effective version never goes down",
		setup:   []lease.Op{n1, to2},
		op:      lease.SetEffectiveVersion{Old: 2, New: 1},
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "a member must speak the effective version",
		setup:   []lease.Op{n1, to2},
		op:      lease.RecordMember{ID: "n2", ProtoMin: 1, ProtoMax: 1},
		wantErr: lease.ErrVersionUnsupported,
		check: func(t *testing.T, _ *lease.State, res lease.Result) {
			if want := "node n2 speaks controller protocol 1..1 but the cluster runs 2: upgrade uniter on node n2"; res.Err.Error() != want {
				t.Errorf("refusal %q, want %q", res.Err, want)
			}
		},
	}})
	// The protocol-1 form encodes exactly as before versioning.
	data, err := lease.Encode(lease.SetConfig{App: "db", Changes: map[string]string{"k": "v"}})
	if err != nil || string(data) != `{"version":1,"type":"set-config","payload":{"app":"db","changes":{"k":"v"}}}` {
		t.Errorf("protocol-1 set-config encodes as %s (%v)", data, err)
	}
}
