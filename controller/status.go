package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
)

// lostMessage is the agent message of a unit shown lost.
const lostMessage = "agent is not communicating with the controller"

func (s *Server) status(rq *request) error {
	if err := requireAdmin(rq, "read the status"); err != nil {
		return err
	}
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	st := s.node.FSM().State()
	nodes, err := s.clusterNodes(rq.ctx)
	if err != nil {
		return err
	}
	writeJSON(rq.w, http.StatusOK, BuildStatus(st, nodes, s.cfg.LostAfter))
	return nil
}

// BuildStatus renders the replicated state as the status schema of
// DESIGN.md §5. An agent that has reported before but not within lostAfter
// of the global time is shown "lost".
func BuildStatus(st *lease.State, nodes []api.Node, lostAfter time.Duration) api.Status {
	out := api.Status{
		Applications: make(map[string]api.ApplicationStatus, len(st.Applications)),
		Controller:   api.ControllerStatus{Nodes: nodes},
	}
	if out.Controller.Nodes == nil {
		out.Controller.Nodes = []api.Node{}
	}
	for name, a := range st.Applications {
		out.Applications[name] = applicationStatus(st, a, lostAfter)
	}
	return out
}

func applicationStatus(st *lease.State, a *lease.Application, lostAfter time.Duration) api.ApplicationStatus {
	out := api.ApplicationStatus{
		Term:     a.Lease.Term,
		StepDown: a.Lease.StepDownRequested,
		Pinned:   []api.PinStatus{},
		Units:    map[string]api.UnitStatus{},
	}
	if h := a.Lease.Holder; h != "" {
		out.Leader = &h
	}
	for _, p := range apiLease(a.Lease).Pins {
		out.Pinned = append(out.Pinned, api.PinStatus{Entity: p.Entity, Reason: p.Reason, Since: p.Since, Until: p.Until})
	}
	var workloads []string
	for _, name := range slices.Sorted(maps.Keys(st.Units)) {
		u := st.Units[name]
		if u.App != a.Name {
			continue
		}
		out.Units[name] = unitStatus(st, u, a.Lease.Holder == name, lostAfter)
		workloads = append(workloads, u.Workload.Status)
		if out.Version == "" || a.Lease.Holder == name && u.ApplicationVersion != "" {
			out.Version = u.ApplicationVersion
		}
	}
	if a.Status.Status != "" {
		out.Status = &api.StatusInfo{Status: a.Status.Status, Message: a.Status.Message, Since: a.Status.Since}
	} else if len(workloads) > 0 {
		out.Status = &api.StatusInfo{Status: deriveStatus(workloads)}
	}
	return out
}

func unitStatus(st *lease.State, u *lease.Unit, leader bool, lostAfter time.Duration) api.UnitStatus {
	out := api.UnitStatus{
		Leader:             leader,
		Life:               u.Life,
		Agent:              api.StatusInfo{Status: u.Agent.Status, Message: u.Agent.Message, Since: u.Agent.Since},
		Workload:           api.StatusInfo{Status: u.Workload.Status, Message: u.Workload.Message, Since: u.Workload.Since},
		ApplicationVersion: u.ApplicationVersion,
	}
	if !u.LastSeen.IsZero() && st.GlobalTime.Sub(u.LastSeen) > lostAfter {
		out.Agent = api.StatusInfo{Status: "lost", Message: lostMessage, Since: u.LastSeen.Add(lostAfter)}
	}
	return out
}

// severity orders workload statuses as Juju does when it derives an
// application's status from its units' (the most severe wins).
var severity = []string{"unknown", "active", "terminated", "maintenance", "waiting", "blocked", "error"}

func deriveStatus(statuses []string) string {
	best := 0
	for _, s := range statuses {
		best = max(best, slices.Index(severity, s))
	}
	return severity[best]
}

// clusterNodes lists the raft servers with their API addresses.
func (s *Server) clusterNodes(ctx context.Context) ([]api.Node, error) {
	servers, err := s.node.Servers(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot list controller nodes: %w", err)
	}
	members := s.node.FSM().Members()
	nodes := make([]api.Node, 0, len(servers))
	for _, srv := range servers {
		addr := srv.APIAddr
		if addr == "" {
			addr = members[srv.ID].APIAddr
		}
		nodes = append(nodes, api.Node{ID: srv.ID, Address: addr, RaftAddr: srv.RaftAddr,
			RaftState: srv.State, Suffrage: srv.Suffrage})
	}
	return nodes, nil
}

func (s *Server) nodes(rq *request) error {
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	nodes, err := s.clusterNodes(rq.ctx)
	if err != nil {
		return err
	}
	writeJSON(rq.w, http.StatusOK, api.NodesResponse{Nodes: nodes})
	return nil
}

func checkHostPort(what, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return badRequest("invalid %s %q: want HOST:PORT", what, addr)
	}
	return nil
}

func (s *Server) join(rq *request) error {
	if err := requireAdmin(rq, "add controller nodes"); err != nil {
		return err
	}
	var body api.JoinRequest
	if err := rq.decode(&body); err != nil {
		return err
	}
	if body.ID == "" || strings.ContainsAny(body.ID, " \t\r\n/") {
		return badRequest("invalid node id %q", body.ID)
	}
	if err := checkHostPort("raft address", body.RaftAddr); err != nil {
		return err
	}
	if err := checkHostPort("API address", body.APIAddr); err != nil {
		return err
	}
	// Record the member first, so that whichever node leads next can map
	// the new voter to its API address.
	res, err := s.apply(rq, lease.RecordMember{ID: body.ID, ProtoMin: s.cfg.ProtoMin, ProtoMax: s.cfg.ProtoMax,
		APIAddr: body.APIAddr, RaftAddr: body.RaftAddr})
	if err != nil {
		return err
	}
	if err := s.node.AddVoter(rq.ctx, body.ID, body.RaftAddr); err != nil {
		return leaderOnly(err)
	}
	s.log.Info().Str("node", body.ID).Str("raft_addr", body.RaftAddr).Str("api_addr", body.APIAddr).Msg("controller node joined")
	return ok(rq, res)
}

func (s *Server) removeNode(rq *request) error {
	if err := requireAdmin(rq, "remove controller nodes"); err != nil {
		return err
	}
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	id := rq.r.PathValue("id")
	if !s.node.IsLeader() {
		return errForward
	}
	servers, err := s.node.Servers(rq.ctx)
	if err != nil {
		return fmt.Errorf("cannot list controller nodes: %w", err)
	}
	_, member := s.node.FSM().Members()[id]
	if !member && !slices.ContainsFunc(servers, func(srv lease.Server) bool { return srv.ID == id }) {
		return &httpError{status: http.StatusNotFound, code: api.CodeNotFound, msg: fmt.Sprintf("no controller node %q", id)}
	}
	// The node forgets the member record too (first, when it removes
	// itself: it steps down once the change is committed).
	if err := s.node.RemoveServer(rq.ctx, id); err != nil {
		return leaderOnly(err)
	}
	s.log.Info().Str("node", id).Msg("controller node removed")
	writeJSON(rq.w, http.StatusOK, api.WriteResult{Index: s.node.FSM().Index()})
	return nil
}

// leaderOnly maps the failure of a leader-only raft call: forwarded if
// this node stopped leading, else an error saying what failed.
func leaderOnly(err error) error {
	if errors.Is(err, lease.ErrNotRaftLeader) {
		return errForward
	}
	return err
}
