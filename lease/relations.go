package lease

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// relationKey names a relation's change channel.
func relationKey(id int) string { return "relation:" + strconv.Itoa(id) }

// touchRelation records that r's data changed at index: its modify index
// and that of every unit in its scope, so that their agents' blocking
// queries wake (and no other: a unit out of scope has no use for the data).
func (s *State) touchRelation(r *Relation, index uint64) {
	r.ModifyIndex = index
	s.Index = index
	s.touched = append(s.touched, relationKey(r.ID))
	for name := range r.UnitData {
		if u := s.Units[name]; u != nil {
			s.touchUnit(u, index)
		}
	}
}

// touchRelationMembers is touchRelation for a change of r's existence,
// life or scope: its applications change too, so that the agents of their
// units out of scope (which must enter the scope of a new relation) and
// status queries wake. Call it before a unit leaves scope, so the leaver
// wakes too, and after one enters.
func (s *State) touchRelationMembers(r *Relation, index uint64) {
	s.touchRelation(r, index)
	for _, e := range r.Endpoints {
		if a := s.Applications[e.App]; a != nil {
			s.touchApp(a, index)
		}
	}
}

// newRelation adds a relation of eps (requirer first, or one peer) with an
// empty application databag per application, and returns it.
func (s *State) newRelation(eps []RelationEndpoint, index uint64) *Relation {
	r := &Relation{
		ID:        s.NextRelationID,
		Endpoints: eps,
		Life:      RelationAlive,
		AppData:   map[string]Databag{},
		UnitData:  map[string]Databag{},
	}
	for _, e := range eps {
		r.AppData[e.App] = Databag{Values: map[string]string{}, Version: index}
	}
	s.NextRelationID++
	s.Relations[r.ID] = r
	s.touchRelationMembers(r, index)
	return r
}

// findRelation returns the relation joining exactly eps, or nil (there is
// at most one: State.Validate).
func (s *State) findRelation(eps []RelationEndpoint) *Relation {
	key := (&Relation{Endpoints: eps}).Key()
	for _, r := range s.Relations {
		if r.Key() == key {
			return r
		}
	}
	return nil
}

// leaveScope takes unit out of r's scope, dropping its databag, and
// removes r if it is dying and that was its last unit.
func (s *State) leaveScope(r *Relation, unit string, index uint64) {
	s.touchRelationMembers(r, index)
	delete(r.UnitData, unit)
	if r.Life == RelationDying && len(r.UnitData) == 0 {
		delete(s.Relations, r.ID)
	}
}

// relationOf finds relation id and the registered unit acting in it,
// which must be a unit of one of its applications.
func (s *State) relationOf(what string, id int, unit string) (*Relation, *Unit, error) {
	if _, err := parseUnitName(unit); err != nil {
		return nil, nil, fmt.Errorf("cannot %s: %w: %w", what, err, ErrInvalidCommand)
	}
	r, ok := s.Relations[id]
	if !ok {
		return nil, nil, fmt.Errorf("cannot %s: relation %d: %w", what, id, ErrUnknownRelation)
	}
	u, ok := s.Units[unit]
	if !ok {
		return nil, nil, fmt.Errorf("cannot %s: unit %q: %w", what, unit, ErrUnknownUnit)
	}
	if _, ok := r.Endpoint(u.App); !ok {
		return nil, nil, fmt.Errorf("cannot %s: unit %q is not a unit of an application of relation %d (%s): %w",
			what, unit, id, r.Key(), ErrInvalidCommand)
	}
	return r, u, nil
}

// checkEndpointChange refuses new endpoints for app that would break one
// of its relations (an endpoint in use gone, or its role or interface
// changed), as Juju's upgrade-charm does.
func (s *State) checkEndpointChange(app string, eps map[string]Endpoint) error {
	if eps == nil {
		return nil
	}
	for _, r := range s.relationsOf(app) {
		for _, e := range r.Endpoints {
			if e.App != app {
				continue
			}
			have, ok := eps[e.Name]
			switch {
			case !ok:
				return fmt.Errorf("the charm has no endpoint %q, which relation %d (%s) uses", e.Name, r.ID, r.Key())
			case have != (Endpoint{Role: e.Role, Interface: e.Interface}):
				return fmt.Errorf("the charm's endpoint %q is %s %s, but relation %d (%s) uses it as %s %s",
					e.Name, have.Role, have.Interface, r.ID, r.Key(), e.Role, e.Interface)
			}
		}
	}
	return nil
}

// setEndpoints replaces a's endpoints with non-nil eps (checked with
// checkEndpointChange) and creates the peer relation of every peers
// endpoint that has none, in name order.
func (s *State) setEndpoints(a *Application, eps map[string]Endpoint, index uint64) {
	if eps == nil {
		return
	}
	if !maps.Equal(eps, a.Endpoints) || a.Endpoints == nil {
		a.Endpoints = cloneEndpoints(eps)
		s.touchApp(a, index)
	}
	for _, name := range slices.Sorted(maps.Keys(eps)) {
		e := eps[name]
		if e.Role != RolePeer {
			continue
		}
		peer := []RelationEndpoint{{App: a.Name, Name: name, Role: RolePeer, Interface: e.Interface}}
		if s.findRelation(peer) == nil {
			s.newRelation(peer, index)
		}
	}
}

func (c AddRelation) apply(s *State, index uint64) Result {
	what := fmt.Sprintf("add relation %s %s", c.A, c.B)
	eps, err := s.inferEndpoints(c.A, c.B)
	if err != nil {
		return fail(fmt.Errorf("cannot %s: %w", what, err))
	}
	if r := s.findRelation(eps); r != nil {
		return fail(fmt.Errorf("cannot %s: relation %d (%s) already exists: %w", what, r.ID, r.Key(), ErrRelationExists))
	}
	return Result{Relation: s.newRelation(eps, index).Clone()}
}

// inferEndpoints resolves a and b to the requirer and provider endpoints
// to relate: the named ones, or, where a name is left out, the only pair
// that relates (Juju's rule).
func (s *State) inferEndpoints(a, b EndpointRef) ([]RelationEndpoint, error) {
	if a.App == b.App {
		return nil, fmt.Errorf("an application cannot relate to itself (a peers endpoint relates its units): %w", ErrInvalidCommand)
	}
	as, err := s.endpointsOf(a)
	if err != nil {
		return nil, err
	}
	bs, err := s.endpointsOf(b)
	if err != nil {
		return nil, err
	}
	var pairs [][]RelationEndpoint
	var reason error
	for _, ea := range as {
		for _, eb := range bs {
			if err := relates(ea, eb); err != nil {
				reason = err
				continue
			}
			if ea.Role == RoleProvider {
				ea, eb = eb, ea
			}
			pairs = append(pairs, []RelationEndpoint{ea, eb})
		}
	}
	switch {
	case len(pairs) == 1:
		return pairs[0], nil
	case len(pairs) > 1:
		var keys []string
		for _, p := range pairs {
			keys = append(keys, fmt.Sprintf("%q", (&Relation{Endpoints: p}).Key()))
		}
		return nil, fmt.Errorf("ambiguous relation: %q could refer to %s; name the endpoints: %w",
			a.String()+" "+b.String(), strings.Join(keys, "; "), ErrInvalidCommand)
	case a.Endpoint != "" && b.Endpoint != "" && reason != nil:
		return nil, reason
	}
	return nil, fmt.Errorf("no relations found (a requires endpoint relates to a provides endpoint of the same interface): %w", ErrInvalidCommand)
}

// endpointsOf lists ref's application endpoints, by name: the named one,
// or all of them.
func (s *State) endpointsOf(ref EndpointRef) ([]RelationEndpoint, error) {
	a, ok := s.Applications[ref.App]
	if !ok {
		if !ValidApplicationName(ref.App) {
			return nil, fmt.Errorf("invalid application name %q: %w", ref.App, ErrInvalidCommand)
		}
		return nil, fmt.Errorf("application %q: %w", ref.App, ErrUnknownApplication)
	}
	var out []RelationEndpoint
	for _, name := range slices.Sorted(maps.Keys(a.Endpoints)) {
		if ref.Endpoint == "" || ref.Endpoint == name {
			e := a.Endpoints[name]
			out = append(out, RelationEndpoint{App: a.Name, Name: name, Role: e.Role, Interface: e.Interface})
		}
	}
	if ref.Endpoint != "" && len(out) == 0 {
		// Juju's text.
		return nil, fmt.Errorf("application %q has no %q relation: %w", ref.App, ref.Endpoint, ErrInvalidCommand)
	}
	return out, nil
}

// relates says why a and b (of two applications) cannot be related, or nil.
func relates(a, b RelationEndpoint) error {
	switch {
	case a.Role == RolePeer || b.Role == RolePeer:
		peer := a
		if b.Role == RolePeer {
			peer = b
		}
		return fmt.Errorf("%s is a peers endpoint: its one relation, among its application's units, is made with the application: %w",
			peer, ErrInvalidCommand)
	case a.Role == b.Role:
		return fmt.Errorf("roles do not pair: %s and %s are both %ss (a provides endpoint relates only to a requires endpoint): %w",
			a, b, a.Role, ErrInvalidCommand)
	case a.Interface != b.Interface:
		return fmt.Errorf("interfaces do not match: %s is %q, %s is %q: %w", a, a.Interface, b, b.Interface, ErrInvalidCommand)
	}
	return nil
}

func (c RemoveRelation) apply(s *State, index uint64) Result {
	r, ok := s.Relations[c.Relation]
	switch {
	case !ok:
		return fail(fmt.Errorf("cannot remove relation %d: %w", c.Relation, ErrUnknownRelation))
	case r.Peer():
		return invalid(fmt.Sprintf("remove relation %d", c.Relation),
			"%s is a peer relation: it lasts as long as its application", r.Key())
	case r.Life == RelationDying:
		return Result{}
	}
	s.touchRelationMembers(r, index)
	if len(r.UnitData) == 0 {
		delete(s.Relations, r.ID)
		return Result{}
	}
	r.Life = RelationDying
	return Result{}
}

func (c EnterScope) apply(s *State, index uint64) Result {
	what := fmt.Sprintf("enter scope of relation %d", c.Relation)
	changes := make(map[string]*string, len(c.Data))
	for k, v := range c.Data {
		changes[k] = &v
	}
	if err := checkDatabagChanges(what, changes); err != nil {
		return fail(err)
	}
	r, u, err := s.relationOf(what, c.Relation, c.Unit)
	if err != nil {
		return fail(err)
	}
	if b, ok := r.UnitData[u.Name]; ok {
		return Result{Version: b.Version}
	}
	switch {
	case r.Life != RelationAlive:
		return fail(fmt.Errorf("cannot %s: the relation is dying: %w", what, ErrCannotEnterScope))
	case u.Life != LifeAlive:
		return fail(fmt.Errorf("cannot %s: unit %q is dying: %w", what, u.Name, ErrCannotEnterScope))
	}
	b := Databag{Values: map[string]string{}}
	if err := checkDatabagSize(what, b, changes); err != nil {
		return fail(err)
	}
	applyDatabagChanges(b.Values, changes)
	b.Version = index
	r.UnitData[u.Name] = b
	s.touchRelationMembers(r, index) // after joining: the new unit wakes too
	return Result{Version: b.Version}
}

func (c LeaveScope) apply(s *State, index uint64) Result {
	if _, err := parseUnitName(c.Unit); err != nil {
		return invalid(fmt.Sprintf("leave scope of relation %d", c.Relation), "%v", err)
	}
	r, ok := s.Relations[c.Relation]
	if !ok {
		return fail(fmt.Errorf("cannot leave scope of relation %d: %w", c.Relation, ErrUnknownRelation))
	}
	if r.InScope(c.Unit) {
		s.leaveScope(r, c.Unit, index)
	}
	return Result{}
}

func (c SetRelationData) apply(s *State, index uint64) Result {
	what := fmt.Sprintf("set relation data of relation %d", c.Relation)
	if err := checkDatabagChanges(what, c.Changes); err != nil {
		return fail(err)
	}
	r, u, err := s.relationOf(what, c.Relation, c.Unit)
	if err != nil {
		return fail(err)
	}
	var b Databag
	if c.App {
		// Fenced as set-leader-settings: the holder, at the current term.
		if l := s.Applications[u.App].Lease; l.Holder != c.Unit || l.Term != c.Term {
			return fail(ErrNotLeader)
		}
		b = r.AppData[u.App]
	} else {
		var ok bool
		if b, ok = r.UnitData[c.Unit]; !ok {
			return fail(fmt.Errorf("cannot %s: unit %q: %w", what, c.Unit, ErrNotInScope))
		}
	}
	if err := checkDatabagSize(what, b, c.Changes); err != nil {
		return fail(err)
	}
	if !applyDatabagChanges(b.Values, c.Changes) {
		return Result{Version: b.Version}
	}
	s.touchRelation(r, index)
	b.Version = index
	if c.App {
		r.AppData[u.App] = b
	} else {
		r.UnitData[c.Unit] = b
	}
	return Result{Version: b.Version}
}

// bagWrite is one databag write of a commit, checked and not yet applied.
type bagWrite struct {
	r       *Relation
	owner   string // the unit, or the application for an application databag
	app     bool
	changes map[string]*string
}

func (c CommitRelationData) apply(s *State, index uint64) Result {
	if _, err := parseUnitName(c.Unit); err != nil {
		return invalid("commit relation data", "%v", err)
	}
	if _, ok := s.Units[c.Unit]; !ok {
		return fail(fmt.Errorf("cannot commit relation data: unit %q: %w", c.Unit, ErrUnknownUnit))
	}
	var writes []bagWrite
	seen := make(map[int]bool, len(c.Relations))
	for _, rc := range c.Relations {
		what := fmt.Sprintf("commit relation data of relation %d", rc.Relation)
		if seen[rc.Relation] {
			return invalid(what, "the relation is listed twice (merge its changes)")
		}
		seen[rc.Relation] = true
		w, err := s.checkCommit(what, c.Unit, c.Term, rc)
		if err != nil {
			return fail(err)
		}
		writes = append(writes, w...)
	}
	// Every write is checked: apply them all.
	for _, w := range writes {
		bags := w.r.UnitData
		if w.app {
			bags = w.r.AppData
		}
		b := bags[w.owner]
		if applyDatabagChanges(b.Values, w.changes) {
			b.Version = index
			bags[w.owner] = b
			s.touchRelation(w.r, index)
		}
	}
	return Result{}
}

// checkCommit checks one entry of a commit by unit at term as
// SetRelationData would, and returns its writes.
func (s *State) checkCommit(what, unit string, term uint64, rc RelationChanges) ([]bagWrite, error) {
	if err := checkDatabagChanges(what, rc.Unit); err != nil {
		return nil, err
	}
	if err := checkDatabagChanges(what, rc.App); err != nil {
		return nil, err
	}
	r, u, err := s.relationOf(what, rc.Relation, unit)
	if err != nil {
		return nil, err
	}
	var out []bagWrite
	if len(rc.Unit) > 0 {
		b, ok := r.UnitData[unit]
		if !ok {
			return nil, fmt.Errorf("cannot %s: unit %q: %w", what, unit, ErrNotInScope)
		}
		if err := checkDatabagSize(what, b, rc.Unit); err != nil {
			return nil, err
		}
		out = append(out, bagWrite{r: r, owner: unit, changes: rc.Unit})
	}
	if len(rc.App) > 0 {
		// Fenced as set-leader-settings: the holder, at the current term.
		if l := s.Applications[u.App].Lease; l.Holder != unit || l.Term != term {
			return nil, fmt.Errorf("cannot %s: %w", what, ErrNotLeader)
		}
		if err := checkDatabagSize(what, r.AppData[u.App], rc.App); err != nil {
			return nil, err
		}
		out = append(out, bagWrite{r: r, owner: u.App, app: true, changes: rc.App})
	}
	return out, nil
}

// deleting reports whether a databag change deletes its key.
func deleting(v *string) bool { return v == nil || *v == "" }

// checkDatabagChanges refuses an empty key, and a key or value over its
// limit, in sorted key order (so every replica gives the same error).
func checkDatabagChanges(what string, changes map[string]*string) error {
	for _, k := range slices.Sorted(maps.Keys(changes)) {
		v := changes[k]
		switch {
		case k == "":
			return fmt.Errorf("cannot %s: empty key: %w", what, ErrInvalidCommand)
		case len(k) > MaxDatabagKeyBytes:
			return fmt.Errorf("cannot %s: key %.32q... is %d bytes; the limit is %d: %w",
				what, k, len(k), MaxDatabagKeyBytes, ErrTooLarge)
		case v != nil && len(*v) > MaxDatabagValueBytes:
			return fmt.Errorf("cannot %s: value of %q is %d bytes; the limit is %d: %w",
				what, k, len(*v), MaxDatabagValueBytes, ErrTooLarge)
		}
	}
	return nil
}

// checkDatabagSize refuses changes that would leave b over
// MaxDatabagBytes or MaxDatabagKeys.
func checkDatabagSize(what string, b Databag, changes map[string]*string) error {
	size, keys := 0, 0
	for k, v := range b.Values {
		if _, changed := changes[k]; !changed {
			size, keys = size+len(k)+len(v), keys+1
		}
	}
	for k, v := range changes {
		if !deleting(v) {
			size, keys = size+len(k)+len(*v), keys+1
		}
	}
	switch {
	case keys > MaxDatabagKeys:
		return fmt.Errorf("cannot %s: the databag would have %d keys; the limit is %d: %w",
			what, keys, MaxDatabagKeys, ErrTooLarge)
	case size > MaxDatabagBytes:
		return fmt.Errorf("cannot %s: the databag would be %d bytes; the limit is %d: %w",
			what, size, MaxDatabagBytes, ErrTooLarge)
	}
	return nil
}

// applyDatabagChanges applies changes (nil or "" deletes) to values and
// reports whether anything changed.
func applyDatabagChanges(values map[string]string, changes map[string]*string) bool {
	changed := false
	for k, v := range changes {
		old, had := values[k]
		switch {
		case deleting(v) && had:
			delete(values, k)
			changed = true
		case !deleting(v) && (!had || old != *v):
			values[k] = *v
			changed = true
		}
	}
	return changed
}
