package leadership_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/uniter-dev/uniter/leadership"
	"github.com/uniter-dev/uniter/lease"
)

// cappedClient counts claims and parks every claim past max until its
// ctx ends, so that a tracker claiming in a tight loop blocks (and the
// bubble settles) instead of spinning forever.
type cappedClient struct {
	leadership.Client
	claims atomic.Int32
	max    int32
}

func (c *cappedClient) Claim(ctx context.Context, app, unit string, d time.Duration) (leadership.Lease, uint64, error) {
	if c.claims.Add(1) > c.max {
		<-ctx.Done()
		return leadership.Lease{}, 0, ctx.Err()
	}
	return c.Client.Claim(ctx, app, unit, d)
}

// TestRefusedClaimAfterHoldOffWaitsForAChange: a lone unit resigns (so it
// has a hold-off, long past later), is then made dying, and finds the
// lease vacant: its claim is refused (unit dying). It must wait for the
// lease to change, not claim again and again: a hold-off in the past is no
// reason to wake.
func TestRefusedClaimAfterHoldOffWaitsForAChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "app/0")
		c := &cappedClient{Client: f.ctrl.Client(), max: 20}
		tr := f.startWith("app/0", c)
		s := settled(t, tr, "leader", func(s leadership.State) bool { return s.Leader })
		if err := tr.Resign(t.Context(), s.Term); err != nil {
			t.Fatal(err)
		}
		if res := f.ctrl.Apply(lease.RequestUnitRemoval{Name: "app/0"}); res.Err != nil {
			t.Fatal(res.Err)
		}
		synctest.Wait()
		before := c.claims.Load()
		f.advance(2 * g) // past the hold-off: one claim, refused
		synctest.Wait()
		f.advance(time.Second)
		synctest.Wait()
		if n := c.claims.Load() - before; n > 2 {
			t.Fatalf("%d claims of a vacant lease the unit may not take, with nothing changing: a tight loop", n)
		}
		if tr.State().Leader {
			t.Fatal("a dying unit leads")
		}
	})
}
