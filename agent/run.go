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

	"github.com/uniter-dev/uniter/agent/agentmetrics"
	"github.com/uniter-dev/uniter/charm"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/machinelock"
	"github.com/uniter-dev/uniter/internal/worker"
	"github.com/uniter-dev/uniter/leadership"
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
	// Connect, when set, replaces the connection to the controller: tests
	// feed the agent a remote state of their own. What it starts must
	// stop when ctx ends.
	Connect func(ctx context.Context) (Sources, error)
	// Notifier, if set, is told when the agent serves and when it begins
	// to stop.
	Notifier Notifier
}

// Notifier is told when the agent is ready (its workers started: the
// leadership tracker, the hook-tool socket listening, the metrics
// listener if any) and when it begins to stop. The CLI tells systemd
// (sd_notify READY=1 and STOPPING=1).
type Notifier interface {
	Ready()
	Stopping()
}

// StatePath returns the state file of an agent directory (DESIGN.md §4.1).
func StatePath(agentDir string) string { return filepath.Join(agentDir, "state", "uniter.yaml") }

// ToolsDir returns the directory of hook-tool symlinks.
func ToolsDir(agentDir string) string { return filepath.Join(agentDir, "tools") }

// SocketPath returns the hook-tool socket.
func SocketPath(agentDir string) string { return filepath.Join(agentDir, "run", "agent.sock") }

// LogPath returns the agent's JSON log file.
func LogPath(agentDir string) string { return filepath.Join(agentDir, "log", "agent.log") }

// Run runs one unit agent: it reads the unit's state and charm (a file
// that cannot be read stops it at once, before it connects anywhere),
// connects to the controller and runs the resolver loop. It returns nil
// when ctx ends, once the running hook has finished or been killed, and
// when the unit was removed, once it is deregistered; otherwise the error
// of the worker that failed ("cannot run remote state watcher: ..."). Run
// is the one place an agent starts and stops: every goroutine it started
// has ended when it returns.
func Run(ctx context.Context, d Deps) error {
	a, err := open(d)
	if err != nil {
		d.Logger.Error().Err(err).Msg("cannot start agent")
		return err
	}
	g := worker.NewGroup(ctx)
	if err := a.serveMetrics(g); err != nil {
		g.Stop()
		g.Wait()
		a.log.Error().Err(err).Msg("cannot start agent")
		return err
	}
	conn, err := a.connect(ctx, g)
	if err != nil {
		g.Stop()
		g.Wait()
		conn.close()
		a.log.Error().Err(err).Msg("cannot start agent")
		return err
	}
	g.Go("resolver loop", func(ctx context.Context) error { return a.run(ctx, conn.Sources) })
	if d.Notifier != nil {
		// Started last, so stopped first: Stopping is told as soon as the
		// agent begins to stop, before the running hook ends.
		g.Go("service notifier", func(ctx context.Context) error {
			if ctx.Err() == nil {
				d.Notifier.Ready()
			}
			<-ctx.Done()
			d.Notifier.Stopping()
			return nil
		})
	}
	err = g.Wait()
	defer conn.close()
	switch {
	case errors.Is(err, ErrTerminated) && conn.deregister != nil:
		// Once every worker has stopped: a watcher would fail on the
		// unit's disappearance.
		a.log.Info().Msg("unit removed: deregistering")
		return conn.deregister(ctx)
	case errors.Is(err, ErrTerminated):
		return nil
	case err != nil:
		a.log.Error().Err(err).Msg("agent stopping")
	}
	return err
}

// connect starts the agent's connection in g: the controller's, or the
// one Deps.Connect makes.
func (a *unitAgent) connect(ctx context.Context, g *worker.Group) (*connection, error) {
	if a.deps.Connect == nil {
		return a.connectController(g)
	}
	src, err := a.deps.Connect(ctx)
	return &connection{Sources: src, close: func() {}}, err
}

// unitAgent is one unit agent, opened but not yet running.
type unitAgent struct {
	deps    Deps
	log     zerolog.Logger
	app     string
	x       *operation.Executor
	runner  *hooks.Runner
	charm   *charm.Config
	metrics *agentmetrics.Metrics // observes everything; served only with a metrics-addr
}

// serveMetrics listens on the metrics address, if there is one, and
// serves the metrics in g, the first worker started and so the last
// stopped.
func (a *unitAgent) serveMetrics(g *worker.Group) error {
	addr := a.deps.Config.MetricsAddr
	if addr == "" {
		return nil
	}
	ln, err := agentmetrics.Listen(addr)
	if err != nil {
		return fmt.Errorf("cannot start agent: %w", err)
	}
	a.log.Info().Str("addr", addr).Str("listening", ln.Addr().String()).Msg("serving metrics")
	g.Go("metrics server", func(ctx context.Context) error { return a.metrics.Serve(ctx, ln) })
	return nil
}

// open reads the unit's state and charm and prepares the agent. A state
// file that cannot be read is an error naming the file; nothing is written.
func open(d Deps) (*unitAgent, error) {
	if d.Clock == nil {
		return nil, errors.New("cannot open agent: clock is required")
	}
	app, _, err := SplitUnit(d.Config.Unit)
	if err != nil {
		return nil, fmt.Errorf("cannot open agent: %w", err)
	}
	log := d.Logger.With().Str("unit", d.Config.Unit).Logger()
	m, err := agentmetrics.New(agentmetrics.Config{Unit: d.Config.Unit, App: app, Clock: d.Clock})
	if err != nil {
		return nil, fmt.Errorf("cannot open agent: %w", err)
	}
	x, err := openExecutor(d, log, m)
	if err != nil {
		return nil, err
	}
	m.ReadErrorState(func() bool { return x.State().Error != nil })
	// The runner adds unit and hook to every line itself.
	runner, err := hooks.NewRunner(hooks.Config{Logger: d.Logger, Clock: d.Clock, Timeout: dur(d.Config.HookTimeout)})
	if err != nil {
		return nil, fmt.Errorf("cannot open agent: %w", err)
	}
	cc, err := charm.ReadConfig(d.Config.CharmDir)
	if err != nil {
		return nil, fmt.Errorf("cannot open agent: %w", err)
	}
	return &unitAgent{deps: d, log: log, app: app, x: x, runner: runner, charm: cc, metrics: m}, nil
}

// Tracker is what the agent needs of the leadership tracker.
type Tracker interface {
	leadership.Checker
	Leadership
}

// Sources are the agent's connections to the world.
type Sources struct {
	// Remote is the remote state (required).
	Remote RemoteState
	// Tracker is the leadership tracker; nil runs no leadership checks
	// (leader-elected is then never re-checked and is-leader is false).
	Tracker Tracker
	// Controller and Tools serve the hook tools; both nil runs hooks
	// without them.
	Controller ControllerAPI
	Tools      ToolServer
	// Status, if set, receives the agent's status on every change.
	Status func(status, message string)
}

// run runs the resolver loop until ctx ends (nil) or the unit is removed
// (ErrTerminated).
func (a *unitAgent) run(ctx context.Context, src Sources) error {
	if src.Remote == nil {
		return errors.New("cannot run agent: remote state is required")
	}
	checker := leadership.Checker(neverLeader{})
	if src.Tracker != nil {
		checker = src.Tracker
	}
	netCtx, err := newNetworkContext(a.deps.Config, a.log)
	if err != nil {
		return err
	}
	contexts := &hookContexts{agentDir: a.deps.AgentDir, cfg: a.deps.Config, app: a.app, charm: a.charm,
		tools: src.Tools, ctrl: src.Controller, checker: checker, state: a.x.State, net: netCtx,
		remote: src.Remote.Snapshot, clock: a.deps.Clock, log: a.log}
	runner := a.runner
	newHook := func(info operation.HookInfo) operation.Operation {
		deps := operation.HookDeps{Runner: runner, Contexts: contexts, Clock: a.deps.Clock, Logger: a.log, Observer: a.metrics}
		if info.Kind == hooks.LeaderElected {
			deps.Check = func(ctx context.Context, info operation.HookInfo) error {
				return recheckLease(ctx, checker, info, a.log)
			}
		}
		return operation.NewRunHook(info, deps)
	}
	cfg := LoopConfig{
		Executor: a.x, Remote: src.Remote, NewHook: newHook, Clock: a.deps.Clock, Logger: a.log,
		UpdateStatusInterval: dur(a.deps.Config.UpdateStatusInterval),
		RetryInitial:         dur(a.deps.Config.RetryInitial), RetryMax: dur(a.deps.Config.RetryMax),
		StopTimeout: dur(a.deps.Config.StopTimeout),
		EnterScope:  contexts.enterScope,
	}
	if src.Tracker != nil {
		cfg.Leadership = src.Tracker
	}
	if opsAPI, ok := src.Controller.(OperationAPI); ok && src.Tools != nil {
		cfg.Operations = &controllerOps{api: opsAPI, runner: a.runner, contexts: contexts, unit: a.deps.Config.Unit,
			clock: a.deps.Clock, log: a.log}
	}
	cfg.Status = src.Status
	a.log.Info().Msg("agent started")
	err = Loop(ctx, cfg)
	a.log.Info().AnErr("reason", err).Msg("agent stopped")
	return err
}

// recheckLease is leader-elected's Prepare: a lease already gone skips the
// hook (DESIGN.md §4.3).
func recheckLease(ctx context.Context, c leadership.Checker, info operation.HookInfo, log zerolog.Logger) error {
	ok, err := c.Check(ctx, info.Term)
	if err != nil {
		return fmt.Errorf("cannot check lease before leader-elected: %w", err)
	}
	if !ok {
		log.Warn().Uint64("term", info.Term).Msg("lease gone before leader-elected: skipping it")
		return operation.ErrSkip
	}
	return nil
}

// neverLeader is the checker of an agent without a tracker.
type neverLeader struct{}

func (neverLeader) Check(context.Context, uint64) (bool, error) { return false, nil }

func openExecutor(d Deps, log zerolog.Logger, m *agentmetrics.Metrics) (*operation.Executor, error) {
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
	lock, err := machinelock.New(machinelock.Config{Path: d.Config.MachineLock, Unit: d.Config.Unit, Clock: d.Clock, Observer: m})
	if err != nil {
		return nil, fmt.Errorf("cannot run agent: %w", err)
	}
	var w operation.Writer = sf
	if d.WrapStateWriter != nil {
		w = d.WrapStateWriter(w)
	}
	return operation.NewExecutor(operation.ExecutorConfig{State: st, Writer: w, Locker: lock, Logger: log, Observer: m})
}

func dur(d Duration) time.Duration { return time.Duration(d) }

// NewContextID returns a random hook context id: the unit's secret for the
// duration of one hook, 128 bits from crypto/rand.
func NewContextID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("cannot make context id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
