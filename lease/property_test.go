package lease_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/lease"
)

// The property test runs random interleavings of clients (claim, extend,
// revoke), an operator (pin, unpin, step-down), the time advancer and raft
// failovers against a model of real time, and checks the client contract
// of DESIGN.md §3.1 as argued in the package doc:
//
//   - a lease held by U never leaves U, except by U's own revoke, before the
//     real time t0 + d of any successful claim or extend of U (started at
//     real time t0, for d);
//   - at no real time do two units of an application hold live guarantees;
//   - one holder at a time: a lease changes hands only through vacancy;
//   - terms never decrease, and each claim of a vacant lease adds one;
//   - a pinned lease is never lost; no extend succeeds after a step-down
//     request; a refused command changes nothing; State.Validate holds;
//   - relations (protocol 4): an application databag write succeeds
//     exactly when its unit holds the lease at the term it names, so a
//     deposed leader's write still in flight is refused, and the terms of
//     the successful writes to one databag never go back (no two terms
//     interleave); a unit databag write succeeds exactly when its unit is
//     in scope.
//
// Real time T is the model's clock. The advancer is anchored at (P, N): it
// proposed global time N at real time P (its stamp). It proposes
// N + (T-P) - loss (its clock may run slow, never fast: assumption A1) at
// random, and at least once every simSlack of real time unless the leader
// is paused: a pause stops the advancer, not raft leadership, for one to
// four slacks, and the advancer proposes as soon as it ends. A failover
// stalls it and all applies; the new advancer anchors at its start, with
// the global time it finds, and stamps it. Client calls are issued at
// T = t0; the leader's gate lets a claim or extend through only while
// T - P <= simSlack (the package doc's gate, in real time by A2), else
// holds it until the next stamp; calls let through are applied later, in
// any order, across pauses and failovers.
// A client's databag write names the term of its last successful claim or
// extend, as an agent's hook commit does; the gate does not hold it.

const simSlack = time.Second

var (
	simUnits     = []string{"db/0", "db/1", "db/2", "web/0", "web/1"}
	simApps      = []string{"db", "web"}
	simDurations = []time.Duration{2 * time.Second, 5 * time.Second, 15 * time.Second}
	// simRelations are each application's relations: its peer relation
	// (db 0, web 1) and web:db db:server (2).
	simRelations = map[string][]int{"db": {0, 2}, "web": {1, 2}}
)

// chooser is the source of every random choice: *rand.Rand or fuzz bytes.
type chooser interface{ IntN(n int) int }

// byteChooser draws choices from fuzz input; exhausted reports the end.
type byteChooser struct {
	data      []byte
	exhausted bool
}

func (b *byteChooser) IntN(n int) int {
	if len(b.data) == 0 {
		b.exhausted = true
		return 0
	}
	v := int(b.data[0])
	b.data = b.data[1:]
	return v % n
}

type simCall struct {
	op   lease.Op
	unit string
	t0   time.Duration // real time the client issued the call
	d    time.Duration // claim/extend duration
}

type simStats struct {
	granted, denied, expired, pinned, failovers, replays int
	// pauses counts leader pauses; held, the calls the gate held.
	pauses, held int
	// appWrites succeeded; fenced were refused though their term had been
	// the writer's; unitWrites succeeded; outOfScope were refused.
	appWrites, fenced, unitWrites, outOfScope int
	// minMargin is the least real time between a guarantee's end and the
	// loss of that lease: near zero means the bound is tested tightly.
	minMargin time.Duration
}

type sim struct {
	t        testing.TB
	r        chooser
	st       *lease.State
	index    uint64
	now      time.Duration // real time T
	anchorP  time.Duration // real time of the advancer's anchor
	anchorN  time.Duration // global time of the advancer's anchor
	stalled  int           // time steps left in a failover
	held     []simCall     // claims and extends the gate holds
	inflight []simCall
	// guarantee[u] is the real time until which u's successful calls
	// guarantee it the lease (0 after it revoked or lost it).
	guarantee map[string]time.Duration
	// term[u] is the term of u's last successful claim or extend (0 after
	// it revoked): the one its databag writes name.
	term map[string]uint64
	// writeTerm[relation/app] is the term of the last successful write to
	// that application databag.
	writeTerm map[string]uint64
	lastAdv   lease.AdvanceTime
	stats     simStats
}

func newSim(t testing.TB, r chooser) *sim {
	s := &sim{t: t, r: r, st: lease.NewState(), guarantee: map[string]time.Duration{},
		term: map[string]uint64{}, writeTerm: map[string]uint64{}}
	s.stats.minMargin = time.Hour
	s.mustApply(lease.AdvanceTime{New: base})
	s.mustApply(lease.SetEffectiveVersion{Old: 1, New: 4})
	charms := map[string]map[string]lease.Endpoint{
		"db":  {"cluster": {Role: lease.RolePeer, Interface: "db-peers"}, "server": {Role: lease.RoleProvider, Interface: "pgsql"}},
		"web": {"cluster": {Role: lease.RolePeer, Interface: "web-peers"}, "db": {Role: lease.RoleRequirer, Interface: "pgsql"}},
	}
	for _, u := range simUnits {
		s.mustApply(lease.RegisterUnit{Name: u, TokenHash: lease.HashToken(u), Endpoints: charms[appOf(u)]})
	}
	s.mustApply(relate("web", "db"))
	return s
}

func (s *sim) mustApply(op lease.Op) lease.Result {
	res := s.apply(op, "")
	if res.Err != nil {
		s.t.Fatalf("T=%v %s %+v: %v", s.now, op.Type(), op, res.Err)
	}
	return res
}

// step takes one random action.
func (s *sim) step() {
	switch k := s.r.IntN(100); {
	case k < 33:
		s.passTime(time.Duration(s.r.IntN(20)) * 50 * time.Millisecond)
	case k < 35:
		s.pause()
	case k < 50:
		s.issue()
	case s.stalled > 0:
		// No raft leader: nothing is applied.
	case k < 85:
		s.applyInflight()
	case k < 87:
		s.tick()
	case k < 90:
		s.stats.replays++
		s.replayAdvance()
	case k == 90:
		s.stalled = 1 + s.r.IntN(40)
		s.stats.failovers++
	default:
		s.operator()
	}
}

// passTime moves real time on by dt. A running advancer ticks whenever a
// slack has passed since its anchor, so between steps T - P < simSlack,
// except after a pause, when it ticks at once.
func (s *sim) passTime(dt time.Duration) {
	end := s.now + dt
	for s.stalled == 0 && s.anchorP+simSlack <= end {
		s.now = max(s.now, s.anchorP+simSlack)
		s.tick()
	}
	s.now = end
	if s.stalled > 0 {
		if s.stalled--; s.stalled == 0 {
			s.anchorP = s.now // the new advancer starts from the global time it finds
			s.release()
		}
	}
}

// pause freezes the raft leader for more than a slack, less than an
// election: real time moves on and nothing ticks, then the advancer is
// overdue. (During a failover there is no leader to pause.)
func (s *sim) pause() {
	dt := simSlack + time.Duration(1+s.r.IntN(60))*50*time.Millisecond
	if s.stalled > 0 {
		s.passTime(dt)
		return
	}
	s.now += dt
	s.stats.pauses++
}

// fresh reports whether the leader's gate lets a claim or extend through
// now: its advancer's last stamp is at most simSlack old.
func (s *sim) fresh() bool { return s.stalled == 0 && s.now-s.anchorP <= simSlack }

// release lets the held calls through, at a fresh stamp.
func (s *sim) release() {
	s.inflight = append(s.inflight, s.held...)
	s.held = nil
}

// tick is the advancer proposing the global time from its clock, which
// now and then runs slow.
func (s *sim) tick() {
	elapsed := s.now - s.anchorP
	var loss time.Duration
	if s.r.IntN(8) == 0 {
		loss = elapsed * time.Duration(1+s.r.IntN(4)) / 16
	}
	n := s.anchorN + elapsed - loss
	s.lastAdv = lease.AdvanceTime{Old: at(s.anchorN), New: at(n), Slack: simSlack}
	res := s.mustApply(s.lastAdv)
	s.stats.expired += len(res.Expired)
	s.anchorP, s.anchorN = s.now, n
	s.release()
}

// replayAdvance re-applies the last advance-time, as after ErrLeadershipLost.
func (s *sim) replayAdvance() {
	now := s.st.GlobalTime
	res := s.apply(s.lastAdv, "")
	if !s.lastAdv.Old.Equal(now) && !errors.Is(res.Err, lease.ErrTimeMismatch) {
		s.t.Fatalf("T=%v replayed advance-time gave %v, want a mismatch", s.now, res.Err)
	}
}

func (s *sim) issue() {
	s.issueWrite()
	unit := simUnits[s.r.IntN(len(simUnits))]
	d := simDurations[s.r.IntN(len(simDurations))]
	c := simCall{unit: unit, t0: s.now, d: d}
	switch s.r.IntN(5) {
	case 0, 1:
		c.op = claim(unit, d)
	case 2, 3:
		c.op = extend(unit, d)
	default:
		c.op = revoke(unit)
		s.inflight = append(s.inflight, c)
		return
	}
	if !s.fresh() {
		s.held = append(s.held, c)
		s.stats.held++
		return
	}
	s.inflight = append(s.inflight, c)
}

// issueWrite, a third of the time, issues a databag write by a random
// unit: of its application's databag, with the term of its last
// successful claim or extend, or of its own. The gate does not hold it.
func (s *sim) issueWrite() {
	if s.r.IntN(3) != 0 {
		return
	}
	unit := simUnits[s.r.IntN(len(simUnits))]
	rels := simRelations[appOf(unit)]
	rel := rels[s.r.IntN(len(rels))]
	c := simCall{unit: unit, t0: s.now}
	if s.r.IntN(3) < 2 {
		c.op = appData(rel, unit, s.term[unit], "term", fmt.Sprint(s.term[unit]))
	} else {
		c.op = unitData(rel, unit, "at", fmt.Sprint(s.now))
	}
	s.inflight = append(s.inflight, c)
}

func (s *sim) applyInflight() {
	if len(s.inflight) == 0 {
		return
	}
	i := s.r.IntN(len(s.inflight))
	c := s.inflight[i]
	s.inflight = append(s.inflight[:i], s.inflight[i+1:]...)
	switch op := c.op.(type) {
	case lease.Revoke:
		if res := s.apply(c.op, c.unit); res.Err == nil {
			s.guarantee[c.unit] = 0
			s.term[c.unit] = 0
		}
		return
	case lease.SetRelationData:
		s.applyWrite(op)
		return
	}
	was := leaseOf(s.st, appOf(c.unit))
	res := s.apply(c.op, "")
	switch {
	case res.Err == nil && was.Holder == c.unit && was.StepDownRequested:
		s.t.Fatalf("T=%v %s by %s succeeded while a step-down was pending", s.now, c.op.Type(), c.unit)
	case res.Err == nil:
		if res.Lease.Holder != c.unit {
			s.t.Fatalf("T=%v %s by %s succeeded but the lease is %s's", s.now, c.op.Type(), c.unit, res.Lease.Holder)
		}
		s.guarantee[c.unit] = max(s.guarantee[c.unit], c.t0+c.d)
		s.term[c.unit] = res.Lease.Term
		s.stats.granted++
	case errors.Is(res.Err, lease.ErrClaimDenied):
		// From protocol 3 a vacant lease is kept from the unit that
		// stepped down while the hand-over lasts (HandOverProtocol).
		if h := res.Lease.Holder; (h == "" && was.SteppedDown != c.unit) || h == c.unit {
			s.t.Fatalf("T=%v claim by %s denied with holder %q", s.now, c.unit, h)
		}
		s.stats.denied++
	case errors.Is(res.Err, lease.ErrNotHolder), errors.Is(res.Err, lease.ErrStepDownPending):
	default:
		s.t.Fatalf("T=%v %s by %s: unexpected %v", s.now, c.op.Type(), c.unit, res.Err)
	}
}

// applyWrite applies a databag write and checks the relation properties.
func (s *sim) applyWrite(op lease.SetRelationData) {
	app := appOf(op.Unit)
	was := leaseOf(s.st, app)
	inScope := s.st.Relations[op.Relation].InScope(op.Unit)
	res := s.apply(op, "")
	bag := fmt.Sprintf("%d/%s", op.Relation, app)
	switch {
	case op.App && res.Err == nil:
		if was.Holder != op.Unit || was.Term != op.Term {
			s.t.Fatalf("T=%v %s wrote %s's databag with term %d, but the lease was %s's at term %d",
				s.now, op.Unit, bag, op.Term, was.Holder, was.Term)
		}
		if op.Term < s.writeTerm[bag] {
			s.t.Fatalf("T=%v %s wrote %s's databag with term %d after a write with term %d",
				s.now, op.Unit, bag, op.Term, s.writeTerm[bag])
		}
		s.writeTerm[bag] = op.Term
		s.stats.appWrites++
	case op.App && errors.Is(res.Err, lease.ErrNotLeader):
		if was.Holder == op.Unit && was.Term == op.Term {
			s.t.Fatalf("T=%v the leader %s's write with its term %d was refused", s.now, op.Unit, op.Term)
		}
		if op.Term != 0 {
			s.stats.fenced++
		}
	case !op.App && res.Err == nil:
		if !inScope {
			s.t.Fatalf("T=%v %s wrote its databag in relation %d while out of scope", s.now, op.Unit, op.Relation)
		}
		s.stats.unitWrites++
	case !op.App && errors.Is(res.Err, lease.ErrNotInScope):
		if inScope {
			s.t.Fatalf("T=%v %s in scope of relation %d was refused: %v", s.now, op.Unit, op.Relation, res.Err)
		}
		s.stats.outOfScope++
	default:
		s.t.Fatalf("T=%v %s %+v: unexpected %v", s.now, op.Type(), op, res.Err)
	}
}

// moveScope, a third of the time, has a random unit's agent enter a
// relation's scope, or leave it.
func (s *sim) moveScope() {
	if s.r.IntN(3) != 0 {
		return
	}
	unit := simUnits[s.r.IntN(len(simUnits))]
	rels := simRelations[appOf(unit)]
	rel := rels[s.r.IntN(len(rels))]
	op := enter(rel, unit)
	if s.st.Relations[rel].InScope(unit) && s.r.IntN(3) == 0 {
		op = leave(rel, unit)
	}
	s.mustApply(op)
}

func (s *sim) operator() {
	app := simApps[s.r.IntN(len(simApps))]
	entity := []string{"alice", "bob"}[s.r.IntN(2)]
	s.moveScope()
	var op lease.Op
	switch s.r.IntN(4) {
	case 0:
		op = pin(app, entity)
	case 1:
		until := s.st.GlobalTime.Add(time.Duration(1+s.r.IntN(20)) * time.Second)
		op = lease.PinLease{App: app, Entity: entity, Reason: "r", Until: &until}
	case 2:
		op = unpin(app, entity)
	default:
		op = stepDown(app)
	}
	if res := s.apply(op, ""); res.Err == nil && op.Type() == "pin" {
		s.stats.pinned++
	}
}

// apply applies op and checks every property; voluntary names the unit
// whose own revoke this is (it may give up its guarantee).
func (s *sim) apply(op lease.Op, voluntary string) lease.Result {
	was := map[string]lease.Lease{}
	for _, app := range simApps {
		was[app] = leaseOf(s.st, app)
	}
	beforeIndex := s.st.Index
	s.index++
	res := s.st.Apply(s.index, op)
	if err := s.st.Validate(); err != nil {
		s.t.Fatalf("T=%v %s broke an invariant: %v", s.now, op.Type(), err)
	}
	if res.Err != nil && s.st.Index != beforeIndex {
		s.t.Fatalf("T=%v refused %s changed the state", s.now, op.Type())
	}
	for _, app := range simApps {
		s.checkTransition(op, was[app], leaseOf(s.st, app), voluntary)
	}
	s.checkOneGuarantee()
	return res
}

func leaseOf(st *lease.State, app string) lease.Lease {
	if a, ok := st.Applications[app]; ok {
		return a.Lease
	}
	return lease.Lease{}
}

func (s *sim) checkTransition(op lease.Op, was, is lease.Lease, voluntary string) {
	switch {
	case is.Term < was.Term:
		s.t.Fatalf("T=%v %s: term went back from %d to %d", s.now, op.Type(), was.Term, is.Term)
	case was.Vacant() && !is.Vacant() && is.Term != was.Term+1:
		s.t.Fatalf("T=%v %s: claim of a vacant lease took term %d after %d", s.now, op.Type(), is.Term, was.Term)
	case !was.Vacant() && is.Holder != was.Holder && !is.Vacant():
		s.t.Fatalf("T=%v %s: lease passed from %s to %s without being vacant", s.now, op.Type(), was.Holder, is.Holder)
	case was.Pinned() && is.Holder != was.Holder:
		s.t.Fatalf("T=%v %s: %s lost a pinned lease", s.now, op.Type(), was.Holder)
	}
	u := was.Holder
	if u == "" || is.Holder == u || u == voluntary {
		return
	}
	g := s.guarantee[u]
	if s.now < g {
		s.t.Fatalf("T=%v %s: %s lost the lease (term %d) before its guarantee %v", s.now, op.Type(), u, was.Term, g)
	}
	if g > 0 {
		s.stats.minMargin = min(s.stats.minMargin, s.now-g)
	}
	s.guarantee[u] = 0
}

func (s *sim) checkOneGuarantee() {
	live := map[string]string{}
	for _, u := range simUnits {
		if s.guarantee[u] <= s.now {
			continue
		}
		app := appOf(u)
		if other, ok := live[app]; ok {
			s.t.Fatalf("T=%v %s and %s both hold live guarantees", s.now, other, u)
		}
		live[app] = u
	}
}

func TestLeaseGuaranteeProperty(t *testing.T) {
	total := simStats{minMargin: time.Hour}
	for seed := range uint64(60) {
		s := newSim(t, rand.New(rand.NewPCG(seed, 0x1ea5e)))
		for range 3000 {
			s.step()
		}
		total.granted += s.stats.granted
		total.denied += s.stats.denied
		total.expired += s.stats.expired
		total.pinned += s.stats.pinned
		total.failovers += s.stats.failovers
		total.replays += s.stats.replays
		total.pauses += s.stats.pauses
		total.held += s.stats.held
		total.appWrites += s.stats.appWrites
		total.fenced += s.stats.fenced
		total.unitWrites += s.stats.unitWrites
		total.outOfScope += s.stats.outOfScope
		total.minMargin = min(total.minMargin, s.stats.minMargin)
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
	}
	// The interleavings must reach every rule, or the test proves nothing.
	if total.granted == 0 || total.denied == 0 || total.expired == 0 || total.pinned == 0 || total.failovers == 0 ||
		total.pauses == 0 || total.held == 0 ||
		total.appWrites == 0 || total.fenced == 0 || total.unitWrites == 0 || total.outOfScope == 0 {
		t.Errorf("interleavings too tame: %+v", total)
	}
	t.Logf("%+v", total)
}

func FuzzInterleavings(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("claim extend revoke advance"))
	r := rand.New(rand.NewPCG(7, 7))
	for range 8 {
		seed := make([]byte, 600)
		for i := range seed {
			seed[i] = byte(r.IntN(256))
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &byteChooser{data: data}
		s := newSim(t, c)
		for !c.exhausted {
			s.step()
		}
	})
}
