package operation

import (
	"fmt"
	"maps"
	"slices"

	"github.com/uniter-dev/uniter/hooks"
)

// RelationHookInfo is a relation hook's part of its HookInfo: which
// relation, which remote unit, and the databag version it runs for. All
// fields are empty for other hooks.
type RelationHookInfo struct {
	// RelationID is the relation's number (0 is a valid id: the hook's
	// kind says whether this is a relation hook).
	RelationID int `yaml:"relation-id,omitempty"`
	// RemoteUnit is JUJU_REMOTE_UNIT: the unit that joined, changed or
	// departed; "" for -created, -broken and an application-level
	// -changed.
	RemoteUnit string `yaml:"remote-unit,omitempty"`
	// RemoteApp is JUJU_REMOTE_APP: the application on the far side (the
	// unit's own for a peer relation).
	RemoteApp string `yaml:"remote-app,omitempty"`
	// DepartingUnit is JUJU_DEPARTING_UNIT in -departed: the remote unit
	// that left; empty when this unit is the one going away (the agent
	// then names this unit).
	DepartingUnit string `yaml:"departing-unit,omitempty"`
	// Peer is true for a peer relation (recorded by -created).
	Peer bool `yaml:"peer,omitempty"`
	// Version is the version of the remote unit's databag (-joined,
	// -changed) or, without a remote unit, of the remote application's
	// (-changed) that the hook runs for.
	Version uint64 `yaml:"relation-version,omitempty"`
}

// RelationState is what the charm has been told of one relation, so that
// a restart neither re-runs nor skips a relation hook.
type RelationState struct {
	// Endpoint is this unit's endpoint, RemoteApp the far side's
	// application, Peer whether it is a peer relation: what -departed and
	// -broken need once the relation is gone from the controller.
	Endpoint  string `yaml:"endpoint"`
	RemoteApp string `yaml:"remote-app"`
	Peer      bool   `yaml:"peer,omitempty"`
	// Members are the remote units -joined has run for (and no -departed
	// since), each with the databag version the last -joined or -changed
	// for it ran against.
	Members map[string]uint64 `yaml:"members,omitempty"`
	// ChangedPending is the unit whose -joined has committed and whose
	// -changed must run next.
	ChangedPending string `yaml:"changed-pending,omitempty"`
	// AppVersion is the remote application databag's version the last
	// application-level -changed ran against.
	AppVersion uint64 `yaml:"app-version,omitempty"`
}

// MemberNames returns the members' names, sorted.
func (r RelationState) MemberNames() []string { return slices.Sorted(maps.Keys(r.Members)) }

func cloneRelations(in map[int]RelationState) map[int]RelationState {
	if in == nil {
		return nil
	}
	out := make(map[int]RelationState, len(in))
	for id, r := range in {
		r.Members = maps.Clone(r.Members)
		out[id] = r
	}
	return out
}

func validateRelations(rs map[int]RelationState) error {
	for id, r := range rs {
		if id < 0 {
			return fmt.Errorf("relation %d: negative id", id)
		}
		if k := hooks.RelationHook(r.Endpoint, hooks.RelationCreated); r.Endpoint == "" || !k.IsRelation() {
			return fmt.Errorf("relation %d: invalid endpoint %q", id, r.Endpoint)
		}
		if r.RemoteApp == "" {
			return fmt.Errorf("relation %d: no remote application", id)
		}
		if r.ChangedPending != "" {
			if _, ok := r.Members[r.ChangedPending]; !ok {
				return fmt.Errorf("relation %d: changed pending for %q, which has not joined", id, r.ChangedPending)
			}
		}
	}
	return nil
}

// applyRelation records a committed relation hook in st (idempotent; a
// hook that is not a relation hook changes nothing).
func applyRelation(st *State, info HookInfo) {
	endpoint, event, ok := info.Kind.Relation()
	if !ok {
		return
	}
	ri := info.Relation
	// Copied first: st may share its maps with another State value.
	st.Relations = cloneRelations(st.Relations)
	if event == hooks.RelationBroken {
		delete(st.Relations, ri.RelationID)
		if len(st.Relations) == 0 {
			st.Relations = nil
		}
		return
	}
	if st.Relations == nil {
		st.Relations = map[int]RelationState{}
	}
	r, known := st.Relations[ri.RelationID]
	if !known {
		r = RelationState{Endpoint: endpoint, RemoteApp: ri.RemoteApp, Peer: ri.Peer}
	}
	switch event {
	case hooks.RelationJoined:
		if r.Members == nil {
			r.Members = map[string]uint64{}
		}
		r.Members[ri.RemoteUnit] = ri.Version
		r.ChangedPending = ri.RemoteUnit
	case hooks.RelationChanged:
		if ri.RemoteUnit == "" {
			r.AppVersion = max(r.AppVersion, ri.Version)
			break
		}
		if v, member := r.Members[ri.RemoteUnit]; member {
			r.Members[ri.RemoteUnit] = max(v, ri.Version)
		}
		if r.ChangedPending == ri.RemoteUnit {
			r.ChangedPending = ""
		}
	case hooks.RelationDeparted:
		delete(r.Members, ri.RemoteUnit)
		if r.ChangedPending == ri.RemoteUnit {
			r.ChangedPending = ""
		}
	}
	if len(r.Members) == 0 {
		r.Members = nil
	}
	st.Relations[ri.RelationID] = r
}
