package lease_test

import (
	"errors"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/lease"
)

// renewFSM is an FSM at protocol 7 with batchUnits registered, db/0
// holding db's lease (term 1, 10s) and web's lease vacant, at global time
// base + 1s, its last index returned.
func renewFSM(t *testing.T, steps ...lease.Op) (*lease.FSM, uint64) {
	t.Helper()
	f, index := newBatchFSM(t)
	for _, op := range append([]lease.Op{
		lease.SetEffectiveVersion{Old: lease.BatchProtocol, New: lease.LeaderRenewProtocol},
		lease.Claim{App: "db", Unit: "db/0", Duration: 10 * time.Second},
		lease.AdvanceTime{Old: base, New: base.Add(time.Second)},
	}, steps...) {
		index++
		if res := f.Apply(index, mustEncode(t, op)); res.Err != nil {
			t.Fatalf("%s: %v", op.Type(), res.Err)
		}
	}
	return f, index
}

// TestRenew: a renew writes back each renewal whose unit still holds the
// lease at its term, as an extend would, step-down requested or not;
// the others change nothing; a malformed renew changes nothing at all.
func TestRenew(t *testing.T) {
	now := base.Add(time.Second)
	for _, tc := range []struct {
		name   string
		steps  []lease.Op
		op     lease.Renew
		err    error
		expiry time.Time // db's expected expiry afterwards
		moved  bool      // db's modify index moved
	}{
		{"held", nil, lease.Renew{Renewals: []lease.Renewal{{App: "db", Unit: "db/0", Term: 1, Duration: 30 * time.Second}}},
			nil, now.Add(30 * time.Second), true},
		{"never shortens", nil, lease.Renew{Renewals: []lease.Renewal{{App: "db", Unit: "db/0", Term: 1, Duration: time.Second}}},
			nil, base.Add(10 * time.Second), true},
		{"step-down requested", []lease.Op{lease.RequestStepDown{App: "db"}},
			lease.Renew{Renewals: []lease.Renewal{{App: "db", Unit: "db/0", Term: 1, Duration: 30 * time.Second}}},
			nil, now.Add(30 * time.Second), true},
		{"another holder", nil, lease.Renew{Renewals: []lease.Renewal{{App: "db", Unit: "db/1", Term: 1, Duration: 30 * time.Second}}},
			nil, base.Add(10 * time.Second), false},
		{"another term", nil, lease.Renew{Renewals: []lease.Renewal{{App: "db", Unit: "db/0", Term: 2, Duration: 30 * time.Second}}},
			nil, base.Add(10 * time.Second), false},
		{"vacant and unknown leases skipped", nil, lease.Renew{Renewals: []lease.Renewal{
			{App: "web", Unit: "web/0", Term: 0, Duration: 30 * time.Second},
			{App: "nope", Unit: "nope/0", Term: 1, Duration: 30 * time.Second},
			{App: "db", Unit: "db/0", Term: 1, Duration: 20 * time.Second}}},
			nil, now.Add(20 * time.Second), true},
		{"empty", nil, lease.Renew{}, lease.ErrInvalidCommand, base.Add(10 * time.Second), false},
		{"bad duration", nil, lease.Renew{Renewals: []lease.Renewal{
			{App: "db", Unit: "db/0", Term: 1, Duration: 30 * time.Second},
			{App: "db", Unit: "db/0", Term: 1, Duration: -time.Second}}},
			lease.ErrInvalidCommand, base.Add(10 * time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, index := renewFSM(t, tc.steps...)
			was := f.ApplicationIndex("db")
			res := f.Apply(index+1, mustEncode(t, tc.op))
			if !errors.Is(res.Err, tc.err) {
				t.Fatalf("renew: %v, want %v", res.Err, tc.err)
			}
			l, _ := f.Lease("db")
			if l.Holder != "db/0" || !l.Expiry.Equal(tc.expiry) {
				t.Errorf("db's lease %+v, want db/0 until %v", l, tc.expiry)
			}
			if moved := f.ApplicationIndex("db") != was; moved != tc.moved {
				t.Errorf("db's modify index moved: %v, want %v", moved, tc.moved)
			}
		})
	}
}

// TestGraceLeases: every held lease gets at least For from now, without
// waking its watchers; vacant leases stay vacant; For out of range is
// refused.
func TestGraceLeases(t *testing.T) {
	now := base.Add(time.Second)
	f, index := renewFSM(t, lease.Claim{App: "web", Unit: "web/0", Duration: time.Hour})
	was := f.ApplicationIndex("db")
	if res := f.Apply(index+1, mustEncode(t, lease.GraceLeases{For: time.Minute})); res.Err != nil {
		t.Fatal(res.Err)
	}
	if l, _ := f.Lease("db"); !l.Expiry.Equal(now.Add(time.Minute)) {
		t.Errorf("db's expiry %v, want %v", l.Expiry, now.Add(time.Minute))
	}
	if l, _ := f.Lease("web"); !l.Expiry.Equal(now.Add(time.Hour)) {
		t.Errorf("web's expiry %v moved, want %v", l.Expiry, now.Add(time.Hour))
	}
	if f.ApplicationIndex("db") != was {
		t.Error("grace woke db's watchers")
	}
	if res := f.Apply(index+2, mustEncode(t, lease.GraceLeases{})); !errors.Is(res.Err, lease.ErrInvalidCommand) {
		t.Errorf("grace for 0: %v, want ErrInvalidCommand", res.Err)
	}
}

// TestRenewNeedsProtocol7: below protocol 7 renew and grace-leases are
// refused and change nothing.
func TestRenewNeedsProtocol7(t *testing.T) {
	f, index := newBatchFSM(t)
	for _, op := range []lease.Op{lease.Claim{App: "db", Unit: "db/0", Duration: time.Second}} {
		index++
		f.Apply(index, mustEncode(t, op))
	}
	for _, op := range []lease.Op{
		lease.Renew{Renewals: []lease.Renewal{{App: "db", Unit: "db/0", Term: 1, Duration: time.Hour}}},
		lease.GraceLeases{For: time.Hour},
	} {
		index++
		if res := f.Apply(index, mustEncode(t, op)); !errors.Is(res.Err, lease.ErrNeedsProtocol) {
			t.Errorf("%s at protocol 6: %v, want ErrNeedsProtocol", op.Type(), res.Err)
		}
	}
	if l, _ := f.Lease("db"); !l.Expiry.Equal(base.Add(time.Second)) {
		t.Errorf("db's expiry %v, want %v", l.Expiry, base.Add(time.Second))
	}
}

// TestRenewView: a renewal is answered from memory only for the holder,
// at its term, without a step-down request, for at most LeaderRenewMax,
// at protocol 7; the answer is the log's.
func TestRenewView(t *testing.T) {
	f, index := renewFSM(t)
	v, ok := f.RenewView("db", "db/0")
	if !ok {
		t.Fatal("no view of db")
	}
	for _, tc := range []struct {
		unit string
		term uint64
		d    time.Duration
		want bool
	}{
		{"db/0", 0, time.Second, true},
		{"db/0", 1, lease.LeaderRenewMax, true},
		{"db/0", 2, time.Second, false},
		{"db/0", 1, lease.LeaderRenewMax + 1, false},
		{"db/0", 1, 0, false},
		{"db/1", 0, time.Second, false},
	} {
		view := v
		if tc.unit != "db/0" {
			view, _ = f.RenewView("db", tc.unit)
		}
		if got := view.Renewable(tc.unit, tc.term, tc.d); got != tc.want {
			t.Errorf("Renewable(%s, term %d, %v) = %v, want %v", tc.unit, tc.term, tc.d, got, tc.want)
		}
	}
	if _, ok := f.RenewView("nope", "db/0"); ok {
		t.Error("a view of an unknown application")
	}
	if v, _ := f.RenewView("db", "web/0"); v.UnitOfApp {
		t.Error("web/0 is a unit of db")
	}
	// The memory answer is what the log's extend gives.
	got := v.Renewed(30 * time.Second)
	want := f.Apply(index+1, mustEncode(t, lease.Extend{App: "db", Unit: "db/0", Duration: 30 * time.Second}))
	if !got.Lease.Expiry.Equal(want.Lease.Expiry) || got.Lease.Holder != want.Lease.Holder ||
		got.Lease.Term != want.Lease.Term || !got.Lease.Start.Equal(want.Lease.Start) || got.Lease.Duration != want.Lease.Duration {
		t.Errorf("answered from memory %+v, the log gives %+v", *got.Lease, *want.Lease)
	}
	f.Apply(index+2, mustEncode(t, lease.RequestStepDown{App: "db"}))
	if v, _ := f.RenewView("db", "db/0"); v.Renewable("db/0", 0, time.Second) {
		t.Error("renewable after a step-down request")
	}
}
