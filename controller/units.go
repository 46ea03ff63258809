package controller

import (
	"crypto/subtle"
	"net/http"
	"strconv"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
)

// minTokenLen refuses guessable unit tokens at registration.
const minTokenLen = 16

// unitParam is the unit named by the path's {app}/{n}.
func unitParam(rq *request) (app, unit string, err error) {
	unit = rq.r.PathValue("app") + "/" + rq.r.PathValue("n")
	app, err = lease.UnitApplication(unit)
	if err != nil {
		return "", "", badRequest("invalid unit name %q", unit)
	}
	return app, unit, nil
}

// selfUnit is the path's unit, which the principal must be allowed to act
// as (admin, or the unit itself), and which must be registered. body, if
// not nil, is decoded after the principal is checked.
func (s *Server) selfUnit(rq *request, body any) (app, unit string, err error) {
	if app, unit, err = unitParam(rq); err != nil {
		return "", "", err
	}
	if !rq.who.admin && rq.who.unit != unit {
		return "", "", forbidden("unit %s may not act as unit %s", rq.who.unit, unit)
	}
	if body != nil {
		if err := rq.decode(body); err != nil {
			return "", "", err
		}
	}
	if _, ok := s.node.FSM().Unit(unit); !ok {
		return "", "", &denial{err: lease.ErrUnknownUnit}
	}
	return app, unit, nil
}

// adminUnit is selfUnit for admin-only actions.
func (s *Server) adminUnit(rq *request, what string, body any, optional bool) (string, error) {
	if err := requireAdmin(rq, what); err != nil {
		return "", err
	}
	_, unit, err := unitParam(rq)
	if err != nil {
		return "", err
	}
	if err := rq.decodeBody(body, optional); err != nil {
		return "", err
	}
	if _, ok := s.node.FSM().Unit(unit); !ok {
		return "", &denial{err: lease.ErrUnknownUnit}
	}
	return unit, nil
}

func (s *Server) registerUnit(rq *request) error {
	if err := requireAdmin(rq, "register units"); err != nil {
		return err
	}
	var body api.RegisterUnitRequest
	if err := rq.decode(&body); err != nil {
		return err
	}
	if _, err := lease.UnitApplication(body.Unit); err != nil {
		return badRequest("invalid unit name %q", body.Unit)
	}
	if len(body.Token) < minTokenLen {
		return badRequest("unit token is shorter than %d characters", minTokenLen)
	}
	hash := lease.HashToken(body.Token)
	if err := s.checkTokenUnused(hash, body.Unit); err != nil {
		return err
	}
	schema, err := leaseSchema(body.ConfigSchema)
	if err != nil {
		return err
	}
	actions, err := s.leaseActions(body.Actions, body.Unit)
	if err != nil {
		return err
	}
	// On a follower the effective version may lag the leader's; the
	// leader, which the write is forwarded to, decides again.
	eps, err := leaseEndpoints(body.Endpoints, s.node.FSM().EffectiveVersion())
	if err != nil {
		return err
	}
	res, err := s.apply(rq, lease.RegisterUnit{Name: body.Unit, TokenHash: hash, ConfigSchema: schema, Actions: actions, Endpoints: eps})
	if err != nil {
		return err
	}
	return ok(rq, res)
}

// checkTokenUnused refuses a unit token that already names another
// principal: a token must identify exactly one.
func (s *Server) checkTokenUnused(hash, unit string) error {
	if subtle.ConstantTimeCompare([]byte(hash), []byte(s.cfg.AdminTokenHash)) == 1 ||
		subtle.ConstantTimeCompare([]byte(hash), []byte(s.nodeHash)) == 1 {
		return badRequest("the unit token must not be the admin token or the node credential")
	}
	if u, ok := s.node.FSM().UnitByTokenHash(hash); ok && u.Name != unit {
		return badRequest("the unit token is already another unit's")
	}
	return nil
}

func (s *Server) deregisterUnit(rq *request) error {
	_, unit, err := s.selfUnit(rq, nil)
	if err != nil {
		return err
	}
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	res, err := s.apply(rq, lease.DeregisterUnit{Name: unit})
	return leaseAnswer(rq, res, err)
}

func (s *Server) removeUnit(rq *request) error {
	unit, err := s.adminUnit(rq, "remove units", &struct{}{}, true)
	if err != nil {
		return err
	}
	res, err := s.apply(rq, lease.RequestUnitRemoval{Name: unit})
	if err != nil {
		return err
	}
	return ok(rq, res)
}

func (s *Server) resolved(rq *request) error {
	var body api.ResolvedRequest
	unit, err := s.adminUnit(rq, "mark units resolved", &body, true)
	if err != nil {
		return err
	}
	res, err := s.apply(rq, lease.Resolve{Unit: unit, NoRetry: body.NoRetry, After: body.After})
	if err != nil {
		return err
	}
	return ok(rq, res)
}

func (s *Server) setUnitStatus(rq *request) error {
	var body api.UnitStatusRequest
	_, unit, err := s.selfUnit(rq, &body)
	if err != nil {
		return err
	}
	if body.Kind != lease.StatusWorkload && body.Kind != lease.StatusAgent {
		return badRequest("unknown status kind %q (want %s or %s)", body.Kind, lease.StatusWorkload, lease.StatusAgent)
	}
	if err := checkMessage(body.Message); err != nil {
		return err
	}
	res, err := s.apply(rq, lease.SetUnitStatus{Unit: unit, Kind: body.Kind, Status: body.Status, Message: body.Message})
	if err != nil {
		return err
	}
	return ok(rq, res)
}

func (s *Server) setApplicationVersion(rq *request) error {
	var body api.ApplicationVersionRequest
	_, unit, err := s.selfUnit(rq, &body)
	if err != nil {
		return err
	}
	if len(body.Version) > MaxVersionString {
		return limitError("application version", len(body.Version), MaxVersionString)
	}
	res, err := s.apply(rq, lease.SetApplicationVersion{Unit: unit, Version: body.Version})
	if err != nil {
		return err
	}
	return ok(rq, res)
}

// watchUnit is the agent's one watch: a blocking query on its unit and
// its application. One that has to wait is parked (park.go) when the
// server runs under Serve; else it waits here.
func (s *Server) watchUnit(rq *request) error {
	app, unit, err := s.selfUnit(rq, nil)
	if err != nil {
		return err
	}
	if p := s.parker.Load(); p != nil {
		if err := p.tryPark(rq, app, unit); err != nil {
			return err
		}
	}
	fsm := s.node.FSM()
	idx, err := s.block(rq, func() uint64 { return max(fsm.UnitIndex(unit), fsm.ApplicationIndex(app)) },
		func() <-chan struct{} { return fsm.WatchUnit(unit) },
		func() <-chan struct{} { return fsm.WatchApplication(app) })
	if err != nil {
		return err
	}
	view, err := s.unitWatchView(app, unit)
	if err != nil {
		return err
	}
	rq.w.Header().Set(api.HeaderIndex, strconv.FormatUint(idx, 10))
	writeJSON(rq.w, http.StatusOK, view)
	return nil
}

// unitWatchView is the answer to a unit's watch: the unit, its
// application's lease, config and leader settings, its relations and its
// operation queue.
func (s *Server) unitWatchView(app, unit string) (api.UnitView, error) {
	fsm := s.node.FSM()
	u, ok := fsm.Unit(unit)
	a, aok := fsm.Application(app)
	if !ok || !aok {
		return api.UnitView{}, &denial{err: lease.ErrUnknownUnit}
	}
	view := unitView(u, a, fsm.UnitRelationSummaries(unit))
	view.Operations = apiQueue(fsm.UnitQueue(unit))
	return view, nil
}
