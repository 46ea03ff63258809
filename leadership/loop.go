package leadership

import (
	"context"
	"errors"
	"time"
)

// callTimeout bounds one claim, extend or revoke.
const callTimeout = 5 * time.Second

// state is owned by the tracker's loop goroutine.
type state struct {
	known    bool
	holding  bool
	term     uint64
	until    time.Time // guaranteed until, on the agent's clock
	stepDown bool
	gained   uint64
	view     Lease     // the lease as last seen
	retryAt  time.Time // zero: no retry pending
	holdOff  time.Time // do not claim before this (after a resignation)
	// index is the controller's modify index of the last claim or extend
	// answer that found the lease this unit's (0: none, or not sent). A
	// watch answer older than it was read before that answer.
	index uint64
}

func (t *Tracker) loop(ctx context.Context) error {
	var s state
	timer := t.cfg.Clock.NewTimer(time.Hour)
	defer timer.Stop()
	last := State{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-t.watched:
			if err := t.onWatch(ctx, &s, r); err != nil {
				return err
			}
		case <-timer.Chan():
			if err := t.onTimer(ctx, &s); err != nil {
				return err
			}
		// A call's effect is published before it is answered, so a caller
		// that reads State after Resign (or a Check that extended) sees it.
		case req := <-t.checks:
			ok := t.check(ctx, &s, req.term)
			last = t.publish(s, last)
			req.reply <- ok
		case req := <-t.resigns:
			err := t.resign(ctx, &s, req.term)
			last = t.publish(s, last)
			req.reply <- err
		case req := <-t.holds:
			req.reply <- s.holding && s.term == req.term && t.cfg.Clock.Now().Before(s.until)
		case reply := <-t.renews:
			var err error
			if s.holding && !s.stepDown {
				err = t.extend(ctx, &s)
			}
			last = t.publish(s, last)
			reply <- err
		}
		last = t.publish(s, last)
		timer.Reset(t.nextWake(s))
	}
}

func (t *Tracker) onWatch(ctx context.Context, s *state, r watchResult) error {
	if r.err != nil {
		if t.cfg.Fatal(r.err) {
			return errors.Join(ErrFatal, r.err)
		}
		t.log.Debug().Err(r.err).Msg("cannot watch lease")
		return nil
	}
	if r.reset {
		s.index = 0 // the controller's indexes went back: ours orders nothing
	}
	if s.holding {
		ours := r.lease.Holder == t.cfg.Unit && r.lease.Term == s.term
		switch {
		case s.index != 0 && r.index != 0 && r.index < s.index:
			// Read before this unit's own claim or extend applied (the
			// watch raced it): what it says is already superseded.
			t.log.Debug().Uint64("index", r.index).Uint64("lease_index", s.index).Msg("ignoring stale lease answer")
			return nil
		case !ours && (s.index == 0 || r.index <= s.index):
			// It says the lease is gone, but cannot be placed after the
			// answer that gave it to us: ask the controller, whose answer
			// to an extend is authoritative.
			t.log.Debug().Uint64("index", r.index).Uint64("lease_index", s.index).Msg("confirming lease answer")
			return t.extend(ctx, s)
		}
		s.known, s.view = true, r.lease
		if !ours {
			t.lost(s, LostTaken)
			return nil
		}
		// A step-down request is never withdrawn within a term.
		s.stepDown = s.stepDown || r.lease.StepDown
		return nil
	}
	s.known, s.view = true, r.lease
	if t.shouldClaim(s) {
		return t.claim(ctx, s)
	}
	return nil
}

func (t *Tracker) onTimer(ctx context.Context, s *state) error {
	now := t.cfg.Clock.Now()
	if s.holding {
		if !now.Before(s.until) {
			t.lost(s, LostExpired)
			return nil
		}
		if !s.stepDown && (!now.Before(t.renewAt(s)) || (!s.retryAt.IsZero() && !now.Before(s.retryAt))) {
			return t.extend(ctx, s)
		}
		return nil
	}
	if t.shouldClaim(s) && !now.Before(s.retryAt) {
		return t.claim(ctx, s)
	}
	return nil
}

// shouldClaim: a known lease that is vacant or already ours, and no
// hold-off after resigning. A lease of ours with a step-down pending is
// not claimed: the controller refuses it (an agent restarted while it
// steps down), and the tracker resigns it after leader-deposed instead.
func (t *Tracker) shouldClaim(s *state) bool {
	vacant := s.view.Holder == "" || (s.view.Holder == t.cfg.Unit && !s.view.StepDown)
	return s.known && vacant && !t.cfg.Clock.Now().Before(s.holdOff)
}

func (t *Tracker) renewAt(s *state) time.Time {
	return s.until.Add(-t.cfg.ClaimDuration() / 2)
}

func (t *Tracker) claim(ctx context.Context, s *state) error {
	d := t.cfg.ClaimDuration()
	t0 := t.cfg.Clock.Now()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	l, idx, err := t.cfg.Client.Claim(cctx, t.cfg.App, t.cfg.Unit, d)
	cancel()
	switch {
	case err == nil:
		s.holding, s.term, s.until, s.stepDown, s.view, s.retryAt = true, l.Term, t0.Add(d), l.StepDown, l, time.Time{}
		s.index = idx
		s.gained++
		t.log.Info().Uint64("term", l.Term).Msg("leadership gained")
		t.cfg.Observer.LeadershipGained()
	case errors.Is(err, ErrClaimDenied), errors.Is(err, ErrStepDownPending), errors.Is(err, ErrUnitDying):
		// Held by another unit, or this one may not take it: wait for the
		// next change of the lease.
		s.view, s.retryAt = l, time.Time{}
	default:
		return t.callFailed(s, "claim", err)
	}
	return nil
}

func (t *Tracker) extend(ctx context.Context, s *state) error {
	d := t.cfg.ClaimDuration()
	t0 := t.cfg.Clock.Now()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	l, idx, err := t.cfg.Client.Extend(cctx, t.cfg.App, t.cfg.Unit, d, s.term)
	cancel()
	switch {
	case err == nil:
		s.until, s.stepDown, s.view, s.retryAt = t0.Add(d), l.StepDown, l, time.Time{}
		s.index = idx
	case errors.Is(err, ErrStepDownPending):
		// Still ours at idx, but no longer renewed.
		s.stepDown, s.retryAt = true, time.Time{}
		s.index = max(s.index, idx)
	case errors.Is(err, ErrNotHolder):
		t.lost(s, LostRefused)
	default:
		return t.callFailed(s, "extend", err)
	}
	return nil
}

func (t *Tracker) callFailed(s *state, call string, err error) error {
	if t.cfg.Fatal(err) {
		return errors.Join(ErrFatal, err)
	}
	t.log.Warn().Err(err).Str("call", call).Msg("cannot reach controller for leadership")
	s.retryAt = t.cfg.Clock.Now().Add(t.cfg.RetryInterval)
	return nil
}

func (t *Tracker) lost(s *state, why LossReason) {
	t.log.Info().Uint64("term", s.term).Str("reason", lossText[why]).Msg("leadership lost")
	s.holding, s.stepDown, s.retryAt = false, false, time.Time{}
	t.cfg.Observer.LeadershipLost(why)
}

// check answers the lease half of is-leader (see Tracker.Check).
func (t *Tracker) check(ctx context.Context, s *state, term uint64) bool {
	ok := func() bool {
		return s.holding && s.term == term && !s.stepDown &&
			s.until.Sub(t.cfg.Clock.Now()) >= t.cfg.Guarantee
	}
	if ok() || !s.holding || s.term != term || s.stepDown {
		return ok()
	}
	if err := t.extend(ctx, s); err != nil {
		t.log.Warn().Err(err).Msg("cannot extend lease for is-leader")
	}
	return ok()
}

func (t *Tracker) resign(ctx context.Context, s *state, term uint64) error {
	held := s.holding && s.term == term
	// Or the controller last said the lease is this unit's for term,
	// though the tracker has no guarantee of it: an agent restarted while
	// its step-down was pending (the controller refuses its claim), or
	// whose guarantee ran out before leader-deposed ended. Releasing it
	// hands over now, not at expiry; the revoke is fenced by term.
	owned := !s.holding && s.view.Holder == t.cfg.Unit && s.view.Term == term
	if !held && !owned {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	err := t.cfg.Client.Revoke(cctx, t.cfg.App, t.cfg.Unit, term)
	cancel()
	if err != nil && !errors.Is(err, ErrNotHolder) {
		return err
	}
	t.log.Info().Uint64("term", term).Msg("leadership released")
	if held {
		t.cfg.Observer.LeadershipLost(LostReleased)
	}
	s.holding, s.stepDown = false, false
	s.view = Lease{Term: term}
	// Hand over: another unit claims at once; this one claims again only
	// if nobody has for a whole claim duration (a lone unit, say).
	s.holdOff = t.cfg.Clock.Now().Add(t.cfg.ClaimDuration())
	return nil
}

func (t *Tracker) nextWake(s state) time.Duration {
	now := t.cfg.Clock.Now()
	next := now.Add(time.Hour)
	earliest := func(at time.Time) {
		if !at.IsZero() && at.Before(next) {
			next = at
		}
	}
	if s.holding {
		earliest(s.until)
		if !s.stepDown {
			earliest(t.renewAt(&s))
			earliest(s.retryAt)
		}
	} else if s.known && (s.view.Holder == "" || s.view.Holder == t.cfg.Unit) {
		earliest(s.retryAt)
		if s.holdOff.After(now) { // a hold-off long past is no reason to wake
			earliest(s.holdOff)
		}
	}
	return max(next.Sub(now), 0)
}

// publish makes s visible if it changed, signalling Changes, and updates
// the guarantee Guarantee reads.
func (t *Tracker) publish(s state, last State) State {
	g := Guaranteed{Held: s.holding}
	if s.holding {
		g.Until = s.until
	}
	if *t.guaranteed.Load() != g {
		t.guaranteed.Store(&g)
	}
	cur := State{Known: s.known, Leader: s.holding, Term: s.view.Term, StepDown: s.stepDown, Gained: s.gained}
	if s.holding {
		cur.Term = s.term
	}
	if cur == last {
		return last
	}
	<-t.pub
	t.pub <- cur
	select {
	case t.changes <- struct{}{}:
	default:
	}
	return cur
}
