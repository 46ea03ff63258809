package controller

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
)

// apiLease converts a lease to its wire form, pins sorted by entity.
func apiLease(l lease.Lease) api.Lease {
	out := api.Lease{
		Holder: l.Holder, Term: l.Term, Start: l.Start, Expiry: l.Expiry,
		Duration: l.Duration, StepDown: l.StepDownRequested, Pins: []api.Pin{},
	}
	for entity, p := range l.Pins {
		out.Pins = append(out.Pins, api.Pin{Entity: entity, Reason: p.Reason, Since: p.Since, Until: p.Until})
	}
	slices.SortFunc(out.Pins, func(a, b api.Pin) int { return cmp.Compare(a.Entity, b.Entity) })
	return out
}

// appParam is the {app} of the path, which must be a valid name.
func appParam(rq *request) (string, error) {
	app := rq.r.PathValue("app")
	if !lease.ValidApplicationName(app) {
		return "", badRequest("invalid application name %q", app)
	}
	return app, nil
}

// knownApp is appParam for an application that exists (else 404). Only
// the raft leader's state is authoritative: a follower that has not caught
// up yet (just restarted, say) must not refuse an application the cluster
// knows, so it lets the request through to be forwarded, and the leader's
// FSM refuses unknown applications itself.
func (s *Server) knownApp(rq *request) (string, error) {
	app, err := appParam(rq)
	if err != nil {
		return "", err
	}
	if _, ok := s.node.FSM().Application(app); !ok && s.node.IsLeader() {
		return "", &denial{err: lease.ErrUnknownApplication}
	}
	return app, nil
}

// readApp is knownApp for a principal allowed to read the application.
func (s *Server) readApp(rq *request) (string, error) {
	app, err := appParam(rq)
	if err != nil {
		return "", err
	}
	if !rq.who.admin && rq.who.app != app {
		return "", forbidden("unit %s may not read application %s", rq.who.unit, app)
	}
	return s.knownApp(rq)
}

// actAs checks that the principal may act as unit, a unit of app, and that
// the unit is registered.
func (s *Server) actAs(rq *request, app, unit string) error {
	uapp, err := lease.UnitApplication(unit)
	if err != nil {
		return badRequest("invalid unit name %q", unit)
	}
	if !rq.who.admin && rq.who.unit != unit {
		return forbidden("unit %s may not act as unit %s", rq.who.unit, unit)
	}
	if uapp != app {
		return badRequest("unit %s is not a unit of application %s", unit, app)
	}
	if !s.node.FSM().HasUnit(unit) {
		return &denial{err: lease.ErrUnknownUnit}
	}
	return nil
}

func requireAdmin(rq *request, what string) error {
	if !rq.who.admin {
		return forbidden("unit %s may not %s (admin only)", rq.who.unit, what)
	}
	return nil
}

// leaseDuration parses a claim or extend duration: 0 < d <= lease.MaxDuration.
func leaseDuration(s string) (time.Duration, error) {
	d, err := api.ParseDuration(s, false)
	if err != nil {
		return 0, badRequest("%v", err)
	}
	if d <= 0 || d > lease.MaxDuration {
		return 0, badRequest("duration %s out of range (0, %s]", s, lease.MaxDuration)
	}
	return d, nil
}

// appBody reads the {app} path parameter and decodes the body into body.
func appBody(rq *request, body any) (string, error) {
	app, err := appParam(rq)
	if err != nil {
		return "", err
	}
	return app, rq.decode(body)
}

// leaseAnswer answers a lease write with the lease and, in HeaderIndex,
// the raft index it was applied at: where the lease was written, or, on a
// denial (409 with the lease as it stands), read. Agents order their watch
// answers by it.
func leaseAnswer(rq *request, res lease.Result, err error) error {
	if err != nil {
		if d := (*denial)(nil); errors.As(err, &d) && res.Index != 0 {
			rq.w.Header().Set(api.HeaderIndex, strconv.FormatUint(res.Index, 10))
		}
		return err
	}
	var l api.Lease
	if res.Lease != nil {
		l = apiLease(*res.Lease)
	}
	rq.w.Header().Set(api.HeaderIndex, strconv.FormatUint(res.Index, 10))
	data, err := api.LeaseResponse{Lease: l}.AppendJSON(make([]byte, 0, 256))
	if err != nil {
		writeJSON(rq.w, http.StatusOK, api.LeaseResponse{Lease: l}) // says why
		return nil
	}
	writeBody(rq.w, http.StatusOK, append(data, '\n'))
	return nil
}

func (s *Server) claim(rq *request) error {
	var body api.ClaimRequest
	app, err := appBody(rq, &body)
	if err != nil {
		return err
	}
	d, err := leaseDuration(body.Duration)
	if err != nil {
		return err
	}
	if err := s.actAs(rq, app, body.Unit); err != nil {
		return err
	}
	res, err := s.apply(rq, lease.Claim{App: app, Unit: body.Unit, Duration: d})
	return leaseAnswer(rq, res, err)
}

func (s *Server) extend(rq *request) error {
	var body api.ExtendRequest
	app, err := appBody(rq, &body)
	if err != nil {
		return err
	}
	d, err := leaseDuration(body.Duration)
	if err != nil {
		return err
	}
	if err := s.actAs(rq, app, body.Unit); err != nil {
		return err
	}
	res, err := s.apply(rq, lease.Extend{App: app, Unit: body.Unit, Duration: d, Term: body.Term})
	return leaseAnswer(rq, res, err)
}

func (s *Server) revoke(rq *request) error {
	var body api.RevokeRequest
	app, err := appBody(rq, &body)
	if err != nil {
		return err
	}
	if err := s.actAs(rq, app, body.Unit); err != nil {
		return err
	}
	res, err := s.apply(rq, lease.Revoke{App: app, Unit: body.Unit, Term: body.Term})
	return leaseAnswer(rq, res, err)
}

// adminApp decodes an admin request on an existing application.
func (s *Server) adminApp(rq *request, what string, body any, optional bool) (string, error) {
	if err := requireAdmin(rq, what); err != nil {
		return "", err
	}
	if _, err := appParam(rq); err != nil {
		return "", err
	}
	if err := rq.decodeBody(body, optional); err != nil {
		return "", err
	}
	return s.knownApp(rq)
}

func (s *Server) stepDown(rq *request) error {
	var body api.StepDownRequest
	app, err := s.adminApp(rq, "request a step-down", &body, true)
	if err != nil {
		return err
	}
	res, err := s.apply(rq, lease.RequestStepDown{App: app, Term: body.Term})
	return leaseAnswer(rq, res, err)
}

func (s *Server) pin(rq *request) error {
	var body api.PinRequest
	app, err := s.adminApp(rq, "pin leases", &body, false)
	if err != nil {
		return err
	}
	if body.Entity == "" {
		return badRequest("missing entity")
	}
	d, err := api.ParseDuration(body.For, true)
	if err != nil {
		return badRequest("%v", err)
	}
	op := lease.PinLease{App: app, Entity: body.Entity, Reason: body.Reason}
	if d > 0 {
		// The global time is replicated, so a follower computes the same
		// until as the leader would; the leader recomputes anyway when the
		// request is forwarded.
		until := s.node.FSM().GlobalTime().Add(d)
		op.Until = &until
	}
	res, err := s.apply(rq, op)
	return leaseAnswer(rq, res, err)
}

func (s *Server) unpin(rq *request) error {
	var body api.UnpinRequest
	app, err := s.adminApp(rq, "unpin leases", &body, false)
	if err != nil {
		return err
	}
	if body.Entity == "" {
		return badRequest("missing entity")
	}
	res, err := s.apply(rq, lease.UnpinLease{App: app, Entity: body.Entity})
	return leaseAnswer(rq, res, err)
}

func (s *Server) getLease(rq *request) error {
	app, err := s.readApp(rq)
	if err != nil {
		return err
	}
	fsm := s.node.FSM()
	idx, err := s.block(rq, func() uint64 { return fsm.ApplicationIndex(app) },
		func() <-chan struct{} { return fsm.WatchApplication(app) }, nil)
	if err != nil {
		return err
	}
	l, ok := fsm.Lease(app)
	if !ok {
		return &denial{err: lease.ErrUnknownApplication}
	}
	rq.w.Header().Set(api.HeaderIndex, strconv.FormatUint(idx, 10))
	writeJSON(rq.w, http.StatusOK, api.LeaseResponse{Lease: apiLease(l)})
	return nil
}

// block is the blocking query of a GET with ?index=N&wait=D: it returns as
// soon as index() exceeds N, or after D (capped at MaxWait; MaxWait if
// absent), or at once without ?index (or index=0). It returns the index
// to answer with in HeaderIndex. watch and also (nil if unused) give the
// channels that close when index() may have moved (lease.FSM's
// WatchApplication, WatchUnit or Watch): with the narrowest ones, a write
// wakes only the queries on what it changed.
func (s *Server) block(rq *request, index func() uint64, watch, also func() <-chan struct{}) (uint64, error) {
	after, wait, err := s.blockingQuery(rq)
	if err != nil {
		return 0, err
	}
	if after == 0 {
		return index(), nil
	}
	if err := s.acquireWaiter(); err != nil {
		return 0, err
	}
	defer s.releaseWaiter()
	// A timer of its own rather than a context.WithTimeout child of the
	// request's: a parked query then holds one runtime timer, not a timer,
	// a timerCtx and an entry in its parent's children map.
	timer := time.NewTimer(wait)
	defer timer.Stop()
	return waitIndex(rq.ctx, timer.C, after, index, watch, also)
}

// blockingQuery reads a blocking query's ?index (0 if absent) and ?wait
// (capped at MaxWait; MaxWait if absent).
func (s *Server) blockingQuery(rq *request) (after uint64, wait time.Duration, err error) {
	q := rq.r.URL.Query()
	if v := q.Get("index"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return 0, 0, badRequest("bad index %q", v)
		}
	}
	if wait, err = api.ParseDuration(q.Get("wait"), true); err != nil {
		return 0, 0, badRequest("bad wait: %v", err)
	}
	if wait == 0 || wait > s.cfg.MaxWait {
		wait = s.cfg.MaxWait
	}
	return after, wait, nil
}

// acquireWaiter takes one of the node's MaxBlocking places for a
// blocking query, or refuses with 503 busy.
func (s *Server) acquireWaiter() error {
	select {
	case s.waiters <- struct{}{}:
		return nil
	default:
		s.warnBusy()
		return &httpError{status: http.StatusServiceUnavailable, code: api.CodeBusy,
			msg: "too many blocking queries on this controller node"}
	}
}

// releaseWaiter gives back a place taken by acquireWaiter.
func (s *Server) releaseWaiter() { <-s.waiters }

// busyWarnEvery spaces the warnings about the blocking-query cap.
const busyWarnEvery = time.Minute

// warnBusy tells the operator, at most once a minute, that the node is
// refusing blocking queries: agents then see their watches answered late.
// Each refusal itself is logged at debug only (it would flood the log).
func (s *Server) warnBusy() {
	now := s.cfg.Clock.Now().UnixNano()
	last := s.busyWarned.Load()
	// A clock stepped back (now < last) warns at once rather than staying
	// silent until it catches up.
	if last != 0 && now >= last && time.Duration(now-last) < busyWarnEvery || !s.busyWarned.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn().Int("max_blocking", s.cfg.MaxBlocking).
		Msg("blocking query limit reached: agents' watches get 503 busy and retry later; raise --max-blocking or add controller nodes")
}

// waitIndex waits until index() > after, or until timeout fires or ctx
// ends (then it answers with the index as it stands: a blocking query
// that timed out is not an error). It takes the watch channels before
// reading the index, so a change in between still wakes it.
func waitIndex(ctx context.Context, timeout <-chan time.Time, after uint64, index func() uint64, watch, also func() <-chan struct{}) (uint64, error) {
	for {
		first, second := watch(), (<-chan struct{})(nil)
		if also != nil {
			second = also()
		}
		idx := index()
		if idx > after {
			return idx, nil
		}
		select {
		case <-first:
		case <-second:
		case <-timeout:
			return index(), nil
		case <-ctx.Done():
			return index(), nil
		}
	}
}
