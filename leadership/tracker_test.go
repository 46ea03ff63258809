package leadership_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/leadership"
	"github.com/uniter-dev/uniter/leadership/leadershiptest"
	"github.com/uniter-dev/uniter/lease"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	g     = 30 * time.Second
	slack = 500 * time.Millisecond
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type fixture struct {
	t     *testing.T
	clock *clocktest.Clock
	ctrl  *leadershiptest.Controller
}

func newFixture(t *testing.T, units ...string) *fixture {
	return &fixture{t: t, clock: clocktest.New(epoch), ctrl: leadershiptest.New(epoch, units...)}
}

func (f *fixture) start(unit string) *leadership.Tracker {
	f.t.Helper()
	tr, err := leadership.New(leadership.Config{
		App: "app", Unit: unit, Client: f.ctrl.Client(), Clock: f.clock,
		Logger: zerolog.New(zerolog.NewTestWriter(f.t)).With().Str("unit", unit).Logger(), Guarantee: g,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		tr.Kill()
		if err := tr.Wait(); err != nil {
			f.t.Errorf("tracker %s: %v", unit, err)
		}
	})
	return tr
}

// advance moves both the agent's clock and the controller's global time.
func (f *fixture) advance(d time.Duration) {
	f.clock.Advance(d)
	f.ctrl.Advance(d, slack)
}

func waitState(t *testing.T, tr *leadership.Tracker, what string, cond func(leadership.State) bool) leadership.State {
	t.Helper()
	var s leadership.State
	testutil.WaitUntil(t, 10*time.Second, what, func() bool {
		s = tr.State()
		return cond(s)
	})
	return s
}

func TestClaimsVacantLeaseAndMinionWaits(t *testing.T) {
	f := newFixture(t, "app/0", "app/1")
	a := f.start("app/0")
	s := waitState(t, a, "app/0 to lead", func(s leadership.State) bool { return s.Leader })
	if s.Term != 1 || s.Gained != 1 || s.StepDown {
		t.Fatalf("leader state = %+v, want term 1, gained 1", s)
	}
	b := f.start("app/1")
	s = waitState(t, b, "app/1 to see the lease", func(s leadership.State) bool { return s.Known })
	if s.Leader || s.Term != 1 {
		t.Fatalf("minion state = %+v, want not leader in term 1", s)
	}
	if l := f.ctrl.Lease("app"); l.Holder != "app/0" || l.Duration != g+500*time.Millisecond {
		t.Fatalf("lease = %+v, want held by app/0 for G+500ms", l)
	}
}

func TestSuccessorClaimsWhenLeaderStopsRenewing(t *testing.T) {
	f := newFixture(t, "app/0", "app/1")
	a := f.start("app/0")
	waitState(t, a, "app/0 to lead", func(s leadership.State) bool { return s.Leader })
	b := f.start("app/1")
	waitState(t, b, "app/1 to see the lease", func(s leadership.State) bool { return s.Known })
	a.Kill() // a crashed leader: no more renewals, the lease is kept
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	d := g + 500*time.Millisecond
	f.advance(d) // expiry + slack not yet passed
	if s := b.State(); s.Leader {
		t.Fatalf("successor led before the old lease ran out: %+v", s)
	}
	f.advance(slack + time.Millisecond)
	s := waitState(t, b, "app/1 to lead", func(s leadership.State) bool { return s.Leader })
	if s.Term != 2 {
		t.Fatalf("successor term = %d, want 2", s.Term)
	}
}

func TestRenewsAtHalfTheClaim(t *testing.T) {
	f := newFixture(t, "app/0")
	a := f.start("app/0")
	waitState(t, a, "app/0 to lead", func(s leadership.State) bool { return s.Leader })
	d := g + 500*time.Millisecond
	before := f.ctrl.Calls("extend")
	f.advance(d/2 - time.Millisecond)
	if n := f.ctrl.Calls("extend"); n != before {
		t.Fatalf("extended %d times before half the claim", n-before)
	}
	f.advance(time.Millisecond)
	testutil.WaitUntil(t, 10*time.Second, "a renewal", func() bool { return f.ctrl.Calls("extend") == before+1 })
	// Many renewal periods later the lease is still held, in the same term.
	for range 10 {
		n := f.ctrl.Calls("extend")
		f.advance(d / 2)
		testutil.WaitUntil(t, 10*time.Second, "a renewal", func() bool { return f.ctrl.Calls("extend") == n+1 })
	}
	if s := a.State(); !s.Leader || s.Term != 1 {
		t.Fatalf("state after renewals = %+v", s)
	}
}

func TestCheckExtendsSynchronouslyOrAnswersFalse(t *testing.T) {
	f := newFixture(t, "app/0")
	a := f.start("app/0")
	waitState(t, a, "app/0 to lead", func(s leadership.State) bool { return s.Leader })
	ctx := t.Context()
	// Fresh claim: guaranteed for G+500ms, no extend needed.
	n := f.ctrl.Calls("extend")
	if ok, err := a.Check(ctx, 1); !ok || err != nil {
		t.Fatalf("Check = %v, %v; want true", ok, err)
	}
	if f.ctrl.Calls("extend") != n {
		t.Fatal("Check extended although the guarantee was long enough")
	}
	// 1s later less than G remains: Check extends first.
	f.advance(time.Second)
	if ok, err := a.Check(ctx, 1); !ok || err != nil {
		t.Fatalf("Check = %v, %v; want true after a synchronous extend", ok, err)
	}
	if f.ctrl.Calls("extend") != n+1 {
		t.Fatal("Check did not extend synchronously")
	}
	// The wrong term is never leader.
	if ok, _ := a.Check(ctx, 2); ok {
		t.Fatal("Check true for a term the unit does not hold")
	}
	// Controller unreachable and less than G left: false.
	f.ctrl.SetDown(leadershiptest.ErrDown)
	f.advance(time.Second)
	if ok, _ := a.Check(ctx, 1); ok {
		t.Fatal("Check true although the lease could not be extended to G")
	}
	// Past the guarantee the tracker no longer leads.
	f.clock.Advance(g)
	waitState(t, a, "leadership lost on expiry", func(s leadership.State) bool { return !s.Leader })
}

func TestStepDownThenResignHandsOver(t *testing.T) {
	f := newFixture(t, "app/0", "app/1")
	a := f.start("app/0")
	waitState(t, a, "app/0 to lead", func(s leadership.State) bool { return s.Leader })
	b := f.start("app/1")
	waitState(t, b, "app/1 to see the lease", func(s leadership.State) bool { return s.Known })
	if res := f.ctrl.Apply(lease.RequestStepDown{App: "app"}); res.Err != nil {
		t.Fatal(res.Err)
	}
	waitState(t, a, "the step-down request", func(s leadership.State) bool { return s.StepDown && s.Leader })
	if ok, _ := a.Check(t.Context(), 1); ok {
		t.Fatal("is-leader true while a step-down is pending")
	}
	if err := a.Resign(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	s := waitState(t, b, "app/1 to take over", func(s leadership.State) bool { return s.Leader })
	if s.Term != 2 {
		t.Fatalf("successor term = %d, want 2", s.Term)
	}
	if s := a.State(); s.Leader {
		t.Fatalf("old leader still leads: %+v", s)
	}
}
