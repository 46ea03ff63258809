package controller

import (
	"maps"
	"net/http"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
)

func (s *Server) getConfig(rq *request) error {
	app, err := s.readApp(rq)
	if err != nil {
		return err
	}
	a, ok := s.node.FSM().Application(app)
	if !ok {
		return &denial{err: lease.ErrUnknownApplication}
	}
	writeJSON(rq.w, http.StatusOK, apiConfig(a))
	return nil
}

func (s *Server) setConfig(rq *request) error {
	var body api.ConfigChanges
	app, err := s.adminApp(rq, "set config", &body, false)
	if err != nil {
		return err
	}
	var current map[string]string
	if a, ok := s.node.FSM().Application(app); ok {
		current = a.Config.Values
	}
	if err := checkSettings("config", current, body.Changes, 0); err != nil {
		return err
	}
	// With if_version this is a protocol-2 command: the leader refuses it
	// (409 needs-protocol) while the cluster runs protocol 1.
	res, err := s.apply(rq, lease.SetConfig{App: app, Changes: body.Changes, IfVersion: body.IfVersion})
	if err != nil {
		return err
	}
	return ok(rq, res)
}

func (s *Server) getLeaderSettings(rq *request) error {
	app, err := s.readApp(rq)
	if err != nil {
		return err
	}
	a, ok := s.node.FSM().Application(app)
	if !ok {
		return &denial{err: lease.ErrUnknownApplication}
	}
	writeJSON(rq.w, http.StatusOK, api.Settings{Values: nonNil(a.LeaderSettings.Values), Version: a.LeaderSettings.Version})
	return nil
}

func (s *Server) setLeaderSettings(rq *request) error {
	var body api.LeaderSettingsChanges
	app, err := appBody(rq, &body)
	if err != nil {
		return err
	}
	if err := s.actAs(rq, app, body.Unit); err != nil {
		return err
	}
	var current map[string]string
	if a, ok := s.node.FSM().Application(app); ok {
		current = a.LeaderSettings.Values
	}
	if err := checkSettings("leader settings", current, body.Changes, MaxSettingsKeys); err != nil {
		return err
	}
	res, err := s.apply(rq, lease.SetLeaderSettings{App: app, Unit: body.Unit, Term: body.Term, Changes: body.Changes})
	if err != nil {
		return err
	}
	return ok(rq, res)
}

func (s *Server) setApplicationStatus(rq *request) error {
	var body api.ApplicationStatusRequest
	app, err := appBody(rq, &body)
	if err != nil {
		return err
	}
	if err := s.actAs(rq, app, body.Unit); err != nil {
		return err
	}
	if err := checkMessage(body.Message); err != nil {
		return err
	}
	res, err := s.apply(rq, lease.SetApplicationStatus{App: app, Unit: body.Unit, Term: body.Term,
		Status: body.Status, Message: body.Message})
	if err != nil {
		return err
	}
	return ok(rq, res)
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}
