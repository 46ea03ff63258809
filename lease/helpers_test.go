package lease_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/uniter-dev/uniter/lease"
)

// ignoreScratch compares states without the scratch field of the command
// being applied.
var ignoreScratch = cmpopts.IgnoreUnexported(lease.State{})

const (
	slack = time.Second
	dur   = 10 * time.Second
)

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// at is the global time d after base.
func at(d time.Duration) time.Time { return base.Add(d) }

func ptr[T any](v T) *T { return &v }

func appOf(unit string) string { return strings.Split(unit, "/")[0] }

func claim(unit string, d time.Duration) lease.Op {
	return lease.Claim{App: appOf(unit), Unit: unit, Duration: d}
}

func extend(unit string, d time.Duration) lease.Op {
	return lease.Extend{App: appOf(unit), Unit: unit, Duration: d}
}

func revoke(unit string) lease.Op { return lease.Revoke{App: appOf(unit), Unit: unit} }

func stepDown(app string) lease.Op { return lease.RequestStepDown{App: app} }

func pin(app, entity string) lease.Op {
	return lease.PinLease{App: app, Entity: entity, Reason: "maintenance"}
}

func pinUntil(app, entity string, until time.Duration) lease.Op {
	return lease.PinLease{App: app, Entity: entity, Reason: "upgrade", Until: ptr(at(until))}
}

func unpin(app, entity string) lease.Op { return lease.UnpinLease{App: app, Entity: entity} }

func adv(from, to time.Duration) lease.Op {
	return lease.AdvanceTime{Old: at(from), New: at(to), Slack: slack}
}

func leaderSet(unit string, term uint64, changes map[string]string) lease.Op {
	return lease.SetLeaderSettings{App: appOf(unit), Unit: unit, Term: term, Changes: changes}
}

// harness applies commands to a pure State at increasing log indexes and
// checks the invariants after each one.
type harness struct {
	t     *testing.T
	s     *lease.State
	index uint64
}

var units = []string{"db/0", "db/1", "db/2", "web/0"}

// newHarness starts at global time base with the units registered.
func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, s: lease.NewState()}
	h.must(lease.AdvanceTime{New: base})
	for _, u := range units {
		h.must(lease.RegisterUnit{Name: u, TokenHash: lease.HashToken("token-" + u)})
	}
	return h
}

func (h *harness) apply(op lease.Op) lease.Result {
	h.t.Helper()
	h.index++
	res := h.s.Apply(h.index, op)
	if res.Index != h.index {
		h.t.Fatalf("%s: result index %d, want %d", op.Type(), res.Index, h.index)
	}
	if err := h.s.Validate(); err != nil {
		h.t.Fatalf("%s broke an invariant: %v", op.Type(), err)
	}
	return res
}

func (h *harness) must(op lease.Op) lease.Result {
	h.t.Helper()
	res := h.apply(op)
	if res.Err != nil {
		h.t.Fatalf("setup %s %+v: %v", op.Type(), op, res.Err)
	}
	return res
}

// tcase is one table row: setup commands must succeed, then op gives
// wantErr (nil: success); a refused op must leave the state untouched.
type tcase struct {
	name    string
	setup   []lease.Op
	op      lease.Op
	wantErr error
	check   func(t *testing.T, s *lease.State, res lease.Result)
}

func runCases(t *testing.T, cases []tcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for _, op := range tc.setup {
				h.must(op)
			}
			before := h.s.Clone()
			res := h.apply(tc.op)
			if !errors.Is(res.Err, tc.wantErr) {
				t.Fatalf("%s: err = %v, want %v", tc.op.Type(), res.Err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if diff := cmp.Diff(before, h.s, ignoreScratch); diff != "" {
					t.Errorf("refused %s changed the state (-before +after):\n%s", tc.op.Type(), diff)
				}
			}
			if tc.check != nil {
				tc.check(t, h.s, res)
			}
		})
	}
}

// wantLease checks app's lease holder, term and (if held) expiry, and
// that a result carrying a lease reports the state's.
func wantLease(app, holder string, term uint64, expiry time.Duration) func(*testing.T, *lease.State, lease.Result) {
	return func(t *testing.T, s *lease.State, res lease.Result) {
		t.Helper()
		l := s.Applications[app].Lease
		if l.Holder != holder || l.Term != term {
			t.Errorf("lease held by %q term %d, want %q term %d", l.Holder, l.Term, holder, term)
		}
		if holder != "" && !l.Expiry.Equal(at(expiry)) {
			t.Errorf("expiry %v, want %v", l.Expiry.Sub(base), expiry)
		}
		if res.Lease != nil {
			if diff := cmp.Diff(l, *res.Lease); diff != "" {
				t.Errorf("result lease differs from state (-state +result):\n%s", diff)
			}
		}
	}
}

func all(checks ...func(*testing.T, *lease.State, lease.Result)) func(*testing.T, *lease.State, lease.Result) {
	return func(t *testing.T, s *lease.State, res lease.Result) {
		t.Helper()
		for _, c := range checks {
			c(t, s, res)
		}
	}
}
