package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/machinelock"
	"github.com/uniter-dev/uniter/operation"
)

// Deps are what one agent needs besides its agent.yaml.
type Deps struct {
	AgentDir string
	Config   Config
	Clock    clock.Clock
	Logger   zerolog.Logger
	// WrapStateWriter, when set, wraps the state file writer. Tests use it
	// to stop the process at an exact step boundary.
	WrapStateWriter func(operation.Writer) operation.Writer
}

// StatePath returns the state file of an agent directory (DESIGN.md §4.1).
func StatePath(agentDir string) string { return filepath.Join(agentDir, "state", "uniter.yaml") }

// ToolsDir returns the directory of hook-tool symlinks.
func ToolsDir(agentDir string) string { return filepath.Join(agentDir, "tools") }

// SocketPath returns the hook-tool socket.
func SocketPath(agentDir string) string { return filepath.Join(agentDir, "run", "agent.sock") }

// LogPath returns the agent's JSON log file.
func LogPath(agentDir string) string { return filepath.Join(agentDir, "log", "agent.log") }

// Agent is one unit agent, opened but not yet running.
type Agent struct {
	deps Deps
	log  zerolog.Logger
	x    *operation.Executor
	loop LoopConfig
}

// Open reads the unit's state and prepares the agent. A state file that
// cannot be read is an error naming the file; nothing is written then.
func Open(d Deps) (*Agent, error) {
	if d.Clock == nil {
		return nil, errors.New("cannot open agent: clock is required")
	}
	log := d.Logger.With().Str("unit", d.Config.Unit).Logger()
	x, err := openExecutor(d, log)
	if err != nil {
		return nil, err
	}
	runner, err := hooks.NewRunner(hooks.Config{Logger: log, Clock: d.Clock, Timeout: dur(d.Config.HookTimeout)})
	if err != nil {
		return nil, fmt.Errorf("cannot open agent: %w", err)
	}
	contexts := &hookContexts{agentDir: d.AgentDir, cfg: d.Config}
	newHook := func(info operation.HookInfo) operation.Operation {
		return operation.NewRunHook(info, operation.HookDeps{Runner: runner, Contexts: contexts, Clock: d.Clock, Logger: log})
	}
	return &Agent{deps: d, log: log, x: x, loop: LoopConfig{
		Executor: x, NewHook: newHook, Clock: d.Clock, Logger: log,
		UpdateStatusInterval: dur(d.Config.UpdateStatusInterval),
		RetryInitial:         dur(d.Config.RetryInitial), RetryMax: dur(d.Config.RetryMax),
		StopTimeout: dur(d.Config.StopTimeout),
	}}, nil
}

// State returns the unit's current local state.
func (a *Agent) State() operation.State { return a.x.State() }

// Run runs the resolver loop against remote until ctx ends (nil) or the
// unit is removed (ErrTerminated).
func (a *Agent) Run(ctx context.Context, remote RemoteState) error {
	cfg := a.loop
	cfg.Remote = remote
	a.log.Info().Msg("agent started")
	err := Loop(ctx, cfg)
	a.log.Info().AnErr("reason", err).Msg("agent stopped")
	return err
}

func openExecutor(d Deps, log zerolog.Logger) (*operation.Executor, error) {
	path := StatePath(d.AgentDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot run agent: %w", err)
	}
	sf := operation.NewStateFile(path)
	st, migrated, err := sf.Read()
	switch {
	case errors.Is(err, operation.ErrNoState):
		st = operation.State{Version: operation.CurrentVersion}
		log.Info().Str("path", path).Msg("new unit: no state file yet")
	case err != nil:
		return nil, err
	case migrated:
		log.Info().Str("path", path).Msg("state file migrated")
	}
	lock, err := machinelock.New(machinelock.Config{Path: d.Config.MachineLock, Unit: d.Config.Unit, Clock: d.Clock})
	if err != nil {
		return nil, fmt.Errorf("cannot run agent: %w", err)
	}
	var w operation.Writer = sf
	if d.WrapStateWriter != nil {
		w = d.WrapStateWriter(w)
	}
	return operation.NewExecutor(operation.ExecutorConfig{State: st, Writer: w, Locker: lock, Logger: log})
}

func dur(d Duration) time.Duration { return time.Duration(d) }

// hookContexts gives each hook run its parameters and a fresh context id.
type hookContexts struct {
	agentDir string
	cfg      Config
}

func (h *hookContexts) NewContext(_ context.Context, info operation.HookInfo) (hooks.Params, func(), error) {
	id, err := NewContextID()
	if err != nil {
		return hooks.Params{}, nil, err
	}
	p := hooks.Params{
		Kind:           info.Kind,
		Unit:           h.cfg.Unit,
		CharmDir:       h.cfg.CharmDir,
		ToolsDir:       ToolsDir(h.agentDir),
		ContextID:      id,
		SocketPath:     SocketPath(h.agentDir),
		ModelName:      h.cfg.ModelName,
		ModelUUID:      h.cfg.ModelUUID,
		LeadershipTerm: info.Term,
	}
	return p, func() {}, nil
}

// NewContextID returns a random hook context id: the unit's secret for the
// duration of one hook, 128 bits from crypto/rand.
func NewContextID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("cannot make context id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
