package lease_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/lease"
)

// at3 raises the effective version to protocol 3, the step-down hand-over.
var at3 = []lease.Op{
	lease.RecordMember{ID: "n1", ProtoMin: 1, ProtoMax: 3},
	lease.SetEffectiveVersion{Old: 1, New: 3},
}

// at2 is at3 for protocol 2: no hand-over.
var at2 = []lease.Op{
	lease.RecordMember{ID: "n1", ProtoMin: 1, ProtoMax: 2},
	lease.SetEffectiveVersion{Old: 1, New: 2},
}

func ops(groups ...[]lease.Op) []lease.Op {
	var out []lease.Op
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// steppedDown is db/0 leading, asked to step down, and revoking.
var steppedDown = []lease.Op{claim("db/0", dur), stepDown("db"), revoke("db/0")}

// wantHandOver checks app's hand-over: from unit until the global time
// until (unit "": none).
func wantHandOver(app, unit string, until time.Duration) func(*testing.T, *lease.State, lease.Result) {
	return func(t *testing.T, s *lease.State, _ lease.Result) {
		t.Helper()
		l := s.Applications[app].Lease
		if l.SteppedDown != unit || (unit != "" && !l.HandOverUntil.Equal(at(until))) || (unit == "" && !l.HandOverUntil.IsZero()) {
			t.Errorf("hand-over from %q until %v, want from %q until %v", l.SteppedDown, l.HandOverUntil.Sub(base), unit, until)
		}
	}
}

func TestStepDownHandOver(t *testing.T) {
	runCases(t, []tcase{{
		name:  "revoke after a step-down hands the lease over for one lease duration",
		setup: ops(at3, []lease.Op{claim("db/0", dur), adv(0, 2*time.Second), stepDown("db")}),
		op:    revoke("db/0"),
		check: all(wantLease("db", "", 1, 0), wantHandOver("db", "db/0", 2*time.Second+dur)),
	}, {
		name:    "the unit that stepped down may not claim at once",
		setup:   ops(at3, steppedDown),
		op:      claim("db/0", dur),
		wantErr: lease.ErrClaimDenied,
		check:   all(wantLease("db", "", 1, 0), wantHandOver("db", "db/0", dur)),
	}, {
		name:  "another unit claims: the hand-over is done",
		setup: ops(at3, steppedDown),
		op:    claim("db/1", dur),
		check: all(wantLease("db", "db/1", 2, dur), wantHandOver("db", "", 0)),
	}, {
		name:  "the old holder may claim once another unit has",
		setup: ops(at3, steppedDown, []lease.Op{claim("db/1", dur), revoke("db/1")}),
		op:    claim("db/0", dur),
		check: wantLease("db", "db/0", 3, dur),
	}, {
		name:    "not a moment before the hand-over ends",
		setup:   ops(at3, steppedDown, []lease.Op{adv(0, dur-time.Nanosecond)}),
		op:      claim("db/0", dur),
		wantErr: lease.ErrClaimDenied,
	}, {
		name:  "the hand-over ends after one lease duration, waking the application's watchers",
		setup: ops(at3, steppedDown),
		op:    adv(0, dur),
		check: all(wantHandOver("db", "", 0), func(t *testing.T, s *lease.State, res lease.Result) {
			if a := s.Applications["db"]; a.ModifyIndex != res.Index {
				t.Errorf("modify index %d, want the advance's %d", a.ModifyIndex, res.Index)
			}
			if len(res.Expired) != 0 {
				t.Errorf("expired %v: a vacant lease does not expire", res.Expired)
			}
		}),
	}, {
		name:  "then the old holder may claim again",
		setup: ops(at3, steppedDown, []lease.Op{adv(0, dur)}),
		op:    claim("db/0", dur),
		check: all(wantLease("db", "db/0", 2, 2*dur), wantHandOver("db", "", 0)),
	}, {
		name:  "a lease that runs out while its holder steps down is handed over too",
		setup: ops(at3, []lease.Op{claim("db/0", dur), stepDown("db")}),
		op:    adv(0, dur+slack+time.Millisecond),
		check: all(wantLease("db", "", 1, 0), wantHandOver("db", "db/0", 2*dur+slack+time.Millisecond)),
	}, {
		name:    "and its old holder may not claim it first",
		setup:   ops(at3, []lease.Op{claim("db/0", dur), stepDown("db"), adv(0, dur+slack+time.Millisecond)}),
		op:      claim("db/0", dur),
		wantErr: lease.ErrClaimDenied,
	}, {
		name:  "a lease that runs out without a step-down is no hand-over",
		setup: ops(at3, []lease.Op{claim("db/0", dur)}),
		op:    adv(0, dur+slack+time.Millisecond),
		check: wantHandOver("db", "", 0),
	}, {
		name:  "a revoke without a step-down is no hand-over",
		setup: ops(at3, []lease.Op{claim("db/0", dur), revoke("db/0")}),
		op:    claim("db/0", dur),
		check: wantLease("db", "db/0", 2, dur),
	}, {
		name:  "the only unit of its application takes the lease back at once",
		setup: ops(at3, []lease.Op{claim("web/0", dur), stepDown("web"), revoke("web/0")}),
		op:    claim("web/0", dur),
		check: all(wantLease("web", "web/0", 2, dur), wantHandOver("web", "", 0)),
	}, {
		name: "dying units are no successors",
		setup: ops(at3, []lease.Op{lease.RequestUnitRemoval{Name: "db/1"}, lease.RequestUnitRemoval{Name: "db/2"}},
			steppedDown),
		op:    claim("db/0", dur),
		check: wantLease("db", "db/0", 2, dur),
	}, {
		name:  "deregistering the holder is no hand-over",
		setup: ops(at3, []lease.Op{claim("db/0", dur), stepDown("db")}),
		op:    lease.DeregisterUnit{Name: "db/0"},
		check: wantHandOver("db", "", 0),
	}, {
		name:  "protocol 2: the old holder may claim at once, as before",
		setup: ops(at2, steppedDown),
		op:    claim("db/0", dur),
		check: all(wantLease("db", "db/0", 2, dur), wantHandOver("db", "", 0)),
	}, {
		name:  "protocol 2: a revoke after a step-down leaves no hand-over",
		setup: ops(at2, []lease.Op{claim("db/0", dur), stepDown("db")}),
		op:    revoke("db/0"),
		check: wantHandOver("db", "", 0),
	}})
}

// TestHandOverSnapshots: protocol 3 writes snapshot format 2, which keeps
// a hand-over across a restore; protocols 1 and 2 write format 1 exactly as
// before (no hand-over field); states that break the hand-over's
// invariants, or a format too old for the state's protocol, are refused.
func TestHandOverSnapshots(t *testing.T) {
	write := func(t *testing.T, s *lease.State) []byte {
		t.Helper()
		var b bytes.Buffer
		if err := lease.WriteSnapshot(&b, s); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	h := newHarness(t)
	for _, op := range ops(at2, steppedDown) {
		h.must(op)
	}
	v2 := write(t, h.s)
	if !bytes.HasPrefix(v2, []byte(`{"format":1,`)) || bytes.Contains(v2, []byte("stepped_down")) || bytes.Contains(v2, []byte("hand_over")) {
		t.Fatalf("protocol-2 snapshot is not format 1 as before:\n%s", v2)
	}

	h = newHarness(t)
	for _, op := range ops(at3, steppedDown) {
		h.must(op)
	}
	v3 := write(t, h.s)
	if !bytes.HasPrefix(v3, []byte(`{"format":2,`)) || !bytes.Contains(v3, []byte(`"stepped_down":"db/0"`)) {
		t.Fatalf("protocol-3 snapshot:\n%s", v3)
	}
	got, err := lease.ReadSnapshot(bytes.NewReader(v3))
	if err != nil {
		t.Fatal(err)
	}
	if l := got.Applications["db"].Lease; l.SteppedDown != "db/0" || !l.HandOverUntil.Equal(at(dur)) {
		t.Fatalf("restored hand-over from %q until %v", l.SteppedDown, l.HandOverUntil)
	}
	if again := write(t, got); !bytes.Equal(again, v3) {
		t.Fatalf("round trip changed the snapshot:\n%s\n%s", v3, again)
	}
	// A format-1 snapshot is still read.
	if _, err := lease.ReadSnapshot(bytes.NewReader(v2)); err != nil {
		t.Fatalf("format 1: %v", err)
	}

	for _, tc := range []struct {
		name, data string
		want       error
	}{
		{"protocol 3 state in format 1", strings.Replace(string(v3), `"format":2`, `"format":1`, 1), lease.ErrSnapshotFormat},
		{"hand-over before protocol 3", strings.Replace(string(v2), `"step_down_requested":false`,
			`"step_down_requested":false,"stepped_down":"db/0","hand_over_until":"2026-01-01T00:00:10Z"`, 1), nil},
		{"hand-over without an end", strings.Replace(string(v3), `,"hand_over_until":"2026-01-01T00:00:10Z"`, ``, 1), nil},
		{"hand-over on a held lease", strings.Replace(string(v3), `"holder":""`, `"holder":"db/1"`, 1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.data == string(v2) || tc.data == string(v3) {
				t.Fatal("the test's replacement did not apply")
			}
			_, err := lease.ReadSnapshot(strings.NewReader(tc.data))
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("restore: %v, want an error matching %v", err, tc.want)
			}
		})
	}
}
