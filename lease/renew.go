package lease

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// LeaderRenewProtocol is the protocol from which the raft leader may
// answer a holder's extend (or its claim of the lease it holds) from its
// own memory, before any log entry: it writes the renewals back in one
// renew command before its next advance of the global time, and a newly
// elected leader first gives every held lease grace-leases (see the
// package doc's "Renewals answered by the leader"). Below it every
// renewal is a log entry of its own, so that nodes of an older release
// never miss a promise.
const LeaderRenewProtocol = 7

// LeaderRenewMax is the longest duration the raft leader renews from
// memory, and the grace every held lease gets when a new leader starts:
// whatever a leader promised from memory, its successor keeps. A renewal
// for longer is always a log entry. It is part of protocol 7: every node
// that speaks it uses the same value.
const LeaderRenewMax = time.Minute

// Renewal is one renewal the raft leader answered from memory: Unit
// holds App's lease at Term and was promised Duration from the global
// time of its answer.
type Renewal struct {
	App      string        `json:"app"`
	Unit     string        `json:"unit"`
	Term     uint64        `json:"term"`
	Duration time.Duration `json:"duration"`
}

// Renew (protocol 7) writes back renewals the raft leader answered from
// memory: for each whose Unit still holds App's lease at Term, expiry =
// max(expiry, now+Duration), as Extend would. Unlike Extend it ignores a
// step-down request: the renewal was answered, so it is ordered before
// any request not yet applied when it was. A renewal of a lease that has
// since changed holder or term changes nothing. An empty renew, one over
// MaxBatch renewals, or one with a duration out of range, is invalid as a
// whole. Only the leader's time advancer proposes it. Retry: safe (never
// shortens).
type Renew struct {
	Renewals []Renewal `json:"renewals"`
}

// GraceLeases (protocol 7) gives every held lease at least For from now:
// expiry = max(expiry, now+For). A newly elected raft leader proposes it
// before its first advance of the global time, with For =
// LeaderRenewMax, so that every renewal its predecessors answered from
// memory and never wrote back is kept. It wakes no watcher: only the
// expiry moves. For out of range is invalid. Retry: safe.
type GraceLeases struct {
	For time.Duration `json:"for"`
}

// Type implements Op.
func (Renew) Type() string { return "renew" }

// Type implements Op.
func (GraceLeases) Type() string { return "grace-leases" }

// needs implements gated.
func (Renew) needs() (uint64, string) {
	return LeaderRenewProtocol, "renewals answered by the leader (renew)"
}

// needs implements gated.
func (GraceLeases) needs() (uint64, string) {
	return LeaderRenewProtocol, "renewals answered by the leader (grace-leases)"
}

func (c Renew) apply(s *State, index uint64) Result {
	if len(c.Renewals) == 0 || len(c.Renewals) > MaxBatch {
		return invalid("renew leases", "%d renewals (want 1 to %d)", len(c.Renewals), MaxBatch)
	}
	for _, r := range c.Renewals {
		if !validDuration(r.Duration) {
			return invalid("renew leases", "%s: duration %v out of range", r.App, r.Duration)
		}
	}
	for _, r := range c.Renewals {
		a, ok := s.Applications[r.App]
		if !ok {
			continue
		}
		l := &a.Lease
		if l.Holder != r.Unit || l.Term != r.Term {
			continue
		}
		l.Start = s.GlobalTime
		l.Duration = r.Duration
		l.Expiry = later(l.Expiry, s.GlobalTime.Add(r.Duration))
		s.touchApp(a, index)
	}
	return Result{GlobalTime: s.GlobalTime}
}

func (c GraceLeases) apply(s *State, _ uint64) Result {
	if !validDuration(c.For) {
		return invalid("grace leases", "for %v out of range", c.For)
	}
	until := s.GlobalTime.Add(c.For)
	for _, name := range slices.Sorted(maps.Keys(s.Applications)) {
		if l := &s.Applications[name].Lease; !l.Vacant() {
			l.Expiry = later(l.Expiry, until)
		}
	}
	return Result{GlobalTime: s.GlobalTime}
}

// RenewView is what the raft leader reads to answer a renewal from
// memory, in one consistent read: app's lease, the application's modify
// index, the global time, the effective version, and whether unit is a
// registered unit of app.
type RenewView struct {
	Lease            Lease
	Index            uint64
	Now              time.Time
	EffectiveVersion uint64
	UnitOfApp        bool
}

// RenewView returns the view of app's lease for unit's renewal, and
// whether the application exists.
func (f *FSM) RenewView(app, unit string) (RenewView, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	a, ok := f.state.Applications[app]
	if !ok {
		return RenewView{}, false
	}
	u, registered := f.state.Units[unit]
	return RenewView{
		Lease: a.Lease.Clone(), Index: a.ModifyIndex, Now: f.state.GlobalTime,
		EffectiveVersion: f.state.EffectiveVersion, UnitOfApp: registered && u.App == app,
	}, true
}

// Renewable reports whether unit's renewal of v's lease for d may be
// answered from memory: the unit holds the lease (at term, unless term is
// 0), no step-down is requested, and 0 < d <= LeaderRenewMax, under
// protocol 7. Anything else goes to the log, which gives the answer.
func (v RenewView) Renewable(unit string, term uint64, d time.Duration) bool {
	l := v.Lease
	return v.EffectiveVersion >= LeaderRenewProtocol && v.UnitOfApp &&
		l.Holder == unit && (term == 0 || term == l.Term) && !l.StepDownRequested &&
		d > 0 && d <= LeaderRenewMax
}

// Renewed is the result the log would give unit's extend of v's lease
// for d at v's global time: the lease renewed, at the application's
// modify index.
func (v RenewView) Renewed(d time.Duration) Result {
	l := v.Lease.Clone()
	l.Start, l.Duration = v.Now, d
	l.Expiry = later(l.Expiry, v.Now.Add(d))
	return Result{Index: v.Index, Lease: &l}
}

// String names the renewal in logs and errors.
func (r Renewal) String() string {
	return fmt.Sprintf("%s by %s (term %d, %v)", r.App, r.Unit, r.Term, r.Duration)
}
