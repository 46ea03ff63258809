package controller

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
)

// MaxUnitPortRanges bounds the port ranges one unit keeps open (each
// endpoint's range counts once): the state machine's own limit
// (lease.MaxUnitPortRanges), checked here first to answer clearly.
const MaxUnitPortRanges = lease.MaxUnitPortRanges

// getUnitPorts answers the unit's opened port ranges to the unit itself
// (its agent reads them when a hook first uses a port tool) or an admin.
// The raft leader answers, once it has applied every entry committed
// before its term: a hook's port changes are sent as the difference from
// what it read, so it must read its previous hook's commit, which a
// follower may not have applied yet.
func (s *Server) getUnitPorts(rq *request) error {
	switch {
	case !s.node.IsLeader():
		return errForward
	case !s.node.LeaderReady():
		return unavailable("", "controller node %s has just become the raft leader and cannot answer yet", s.node.ID())
	}
	_, unit, err := s.selfUnit(rq, nil)
	if err != nil {
		return err
	}
	u, ok := s.node.FSM().Unit(unit)
	if !ok {
		return &denial{err: lease.ErrUnknownUnit}
	}
	writeJSON(rq.w, http.StatusOK, api.UnitPorts{Ports: apiPorts(u.OpenedPorts)})
	return nil
}

// setUnitPorts commits what one hook of the unit did with open-port and
// close-port. Only the unit itself (or an admin) may.
func (s *Server) setUnitPorts(rq *request) error {
	var body api.PortsRequest
	app, unit, err := s.selfUnit(rq, &body)
	if err != nil {
		return err
	}
	open, err := s.leasePorts(app, body.Open)
	if err != nil {
		return err
	}
	closed, err := s.leasePorts(app, body.Close)
	if err != nil {
		return err
	}
	if u, ok := s.node.FSM().Unit(unit); ok {
		if n := len(lease.ApplyPortChanges(u.OpenedPorts, open, closed)); n > MaxUnitPortRanges {
			return &httpError{status: http.StatusRequestEntityTooLarge, code: api.CodeLimitExceeded,
				msg: fmt.Sprintf("unit %s would have %d port ranges open after this change; the limit is %d", unit, n, MaxUnitPortRanges)}
		}
	}
	res, err := s.apply(rq, lease.SetUnitPorts{Unit: unit, Open: open, Close: closed})
	if err != nil {
		return err
	}
	return ok(rq, res)
}

// leasePorts checks the ranges of a ports request and converts them: a
// known protocol, ports in bounds, no ports on icmp, and an endpoint that
// the application's charm has (or juju-info), when one is named.
func (s *Server) leasePorts(app string, in []api.PortRange) ([]lease.PortRange, error) {
	if len(in) > 2*MaxUnitPortRanges {
		return nil, &httpError{status: http.StatusRequestEntityTooLarge, code: api.CodeLimitExceeded,
			msg: fmt.Sprintf("a ports request names %d ranges; the limit is %d", len(in), 2*MaxUnitPortRanges)}
	}
	a, _ := s.node.FSM().Application(app)
	out := make([]lease.PortRange, 0, len(in))
	for _, p := range in {
		switch p.Protocol {
		case api.PortICMP:
			if p.From != 0 || p.To != 0 {
				return nil, badRequest("icmp takes no ports, got %d-%d", p.From, p.To)
			}
		case api.PortTCP, api.PortUDP:
			if p.From < 0 || p.To < 0 || p.From > 65535 || p.To > 65535 {
				return nil, badRequest("port range bounds must be between 0 and 65535, got %d-%d", p.From, p.To)
			}
			if p.From > p.To {
				return nil, badRequest("invalid port range %s", p)
			}
		default:
			return nil, badRequest("invalid protocol %q, expected %q, %q, or %q", p.Protocol, api.PortTCP, api.PortUDP, api.PortICMP)
		}
		if ep := p.Endpoint; ep != "" && ep != api.JujuInfoEndpoint {
			if _, known := a.Endpoints[ep]; !known {
				return nil, badRequest("application %s has no endpoint %q", app, ep)
			}
		}
		out = append(out, lease.PortRange{Endpoint: p.Endpoint, Protocol: p.Protocol, From: p.From, To: p.To})
	}
	return out, nil
}

// apiPorts converts a unit's ranges for the API ([] when none).
func apiPorts(in []lease.PortRange) []api.PortRange {
	out := make([]api.PortRange, 0, len(in))
	for _, p := range in {
		out = append(out, api.PortRange{Endpoint: p.Endpoint, Protocol: p.Protocol, From: p.From, To: p.To})
	}
	return out
}

// openPorts is the status's list of a unit's ranges: each once, whatever
// its endpoints, in the unit's order (protocol, then ports); nil when
// none.
func openPorts(in []lease.PortRange) []string {
	var out []string
	for _, p := range in {
		if s := p.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
