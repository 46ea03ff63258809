package controller

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
)

// The relation endpoints (controller protocol 4: the state machine refuses
// the writes with needs-protocol while the cluster runs an older one).

func (s *Server) addRelation(rq *request) error {
	if err := requireAdmin(rq, "add relations"); err != nil {
		return err
	}
	var body api.AddRelationRequest
	if err := rq.decode(&body); err != nil {
		return err
	}
	if len(body.Endpoints) != 2 {
		return badRequest("a relation needs two endpoints (APP or APP:ENDPOINT), got %d", len(body.Endpoints))
	}
	var refs [2]lease.EndpointRef
	for i, e := range body.Endpoints {
		ref, err := lease.ParseEndpointRef(e)
		if err != nil {
			return err // invalid-command, 400
		}
		refs[i] = ref
	}
	res, err := s.apply(rq, lease.AddRelation{A: refs[0], B: refs[1]})
	if err != nil {
		return err
	}
	r := res.Relation
	rq.w.Header().Set(api.HeaderIndex, strconv.FormatUint(res.Index, 10))
	writeJSON(rq.w, http.StatusOK, api.RelationResponse{Relation: apiRelation(r.Summary(), nil, nil)})
	return nil
}

// relationParam is the relation named by the path's {id} ("N" or
// "endpoint:N"), and the local copy of it (ok false if this node has
// none). An endpoint that is none of the relation's is refused as an
// unknown relation (newer Juju's rule); so is an id this node does not
// know, but only on the raft leader: a follower's state may lag, so a
// write goes on to be forwarded and the leader's state machine judges it.
func (s *Server) relationParam(rq *request, forWrite bool) (int, lease.Relation, bool, error) {
	spec := rq.r.PathValue("id")
	endpoint, id, err := lease.ParseRelationID(spec)
	if err != nil {
		return 0, lease.Relation{}, false, badRequest("invalid relation id %q (want N or ENDPOINT:N)", spec)
	}
	r, ok, err := s.lookupRelation(id, endpoint, !forWrite || s.finalForWrites())
	return id, r, ok, err
}

// relationsProtocol is the protocol of the relation commands.
var relationsProtocol, _ = lease.RequiredProtocol(lease.AddRelation{})

// finalForWrites reports whether this node's state may refuse a write for
// naming an unknown relation: only the raft leader's, and only while the
// cluster runs relations (else the state machine answers needs-protocol,
// which tells the caller what to do).
func (s *Server) finalForWrites() bool {
	return s.node.IsLeader() && s.node.FSM().EffectiveVersion() >= relationsProtocol
}

// lookupRelation finds relation id in the local state and checks that
// endpoint ("" for none) is one of its endpoints. An unknown relation is
// refused only if final; else ok is false.
func (s *Server) lookupRelation(id int, endpoint string, final bool) (lease.Relation, bool, error) {
	r, ok := s.node.FSM().Relation(id)
	switch {
	case !ok && final:
		return lease.Relation{}, false, &denial{err: fmt.Errorf("relation %d: %w", id, lease.ErrUnknownRelation)}
	case !ok:
		return lease.Relation{}, false, nil
	case endpoint != "" && !slices.ContainsFunc(r.Endpoints, func(e lease.RelationEndpoint) bool { return e.Name == endpoint }):
		return lease.Relation{}, false, &denial{err: fmt.Errorf("relation %s: relation %d is %s, which has no endpoint %q: %w",
			lease.FormatRelationID(endpoint, id), id, r.Key(), endpoint, lease.ErrUnknownRelation)}
	}
	return r, true, nil
}

func (s *Server) removeRelation(rq *request) error {
	if err := requireAdmin(rq, "remove relations"); err != nil {
		return err
	}
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	id, _, _, err := s.relationParam(rq, true)
	if err != nil {
		return err
	}
	res, err := s.apply(rq, lease.RemoveRelation{Relation: id})
	if err != nil {
		return err
	}
	return ok(rq, res)
}

func (s *Server) listRelations(rq *request) error {
	if err := requireAdmin(rq, "list every relation"); err != nil {
		return err
	}
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	writeJSON(rq.w, http.StatusOK, relationList(s.node.FSM().RelationSummaries()))
	return nil
}

func (s *Server) applicationRelations(rq *request) error {
	app, err := s.readApp(rq)
	if err != nil {
		return err
	}
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	writeJSON(rq.w, http.StatusOK, relationList(s.node.FSM().ApplicationRelationSummaries(app)))
	return nil
}

func relationList(sums []lease.RelationSummary) api.RelationsResponse {
	out := api.RelationsResponse{Relations: make([]api.Relation, 0, len(sums))}
	for _, sum := range sums {
		out.Relations = append(out.Relations, apiRelation(sum, nil, nil))
	}
	return out
}

// getRelation answers GET /v1/relations/{id}, a blocking query on the
// relation's modify index, with the databags the caller may read.
func (s *Server) getRelation(rq *request) error {
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	id, r, _, err := s.relationParam(rq, false)
	if err != nil {
		return err
	}
	if err := s.mayRead(rq, r); err != nil {
		return err
	}
	fsm := s.node.FSM()
	idx, err := s.block(rq, func() uint64 { return fsm.RelationIndex(id) },
		func() <-chan struct{} { return fsm.WatchRelation(id) }, nil)
	if err != nil {
		return err
	}
	if r, _, err = s.lookupRelation(id, "", true); err != nil {
		return err // removed while the query waited
	}
	var leader string
	if !rq.who.admin {
		l, _ := fsm.Lease(rq.who.app)
		leader = l.Holder
	}
	apps, units := visibleData(&r, rq.who, leader)
	rq.w.Header().Set(api.HeaderIndex, strconv.FormatUint(idx, 10))
	writeJSON(rq.w, http.StatusOK, api.RelationResponse{Relation: apiRelation(r.Summary(), apps, units)})
	return nil
}

// mayRead refuses a unit whose application is not in r.
func (s *Server) mayRead(rq *request, r lease.Relation) error {
	if rq.who.admin {
		return nil
	}
	if _, ok := r.Endpoint(rq.who.app); !ok {
		return forbidden("unit %s may not read relation %d (%s): its application is not in it", rq.who.unit, r.ID, r.Key())
	}
	return nil
}

// visibleData returns the databags of r that who may read, as Juju's
// relation-get allows: the admin reads every one. A unit of application A
// reads its own unit databag, the unit databags of the units on the other
// side (every other unit's, in a peer relation), the other application's
// databag, and A's own only in a peer relation or while it is A's leader
// (leader, the holder of A's lease).
func visibleData(r *lease.Relation, who principal, leader string) (apps, units map[string]api.Databag) {
	apps, units = map[string]api.Databag{}, map[string]api.Databag{}
	for name, b := range r.UnitData {
		app, _ := lease.UnitApplication(name)
		if who.admin || name == who.unit || r.Peer() || app != who.app {
			units[name] = apiDatabag(b)
		}
	}
	for app, b := range r.AppData {
		if who.admin || app != who.app || r.Peer() || leader == who.unit {
			apps[app] = apiDatabag(b)
		}
	}
	return apps, units
}

func apiDatabag(b lease.Databag) api.Databag {
	return api.Databag{Values: nonNil(b.Values), Version: b.Version}
}

// apiRelation converts a relation's summary, with the databags given (nil
// for none), to its wire form.
func apiRelation(sum lease.RelationSummary, apps, units map[string]api.Databag) api.Relation {
	r := lease.Relation{Endpoints: sum.Endpoints}
	out := api.Relation{
		ID: sum.ID, Key: r.Key(), Peer: r.Peer(), Life: sum.Life, ModifyIndex: sum.ModifyIndex,
		Scope: slices.Sorted(maps.Keys(sum.UnitVersions)), AppData: apps, UnitData: units,
	}
	if out.Scope == nil {
		out.Scope = []string{}
	}
	for _, e := range sum.Endpoints {
		out.Endpoints = append(out.Endpoints, api.RelationEndpoint(e))
		out.Interface = e.Interface
	}
	return out
}

// relationUnit decodes a relation write's body and checks that the
// principal may act as its unit (the unit itself, or the admin), which is
// registered, and that the path's relation exists (see relationParam).
func (s *Server) relationUnit(rq *request, body any, unit func() string) (int, error) {
	if err := rq.decode(body); err != nil {
		return 0, err
	}
	app, err := lease.UnitApplication(unit())
	if err != nil {
		return 0, badRequest("invalid unit name %q", unit())
	}
	if err := s.actAs(rq, app, unit()); err != nil {
		return 0, err
	}
	id, _, _, err := s.relationParam(rq, true)
	return id, err
}

func (s *Server) enterScope(rq *request) error {
	var body api.ScopeRequest
	id, err := s.relationUnit(rq, &body, func() string { return body.Unit })
	if err != nil {
		return err
	}
	res, err := s.apply(rq, lease.EnterScope{Relation: id, Unit: body.Unit, Data: body.Data})
	if err != nil {
		return err
	}
	writeJSON(rq.w, http.StatusOK, api.VersionResult{Index: res.Index, Version: res.Version})
	return nil
}

func (s *Server) leaveScope(rq *request) error {
	var body api.ScopeRequest
	id, err := s.relationUnit(rq, &body, func() string { return body.Unit })
	if err != nil {
		return err
	}
	if body.Data != nil {
		return badRequest("leave-scope takes no data")
	}
	res, err := s.apply(rq, lease.LeaveScope{Relation: id, Unit: body.Unit})
	if err != nil {
		return err
	}
	return ok(rq, res)
}

// setUnitData answers PATCH /v1/relations/{id}/unit-data.
func (s *Server) setUnitData(rq *request) error { return s.setRelationData(rq, false) }

// setAppData answers PATCH /v1/relations/{id}/app-data, fenced by term.
func (s *Server) setAppData(rq *request) error { return s.setRelationData(rq, true) }

func (s *Server) setRelationData(rq *request, app bool) error {
	var body api.RelationDataChanges
	id, err := s.relationUnit(rq, &body, func() string { return body.Unit })
	if err != nil {
		return err
	}
	if body.Changes == nil {
		return badRequest("missing changes")
	}
	op := lease.SetRelationData{Relation: id, Unit: body.Unit, App: app, Changes: databagChanges(body.Changes)}
	if app {
		op.Term = body.Term
	}
	res, err := s.apply(rq, op)
	if err != nil {
		return err
	}
	writeJSON(rq.w, http.StatusOK, api.VersionResult{Index: res.Index, Version: res.Version})
	return nil
}

// commitRelationData answers POST /v1/units/{app}/{n}/relation-data: one
// hook's relation writes, applied in one raft entry or not at all.
func (s *Server) commitRelationData(rq *request) error {
	var body api.CommitRequest
	_, unit, err := s.selfUnit(rq, &body)
	if err != nil {
		return err
	}
	op := lease.CommitRelationData{Unit: unit, Term: body.Term}
	for _, rc := range body.Relations {
		endpoint, id, err := lease.ParseRelationID(rc.Relation)
		if err != nil {
			return badRequest("invalid relation id %q (want N or ENDPOINT:N)", rc.Relation)
		}
		if _, _, err := s.lookupRelation(id, endpoint, s.finalForWrites()); err != nil {
			return err
		}
		op.Relations = append(op.Relations, lease.RelationChanges{Relation: id,
			Unit: databagChanges(rc.Unit), App: databagChanges(rc.App)})
	}
	res, err := s.apply(rq, op)
	if err != nil {
		return err
	}
	return ok(rq, res)
}

// databagChanges converts the API's changes ("" deletes) to the state
// machine's; nil stays nil.
func databagChanges(in map[string]string) map[string]*string {
	if in == nil {
		return nil
	}
	out := make(map[string]*string, len(in))
	for k, v := range in {
		out[k] = &v
	}
	return out
}

// unitRelations is the relations part of the unit's watch view.
func unitRelations(unit, app string, sums []lease.RelationSummary) []api.UnitRelation {
	var out []api.UnitRelation
	for _, sum := range sums {
		r := lease.Relation{Endpoints: sum.Endpoints}
		local, _ := r.Endpoint(app)
		remote, _ := r.Remote(app)
		ur := api.UnitRelation{
			ID: sum.ID, Endpoint: local.Name, Role: local.Role, Interface: local.Interface,
			RemoteApp: remote.App, Peer: r.Peer(), Life: sum.Life, Members: map[string]uint64{},
			RemoteAppVersion: sum.AppVersions[remote.App], ModifyIndex: sum.ModifyIndex,
		}
		for name, v := range sum.UnitVersions {
			if name == unit {
				ur.InScope, ur.UnitVersion = true, v
				continue
			}
			if uapp, _ := lease.UnitApplication(name); r.Peer() || uapp != app {
				ur.Members[name] = v
			}
		}
		out = append(out, ur)
	}
	return out
}

// leaseEndpoints converts (and checks the roles of) a registration's
// endpoints; nil stays nil. Below protocol 4 an empty set (a charm
// without endpoints) is left out, so that such a charm registers as it
// always did; a charm with endpoints is refused by the state machine
// (needs-protocol).
func leaseEndpoints(in map[string]api.Endpoint, effective uint64) (map[string]lease.Endpoint, error) {
	if in == nil || (len(in) == 0 && effective < relationsProtocol) {
		return nil, nil
	}
	out := make(map[string]lease.Endpoint, len(in))
	for name, e := range in {
		switch e.Role {
		case api.RoleProvider, api.RoleRequirer, api.RolePeer:
		default:
			return nil, badRequest("endpoint %q has unknown role %q (want provider, requirer or peer)", name, e.Role)
		}
		out[name] = lease.Endpoint{Role: e.Role, Interface: e.Interface}
	}
	return out, nil
}
