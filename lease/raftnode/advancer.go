package raftnode

import (
	"context"
	"errors"
	"sync"
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
//
// Every advance the FSM applies is recorded in fresh with the reading it
// was computed from (its stamp), so that Node.Apply can hold claims and
// extends while the global time is stale (the gate of lease/doc.go). An
// advancer starting on an existing cluster first proposes the global time
// it found, unchanged, stamped with its anchor; one that finds the global
// time ahead of its line proposes that time unchanged, stamped with the
// reading: either way every tick stamps the global time as it stands.
type advancer struct {
	clock clock.Clock
	tick  time.Duration
	slack time.Duration
	now   func() time.Time // the FSM's global time
	apply func(context.Context, lease.Op) (lease.Result, error)
	// start, if set, must succeed before the advancer's first proposal on
	// an existing cluster (a new leader's grace-leases); until it does the
	// advancer proposes nothing and re-tries every tick.
	start func(context.Context) error
	// before, if set, runs before every advance is proposed, with the
	// global time about to be proposed (the leader's renewals written
	// back); if it fails the advance is not proposed and the advancer
	// re-anchors.
	before func(ctx context.Context, next time.Time) error
	log    zerolog.Logger
	fresh  *freshness // nil: stamps are not recorded

	started bool // start has succeeded

	anchorLocal  time.Time
	anchorGlobal time.Time
}

// run advances the global time every tick until ctx ends.
func (a *advancer) run(ctx context.Context) {
	a.anchor()
	if a.anchorGlobal.IsZero() {
		a.genesis(ctx)
	} else if a.begin(ctx) {
		a.propose(ctx, a.anchorLocal, a.anchorGlobal, a.anchorGlobal)
	}
	t := a.clock.NewTimer(a.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
		switch {
		case a.anchorGlobal.IsZero():
			a.genesis(ctx)
		case !a.started:
			if a.begin(ctx) {
				a.propose(ctx, a.anchorLocal, a.anchorGlobal, a.anchorGlobal)
			}
		default:
			a.step(ctx)
		}
		t.Reset(a.tick)
	}
}

// begin runs start once, before the first proposal on an existing
// cluster, and reports whether the advancer may propose; a failure
// re-anchors (the global time stays paused until it succeeds).
func (a *advancer) begin(ctx context.Context) bool {
	if a.started || a.start == nil {
		a.started = true
		return true
	}
	if err := a.start(ctx); err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("cannot start advancing the global time; pausing it")
		}
		a.anchor()
		return false
	}
	a.started = true
	a.anchor() // the global time as it stands after start
	return true
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
	a.started = true // a new cluster holds no lease to give grace to
	a.fresh.record(reading)
}

// step proposes one advance: to the anchor line's value at the current
// reading, or the global time unchanged if it is ahead of the line.
func (a *advancer) step(ctx context.Context) {
	old := a.now()
	reading := a.clock.Now()
	next := later(old, a.anchorGlobal.Add(reading.Sub(a.anchorLocal)))
	a.propose(ctx, reading, old, next)
}

// propose applies AdvanceTime{old, next} and, once applied, records its
// stamp reading; a failure re-anchors.
func (a *advancer) propose(ctx context.Context, reading, old, next time.Time) {
	if a.before != nil {
		if err := a.before(ctx, next); err != nil {
			if ctx.Err() == nil {
				a.log.Warn().Err(err).Msg("cannot advance the global time; pausing it")
				a.anchor()
			}
			return
		}
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
	a.fresh.record(reading)
	if len(res.Expired) > 0 {
		a.log.Info().Strs("applications", res.Expired).Msg("leases expired")
	}
}

// freshness is the stamp of the newest advance-time the FSM applied for
// this node's advancer: the advancer's clock reading it was computed from
// (for a global time proposed unchanged, the reading it was confirmed
// at). Node.Apply reads it to hold claims and extends while the global
// time is stale. The zero value has no stamp.
type freshness struct {
	mu      sync.Mutex
	stamp   time.Time
	renewed chan struct{} // closed and replaced at each record
}

// record makes reading the stamp (it never moves back) and wakes load's
// waiters. A nil freshness records nothing.
func (f *freshness) record(reading time.Time) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if reading.After(f.stamp) {
		f.stamp = reading
	}
	if f.renewed != nil {
		close(f.renewed)
	}
	f.renewed = make(chan struct{})
}

// load returns the stamp (zero if none) and a channel closed at the next
// record.
func (f *freshness) load() (time.Time, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.renewed == nil {
		f.renewed = make(chan struct{})
	}
	return f.stamp, f.renewed
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
