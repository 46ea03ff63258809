package hooktools

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrSettingsNotFound is what RelationBackend.ReadSettings returns (or
// wraps) for a unit of the relation that has no settings yet.
var ErrSettingsNotFound = errors.New("hooktools: settings not found")

// RelationBackend reads relation databags live for the relation tools;
// the agent implements it. Writes do not go through it: the tools buffer
// them and the agent commits them once the hook has exited 0 (Pending).
type RelationBackend interface {
	// ReadSettings returns the databag of owner, a unit name or (app) an
	// application name, in relation id, as the controller has it now.
	ReadSettings(ctx context.Context, id int, owner string, app bool) (map[string]string, error)
	// GoalState returns what goal-state prints, as the controller has it
	// now.
	GoalState(ctx context.Context) (GoalState, error)
}

// Relation is one of the unit's relations as a hook sees it: the
// snapshot the agent takes when the hook starts.
type Relation struct {
	// ID is the relation's number; tools print it as Endpoint:ID.
	ID int
	// Endpoint is this unit's endpoint of the relation.
	Endpoint string
	// Key names the relation in errors ("wordpress:db mysql:server").
	Key string
	// Peer: a peers: endpoint; the far side is this unit's own
	// application.
	Peer bool
	// RemoteApp is the application on the far side (the unit's own for a
	// peer relation).
	RemoteApp string
	// Members are the remote units in scope, excluding this unit.
	Members []string
	// Dying: the relation or this unit is going away; relation-ids leaves
	// it out, but the hook's own relation stays readable.
	Dying bool
}

// HookRelation is the relation a relation hook runs for.
type HookRelation struct {
	// ID is the relation's number (Relation.ID).
	ID int
	// RemoteUnit is JUJU_REMOTE_UNIT ("" for -created, -broken and an
	// application-level -changed).
	RemoteUnit string
	// RemoteApp is JUJU_REMOTE_APP.
	RemoteApp string
}

// GoalStatus is one entry of goal-state.
type GoalStatus struct {
	// Status is e.g. "active", "waiting", "joined", "dying".
	Status string
	// Since is when it took that status.
	Since time.Time
}

// GoalState is what goal-state prints: the application's units and,
// per local endpoint of a non-peer relation, the remote application and
// its units.
type GoalState struct {
	Units     map[string]GoalStatus
	Relations map[string]map[string]GoalStatus
}

// DatabagLimits are the controller's bounds on one databag key and one
// value, in bytes; zero leaves a bound off.
type DatabagLimits struct {
	KeyBytes, ValueBytes int
}

// check refuses the first key (sorted) of changes, or its value, that is
// over the limits, in the words of the controller's refusal.
func (l DatabagLimits) check(changes map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(changes)) {
		v := changes[k]
		switch {
		case l.KeyBytes > 0 && len(k) > l.KeyBytes:
			return fmt.Errorf("cannot set relation settings: key %.32q... is %d bytes; the limit is %d", k, len(k), l.KeyBytes)
		case l.ValueBytes > 0 && len(v) > l.ValueBytes:
			return fmt.Errorf("cannot set relation settings: value of %q is %d bytes; the limit is %d", k, len(v), l.ValueBytes)
		}
	}
	return nil
}

// Pending is what a hook buffered for the agent to commit once it exited
// 0 (HOOK-TOOLS.md §6, "Commit rule"); a failed hook's Pending is dropped.
type Pending struct {
	// Relations holds, per relation id, the hook's writes.
	Relations map[int]RelationChanges
}

// RelationChanges are one relation's buffered writes; a "" value deletes
// the key.
type RelationChanges struct {
	Unit map[string]string
	App  map[string]string
}

// Empty reports whether p has nothing to commit.
func (p Pending) Empty() bool {
	for _, c := range p.Relations {
		if len(c.Unit) > 0 || len(c.App) > 0 {
			return false
		}
	}
	return true
}

// relState is the relation half of a hook's state, guarded by
// hookState.mu.
type relState struct {
	backend   RelationBackend
	relations map[int]Relation
	hookRel   *HookRelation
	goal      *GoalState                   // read once per hook
	cache     map[bagKey]map[string]string // live reads, once per hook
	pending   map[int]RelationChanges
}

type bagKey struct {
	id    int
	owner string
	app   bool
}

func newRelState(hc *HookContext) relState {
	rs := relState{backend: hc.RelationBackend, relations: map[int]Relation{},
		cache: map[bagKey]map[string]string{}, pending: map[int]RelationChanges{}}
	for _, r := range hc.Relations {
		r.Members = slices.Sorted(slices.Values(r.Members))
		rs.relations[r.ID] = r
	}
	if hc.HookRelation != nil {
		hr := *hc.HookRelation
		rs.hookRel = &hr
	}
	return rs
}

// usageError is a run-time finding that Juju reports as a usage error
// (exit 2): a bad -r, a missing unit name.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// relationFlag is the -r/--relation flag of the relation tools.
type relationFlag struct{ raw string }

func (f *relationFlag) setFlags(fs *flagSet) {
	fs.stringVar(&f.raw, "", "Specify a relation by id", nil, "r", "relation")
}

// resolve returns the relation -r names, or the hook's, in Juju's words
// when it cannot: "N" or "endpoint:N", where an endpoint that disagrees
// with the id is refused.
func (f *relationFlag) resolve(h *hookState) (Relation, error) {
	if f.raw == "" {
		if h.rel.hookRel == nil {
			return Relation{}, usagef("no relation id specified")
		}
		r, ok := h.rel.relations[h.rel.hookRel.ID]
		if !ok {
			return Relation{}, fmt.Errorf("relation %d of this hook is not known", h.rel.hookRel.ID)
		}
		return r, nil
	}
	bad := func(why string) error { return usagef("invalid value %q for option -r: %s", f.raw, why) }
	endpoint, num := "", f.raw
	if i := strings.LastIndex(f.raw, ":"); i >= 0 {
		endpoint, num = f.raw[:i], f.raw[i+1:]
	}
	id, err := strconv.Atoi(num)
	if err != nil || id < 0 {
		return Relation{}, bad("invalid relation id")
	}
	r, ok := h.rel.relations[id]
	if !ok || (endpoint != "" && endpoint != r.Endpoint) {
		return Relation{}, bad("relation not found")
	}
	return r, nil
}

// relationRef is how the tools print a relation id.
func relationRef(r Relation) string { return r.Endpoint + ":" + strconv.Itoa(r.ID) }

var (
	unitNameRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*/[0-9]+$`)
	appNameRE  = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$`)
)

func appOfUnit(unit string) string {
	app, _, _ := strings.Cut(unit, "/")
	return app
}

// readBag returns owner's databag in r as this hook may see it: refused
// with "permission denied" for a unit or application on neither side, and
// for the own application's bag of a non-peer relation unless leader; own
// bags include the hook's pending writes.
func (h *hookState) readBag(ctx context.Context, r Relation, owner string, app bool) (map[string]string, error) {
	own := (app && owner == h.app) || (!app && owner == h.unit)
	switch {
	case own && app && !r.Peer:
		if ok, _ := h.isLeader(ctx); !ok {
			return nil, errors.New("permission denied")
		}
	case own:
	case app && owner != r.RemoteApp:
		return nil, errors.New("permission denied")
	case !app && appOfUnit(owner) != r.RemoteApp:
		return nil, errors.New("permission denied")
	}
	key := bagKey{r.ID, owner, app}
	bag, ok := h.rel.cache[key]
	if !ok {
		if h.rel.backend == nil {
			return nil, errors.New("relations are not available in this hook")
		}
		var err error
		bag, err = h.rel.backend.ReadSettings(ctx, r.ID, owner, app)
		switch {
		case errors.Is(err, ErrSettingsNotFound) && own:
			bag = map[string]string{}
		case errors.Is(err, ErrSettingsNotFound) && !app:
			return nil, fmt.Errorf("cannot read settings for unit %q in relation %q: unit %q: settings not found", owner, r.Key, owner)
		case errors.Is(err, ErrSettingsNotFound):
			bag = map[string]string{}
		case err != nil:
			return nil, fmt.Errorf("cannot read relation settings: %w", err)
		}
		h.rel.cache[key] = bag
	}
	bag = maps.Clone(bag)
	if bag == nil {
		bag = map[string]string{}
	}
	if own {
		changes := h.rel.pending[r.ID].Unit
		if app {
			changes = h.rel.pending[r.ID].App
		}
		for k, v := range changes {
			if v == "" {
				delete(bag, k)
			} else {
				bag[k] = v
			}
		}
	}
	return bag, nil
}

// goalState reads the goal state once per hook.
func (h *hookState) goalState(ctx context.Context) (GoalState, error) {
	if h.rel.goal != nil {
		return *h.rel.goal, nil
	}
	if h.rel.backend == nil {
		return GoalState{}, errors.New("goal state is not available in this hook")
	}
	g, err := h.rel.backend.GoalState(ctx)
	if err != nil {
		return GoalState{}, fmt.Errorf("cannot read goal state: %w", err)
	}
	h.rel.goal = &g
	return g, nil
}

// bufferWrite records a relation-set for the commit.
func (h *hookState) bufferWrite(r Relation, app bool, changes map[string]string) {
	c := h.rel.pending[r.ID]
	dst := &c.Unit
	if app {
		dst = &c.App
	}
	if *dst == nil {
		*dst = map[string]string{}
	}
	maps.Copy(*dst, changes)
	h.rel.pending[r.ID] = c
}

// Pending returns what the hook registered under id has buffered, for the
// agent to commit after the hook exited 0 and before it calls done.
func (s *Server) Pending(id string) (Pending, bool) {
	h := s.lookup(id)
	if h == nil {
		return Pending{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := Pending{Relations: map[int]RelationChanges{}}
	for rid, c := range h.rel.pending {
		out.Relations[rid] = RelationChanges{Unit: maps.Clone(c.Unit), App: maps.Clone(c.App)}
	}
	return out, true
}
