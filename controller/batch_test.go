package controller_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/internal/version"
)

// TestConcurrentLeaseWritesAreBatched: concurrent claims and extends
// through the API, each by a unit of its own application, are grouped
// into batched raft entries (the metrics count fewer entries than
// writes), and every answer is that unit's own lease, held in term 1.
func TestConcurrentLeaseWritesAreBatched(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	_, binMax, err := version.Protocol()
	if err != nil {
		t.Fatal(err)
	}
	waitVersion(t, c, binMax)
	ctx := ctxTimeout(t, 60*time.Second)
	op := newClient(t, admin, c.APIAddr())
	const units = 16
	clients := make([]func() error, units)
	for i := range units {
		unit, tok := fmt.Sprintf("batch%d/0", i), fmt.Sprintf("batch-token-%02d-0123456789", i)
		if err := op.Register(ctx, api.RegisterUnitRequest{Unit: unit, Token: tok}); err != nil {
			t.Fatal(err)
		}
		cl, app, seq := newClient(t, tok, c.APIAddr()), fmt.Sprintf("batch%d", i), 0
		clients[i] = func() error {
			var l api.Lease
			var err error
			if seq++; seq == 1 {
				l, err = cl.Claim(ctx, app, unit, time.Minute)
			} else {
				l, err = cl.Extend(ctx, app, unit, time.Minute, 1)
			}
			switch {
			case err != nil:
				return fmt.Errorf("%s: %w", unit, err)
			case l.Holder != unit || l.Term != 1:
				return fmt.Errorf("%s got lease %+v", unit, l)
			}
			return nil
		}
	}
	raw := newRaw(t, c.APIAddr())
	batched := func() (entries, commands float64) {
		m := scrape(t, raw, admin)
		return value(m, "uniter_raft_batch_entries_total", nil), value(m, "uniter_raft_batch_commands_total", nil)
	}
	// Concurrency makes batches, but how many is the scheduler's: rounds
	// of writes until one entry carried more than one.
	testutil.WaitUntil(t, 30*time.Second, "a batched entry of more than one write", func() bool {
		var wg sync.WaitGroup
		errs := make(chan error, units)
		for _, write := range clients {
			wg.Go(func() {
				for range 5 {
					if err := write(); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		entries, commands := batched()
		return commands > entries
	})
}
