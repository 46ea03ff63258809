package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/lease/raftnode"

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
	out := BuildStatus(st, nodes, s.cfg.LostAfter)
	if why := s.unavailable(); why != "" {
		markUnavailable(&out, why)
	}
	writeJSON(rq.w, http.StatusOK, out)
	return nil
}

// unavailable says why the cluster cannot take writes as this node sees
// it (no raft leader known; this node's disk is full), or "".
func (s *Server) unavailable() string {
	var why []string
	if id, _ := s.node.Leader(); id == "" {
		why = append(why, "no raft leader")
	}
	if s.node.DiskFull() {
		why = append(why, fmt.Sprintf("controller node %s: no space left on device", s.node.ID()))
	}
	return strings.Join(why, "; ")
}

// markUnavailable marks st as read from a controller that cannot take
// writes: the controller's message, and every unit's agent message (its
// agent cannot report meanwhile; the last status it reported stays).
func markUnavailable(st *api.Status, why string) {
	msg := "controller unavailable: " + why
	st.Controller.Message = msg
	for _, a := range st.Applications {
		for name, u := range a.Units {
			if u.Agent.Message != "" {
				u.Agent.Message = msg + " (last reported: " + u.Agent.Message + ")"
			} else {
				u.Agent.Message = msg
			}
			a.Units[name] = u
		}
	}
}

// BuildStatus renders the replicated state as the status schema of
// DESIGN.md §5. An agent that has reported before but not within lostAfter
// of the global time is shown "lost".
func BuildStatus(st *lease.State, nodes []api.Node, lostAfter time.Duration) api.Status {
	out := api.Status{
		Applications: make(map[string]api.ApplicationStatus, len(st.Applications)),
		Controller:   api.ControllerStatus{Nodes: nodes, EffectiveVersion: st.EffectiveVersion},
	}
	if out.Controller.Nodes == nil {
		out.Controller.Nodes = []api.Node{}
	}
	// One pass over the units, not one per application.
	byApp := map[string][]*lease.Unit{}
	for _, name := range slices.Sorted(maps.Keys(st.Units)) {
		u := st.Units[name]
		byApp[u.App] = append(byApp[u.App], u)
	}
	for name, a := range st.Applications {
		out.Applications[name] = applicationStatus(st.GlobalTime, a, byApp[name], lostAfter)
	}
	out.Relations = relationStatuses(st, out.Applications)
	return out
}

// relationStatuses lists st's relations by id, and adds each to its
// applications' relations maps (endpoint → applications on the other
// side) in apps.
func relationStatuses(st *lease.State, apps map[string]api.ApplicationStatus) []api.RelationStatus {
	out := []api.RelationStatus{}
	for _, id := range slices.Sorted(maps.Keys(st.Relations)) {
		r := st.Relations[id]
		rs := api.RelationStatus{ID: id, Key: r.Key(), Interface: r.Endpoints[0].Interface, Type: api.RelationRegular,
			Life: r.Life, Units: r.Scope()}
		if rs.Units == nil {
			rs.Units = []string{}
		}
		if r.Peer() {
			rs.Type, rs.Provider, rs.Requirer = api.RelationPeer, r.Endpoints[0].String(), r.Endpoints[0].String()
		} else {
			rs.Requirer, rs.Provider = r.Endpoints[0].String(), r.Endpoints[1].String()
		}
		out = append(out, rs)
		for _, e := range r.Endpoints {
			a, ok := apps[e.App]
			if !ok {
				continue
			}
			remote, _ := r.Remote(e.App)
			if a.Relations == nil {
				a.Relations = map[string][]string{}
			}
			if !slices.Contains(a.Relations[e.Name], remote.App) {
				a.Relations[e.Name] = append(a.Relations[e.Name], remote.App)
				slices.Sort(a.Relations[e.Name])
			}
			apps[e.App] = a
		}
	}
	return out
}

// applicationStatus renders a and its units (sorted by name) at global
// time now.
func applicationStatus(now time.Time, a *lease.Application, units []*lease.Unit, lostAfter time.Duration) api.ApplicationStatus {
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
		out.Pinned = append(out.Pinned, api.PinStatus(p))
	}
	var workloads []string
	for _, u := range units {
		name := u.Name
		out.Units[name] = unitStatus(now, u, a.Lease.Holder == name, lostAfter)
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

func unitStatus(now time.Time, u *lease.Unit, leader bool, lostAfter time.Duration) api.UnitStatus {
	out := api.UnitStatus{
		Leader:             leader,
		Life:               u.Life,
		Agent:              api.StatusInfo{Status: u.Agent.Status, Message: u.Agent.Message, Since: u.Agent.Since},
		Workload:           api.StatusInfo{Status: u.Workload.Status, Message: u.Workload.Message, Since: u.Workload.Since},
		ApplicationVersion: u.ApplicationVersion,
		OpenPorts:          openPorts(u.OpenedPorts),
	}
	if !u.LastSeen.IsZero() && now.Sub(u.LastSeen) > lostAfter {
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

// clusterNodes lists the raft servers with their API addresses and
// protocol ranges (as their member records have them).
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
			RaftState: srv.State, Suffrage: srv.Suffrage,
			ProtoMin: members[srv.ID].ProtoMin, ProtoMax: members[srv.ID].ProtoMax})
	}
	return nodes, nil
}

// nodes answers GET /v1/cluster/nodes, a blocking query on the state's
// index (any change wakes it, as for a missing resource).
func (s *Server) nodes(rq *request) error {
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	fsm := s.node.FSM()
	idx, err := s.block(rq, fsm.Index, fsm.Watch, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(rq.ctx, s.cfg.RequestTimeout)
	defer cancel()
	nodes, err := s.clusterNodes(ctx)
	if err != nil {
		return err
	}
	rq.w.Header().Set(api.HeaderIndex, strconv.FormatUint(idx, 10))
	writeJSON(rq.w, http.StatusOK, api.NodesResponse{Nodes: nodes, EffectiveVersion: fsm.EffectiveVersion()})
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
	if body.ProtoMin == 0 && body.ProtoMax == 0 {
		body.ProtoMin, body.ProtoMax = 1, 1 // a node from before protocol versioning
	}
	if body.ProtoMin < 1 || body.ProtoMin > body.ProtoMax {
		return badRequest("invalid protocol range %d..%d", body.ProtoMin, body.ProtoMax)
	}
	if !s.node.IsLeader() {
		return errForward // only the leader's effective version is current
	}
	// Refuse a node that cannot speak the cluster's version before it
	// becomes a voter (the FSM refuses its record too, if the version
	// moves in between).
	rec := lease.RecordMember{ID: body.ID, ProtoMin: body.ProtoMin, ProtoMax: body.ProtoMax,
		APIAddr: body.APIAddr, RaftAddr: body.RaftAddr}
	if err := checkMemberRange(s.node.FSM(), rec); err != nil {
		return err
	}
	// Record the member first, so that whichever node leads next can map
	// the new voter to its API address.
	res, err := s.apply(rq, rec)
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
	_, member := s.node.FSM().Member(id)
	if !member && !slices.ContainsFunc(servers, func(srv raftnode.Server) bool { return srv.ID == id }) {
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
	if errors.Is(err, raftnode.ErrNotRaftLeader) {
		return errForward
	}
	return err
}

// checkMemberRange refuses a member whose protocol range does not include
// the cluster's effective version: 409 version-unsupported, saying what
// to upgrade.
func checkMemberRange(fsm *lease.FSM, rec lease.RecordMember) error {
	if v := fsm.EffectiveVersion(); v < rec.ProtoMin || v > rec.ProtoMax {
		return &denial{err: &lease.RangeError{Node: rec.ID, Min: rec.ProtoMin, Max: rec.ProtoMax, Effective: v}}
	}
	return nil
}

// announce records a member node's protocol range and addresses, which
// the node sends on every start: the node credential (or the admin) may
// announce a server of the raft configuration, at the raft address the
// configuration has for it. The leader's version raiser sees the record
// in the FSM.
func (s *Server) announce(rq *request) error {
	if !rq.who.admin && !rq.who.node {
		return forbidden("unit %s may not announce controller nodes", rq.who.unit)
	}
	var body api.AnnounceRequest
	if err := rq.decode(&body); err != nil {
		return err
	}
	if err := checkHostPort("API address", body.APIAddr); err != nil {
		return err
	}
	if body.ProtoMin < 1 || body.ProtoMin > body.ProtoMax {
		return badRequest("invalid protocol range %d..%d", body.ProtoMin, body.ProtoMax)
	}
	if !s.node.IsLeader() {
		return errForward
	}
	servers, err := s.node.Servers(rq.ctx)
	if err != nil {
		return leaderOnly(err)
	}
	i := slices.IndexFunc(servers, func(srv raftnode.Server) bool { return srv.ID == body.ID })
	switch {
	case i < 0:
		return &httpError{status: http.StatusNotFound, code: api.CodeNotFound, msg: fmt.Sprintf("no controller node %q", body.ID)}
	case servers[i].RaftAddr != body.RaftAddr:
		return badRequest("node %s has raft address %s, not %s", body.ID, servers[i].RaftAddr, body.RaftAddr)
	}
	rec := lease.RecordMember{ID: body.ID, ProtoMin: body.ProtoMin, ProtoMax: body.ProtoMax,
		APIAddr: body.APIAddr, RaftAddr: body.RaftAddr}
	if err := checkMemberRange(s.node.FSM(), rec); err != nil {
		return err
	}
	res, err := s.apply(rq, rec)
	if err != nil {
		return err
	}
	s.log.Info().Str("node", body.ID).Uint64("proto_min", body.ProtoMin).Uint64("proto_max", body.ProtoMax).
		Msg("controller node announced")
	return ok(rq, res)
}

// applicationStatusRead answers GET /v1/applications/{app}/status: one
// application's part of the status, readable by its own units (status-get
// in their hooks) and by the admin.
func (s *Server) applicationStatusRead(rq *request) error {
	app, err := s.readApp(rq)
	if err != nil {
		return err
	}
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	a, units, now, ok := s.node.FSM().ApplicationView(app)
	if !ok {
		return &denial{err: lease.ErrUnknownApplication}
	}
	ptrs := make([]*lease.Unit, len(units))
	for i := range units {
		ptrs[i] = &units[i]
	}
	writeJSON(rq.w, http.StatusOK, applicationStatus(now, &a, ptrs, s.cfg.LostAfter))
	return nil
}
