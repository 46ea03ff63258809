package lease_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/lease"
)

func TestClaim(t *testing.T) {
	runCases(t, []tcase{{
		name:  "vacant lease is taken with term 1",
		op:    claim("db/0", dur),
		check: wantLease("db", "db/0", 1, dur),
	}, {
		name:  "claim after expiry increments the term",
		setup: []lease.Op{claim("db/0", dur), adv(0, 12*time.Second)},
		op:    claim("db/1", dur),
		check: wantLease("db", "db/1", 2, 12*time.Second+dur),
	}, {
		name:  "claim after revoke increments the term",
		setup: []lease.Op{claim("db/0", dur), revoke("db/0")},
		op:    claim("db/0", dur),
		check: wantLease("db", "db/0", 2, dur),
	}, {
		name:  "claim by the holder extends in the same term",
		setup: []lease.Op{claim("db/0", dur), adv(0, 5*time.Second)},
		op:    claim("db/0", 30*time.Second),
		check: wantLease("db", "db/0", 1, 35*time.Second),
	}, {
		name:    "claim denied while another unit holds",
		setup:   []lease.Op{claim("db/0", dur)},
		op:      claim("db/1", dur),
		wantErr: lease.ErrClaimDenied,
		check:   wantLease("db", "db/0", 1, dur),
	}, {
		name:    "claim denied while expired lease is within the slack",
		setup:   []lease.Op{claim("db/0", dur), adv(0, dur+slack)},
		op:      claim("db/1", dur),
		wantErr: lease.ErrClaimDenied,
	}, {
		name:    "claim denied on a pinned lease",
		setup:   []lease.Op{claim("db/0", dur), pin("db", "op"), adv(0, time.Hour)},
		op:      claim("db/1", dur),
		wantErr: lease.ErrClaimDenied,
	}, {
		name:    "claim by the holder refused while step-down pending",
		setup:   []lease.Op{claim("db/0", dur), stepDown("db")},
		op:      claim("db/0", dur),
		wantErr: lease.ErrStepDownPending,
	}, {
		name:    "claim by unregistered unit",
		op:      claim("db/7", dur),
		wantErr: lease.ErrUnknownUnit,
	}, {
		name:    "claim for another application",
		op:      lease.Claim{App: "web", Unit: "db/0", Duration: dur},
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "claim with zero duration",
		op:      claim("db/0", 0),
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "claim longer than MaxDuration",
		op:      claim("db/0", lease.MaxDuration+1),
		wantErr: lease.ErrInvalidCommand,
	}})
}

func TestExtend(t *testing.T) {
	runCases(t, []tcase{{
		name:  "extend never shortens",
		setup: []lease.Op{claim("db/0", 30*time.Second), adv(0, 5*time.Second)},
		op:    extend("db/0", dur),
		check: wantLease("db", "db/0", 1, 30*time.Second),
	}, {
		name:  "extend runs from the global time",
		setup: []lease.Op{claim("db/0", dur), adv(0, 5*time.Second)},
		op:    extend("db/0", dur),
		check: all(wantLease("db", "db/0", 1, 15*time.Second), func(t *testing.T, s *lease.State, _ lease.Result) {
			if l := s.Applications["db"].Lease; !l.Start.Equal(at(5*time.Second)) || l.Duration != dur {
				t.Errorf("start %v duration %v, want 5s and %v", l.Start.Sub(base), l.Duration, dur)
			}
		}),
	}, {
		name:    "extend by a non-holder",
		setup:   []lease.Op{claim("db/0", dur)},
		op:      extend("db/1", dur),
		wantErr: lease.ErrNotHolder,
	}, {
		name:    "extend a vacant lease",
		op:      extend("db/0", dur),
		wantErr: lease.ErrNotHolder,
	}, {
		name:    "extend an expired lease",
		setup:   []lease.Op{claim("db/0", dur), adv(0, time.Minute)},
		op:      extend("db/0", dur),
		wantErr: lease.ErrNotHolder,
	}, {
		name:    "extend with a stale term",
		setup:   []lease.Op{claim("db/0", dur), revoke("db/0"), claim("db/0", dur)},
		op:      lease.Extend{App: "db", Unit: "db/0", Duration: dur, Term: 1},
		wantErr: lease.ErrNotHolder,
	}, {
		name:  "extend with the current term",
		setup: []lease.Op{claim("db/0", dur), revoke("db/0"), claim("db/0", dur), adv(0, time.Second)},
		op:    lease.Extend{App: "db", Unit: "db/0", Duration: dur, Term: 2},
		check: wantLease("db", "db/0", 2, time.Second+dur),
	}, {
		name:    "extend refused after a step-down request",
		setup:   []lease.Op{claim("db/0", dur), stepDown("db")},
		op:      extend("db/0", dur),
		wantErr: lease.ErrStepDownPending,
	}, {
		name:  "holder extends a pinned lease",
		setup: []lease.Op{claim("db/0", dur), pin("db", "op"), adv(0, 20*time.Second)},
		op:    extend("db/0", dur),
		check: wantLease("db", "db/0", 1, 30*time.Second),
	}, {
		name:    "extend with negative duration",
		setup:   []lease.Op{claim("db/0", dur)},
		op:      extend("db/0", -time.Second),
		wantErr: lease.ErrInvalidCommand,
	}})
}

func TestRevoke(t *testing.T) {
	runCases(t, []tcase{{
		name:  "holder releases at once and the term is kept",
		setup: []lease.Op{claim("db/0", dur)},
		op:    revoke("db/0"),
		check: wantLease("db", "", 1, 0),
	}, {
		name:    "non-holder may not revoke",
		setup:   []lease.Op{claim("db/0", dur)},
		op:      revoke("db/1"),
		wantErr: lease.ErrNotHolder,
	}, {
		name:    "revoke refused while pinned",
		setup:   []lease.Op{claim("db/0", dur), pin("db", "op")},
		op:      revoke("db/0"),
		wantErr: lease.ErrPinned,
	}, {
		name:    "replayed revoke fails cleanly",
		setup:   []lease.Op{claim("db/0", dur), revoke("db/0")},
		op:      revoke("db/0"),
		wantErr: lease.ErrNotHolder,
	}, {
		name:    "revoke fenced by a stale term",
		setup:   []lease.Op{claim("db/0", dur), revoke("db/0"), claim("db/0", dur)},
		op:      lease.Revoke{App: "db", Unit: "db/0", Term: 1},
		wantErr: lease.ErrNotHolder,
	}, {
		name:  "revoke after step-down request clears it for the next holder",
		setup: []lease.Op{claim("db/0", dur), stepDown("db"), revoke("db/0")},
		op:    claim("db/1", dur),
		check: all(wantLease("db", "db/1", 2, dur), func(t *testing.T, s *lease.State, _ lease.Result) {
			if s.Applications["db"].Lease.StepDownRequested {
				t.Error("step-down request survived a change of holder")
			}
		}),
	}})
}

func TestRequestStepDown(t *testing.T) {
	stepping := func(want bool) func(*testing.T, *lease.State, lease.Result) {
		return func(t *testing.T, s *lease.State, _ lease.Result) {
			if got := s.Applications["db"].Lease.StepDownRequested; got != want {
				t.Errorf("StepDownRequested = %v, want %v", got, want)
			}
		}
	}
	runCases(t, []tcase{{
		name:  "step-down is recorded on the lease",
		setup: []lease.Op{claim("db/0", dur)},
		op:    stepDown("db"),
		check: all(wantLease("db", "db/0", 1, dur), stepping(true)),
	}, {
		name:  "step-down is idempotent",
		setup: []lease.Op{claim("db/0", dur), stepDown("db")},
		op:    stepDown("db"),
		check: stepping(true),
	}, {
		name:    "step-down refused while pinned",
		setup:   []lease.Op{claim("db/0", dur), pin("db", "op")},
		op:      stepDown("db"),
		wantErr: lease.ErrPinned,
	}, {
		name:    "step-down without a leader",
		op:      stepDown("db"),
		wantErr: lease.ErrNoLeader,
	}, {
		name:    "step-down fenced by a stale term",
		setup:   []lease.Op{claim("db/0", dur), revoke("db/0"), claim("db/1", dur)},
		op:      lease.RequestStepDown{App: "db", Term: 1},
		wantErr: lease.ErrStaleTerm,
	}, {
		name:    "step-down of an unknown application",
		op:      stepDown("nope"),
		wantErr: lease.ErrUnknownApplication,
	}, {
		name:  "expiry clears the step-down request",
		setup: []lease.Op{claim("db/0", dur), stepDown("db")},
		op:    adv(0, time.Minute),
		check: all(wantLease("db", "", 1, 0), stepping(false)),
	}})
}

func wantPins(app string, want map[string]lease.Pin) func(*testing.T, *lease.State, lease.Result) {
	return func(t *testing.T, s *lease.State, _ lease.Result) {
		t.Helper()
		if diff := cmp.Diff(want, s.Applications[app].Lease.Pins); diff != "" {
			t.Errorf("pins (-want +got):\n%s", diff)
		}
	}
}

func TestPin(t *testing.T) {
	runCases(t, []tcase{{
		name:    "pinning a vacant lease is an error",
		op:      pin("db", "op"),
		wantErr: lease.ErrNoLeader,
		check: func(t *testing.T, _ *lease.State, res lease.Result) {
			if got := res.Err.Error(); got != "application has no leader" {
				t.Errorf("error text %q", got)
			}
		},
	}, {
		name:  "pins are keyed by entity",
		setup: []lease.Op{claim("db/0", dur), pin("db", "alice"), adv(0, time.Second), pin("db", "bob")},
		op:    lease.PinLease{App: "db", Entity: "alice", Reason: "still upgrading"},
		check: wantPins("db", map[string]lease.Pin{
			"alice": {Reason: "still upgrading", Since: at(0)},
			"bob":   {Reason: "maintenance", Since: at(time.Second)},
		}),
	}, {
		name:  "pinned lease survives advance-time",
		setup: []lease.Op{claim("db/0", dur), pin("db", "op")},
		op:    adv(0, time.Hour),
		check: all(wantLease("db", "db/0", 1, dur), func(t *testing.T, _ *lease.State, res lease.Result) {
			if len(res.Expired) != 0 {
				t.Errorf("expired %v", res.Expired)
			}
		}),
	}, {
		name:    "pin refused while step-down pending",
		setup:   []lease.Op{claim("db/0", dur), stepDown("db")},
		op:      pin("db", "op"),
		wantErr: lease.ErrStepDownPending,
	}, {
		name:    "pin until the past is invalid",
		setup:   []lease.Op{claim("db/0", dur), adv(0, 5*time.Second)},
		op:      pinUntil("db", "op", 5*time.Second),
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "pin without entity is invalid",
		setup:   []lease.Op{claim("db/0", dur)},
		op:      lease.PinLease{App: "db", Reason: "x"},
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "pin an unknown application",
		op:      pin("nope", "op"),
		wantErr: lease.ErrUnknownApplication,
	}, {
		name:  "pin with until expires by itself, resetting expiry",
		setup: []lease.Op{claim("db/0", dur), pinUntil("db", "op", 20*time.Second), adv(0, 19*time.Second)},
		op:    adv(19*time.Second, 20*time.Second),
		check: all(wantLease("db", "db/0", 1, 30*time.Second), wantPins("db", map[string]lease.Pin{})),
	}, {
		name: "expired pin leaves the lease to expire a duration later",
		setup: []lease.Op{claim("db/0", dur), pinUntil("db", "op", 20*time.Second),
			adv(0, 20*time.Second), adv(20*time.Second, 30*time.Second+slack)},
		op:    adv(30*time.Second+slack, 30*time.Second+slack+1),
		check: wantLease("db", "", 1, 0),
	}, {
		name: "pin with until expiring leaves other pins",
		setup: []lease.Op{claim("db/0", dur), pinUntil("db", "alice", 20*time.Second),
			pin("db", "bob")},
		op: adv(0, time.Hour),
		check: all(wantLease("db", "db/0", 1, dur), wantPins("db", map[string]lease.Pin{
			"bob": {Reason: "maintenance", Since: at(0)},
		})),
	}})
}

func TestUnpin(t *testing.T) {
	runCases(t, []tcase{{
		name:    "unpin an entity without a pin",
		setup:   []lease.Op{claim("db/0", dur), pin("db", "alice")},
		op:      unpin("db", "bob"),
		wantErr: lease.ErrNotPinned,
	}, {
		name:  "unpin one of two keeps the lease pinned",
		setup: []lease.Op{claim("db/0", dur), pin("db", "alice"), pin("db", "bob"), adv(0, time.Hour)},
		op:    unpin("db", "alice"),
		check: all(wantLease("db", "db/0", 1, dur), wantPins("db", map[string]lease.Pin{
			"bob": {Reason: "maintenance", Since: at(0)},
		})),
	}, {
		name:  "last unpin resets expiry to now plus duration",
		setup: []lease.Op{claim("db/0", dur), pin("db", "op"), adv(0, time.Hour)},
		op:    unpin("db", "op"),
		check: wantLease("db", "db/0", 1, time.Hour+dur),
	}, {
		name:  "lease expires a duration after the last unpin",
		setup: []lease.Op{claim("db/0", dur), pin("db", "op"), adv(0, time.Hour), unpin("db", "op")},
		op:    adv(time.Hour, time.Hour+dur+slack+1),
		check: wantLease("db", "", 1, 0),
	}, {
		name: "last unpin never shortens a guarantee given",
		setup: []lease.Op{claim("db/0", time.Minute), pin("db", "op"),
			adv(0, 5*time.Second), extend("db/0", dur)},
		op:    unpin("db", "op"),
		check: wantLease("db", "db/0", 1, time.Minute),
	}, {
		name:    "replayed unpin fails cleanly",
		setup:   []lease.Op{claim("db/0", dur), pin("db", "op"), unpin("db", "op")},
		op:      unpin("db", "op"),
		wantErr: lease.ErrNotPinned,
	}})
}

func TestAdvanceTime(t *testing.T) {
	runCases(t, []tcase{{
		name:  "lease held while expiry plus slack is not before the new time",
		setup: []lease.Op{claim("db/0", dur)},
		op:    adv(0, dur+slack),
		check: wantLease("db", "db/0", 1, dur),
	}, {
		name:  "lease expires once expiry plus slack is before the new time",
		setup: []lease.Op{claim("db/0", dur)},
		op:    adv(0, dur+slack+1),
		check: wantLease("db", "", 1, 0),
	}, {
		name:  "expired applications are reported sorted",
		setup: []lease.Op{claim("web/0", dur), claim("db/0", dur)},
		op:    adv(0, time.Minute),
		check: func(t *testing.T, s *lease.State, res lease.Result) {
			if diff := cmp.Diff([]string{"db", "web"}, res.Expired); diff != "" {
				t.Errorf("expired (-want +got):\n%s", diff)
			}
			if !res.GlobalTime.Equal(at(time.Minute)) || !s.GlobalTime.Equal(at(time.Minute)) {
				t.Errorf("global time %v / %v", res.GlobalTime, s.GlobalTime)
			}
		},
	}, {
		name:    "old must match the global time",
		op:      adv(time.Second, 2*time.Second),
		wantErr: lease.ErrTimeMismatch,
		check: func(t *testing.T, _ *lease.State, res lease.Result) {
			if !res.GlobalTime.Equal(base) {
				t.Errorf("result global time %v, want the current one", res.GlobalTime)
			}
		},
	}, {
		name:    "replayed advance-time fails cleanly",
		setup:   []lease.Op{adv(0, 5*time.Second)},
		op:      adv(0, 5*time.Second),
		wantErr: lease.ErrTimeMismatch,
	}, {
		name:    "new before old is invalid",
		op:      adv(0, -time.Second),
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "a global time JSON cannot encode is invalid",
		op:      lease.AdvanceTime{Old: at(0), New: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:  "advancing to the same time changes nothing",
		setup: []lease.Op{claim("db/0", dur)},
		op:    adv(0, 0),
		check: func(t *testing.T, s *lease.State, res lease.Result) {
			if s.Index == res.Index || !res.GlobalTime.Equal(base) {
				t.Errorf("no-op advance bumped the index or moved time: %+v", res)
			}
		},
	}, {
		name:    "negative slack is invalid",
		op:      lease.AdvanceTime{Old: at(0), New: at(time.Second), Slack: -1},
		wantErr: lease.ErrInvalidCommand,
	}, {
		name: "time in another zone is stored as UTC",
		op:   lease.AdvanceTime{Old: at(0), New: at(time.Second).In(time.FixedZone("x", 3600))},
		check: func(t *testing.T, s *lease.State, _ lease.Result) {
			if s.GlobalTime.Location() != time.UTC {
				t.Errorf("global time in %v", s.GlobalTime.Location())
			}
		},
	}})
}
