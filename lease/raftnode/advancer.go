package raftnode

import (
	"context"
	"errors"
	"time"

	"github.com/uniter-dev/uniter/lease"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/internal/clock"
)

// advancer is the raft leader's time advancer. It anchors at (P, N): the
// local clock reading P at which it found global time N. Every tick it
// proposes AdvanceTime{Old: the FSM's global time, New: N + (now - P)}, so
// the global time never runs faster than the local monotonic clock (the
// package doc's A1). A failover pauses the global time: the next leader
// anchors at whatever global time it finds, at its own start. Any failed
// advance (timeout, lost leadership, compare-and-set mismatch) re-anchors
// at the current reading and global time, which only pauses the global
// time again; a global time found ahead of N + (now - P) (a late-applied
// advance, a restored backup) is left alone until the advancer catches up.
//
// A brand-new cluster has global time zero; the advancer's first proposal
// then sets it to the clock's wall time ("genesis"), and Node.Apply
// refuses every other command until it has, so no lease is measured from
// the zero time.
type advancer struct {
	clock clock.Clock
	tick  time.Duration
	slack time.Duration
	now   func() time.Time // the FSM's global time
	apply func(context.Context, lease.Op) (lease.Result, error)
	log   zerolog.Logger

	anchorLocal  time.Time
	anchorGlobal time.Time
}

// run advances the global time every tick until ctx ends.
func (a *advancer) run(ctx context.Context) {
	a.anchor()
	if a.anchorGlobal.IsZero() {
		a.genesis(ctx)
	}
	t := a.clock.NewTimer(a.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
		if a.anchorGlobal.IsZero() {
			a.genesis(ctx)
		} else {
			a.step(ctx)
		}
		t.Reset(a.tick)
	}
}

func (a *advancer) anchor() {
	a.anchorLocal = a.clock.Now()
	a.anchorGlobal = a.now()
}

// genesis starts the global time of a new cluster at the wall time.
func (a *advancer) genesis(ctx context.Context) {
	reading := a.clock.Now()
	start := reading.Round(0).UTC()
	res, err := a.apply(ctx, lease.AdvanceTime{New: start, Slack: a.slack})
	if err := errors.Join(err, res.Err); err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("cannot start the global time")
		}
		a.anchor() // someone else may have started it
		return
	}
	a.log.Info().Time("global_time", start).Msg("started the global time")
	a.anchorLocal, a.anchorGlobal = reading, start
}

// step proposes one advance.
func (a *advancer) step(ctx context.Context) {
	old := a.now()
	next := a.anchorGlobal.Add(a.clock.Now().Sub(a.anchorLocal))
	if !next.After(old) {
		return
	}
	res, err := a.apply(ctx, lease.AdvanceTime{Old: old, New: next, Slack: a.slack})
	if err := errors.Join(err, res.Err); err != nil {
		if ctx.Err() != nil {
			return
		}
		a.log.Warn().Err(err).Msg("cannot advance the global time; pausing it")
		a.anchor()
		return
	}
	if len(res.Expired) > 0 {
		a.log.Info().Strs("applications", res.Expired).Msg("leases expired")
	}
}
