package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/charm"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/leadership"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// ControllerAPI is what the hook tools need of the controller; the typed
// client (controller/client) implements it.
type ControllerAPI interface {
	Config(ctx context.Context, app string) (api.Config, error)
	LeaderSettings(ctx context.Context, app string) (api.Settings, error)
	SetLeaderSettings(ctx context.Context, app, unit string, term uint64, changes map[string]string) error
	SetUnitStatus(ctx context.Context, unit, kind, status, message string) error
	SetApplicationStatus(ctx context.Context, app, unit string, term uint64, status, message string) error
	SetApplicationVersion(ctx context.Context, unit, version string) error
	ApplicationStatus(ctx context.Context, app string) (api.ApplicationStatus, error)
	// The relation calls (hookctx_relations.go).
	Relation(ctx context.Context, relation string) (api.Relation, error)
	ApplicationRelations(ctx context.Context, app string) ([]api.Relation, error)
	EnterScope(ctx context.Context, relation, unit string, data map[string]string) (uint64, error)
	LeaveScope(ctx context.Context, relation, unit string) error
	CommitRelationData(ctx context.Context, unit string, term uint64, commits []api.RelationCommit) error
}

// ToolServer registers one hook's tool context; *hooktools.Server is it.
type ToolServer interface {
	Register(hc *hooktools.HookContext) (id string, done func(), err error)
	// Pending returns what the hook registered under id has buffered.
	Pending(id string) (hooktools.Pending, bool)
}

// hookContexts gives each hook run its parameters and its hook-tool
// context: a snapshot of config and leader settings taken when the hook
// starts, and a backend bound to the hook's kind and term.
type hookContexts struct {
	agentDir string
	cfg      Config
	app      string
	charm    *charm.Config
	tools    ToolServer         // nil: no hook tools (context ids only)
	ctrl     ControllerAPI      // nil without tools
	checker  leadership.Checker // the tracker
	state    func() operation.State
	remote   func() remotestate.Snapshot
	clock    clock.Clock
	net      networkContext // the unit's address and the charm's bindings
	log      zerolog.Logger

	mu     sync.Mutex
	config api.Config                  // cached by version
	lset   api.Settings                // cached by version
	keys   map[int]string              // relation keys by id (they never change)
	reads  map[string]*relationBackend // by context id, until the hook's done
}

func (h *hookContexts) NewContext(ctx context.Context, info operation.HookInfo) (hooks.Params, func(), error) {
	p := hooks.Params{
		Kind: info.Kind, Unit: h.cfg.Unit, CharmDir: h.cfg.CharmDir, ToolsDir: ToolsDir(h.agentDir),
		SocketPath: SocketPath(h.agentDir), ModelName: h.cfg.ModelName, ModelUUID: h.cfg.ModelUUID,
		LeadershipTerm: info.Term,
		Relation:       h.relationParams(info),
	}
	return h.register(ctx, info, p, nil)
}

// register gives p a context id and, with hook tools, registers the tool
// context of info under it (edited by custom, if set); the done func
// returned ends it.
func (h *hookContexts) register(ctx context.Context, info operation.HookInfo, p hooks.Params, custom func(*hooktools.HookContext)) (hooks.Params, func(), error) {
	if h.tools == nil {
		id, err := NewContextID()
		p.ContextID = id
		return p, func() {}, err
	}
	hc, err := h.toolContext(ctx, info)
	if err != nil {
		return hooks.Params{}, nil, err
	}
	if custom != nil {
		custom(hc)
	}
	id, done, err := h.tools.Register(hc)
	if err != nil {
		return hooks.Params{}, nil, fmt.Errorf("cannot register hook context: %w", err)
	}
	p.ContextID = id
	return p, h.keepReads(id, hc, done), nil
}

func (h *hookContexts) toolContext(ctx context.Context, info operation.HookInfo) (*hooktools.HookContext, error) {
	values, settings, err := h.snapshot(ctx, info)
	if err != nil {
		return nil, err
	}
	typed, err := h.charm.Typed(values)
	if err != nil {
		return nil, fmt.Errorf("cannot read config for hook %q: %w", info.Kind, err)
	}
	rels, hookRel := h.relations(ctx, info)
	hc := &hooktools.HookContext{
		Unit: h.cfg.Unit, App: h.app, Hook: string(info.Kind),
		Config: typed, ConfigKeys: h.charm.Keys(), LeaderSettings: settings,
		Backend:         &hookBackend{h: h, info: info},
		Relations:       rels,
		HookRelation:    hookRel,
		RelationBackend: &relationBackend{h: h, rels: map[int]api.Relation{}},
		DatabagLimits:   hooktools.DatabagLimits{KeyBytes: api.MaxDatabagKeyBytes, ValueBytes: api.MaxDatabagValueBytes},
	}
	h.addNetwork(hc) // ports.go
	return hc, nil
}

// snapshot returns the config values and leader settings for the versions
// the hook runs against, fetching only what changed since the last hook.
func (h *hookContexts) snapshot(ctx context.Context, info operation.HookInfo) (map[string]string, map[string]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.config.Values == nil || h.config.Version != info.ConfigVersion {
		c, err := h.ctrl.Config(ctx, h.app)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot fetch config: %w", err)
		}
		h.config = c
	}
	if h.lset.Values == nil || h.lset.Version != info.LeaderSettingsVersion {
		s, err := h.ctrl.LeaderSettings(ctx, h.app)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot fetch leader settings: %w", err)
		}
		if s.Values == nil {
			s.Values = map[string]string{}
		}
		h.lset = s
	}
	return maps.Clone(h.config.Values), maps.Clone(h.lset.Values), nil
}

// hookBackend is the live side of one hook's tools.
type hookBackend struct {
	h    *hookContexts
	info operation.HookInfo
}

func (b *hookBackend) view() leadership.HookView {
	st := b.h.state()
	return leadership.HookView{CommittedLeader: st.Leader, CommittedTerm: st.LeaderTerm, Hook: b.info.Kind, HookTerm: b.info.Term}
}

// IsLeader is DESIGN.md §4.4 rule 2, live.
func (b *hookBackend) IsLeader(ctx context.Context) (bool, error) {
	return leadership.IsLeader(ctx, b.h.checker, b.view())
}

// SetLeaderSettings writes fenced by the term the unit claims.
func (b *hookBackend) SetLeaderSettings(ctx context.Context, changes map[string]string) error {
	term, ok := leadership.ClaimedTerm(b.view())
	if !ok {
		return hooktools.ErrNotLeader
	}
	err := b.h.ctrl.SetLeaderSettings(ctx, b.h.app, b.h.cfg.Unit, term, changes)
	if errors.Is(err, api.ErrNotLeader) {
		return fmt.Errorf("%w: %w", hooktools.ErrNotLeader, err)
	}
	if err == nil {
		b.h.mu.Lock()
		b.h.lset = api.Settings{} // this unit's own write: refetch next time
		b.h.mu.Unlock()
	}
	return err
}

func (b *hookBackend) SetStatus(ctx context.Context, s hooktools.Status) error {
	if !s.Application {
		return b.h.ctrl.SetUnitStatus(ctx, b.h.cfg.Unit, api.StatusWorkload, s.Status, s.Message)
	}
	term, ok := leadership.ClaimedTerm(b.view())
	if !ok {
		return hooktools.ErrNotLeader
	}
	err := b.h.ctrl.SetApplicationStatus(ctx, b.h.app, b.h.cfg.Unit, term, s.Status, s.Message)
	if errors.Is(err, api.ErrNotLeader) {
		return fmt.Errorf("%w: %w", hooktools.ErrNotLeader, err)
	}
	return err
}

func (b *hookBackend) GetStatus(ctx context.Context, application bool) (hooktools.StatusInfo, error) {
	app, err := b.h.ctrl.ApplicationStatus(ctx, b.h.app)
	if err != nil {
		return hooktools.StatusInfo{}, err
	}
	if !application {
		w := app.Units[b.h.cfg.Unit].Workload
		return hooktools.StatusInfo{Status: orUnknown(w.Status), Message: w.Message}, nil
	}
	info := hooktools.StatusInfo{Status: "unknown", Units: map[string]hooktools.StatusInfo{}}
	if app.Status != nil {
		info.Status, info.Message = orUnknown(app.Status.Status), app.Status.Message
	}
	for name, u := range app.Units {
		info.Units[name] = hooktools.StatusInfo{Status: orUnknown(u.Workload.Status), Message: u.Workload.Message}
	}
	return info, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func (b *hookBackend) SetApplicationVersion(ctx context.Context, version string) error {
	return b.h.ctrl.SetApplicationVersion(ctx, b.h.cfg.Unit, version)
}
