package leadership_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/leadership"
	"github.com/uniter-dev/uniter/leadership/leadershiptest"
	"github.com/uniter-dev/uniter/lease"
)

// changes records what a tracker's observer is told.
type changes struct {
	mu    sync.Mutex
	calls []string
}

func (c *changes) LeadershipGained() { c.add("gained") }

func (c *changes) LeadershipLost(why leadership.LossReason) { c.add("lost " + string(why)) }

func (c *changes) add(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, s)
}

func (c *changes) seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// blindWatch is a client whose watch answers nothing once blind is set.
type blindWatch struct {
	leadership.Client
	blind *atomic.Bool
}

func (c blindWatch) WatchLease(ctx context.Context, app string, index uint64, wait time.Duration) (leadership.Lease, uint64, error) {
	l, i, err := c.Client.WatchLease(ctx, app, index, wait)
	if c.blind.Load() {
		<-ctx.Done()
		return leadership.Lease{}, 0, ctx.Err()
	}
	return l, i, err
}

// startObserved starts a tracker for unit with an observer.
func (f *fixture) startObserved(unit string) (*leadership.Tracker, *changes) {
	f.t.Helper()
	obs := &changes{}
	tr, err := leadership.New(leadership.Config{
		App: "app", Unit: unit, Client: blindWatch{f.ctrl.Client(), &f.blind}, Clock: f.clock, Observer: obs,
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
	return tr, obs
}

func wantSeen(t *testing.T, obs *changes, want ...string) {
	t.Helper()
	synctest.Wait()
	if got := obs.seen(); !slices.Equal(got, want) {
		t.Fatalf("observer saw %q, want %q", got, want)
	}
}

// TestObserverSeesGainsAndEveryLoss: the observer is told of each gain
// and of each loss with its reason; Guarantee follows the lease held.
func TestObserverSeesGainsAndEveryLoss(t *testing.T) {
	claim := g + 500*time.Millisecond
	for _, tc := range []struct {
		name string
		lose func(f *fixture, a *leadership.Tracker)
		want leadership.LossReason
	}{
		{name: "guarantee expired", want: leadership.LostExpired, lose: func(f *fixture, _ *leadership.Tracker) {
			f.ctrl.SetDown(leadershiptest.ErrDown)
			f.clock.Advance(claim)
		}},
		{name: "taken", want: leadership.LostTaken, lose: func(f *fixture, _ *leadership.Tracker) {
			if res := f.ctrl.Apply(lease.Revoke{App: "app", Unit: "app/0", Term: 1}); res.Err != nil {
				t.Fatal(res.Err)
			}
		}},
		{name: "extend refused", want: leadership.LostRefused, lose: func(f *fixture, _ *leadership.Tracker) {
			f.blind.Store(true) // the watch does not see the revoke: the renewal does
			if res := f.ctrl.Apply(lease.Revoke{App: "app", Unit: "app/0", Term: 1}); res.Err != nil {
				t.Fatal(res.Err)
			}
			synctest.Wait()
			f.advance(claim / 2)
		}},
		{name: "released", want: leadership.LostReleased, lose: func(f *fixture, a *leadership.Tracker) {
			if err := a.Resign(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, "app/0")
				if got := (leadership.Guaranteed{}); got.Held {
					t.Fatal("zero Guaranteed is held")
				}
				a, obs := f.startObserved("app/0")
				settled(t, a, "app/0 leading", func(s leadership.State) bool { return s.Leader })
				wantSeen(t, obs, "gained")
				if got, want := a.Guarantee(), (leadership.Guaranteed{Held: true, Until: epoch.Add(claim)}); !got.Until.Equal(want.Until) || !got.Held {
					t.Fatalf("Guarantee = %+v, want %+v", got, want)
				}
				tc.lose(f, a)
				settled(t, a, "the loss", func(s leadership.State) bool { return !s.Leader })
				wantSeen(t, obs, "gained", "lost "+string(tc.want))
				if got := a.Guarantee(); got.Held || !got.Until.IsZero() {
					t.Fatalf("Guarantee after the loss = %+v, want none", got)
				}
			})
		})
	}
}

// TestGuaranteeMovesWithRenewals: a renewal moves Until to a whole claim
// duration after the extend started.
func TestGuaranteeMovesWithRenewals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "app/0")
		a, _ := f.startObserved("app/0")
		settled(t, a, "app/0 leading", func(s leadership.State) bool { return s.Leader })
		claim := g + 500*time.Millisecond
		f.advance(claim / 2)
		synctest.Wait()
		if got, want := a.Guarantee().Until, epoch.Add(claim/2+claim); !got.Equal(want) {
			t.Fatalf("Guarantee().Until after a renewal = %v, want %v", got, want)
		}
	})
}
