package lease

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// MaxDuration bounds claim and extend durations.
const MaxDuration = 24 * time.Hour

// maxGlobalTime bounds the global time, so that every time derived from it
// stays within what JSON (RFC 3339) can encode in a snapshot.
var maxGlobalTime = time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)

// Result is what applying one command returns (FSM.Apply returns it as a
// value, which raft hands back as ApplyFuture.Response()). All data is a
// deep copy.
type Result struct {
	// Index is the raft log index the command was applied at.
	Index uint64
	// Err is nil on success, a bare denial sentinel (ErrClaimDenied, ...)
	// or a wrapped ErrInvalidCommand/ErrUnknownCommand/ErrUnsupportedVersion.
	// A command with an error changed nothing.
	Err error
	// Lease is the application's lease after the command (or as it stands,
	// on denial) for claim, extend, revoke, request-step-down, pin, unpin
	// and deregister-unit (nil when the application or unit is unknown, or
	// the input is invalid).
	Lease *Lease
	// Version is the settings version after set-leader-settings/set-config,
	// the effective version after (or as it stands, on mismatch)
	// set-effective-version, the unit's ResolvedID after (or as it
	// stands, on ErrStaleResolve) resolve, and the databag's version after
	// enter-scope and set-relation-data.
	Version uint64
	// GlobalTime is the global time after (or as it stands, on mismatch)
	// advance-time.
	GlobalTime time.Time
	// Expired lists, sorted, the applications whose leases advance-time
	// released.
	Expired []string
	// Relation is the new relation after add-relation.
	Relation *Relation
	// Operation is the operation after an operation command (or as it
	// stands, on ErrOperationStatus).
	Operation *Operation
	// Batch holds, for a batch (see Batch), each command's own result, in
	// order; the batch's own Err is set only if it was refused as a whole.
	Batch []Result
}

// Apply applies op at raft log index, which must exceed every index applied
// before (one not after State.Index is refused with ErrInvalidCommand). A
// command that needs a newer protocol than the effective version is
// refused with a *ProtocolError (ErrNeedsProtocol). It
// is deterministic, never reads a clock, never panics on bad input, and
// leaves the state untouched when Result.Err is set.
func (s *State) Apply(index uint64, op Op) Result {
	var res Result
	switch {
	case op == nil:
		res.Err = fmt.Errorf("cannot apply command: nil: %w", ErrInvalidCommand)
	case index <= s.Index:
		res.Err = fmt.Errorf("cannot apply %s command: index %d is not after %d: %w",
			op.Type(), index, s.Index, ErrInvalidCommand)
	default:
		s.resetTouched()
		if err := RefuseNewer(op, s.EffectiveVersion); err != nil {
			res.Err = err
		} else {
			res = op.apply(s, index)
		}
	}
	res.Index = index
	return res
}

// ApplyData decodes an encoded command (see Encode) and applies it; a
// decoding error is returned as the result's Err.
func (s *State) ApplyData(index uint64, data []byte) Result {
	op, err := Decode(data)
	if err != nil {
		return Result{Index: index, Err: err}
	}
	return s.Apply(index, op)
}

func fail(err error) Result { return Result{Err: err} }

func invalid(what, format string, args ...any) Result {
	return fail(fmt.Errorf("cannot %s: %s: %w", what, fmt.Sprintf(format, args...), ErrInvalidCommand))
}

func leaseResult(l *Lease, err error) Result {
	c := l.Clone()
	return Result{Lease: &c, Err: err}
}

// touchApp records that app changed at index.
func (s *State) touchApp(a *Application, index uint64) {
	a.ModifyIndex = index
	s.Index = index
	s.touched = append(s.touched, appKey(a.Name))
}

// touchUnit records that u changed at index.
func (s *State) touchUnit(u *Unit, index uint64) {
	u.ModifyIndex = index
	s.Index = index
	s.touched = append(s.touched, unitKey(u.Name))
}

// resetTouched empties the touched list before a command, dropping a
// large backing array (an advance-time that expired many leases).
func (s *State) resetTouched() {
	if cap(s.touched) > 1024 {
		s.touched = nil
	}
	s.touched = s.touched[:0]
}

// appKey and unitKey name an application's and a unit's change channels.
func appKey(name string) string  { return "app:" + name }
func unitKey(name string) string { return unitKeyPrefix + name }

// unitKeyPrefix begins every unitKey.
const unitKeyPrefix = "unit:"

// holderApp finds app for a command acting as unit, which must be a
// registered unit of app.
func (s *State) holderApp(what, app, unit string) (*Application, Result, bool) {
	u, ok := s.Units[unit]
	if !ok {
		if _, err := parseUnitName(unit); err != nil {
			return nil, invalid(what, "%v", err), false
		}
		return nil, fail(ErrUnknownUnit), false
	}
	if u.App != app {
		return nil, invalid(what, "unit %q is not a unit of application %q", unit, app), false
	}
	return s.Applications[app], Result{}, true
}

func validDuration(d time.Duration) bool { return d > 0 && d <= MaxDuration }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (c Claim) apply(s *State, index uint64) Result {
	if !validDuration(c.Duration) {
		return invalid("claim lease", "duration %v out of range", c.Duration)
	}
	a, res, ok := s.holderApp("claim lease", c.App, c.Unit)
	if !ok {
		return res
	}
	l := &a.Lease
	switch l.Holder {
	case c.Unit:
		return s.extend(a, c.Duration, index)
	case "":
	default:
		return leaseResult(l, ErrClaimDenied)
	}
	if s.Units[c.Unit].Life == LifeDying {
		return leaseResult(l, ErrUnitDying)
	}
	if s.handingOver(a, c.Unit) {
		return leaseResult(l, ErrClaimDenied)
	}
	l.Term++
	l.Holder = c.Unit
	l.Start = s.GlobalTime
	l.Duration = c.Duration
	l.Expiry = s.GlobalTime.Add(c.Duration)
	l.StepDownRequested = false
	l.SteppedDown, l.HandOverUntil = "", time.Time{}
	s.touchApp(a, index)
	return leaseResult(l, nil)
}

// handingOver reports whether a's vacant lease is being handed over from
// unit, which stepped down (see Lease.SteppedDown): another alive unit of
// the application may claim it first.
func (s *State) handingOver(a *Application, unit string) bool {
	l := &a.Lease
	if l.SteppedDown != unit || !s.GlobalTime.Before(l.HandOverUntil) {
		return false
	}
	for _, u := range s.Units {
		if u.App == a.Name && u.Name != unit && u.Life == LifeAlive {
			return true
		}
	}
	return false
}

// releaseHeld makes a's held lease vacant. From protocol 3, a lease given
// up after a step-down is handed over: its holder may not claim it again
// for one lease duration while another alive unit could.
func (s *State) releaseHeld(l *Lease) {
	holder, d, steppedDown := l.Holder, l.Duration, l.StepDownRequested
	release(l)
	if steppedDown && s.EffectiveVersion >= HandOverProtocol {
		l.SteppedDown, l.HandOverUntil = holder, s.GlobalTime.Add(d)
	}
}

func (c Extend) apply(s *State, index uint64) Result {
	if !validDuration(c.Duration) {
		return invalid("extend lease", "duration %v out of range", c.Duration)
	}
	a, res, ok := s.holderApp("extend lease", c.App, c.Unit)
	if !ok {
		return res
	}
	if l := &a.Lease; l.Holder != c.Unit || (c.Term != 0 && c.Term != l.Term) {
		return leaseResult(l, ErrNotHolder)
	}
	return s.extend(a, c.Duration, index)
}

// extend renews a's lease for its holder; it never moves expiry earlier.
func (s *State) extend(a *Application, d time.Duration, index uint64) Result {
	l := &a.Lease
	if l.StepDownRequested {
		return leaseResult(l, ErrStepDownPending)
	}
	l.Start = s.GlobalTime
	l.Duration = d
	l.Expiry = later(l.Expiry, s.GlobalTime.Add(d))
	s.touchApp(a, index)
	return leaseResult(l, nil)
}

func (c Revoke) apply(s *State, index uint64) Result {
	a, res, ok := s.holderApp("revoke lease", c.App, c.Unit)
	if !ok {
		return res
	}
	l := &a.Lease
	switch {
	case l.Holder != c.Unit || (c.Term != 0 && c.Term != l.Term):
		return leaseResult(l, ErrNotHolder)
	case l.Pinned():
		return leaseResult(l, ErrPinned)
	}
	s.releaseHeld(l)
	s.touchApp(a, index)
	return leaseResult(l, nil)
}

// release makes a lease vacant, keeping its term.
func release(l *Lease) {
	*l = Lease{Term: l.Term, Pins: map[string]Pin{}}
}

func (c RequestStepDown) apply(s *State, index uint64) Result {
	a, ok := s.Applications[c.App]
	if !ok {
		return fail(ErrUnknownApplication)
	}
	l := &a.Lease
	switch {
	case l.Vacant():
		return leaseResult(l, ErrNoLeader)
	case c.Term != 0 && c.Term != l.Term:
		return leaseResult(l, ErrStaleTerm)
	case l.Pinned():
		return leaseResult(l, ErrPinned)
	case l.StepDownRequested:
		return leaseResult(l, nil)
	}
	l.StepDownRequested = true
	s.touchApp(a, index)
	return leaseResult(l, nil)
}

func (c PinLease) apply(s *State, index uint64) Result {
	if c.Entity == "" {
		return invalid("pin lease", "empty entity")
	}
	if c.Until != nil && !c.Until.After(s.GlobalTime) {
		return invalid("pin lease", "until %v is not after the global time %v", c.Until, s.GlobalTime)
	}
	a, ok := s.Applications[c.App]
	if !ok {
		return fail(ErrUnknownApplication)
	}
	l := &a.Lease
	switch {
	case l.Vacant():
		return leaseResult(l, ErrNoLeader)
	case l.StepDownRequested:
		return leaseResult(l, ErrStepDownPending)
	}
	p, ok := l.Pins[c.Entity]
	if !ok {
		p.Since = s.GlobalTime
	}
	p.Reason = c.Reason
	p.Until = nil
	if c.Until != nil {
		u := c.Until.UTC()
		p.Until = &u
	}
	l.Pins[c.Entity] = p
	s.touchApp(a, index)
	return leaseResult(l, nil)
}

func (c UnpinLease) apply(s *State, index uint64) Result {
	a, ok := s.Applications[c.App]
	if !ok {
		return fail(ErrUnknownApplication)
	}
	l := &a.Lease
	if _, ok := l.Pins[c.Entity]; !ok {
		return leaseResult(l, ErrNotPinned)
	}
	unpin(l, c.Entity, s.GlobalTime)
	s.touchApp(a, index)
	return leaseResult(l, nil)
}

// unpin removes entity's pin; when the last goes, the holder gets at least
// a full lease duration from now, and never less than it already had.
func unpin(l *Lease, entity string, now time.Time) {
	delete(l.Pins, entity)
	if !l.Pinned() {
		l.Expiry = later(l.Expiry, now.Add(l.Duration))
	}
}

func (c AdvanceTime) apply(s *State, index uint64) Result {
	switch {
	case c.New.Before(c.Old):
		return invalid("advance time", "new %v is before old %v", c.New, c.Old)
	case c.Slack < 0:
		return invalid("advance time", "negative slack %v", c.Slack)
	case c.New.After(maxGlobalTime):
		return invalid("advance time", "new %v is after %v", c.New, maxGlobalTime)
	case !c.Old.Equal(s.GlobalTime):
		return Result{Err: ErrTimeMismatch, GlobalTime: s.GlobalTime}
	case c.New.Equal(c.Old):
		return Result{GlobalTime: s.GlobalTime}
	}
	now := c.New.UTC()
	s.GlobalTime = now
	s.Index = index
	var expired []string
	for _, name := range slices.Sorted(maps.Keys(s.Applications)) {
		a := s.Applications[name]
		s.endHandOver(a, now, index)
		if s.expirePins(a, now, index) && s.expireLease(a, now, c.Slack, index) {
			expired = append(expired, name)
		}
	}
	return Result{GlobalTime: now, Expired: expired}
}

// expirePins drops a's pins that are due by now and reports whether the
// lease is left unpinned.
func (s *State) expirePins(a *Application, now time.Time, index uint64) bool {
	l := &a.Lease
	for _, entity := range slices.Sorted(maps.Keys(l.Pins)) {
		if until := l.Pins[entity].Until; until != nil && !until.After(now) {
			unpin(l, entity, now)
			s.touchApp(a, index)
		}
	}
	return !l.Pinned()
}

// expireLease releases a's unpinned lease if expiry + slack < now.
func (s *State) expireLease(a *Application, now time.Time, slack time.Duration, index uint64) bool {
	l := &a.Lease
	if l.Vacant() || !l.Expiry.Add(slack).Before(now) {
		return false
	}
	s.releaseHeld(l)
	s.touchApp(a, index)
	return true
}

// endHandOver ends a's hand-over once it is due by now, waking the
// application's watchers: the unit that stepped down may claim again.
func (s *State) endHandOver(a *Application, now time.Time, index uint64) {
	l := &a.Lease
	if l.SteppedDown != "" && !now.Before(l.HandOverUntil) {
		l.SteppedDown, l.HandOverUntil = "", time.Time{}
		s.touchApp(a, index)
	}
}
