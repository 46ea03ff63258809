package leadership_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/internal/clock/clocktest"
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
	blind atomic.Bool // observed trackers' watches answer nothing (observer_test.go)
}

func newFixture(t *testing.T, units ...string) *fixture {
	return &fixture{t: t, clock: clocktest.New(epoch), ctrl: leadershiptest.New(epoch, units...)}
}

func (f *fixture) start(unit string) *leadership.Tracker {
	f.t.Helper()
	return f.startWith(unit, f.ctrl.Client())
}

// startWith starts a tracker for unit that talks to the controller
// through c.
func (f *fixture) startWith(unit string, c leadership.Client) *leadership.Tracker {
	f.t.Helper()
	tr, err := leadership.New(leadership.Config{
		App: "app", Unit: unit, Client: c, Clock: f.clock,
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

// Every test runs in a synctest bubble: the fixture (its fake clock and
// in-process controller) is made inside it, so synctest.Wait returns once
// the trackers' goroutines are all blocked. What a tracker does without the
// clock moving it has then done, and what it has not done it will not: "it
// led", "it did not renew" and "it did not claim" are facts, not timeouts.

// settled waits for the bubble to settle and checks that tr's published
// state satisfies cond, which says what the tracker must have come to.
func settled(t *testing.T, tr *leadership.Tracker, what string, cond func(leadership.State) bool) leadership.State {
	t.Helper()
	synctest.Wait()
	s := tr.State()
	if !cond(s) {
		t.Fatalf("settled without %s: state = %+v", what, s)
	}
	return s
}

func TestClaimsVacantLeaseAndMinionWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "app/0", "app/1")
		a := f.start("app/0")
		s := settled(t, a, "app/0 leading", func(s leadership.State) bool { return s.Leader })
		if s.Term != 1 || s.Gained != 1 || s.StepDown {
			t.Fatalf("leader state = %+v, want term 1, gained 1", s)
		}
		b := f.start("app/1")
		s = settled(t, b, "app/1 seeing the lease", func(s leadership.State) bool { return s.Known })
		if s.Leader || s.Term != 1 {
			t.Fatalf("minion state = %+v, want not leader in term 1", s)
		}
		if l := f.ctrl.Lease("app"); l.Holder != "app/0" || l.Duration != g+500*time.Millisecond {
			t.Fatalf("lease = %+v, want held by app/0 for G+500ms", l)
		}
	})
}

func TestSuccessorClaimsWhenLeaderStopsRenewing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "app/0", "app/1")
		a := f.start("app/0")
		settled(t, a, "app/0 leading", func(s leadership.State) bool { return s.Leader })
		b := f.start("app/1")
		settled(t, b, "app/1 seeing the lease", func(s leadership.State) bool { return s.Known })
		a.Kill() // a crashed leader: no more renewals, the lease is kept
		if err := a.Wait(); err != nil {
			t.Fatal(err)
		}
		d := g + 500*time.Millisecond
		f.advance(d) // expiry + slack not yet passed
		synctest.Wait()
		if s := b.State(); s.Leader {
			t.Fatalf("successor led before the old lease ran out: %+v", s)
		}
		f.advance(slack + time.Millisecond)
		s := settled(t, b, "app/1 leading", func(s leadership.State) bool { return s.Leader })
		if s.Term != 2 {
			t.Fatalf("successor term = %d, want 2", s.Term)
		}
	})
}

func TestRenewsAtHalfTheClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "app/0")
		a := f.start("app/0")
		settled(t, a, "app/0 leading", func(s leadership.State) bool { return s.Leader })
		d := g + 500*time.Millisecond
		before := f.ctrl.Calls("extend")
		f.advance(d/2 - time.Millisecond)
		synctest.Wait()
		if n := f.ctrl.Calls("extend"); n != before {
			t.Fatalf("extended %d times before half the claim", n-before)
		}
		f.advance(time.Millisecond)
		synctest.Wait()
		if n := f.ctrl.Calls("extend"); n != before+1 {
			t.Fatalf("extended %d times at half the claim, want 1", n-before)
		}
		// Many renewal periods later the lease is still held, in the same term.
		for i := range 10 {
			n := f.ctrl.Calls("extend")
			f.advance(d / 2)
			synctest.Wait()
			if got := f.ctrl.Calls("extend"); got != n+1 {
				t.Fatalf("renewal period %d: extended %d times, want 1", i+1, got-n)
			}
		}
		if s := a.State(); !s.Leader || s.Term != 1 {
			t.Fatalf("state after renewals = %+v", s)
		}
	})
}

func TestCheckExtendsSynchronouslyOrAnswersFalse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "app/0")
		a := f.start("app/0")
		settled(t, a, "app/0 leading", func(s leadership.State) bool { return s.Leader })
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
		settled(t, a, "leadership lost on expiry", func(s leadership.State) bool { return !s.Leader })
	})
}

func TestStepDownThenResignHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "app/0", "app/1")
		a := f.start("app/0")
		settled(t, a, "app/0 leading", func(s leadership.State) bool { return s.Leader })
		b := f.start("app/1")
		settled(t, b, "app/1 seeing the lease", func(s leadership.State) bool { return s.Known })
		if res := f.ctrl.Apply(lease.RequestStepDown{App: "app"}); res.Err != nil {
			t.Fatal(res.Err)
		}
		settled(t, a, "the step-down request", func(s leadership.State) bool { return s.StepDown && s.Leader })
		if ok, _ := a.Check(t.Context(), 1); ok {
			t.Fatal("is-leader true while a step-down is pending")
		}
		if err := a.Resign(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		s := settled(t, b, "app/1 taking over", func(s leadership.State) bool { return s.Leader })
		if s.Term != 2 {
			t.Fatalf("successor term = %d, want 2", s.Term)
		}
		if s := a.State(); s.Leader {
			t.Fatalf("old leader still leads: %+v", s)
		}
	})
}

// A watch answer read before the tracker's own claim applied (the
// application changed while the lease was vacant) reaches the loop after
// the claim succeeded: it is older than the claim and must not drop it.
func TestStaleWatchAnswerKeepsTheLeaseJustWon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "app/0")
		releaseClaim := f.ctrl.Hold("claim")
		a := f.start("app/0")
		synctest.Wait() // the watch saw the vacant lease; the claim waits
		if n := f.ctrl.Calls("claim"); n != 1 {
			t.Fatalf("%d claims before the change, want 1", n)
		}
		releaseWatch := f.ctrl.Hold("watch")
		if res := f.ctrl.Apply(lease.SetConfig{App: "app", Changes: map[string]string{"k": "v"}}); res.Err != nil {
			t.Fatal(res.Err)
		}
		synctest.Wait() // the watch read "vacant" at the new index, and waits
		releaseClaim()
		synctest.Wait() // the claim applied and answered, then the stale answer
		if s := a.State(); !s.Leader || s.Term != 1 || s.Gained != 1 {
			t.Errorf("state after a stale watch answer = %+v; want leader in term 1, gained once", s)
		}
		releaseWatch()
		synctest.Wait()
		if s := a.State(); !s.Leader || s.Term != 1 || s.Gained != 1 {
			t.Errorf("state after the fresh watch answer = %+v; want leader in term 1, gained once", s)
		}
		if n := f.ctrl.Calls("claim"); n != 1 {
			t.Errorf("%d claims, want 1: the lease was never lost", n)
		}
		// The lease is still renewed at half the claim.
		n := f.ctrl.Calls("extend")
		f.advance((g + 500*time.Millisecond) / 2)
		synctest.Wait()
		if got := f.ctrl.Calls("extend"); got != n+1 {
			t.Fatalf("%d extends at half the claim, want 1", got-n)
		}
	})
}

// An agent restarted while its step-down is pending: its new tracker may
// not claim the lease (the controller refuses: step-down pending), yet the
// lease is still its unit's for the old term, so resigning that term after
// leader-deposed must release it at once rather than leave the successor
// waiting for expiry.
func TestRestartedWhileSteppingDownResignReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "app/0", "app/1")
		a := f.start("app/0")
		settled(t, a, "app/0 leading", func(s leadership.State) bool { return s.Leader })
		b := f.start("app/1")
		settled(t, b, "app/1 seeing the lease", func(s leadership.State) bool { return s.Known })
		if res := f.ctrl.Apply(lease.RequestStepDown{App: "app"}); res.Err != nil {
			t.Fatal(res.Err)
		}
		settled(t, a, "the step-down request", func(s leadership.State) bool { return s.StepDown })
		a.Kill() // SIGTERM: the lease is kept, the step-down still pending
		if err := a.Wait(); err != nil {
			t.Fatal(err)
		}
		claims := f.ctrl.Calls("claim")
		restarted := f.start("app/0")
		s := settled(t, restarted, "the restarted tracker seeing the lease", func(s leadership.State) bool { return s.Known })
		if s.Leader || s.Term != 1 {
			t.Fatalf("restarted tracker state = %+v; want not leader, term 1", s)
		}
		if n := f.ctrl.Calls("claim") - claims; n != 0 {
			t.Errorf("restarted tracker made %d claims the controller must refuse", n)
		}
		if ok, _ := restarted.Check(t.Context(), 1); ok {
			t.Fatalf("is-leader true on a restarted unit whose step-down is pending (state %+v)", s)
		}
		if restarted.Holds(t.Context(), 1) {
			t.Fatal("restarted tracker claims a guarantee it never got")
		}
		if err := restarted.Resign(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		// No time passes: only the release can hand the lease over.
		if l := f.ctrl.Lease("app"); l.Holder == "app/0" {
			t.Fatalf("lease after the restarted unit resigned term 1 = %+v; want released", l)
		}
		s = settled(t, b, "app/1 taking over", func(s leadership.State) bool { return s.Leader })
		if s.Term != 2 {
			t.Fatalf("successor term = %d, want 2", s.Term)
		}
		if s := restarted.State(); s.Leader {
			t.Fatalf("restarted unit leads after resigning: %+v", s)
		}
		// The resigned unit does not take the lease back while another can.
		if l := f.ctrl.Lease("app"); l.Holder != "app/1" || l.Term != 2 {
			t.Fatalf("lease = %+v, want app/1 in term 2", l)
		}
	})
}

// noIndex is a controller that sends no modify index with its claim and
// extend answers.
type noIndex struct{ leadership.Client }

func (c noIndex) Claim(ctx context.Context, app, unit string, d time.Duration) (leadership.Lease, uint64, error) {
	l, _, err := c.Client.Claim(ctx, app, unit, d)
	return l, 0, err
}

func (c noIndex) Extend(ctx context.Context, app, unit string, d time.Duration, term uint64) (leadership.Lease, uint64, error) {
	l, _, err := c.Client.Extend(ctx, app, unit, d, term)
	return l, 0, err
}

// Without indexes a stale answer cannot be told from a loss: the tracker
// asks the controller (an extend) rather than drop the lease on its word.
func TestStaleWatchAnswerWithoutIndexIsConfirmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "app/0")
		releaseClaim := f.ctrl.Hold("claim")
		a := f.startWith("app/0", noIndex{f.ctrl.Client()})
		synctest.Wait()
		releaseWatch := f.ctrl.Hold("watch")
		if res := f.ctrl.Apply(lease.SetConfig{App: "app", Changes: map[string]string{"k": "v"}}); res.Err != nil {
			t.Fatal(res.Err)
		}
		synctest.Wait()
		n := f.ctrl.Calls("extend")
		releaseClaim()
		synctest.Wait()
		if s := a.State(); !s.Leader || s.Term != 1 || s.Gained != 1 {
			t.Errorf("state after a stale answer = %+v; want leader in term 1, gained once", s)
		}
		if got := f.ctrl.Calls("extend"); got != n+1 {
			t.Errorf("%d extends after the unplaceable answer, want 1 to confirm it", got-n)
		}
		releaseWatch()
		synctest.Wait()
		if s := a.State(); !s.Leader || s.Gained != 1 || f.ctrl.Calls("claim") != 1 {
			t.Fatalf("state = %+v after %d claims; want the first claim's lease kept", s, f.ctrl.Calls("claim"))
		}
	})
}

// A watch answer newer than the tracker's last claim or extend that says
// the lease is gone still ends the leadership at once.
func TestNewerWatchAnswerStillEndsLeadership(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(*leadershiptest.Controller) leadership.Client
	}{
		{"with indexes", func(c *leadershiptest.Controller) leadership.Client { return c.Client() }},
		{"without indexes", func(c *leadershiptest.Controller) leadership.Client { return noIndex{c.Client()} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, "app/0")
				a := f.startWith("app/0", tc.client(f.ctrl))
				settled(t, a, "app/0 leading", func(s leadership.State) bool { return s.Leader })
				// Released behind the tracker's back (as by another process
				// of the unit): no time passes, only the watch can tell.
				if res := f.ctrl.Apply(lease.Revoke{App: "app", Unit: "app/0", Term: 1}); res.Err != nil {
					t.Fatal(res.Err)
				}
				settled(t, a, "the loss seen", func(s leadership.State) bool { return !s.Leader || s.Term != 1 })
			})
		})
	}
}
