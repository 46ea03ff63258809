package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/leadership"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// relationParams is a relation hook's environment; nil for other hooks.
// JUJU_DEPARTING_UNIT names this unit in a -departed run because this
// unit is going away (the resolver leaves it empty then).
func (h *hookContexts) relationParams(info operation.HookInfo) *hooks.RelationParams {
	endpoint, event, ok := info.Kind.Relation()
	if !ok {
		return nil
	}
	ri := info.Relation
	p := &hooks.RelationParams{Endpoint: endpoint, ID: api.FormatRelationID(endpoint, ri.RelationID),
		RemoteUnit: ri.RemoteUnit, RemoteApp: ri.RemoteApp, DepartingUnit: ri.DepartingUnit}
	if event == hooks.RelationDeparted && p.DepartingUnit == "" {
		p.DepartingUnit = h.cfg.Unit
	}
	return p
}

// relations is the relation part of a hook's tool context: the relations
// the charm has been told of (plus, in -created, the hook's own), each
// with the members this unit has seen join: during -joined the joining
// unit is one, during -departed the departing one is not (seed 000: a
// hook never sees a unit it has not been told of).
func (h *hookContexts) relations(ctx context.Context, info operation.HookInfo) ([]hooktools.Relation, *hooktools.HookRelation) {
	local := h.state()
	var remote remotestate.Snapshot
	if h.remote != nil {
		remote = h.remote()
	}
	known := maps.Clone(local.Relations)
	if known == nil {
		known = map[int]operation.RelationState{}
	}
	endpoint, event, isRel := info.Kind.Relation()
	ri := info.Relation
	if _, ok := known[ri.RelationID]; isRel && !ok {
		known[ri.RelationID] = operation.RelationState{Endpoint: endpoint, RemoteApp: ri.RemoteApp, Peer: ri.Peer}
	}
	var out []hooktools.Relation
	for _, id := range slices.Sorted(maps.Keys(known)) {
		k := known[id]
		members := map[string]bool{}
		for u := range k.Members {
			members[u] = true
		}
		if isRel && id == ri.RelationID {
			switch event {
			case hooks.RelationJoined:
				members[ri.RemoteUnit] = true
			case hooks.RelationDeparted:
				delete(members, ri.RemoteUnit)
			}
		}
		rel, exists := remote.Relations.Get(id)
		dying := !exists || rel.Life != remotestate.Alive || remote.Life == remotestate.Dying ||
			(isRel && id == ri.RelationID && event == hooks.RelationBroken)
		out = append(out, hooktools.Relation{ID: id, Endpoint: k.Endpoint, Key: h.relationKey(ctx, id, k), Peer: k.Peer,
			RemoteApp: k.RemoteApp, Members: slices.Sorted(maps.Keys(members)), Dying: dying})
	}
	if !isRel {
		return out, nil
	}
	return out, &hooktools.HookRelation{ID: ri.RelationID, RemoteUnit: ri.RemoteUnit, RemoteApp: ri.RemoteApp}
}

// relationKey is Juju's key of relation id ("web:db pg:server"), asked of
// the controller once per relation; until it answers, "app:endpoint".
func (h *hookContexts) relationKey(ctx context.Context, id int, k operation.RelationState) string {
	h.mu.Lock()
	key, ok := h.keys[id]
	h.mu.Unlock()
	if ok {
		return key
	}
	fallback := h.app + ":" + k.Endpoint
	if h.ctrl == nil {
		return fallback
	}
	rels, err := h.ctrl.ApplicationRelations(ctx, h.app)
	if err != nil {
		return fallback
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.keys == nil {
		h.keys = map[int]string{}
	}
	for _, r := range rels {
		h.keys[r.ID] = r.Key
	}
	if key, ok := h.keys[id]; ok {
		return key
	}
	return fallback
}

// keepReads remembers, until done, what the hook registered under id
// reads of its relations, for Flush to record the versions it saw.
func (h *hookContexts) keepReads(id string, hc *hooktools.HookContext, done func()) func() {
	b, ok := hc.RelationBackend.(*relationBackend)
	if !ok {
		return done
	}
	h.mu.Lock()
	if h.reads == nil {
		h.reads = map[string]*relationBackend{}
	}
	h.reads[id] = b
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.reads, id)
		h.mu.Unlock()
		done()
	}
}

// readVersion records in info the version of the databag the relation
// hook is about (its remote unit's, or without one the remote
// application's) as the hook read it, when that is newer than the one it
// was chosen for: a -changed has then seen that data, and none is run
// again for it.
func (h *hookContexts) readVersion(info operation.HookInfo, contextID string) operation.HookInfo {
	_, event, ok := info.Kind.Relation()
	if !ok || (event != hooks.RelationJoined && event != hooks.RelationChanged) {
		return info
	}
	h.mu.Lock()
	b := h.reads[contextID]
	h.mu.Unlock()
	if b == nil {
		return info
	}
	ri := info.Relation
	owner, app := ri.RemoteUnit, false
	if owner == "" {
		owner, app = ri.RemoteApp, true
	}
	if v, ok := b.version(ri.RelationID, owner, app); ok && v > ri.Version {
		info.Relation.Version = v
	}
	return info
}

// relationBackend reads databags for one hook's relation tools: each
// relation is fetched from the controller once per hook, so that every
// read of a hook sees the same moment (the tools add the hook's own
// writes).
type relationBackend struct {
	h    *hookContexts
	mu   sync.Mutex
	rels map[int]api.Relation
}

// ReadSettings implements hooktools.RelationBackend.
func (b *relationBackend) ReadSettings(ctx context.Context, id int, owner string, app bool) (map[string]string, error) {
	if b.h.ctrl == nil {
		return nil, hooktools.ErrSettingsNotFound
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rel, ok := b.rels[id]
	if !ok {
		var err error
		rel, err = b.h.ctrl.Relation(ctx, strconv.Itoa(id))
		switch {
		case errors.Is(err, api.ErrUnknownRelation):
			rel = api.Relation{ID: id} // gone (a -broken hook): no settings
		case err != nil:
			return nil, err
		}
		b.rels[id] = rel
	}
	bags := rel.UnitData
	if app {
		bags = rel.AppData
	}
	bag, ok := bags[owner]
	if !ok {
		return nil, hooktools.ErrSettingsNotFound
	}
	return maps.Clone(bag.Values), nil
}

// version is the version of owner's databag in relation id as this hook
// read it; ok is false when the hook read nothing of the relation.
func (b *relationBackend) version(id int, owner string, app bool) (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rel, ok := b.rels[id]
	if !ok {
		return 0, false
	}
	bags := rel.UnitData
	if app {
		bags = rel.AppData
	}
	bag, ok := bags[owner]
	return bag.Version, ok
}

// GoalState implements hooktools.RelationBackend: the application's units
// as the controller has them ("dying" once removed, "waiting" until their
// agent first reports, else "active"), each since its agent's status; and
// per endpoint of a non-peer relation the remote application ("joined",
// or "dying" with the relation) and its units in scope.
func (b *relationBackend) GoalState(ctx context.Context) (hooktools.GoalState, error) {
	st, err := b.h.ctrl.ApplicationStatus(ctx, b.h.app)
	if err != nil {
		return hooktools.GoalState{}, err
	}
	g := hooktools.GoalState{Units: map[string]hooktools.GoalStatus{}, Relations: map[string]map[string]hooktools.GoalStatus{}}
	for name, u := range st.Units {
		status := "active"
		switch {
		case u.Life == api.LifeDying:
			status = "dying"
		case u.Agent.Status == "" || u.Agent.Status == "allocating":
			status = "waiting"
		}
		g.Units[name] = hooktools.GoalStatus{Status: status, Since: u.Agent.Since}
	}
	if b.h.remote == nil {
		return g, nil
	}
	now := b.h.clock.Now().UTC()
	for _, r := range b.h.remote().Relations.List() {
		if r.Peer {
			continue
		}
		entries := g.Relations[r.Endpoint]
		if entries == nil {
			entries = map[string]hooktools.GoalStatus{}
			g.Relations[r.Endpoint] = entries
		}
		status := "joined"
		if r.Life != remotestate.Alive {
			status = "dying"
		}
		entries[r.RemoteApp] = hooktools.GoalStatus{Status: status, Since: now}
		for u := range r.Members {
			entries[u] = hooktools.GoalStatus{Status: "active", Since: now}
		}
	}
	return g, nil
}

// Flush commits a hook's relation work once it has exited 0 (or had no
// handler), before the hook is recorded as done: in -created it enters
// the relation's scope, then it sends every relation-set of the hook in
// one all-or-nothing commit (application databags fenced by the term the
// unit claims), then its open-port and close-port changes, and in -broken
// it leaves the scope (the writes of a
// -broken hook to its own relation are dropped: the relation is going).
// An error fails the hook, which is retried; nothing of a failed commit
// is written. The info returned carries the databag version the hook read
// (readVersion).
func (h *hookContexts) Flush(ctx context.Context, info operation.HookInfo, p hooks.Params) (operation.HookInfo, error) {
	if err := h.flush(ctx, info, p.ContextID, fmt.Sprintf("hook %q", info.Kind)); err != nil {
		return info, err
	}
	return h.readVersion(info, p.ContextID), nil
}

// flush commits the relation writes and port changes of the hook or
// operation registered under contextID (what names it in errors), and the
// scope changes of a relation hook (info.Kind; an operation has none).
func (h *hookContexts) flush(ctx context.Context, info operation.HookInfo, contextID, what string) error {
	if h.ctrl == nil {
		return nil
	}
	_, event, isRel := info.Kind.Relation()
	id := info.Relation.RelationID
	rel := strconv.Itoa(id)
	skip := map[int]bool{}
	if isRel && event == hooks.RelationCreated {
		err := h.enterScope(ctx, id)
		switch {
		case errors.Is(err, api.ErrCannotEnterScope):
			// The relation is already dying: -broken follows.
			skip[id] = true
		case err != nil:
			return err
		}
	}
	if isRel && event == hooks.RelationBroken {
		skip[id] = true
	}
	var pending hooktools.Pending
	if h.tools != nil && contextID != "" {
		pending, _ = h.tools.Pending(contextID)
	}
	var commits []api.RelationCommit
	appWrites := false
	for _, rid := range slices.Sorted(maps.Keys(pending.Relations)) {
		c := pending.Relations[rid]
		if skip[rid] || (len(c.Unit) == 0 && len(c.App) == 0) {
			continue
		}
		appWrites = appWrites || len(c.App) > 0
		commits = append(commits, api.RelationCommit{Relation: strconv.Itoa(rid), Unit: c.Unit, App: c.App})
	}
	if len(commits) > 0 {
		var term uint64
		if appWrites {
			st := h.state()
			t, ok := leadership.ClaimedTerm(leadership.HookView{CommittedLeader: st.Leader, CommittedTerm: st.LeaderTerm,
				Hook: info.Kind, HookTerm: info.Term})
			if !ok {
				return errors.New("cannot commit relation data: cannot write relation settings: not the leader")
			}
			term = t
		}
		if err := h.ctrl.CommitRelationData(ctx, h.cfg.Unit, term, commits); err != nil {
			return fmt.Errorf("cannot commit relation data: %w", err)
		}
	}
	if err := h.commitPorts(ctx, contextID, what); err != nil {
		return err
	}
	if isRel && event == hooks.RelationBroken {
		if err := h.ctrl.LeaveScope(ctx, rel, h.cfg.Unit); err != nil && !errors.Is(err, api.ErrUnknownRelation) {
			return fmt.Errorf("cannot leave scope of relation %d: %w", id, err)
		}
	}
	return nil
}

// enterScope puts the unit in relation id's scope, its databag seeded.
func (h *hookContexts) enterScope(ctx context.Context, id int) error {
	if h.ctrl == nil {
		return nil
	}
	if _, err := h.ctrl.EnterScope(ctx, strconv.Itoa(id), h.cfg.Unit, h.scopeSeed()); err != nil {
		return fmt.Errorf("cannot enter scope of relation %d: %w", id, err)
	}
	return nil
}

// scopeSeed is what a unit's databag starts with when it enters a scope,
// as in Juju: its address (agent.yaml's, else the host's primary address;
// network-get answers the same) as private-address and ingress-address,
// and as a one-host egress subnet.
func (h *hookContexts) scopeSeed() map[string]string {
	addr := h.net.network.Address
	if addr == "" {
		return nil
	}
	egress := addr + "/32"
	if strings.Contains(addr, ":") {
		egress = addr + "/128"
	}
	return map[string]string{"private-address": addr, "ingress-address": addr, "egress-subnets": egress}
}
