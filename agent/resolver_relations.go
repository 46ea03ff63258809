package agent

import (
	"maps"
	"slices"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// The relation rules (HOOK-TOOLS.md §6, "Relation hook order"). The
// resolver compares what the charm has been told of each relation
// (operation.State.Relations) with what the controller says
// (remotestate.Snapshot.Relations) and picks one hook, relation by
// relation in id order, within a relation the first that applies:
//
//  0. -created for a relation not known yet (alive, the unit alive);
//  1. -changed for the unit whose -joined has just committed;
//  2. -departed for each known member gone (every member, when the
//     relation or the unit is going away), sorted;
//  3. -broken once every member has departed, when the relation or the
//     unit is going away (never for a peer relation);
//  4. the application-level -changed when the remote application's
//     databag version has grown;
//  5. -joined for each new member, sorted;
//  6. -changed for each member whose databag version has grown.
//
// Versions only grow and a -changed records the version it read (or, if
// it read nothing, the one it was chosen for), so a burst of writes costs
// a bounded number of -changed hooks, each of which reads the latest data
// and newer data than the one before.

// relationsCreatedRule runs -created for a new unit's relations before its
// leadership and config hooks, as Juju does; once the unit has started,
// -created waits behind them with the other relation hooks.
func relationsCreatedRule(l operation.State, r remotestate.Snapshot) (Decision, bool) {
	if l.Started || r.Life != remotestate.Alive {
		return Decision{}, false
	}
	for _, rel := range r.Relations.List() {
		if _, known := l.Relations[rel.ID]; !known && rel.Life == remotestate.Alive {
			return relationHook(r, created(rel)), true
		}
	}
	return Decision{}, false
}

// relationsRule runs every relation hook but a new unit's -created: after
// start, or, for a unit going away, before its stop.
func relationsRule(l operation.State, r remotestate.Snapshot) (Decision, bool) {
	if !l.Started && r.Life == remotestate.Alive {
		return Decision{}, false
	}
	remotes := map[int]remotestate.Relation{} // decoded once
	for _, rel := range r.Relations.List() {
		remotes[rel.ID] = rel
	}
	ids := map[int]bool{}
	for id := range l.Relations {
		ids[id] = true
	}
	for id := range remotes {
		ids[id] = true
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		remote, exists := remotes[id]
		if needsScope(l, r, id, remote, exists) {
			return Decision{Action: EnterScope, Relation: id}, true
		}
		if info, ok := nextRelationHook(l, r, id, remote, exists); ok {
			return relationHook(r, info), true
		}
	}
	return Decision{}, false
}

// needsScope: the charm knows relation id, which is alive as the unit is,
// but the unit is not in its scope: -created normally enters it, but not
// one resolved without running, nor one whose scope the controller
// dropped. No hook of the relation runs before the unit is in.
func needsScope(l operation.State, r remotestate.Snapshot, id int, remote remotestate.Relation, exists bool) bool {
	_, known := l.Relations[id]
	return known && exists && !remote.InScope && remote.Life == remotestate.Alive && r.Life == remotestate.Alive
}

// nextRelationHook is the next hook of relation id (remote, as the
// controller has it, if it exists), if any.
func nextRelationHook(l operation.State, r remotestate.Snapshot, id int, remote remotestate.Relation, exists bool) (operation.HookInfo, bool) {
	local, known := l.Relations[id]
	if !known {
		if exists && remote.Life == remotestate.Alive && r.Life == remotestate.Alive {
			return created(remote), true
		}
		return operation.HookInfo{}, false
	}
	unitGoing := r.Life != remotestate.Alive
	going := !exists || remote.Life != remotestate.Alive || unitGoing
	if !going && !remote.InScope {
		return operation.HookInfo{}, false // the caller enters the scope first
	}
	members := remote.Members
	if going {
		members = nil // everyone departs
	}
	hook := func(ev hooks.RelationEvent, unit string, version uint64) operation.HookInfo {
		return operation.HookInfo{Kind: hooks.RelationHook(local.Endpoint, ev), Relation: operation.RelationHookInfo{
			RelationID: id, RemoteUnit: unit, RemoteApp: local.RemoteApp, Peer: local.Peer, Version: version}}
	}
	if u := local.ChangedPending; u != "" {
		if v, ok := members[u]; ok {
			return hook(hooks.RelationChanged, u, v), true
		}
	}
	for _, u := range local.MemberNames() {
		if _, ok := members[u]; !ok {
			info := hook(hooks.RelationDeparted, u, 0)
			if !unitGoing {
				info.Relation.DepartingUnit = u // else this unit: the hook context names it
			}
			return info, true
		}
	}
	if going {
		if local.Peer {
			return operation.HookInfo{}, false
		}
		return hook(hooks.RelationBroken, "", 0), true
	}
	if remote.RemoteAppVersion > local.AppVersion {
		return hook(hooks.RelationChanged, "", remote.RemoteAppVersion), true
	}
	names := slices.Sorted(maps.Keys(members))
	for _, u := range names {
		if _, ok := local.Members[u]; !ok {
			return hook(hooks.RelationJoined, u, members[u]), true
		}
	}
	for _, u := range names {
		if members[u] > local.Members[u] {
			return hook(hooks.RelationChanged, u, members[u]), true
		}
	}
	return operation.HookInfo{}, false
}

func created(rel remotestate.Relation) operation.HookInfo {
	return operation.HookInfo{Kind: hooks.RelationHook(rel.Endpoint, hooks.RelationCreated),
		Relation: operation.RelationHookInfo{RelationID: rel.ID, RemoteApp: rel.RemoteApp, Peer: rel.Peer}}
}

// relationHook is the decision to run info against r's versions.
func relationHook(r remotestate.Snapshot, info operation.HookInfo) Decision {
	d := runHook(info.Kind, r.Term, r)
	d.Hook.Relation = info.Relation
	return d
}
