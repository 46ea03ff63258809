package hooktools

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// ErrNotLeader is wrapped by Backend.SetLeaderSettings's error when the
// controller refused the write because this unit does not hold the
// leadership term it wrote with.
var ErrNotLeader = errors.New("hooktools: not the leader")

// Backend is what the tools do live, outside the hook's snapshot. The
// agent implements it; calls may block (ctx ends when the server closes).
type Backend interface {
	// IsLeader is the agent's leadership decision (DESIGN.md §4.4 rule 2):
	// true only if the unit leads and the lease is guaranteed for G more.
	IsLeader(ctx context.Context) (bool, error)
	// SetLeaderSettings writes changes to the controller at once, fenced by
	// the unit's term; a "" value deletes the key. A fenced-off write
	// returns an error wrapping ErrNotLeader.
	SetLeaderSettings(ctx context.Context, changes map[string]string) error
	// SetStatus sets the unit's workload status, or the application's when
	// s.Application (the server has checked leadership first).
	SetStatus(ctx context.Context, s Status) error
	// GetStatus returns the unit's workload status, or the application's
	// with every unit's in Units when application is true.
	GetStatus(ctx context.Context, application bool) (StatusInfo, error)
	// SetApplicationVersion records the workload version `uniter status`
	// shows.
	SetApplicationVersion(ctx context.Context, version string) error
}

// Status is a workload status set by status-set.
type Status struct {
	// Application selects the application's status instead of the unit's.
	Application bool
	// Status is one of maintenance, blocked, waiting, active.
	Status string
	// Message is free text; may be empty.
	Message string
}

// StatusInfo is a workload status as status-get prints it.
type StatusInfo struct {
	Status  string
	Message string
	// Data is the status's extra data; nil prints as an empty map.
	Data map[string]any
	// Units holds, for an application status, each unit's status by unit
	// name.
	Units map[string]StatusInfo
}

// HookContext is what the tools of one hook run see. The agent builds it
// when the hook starts; Register copies the maps, so they are a snapshot.
type HookContext struct {
	// Unit and App name the unit and its application.
	Unit, App string
	// Hook is the hook's kind, for logs.
	Hook string
	// Config is the typed config at hook start (charm.Config.Typed).
	Config map[string]any
	// ConfigKeys lists every option, set or not (charm.Config.Keys), for
	// config-get --all.
	ConfigKeys []string
	// LeaderSettings are the leader settings at hook start.
	LeaderSettings map[string]string
	// Backend does the live operations. Required.
	Backend Backend

	// Relations are the unit's relations at hook start (dying ones
	// included); RelationBackend reads their databags and the goal state.
	Relations       []Relation
	RelationBackend RelationBackend
	// HookRelation is the relation of a relation hook; nil otherwise.
	HookRelation *HookRelation

	// Network is the unit's address, for network-get and unit-get.
	Network Network
	// Bindings are the names network-get answers for and --endpoints
	// accepts: the charm's endpoints (metadata.yaml) and juju-info.
	Bindings []string
	// PortsBackend reads the unit's committed port ranges, once per hook,
	// when a port tool first needs them; nil: none are committed.
	PortsBackend PortsBackend
	// Action is the action the context runs (NewAction); nil in a hook
	// or an exec, where the action tools fail. It is shared, not copied:
	// the agent reads its results once the action has ended.
	Action *Action
}

// hookState is a registered context and what the hook has done to it.
// mu serialises the hook's tool calls, as Juju does, so a hook's calls
// are answered in a single order (is-leader's stickiness depends on it).
type hookState struct {
	unit, app, hook string
	config          map[string]any
	configKeys      []string
	backend         Backend

	mu        sync.Mutex
	settings  map[string]string // snapshot plus the hook's own writes
	notLeader bool              // is-leader has been false in this hook
	rel       relState
	network   Network
	bindings  []string
	ports     portState
	action    *Action // nil outside an action
}

func newHookState(hc *HookContext) (*hookState, error) {
	switch {
	case hc == nil:
		return nil, errors.New("hook context is nil")
	case hc.Backend == nil:
		return nil, errors.New("hook context has no backend")
	case hc.Unit == "":
		return nil, errors.New("hook context has no unit")
	}
	st := &hookState{
		unit: hc.Unit, app: hc.App, hook: hc.Hook,
		config:     maps.Clone(hc.Config),
		configKeys: slices.Clone(hc.ConfigKeys),
		backend:    hc.Backend,
		settings:   maps.Clone(hc.LeaderSettings),
		rel:        newRelState(hc),
		network:    hc.Network,
		bindings:   slices.Clone(hc.Bindings),
		ports:      portState{backend: hc.PortsBackend},
		action:     hc.Action,
	}
	if st.config == nil {
		st.config = map[string]any{}
	}
	if st.settings == nil {
		st.settings = map[string]string{}
	}
	return st, nil
}

// isLeader asks the backend unless this hook has already been told no:
// within one hook, once false always false. An error counts as false
// for later calls too: the agent could not vouch for the lease then, and
// the hook must not see leadership come back.
func (h *hookState) isLeader(ctx context.Context) (bool, error) {
	if h.notLeader {
		return false, nil
	}
	ok, err := h.backend.IsLeader(ctx)
	if err != nil || !ok {
		h.notLeader = true
	}
	return ok && err == nil, err
}

// newContextID returns 128 random bits, hex-encoded.
func newContextID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("cannot make context id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Register makes hc's snapshot available to tool calls carrying the
// returned id (pass it to the hook as JUJU_CONTEXT_ID). done invalidates
// the id; call it when the hook has ended. done may be called more than
// once.
func (s *Server) Register(hc *HookContext) (id string, done func(), err error) {
	st, err := newHookState(hc)
	if err != nil {
		return "", nil, fmt.Errorf("cannot register hook context: %w", err)
	}
	id, err = newContextID()
	if err != nil {
		return "", nil, fmt.Errorf("cannot register hook context: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", nil, errors.New("cannot register hook context: server is closed")
	}
	s.contexts[id] = st
	var once sync.Once
	done = func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.contexts, id)
			s.mu.Unlock()
		})
	}
	return id, done, nil
}

// lookup returns the context registered under id, or nil.
func (s *Server) lookup(id string) *hookState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contexts[id]
}
