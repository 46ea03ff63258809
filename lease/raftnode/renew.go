package raftnode

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/uniter-dev/uniter/lease"
)

// Renewals answered by the raft leader (protocol 7, lease/doc.go's
// "Renewals answered by the leader"). A holder's extend, or its claim of
// the lease it already holds, is answered by the leader from its applied
// state once three things are so:
//
//   - the gate (awaitFresh) passed, after the call started;
//   - a raft VerifyLeader round started after the call arrived came back:
//     no other leader was elected before the call started;
//   - the lease will outlive every advance of the global time proposed
//     so far: expiry + slack >= the renewals' horizon.
//
// The renewal then waits in the renewals table, and the time advancer
// writes the whole table back in one renew command before it proposes its
// next advance, so no advance can release a renewed lease before its
// renewal is in the log. A leader that dies with renewals unwritten is
// covered by its successor, whose advancer gives every held lease
// grace-leases (lease.LeaderRenewMax) before it moves the global time.
// Anything else (another holder, a step-down requested, a duration over
// LeaderRenewMax, a lease near its end, a cluster below protocol 7,
// Config.NoLeaderRenew) goes to the log as before, which gives the
// answer.
//
// The table is shared by the API's handlers and the advancer; a mutex,
// not a goroutine, owns it, because every answer takes it once for a map
// write and a goroutine hop would cost more than the renewal itself.
type renewals struct {
	mu      sync.Mutex
	pending map[string]lease.Renewal // by application: answered, not yet written back
	// horizon is the latest global time the advancer has proposed (or is
	// about to propose) without the pending renewals in the log before
	// it: a renewal is answered from memory only if its lease survives it.
	horizon time.Time
}

// add records r, answered on view v, unless an advance already proposed
// could release v's lease: expiry + slack < horizon. It reports whether
// r was recorded. Two renewals of one lease keep the longer duration:
// both were promised.
func (t *renewals) add(r lease.Renewal, expiry time.Time, slack time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if expiry.Add(slack).Before(t.horizon) {
		return false
	}
	if t.pending == nil {
		t.pending = map[string]lease.Renewal{}
	}
	if old, ok := t.pending[r.App]; ok && old.Unit == r.Unit && old.Term == r.Term {
		r.Duration = max(r.Duration, old.Duration)
	}
	t.pending[r.App] = r
	return true
}

// take moves the horizon to next and returns the pending renewals, sorted
// by application, emptying the table: they must be in the log before an
// advance to next is proposed.
func (t *renewals) take(next time.Time) []lease.Renewal {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.horizon = later(t.horizon, next)
	out := make([]lease.Renewal, 0, len(t.pending))
	for _, app := range slices.Sorted(maps.Keys(t.pending)) {
		out = append(out, t.pending[app])
	}
	clear(t.pending)
	return out
}

// putBack returns renewals whose write-back failed to the table, where a
// newer renewal of the same lease (answered meanwhile) is merged with
// them.
func (t *renewals) putBack(rs []lease.Renewal) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending = map[string]lease.Renewal{}
	}
	for _, r := range rs {
		if cur, ok := t.pending[r.App]; ok {
			if cur.Unit != r.Unit || cur.Term != r.Term {
				continue // the newer renewal is of a later term
			}
			r.Duration = max(r.Duration, cur.Duration)
		}
		t.pending[r.App] = r
	}
}

// reset forgets every pending renewal and starts the horizon at now: a
// new leader loop's table. What a lost term left unwritten is covered by
// the grace its successor (maybe this node again) gives.
func (t *renewals) reset(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.pending)
	t.horizon = now
}

// len is how many renewals are pending.
func (t *renewals) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// renewFromMemory answers op, a claim or an extend that passed the gate,
// from this leader's memory if it may (see renewals). ok false: op goes to
// the log.
func (n *Node) renewFromMemory(ctx context.Context, op lease.Op) (res lease.Result, ok bool, err error) {
	if n.cfg.NoLeaderRenew {
		return lease.Result{}, false, nil
	}
	var (
		app, unit string
		term      uint64
		d         time.Duration
	)
	switch op := op.(type) {
	case lease.Extend:
		app, unit, term, d = op.App, op.Unit, op.Term, op.Duration
	case lease.Claim:
		app, unit, d = op.App, op.Unit, op.Duration
	default:
		return lease.Result{}, false, nil
	}
	if v, found := n.fsm.RenewView(app, unit); !found || !v.Renewable(unit, term, d) {
		return lease.Result{}, false, nil
	}
	if err := n.verify.verify(ctx, n); err != nil {
		return lease.Result{}, false, fmt.Errorf("cannot apply %s: %w", op.Type(), err)
	}
	// Read again after the round: the answer is the state as of now.
	v, found := n.fsm.RenewView(app, unit)
	if !found || !v.Renewable(unit, term, d) {
		return lease.Result{}, false, nil
	}
	r := lease.Renewal{App: app, Unit: unit, Term: v.Lease.Term, Duration: d}
	if !n.renew.add(r, v.Lease.Expiry, n.cfg.slack()) {
		return lease.Result{}, false, nil
	}
	n.leaderRenewals.Add(1)
	return v.Renewed(d), true, nil
}

// writeBack is the advancer's step before it proposes an advance to
// next: every pending renewal goes into the log first, in one renew
// command. On failure the renewals go back to the table and the advance
// must not be proposed.
func (n *Node) writeBack(ctx context.Context, next time.Time) error {
	rs := n.renew.take(next)
	for len(rs) > 0 {
		part := rs[:min(len(rs), lease.MaxBatch)]
		res, err := n.advanceApply(ctx, lease.Renew{Renewals: part})
		if err := errors.Join(err, res.Err); err != nil {
			n.renew.putBack(rs)
			return fmt.Errorf("cannot write back %d renewals: %w", len(rs), err)
		}
		rs = rs[len(part):]
	}
	return nil
}

// grace is a new leader's advancer's first step at protocol 7: every
// held lease gets LeaderRenewMax from the global time it found, so that
// whatever an earlier leader answered from memory and never wrote back is
// kept.
func (n *Node) grace(ctx context.Context) error {
	if n.fsm.EffectiveVersion() < lease.LeaderRenewProtocol {
		// No leader can have answered from memory: the version only
		// rises, and this leader's barrier applied every earlier entry.
		return nil
	}
	res, err := n.advanceApply(ctx, lease.GraceLeases{For: lease.LeaderRenewMax})
	if err := errors.Join(err, res.Err); err != nil {
		return fmt.Errorf("cannot give held leases their grace: %w", err)
	}
	return nil
}

// verifier groups concurrent raft VerifyLeader calls into rounds: a call
// joins the next round, which starts only after every call in it arrived,
// so each call's round has every voter's answer from after it arrived.
// At most one round runs at a time, on a goroutine that lives while
// rounds are wanted.
type verifier struct {
	mu      sync.Mutex
	next    *verifyRound
	running bool
}

type verifyRound struct {
	done chan struct{}
	err  error
}

// verify waits for a VerifyLeader round that started after it was called.
func (v *verifier) verify(ctx context.Context, n *Node) error {
	v.mu.Lock()
	r := v.next
	if r == nil {
		r = &verifyRound{done: make(chan struct{})}
		v.next = r
	}
	if !v.running {
		v.running = true
		go v.run(n)
	}
	v.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-n.stop:
		return ErrNodeClosed
	}
}

// run runs rounds until no call waits for one. Each round's future ends:
// raft answers it, or fails it when leadership is lost or raft shuts
// down.
func (v *verifier) run(n *Node) {
	for {
		v.mu.Lock()
		r := v.next
		v.next = nil
		if r == nil {
			v.running = false
			v.mu.Unlock()
			return
		}
		v.mu.Unlock()
		r.err = n.mapErr(n.raft.VerifyLeader().Error())
		close(r.done)
	}
}

// LeaderRenewals is how many lease renewals this node answered from
// memory as the raft leader (see renewals).
func (n *Node) LeaderRenewals() uint64 { return n.leaderRenewals.Load() }
