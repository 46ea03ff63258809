package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/leadership"
	"github.com/uniter-dev/uniter/remotestate"
)

// Connection is an agent's live link to the controller: the leadership
// tracker, the remote state watcher, the status reporter and the hook-tool
// server. Close stops them all; Err reports why one of them died.
type Connection struct {
	Sources
	Reporter *Reporter
	tracker  *leadership.Tracker
	watcher  *remotestate.Watcher
	tools    *hooktools.Server
	client   *client.Client
	cancel   context.CancelFunc
	done     chan struct{}
}

// fatal reports whether a controller error means this agent cannot go on:
// its token is refused or its unit no longer exists.
func fatal(err error) bool {
	return errors.Is(err, client.ErrUnauthorized) || errors.Is(err, api.ErrUnknownUnit)
}

// Connect connects the agent in agentDir to its controller and starts the
// workers that feed it. logger should not carry the unit field (the hook
// tool server adds unit and hook to every line itself).
func Connect(ctx context.Context, agentDir string, cfg Config, clk clock.Clock, logger zerolog.Logger) (*Connection, error) {
	if len(cfg.Controller.Addresses) == 0 {
		return nil, fmt.Errorf("cannot connect to controller: agent.yaml of %s lists no controller addresses", cfg.Unit)
	}
	app, _, err := SplitUnit(cfg.Unit)
	if err != nil {
		return nil, err
	}
	log := logger.With().Str("unit", cfg.Unit).Logger()
	c, err := client.New(client.Config{Addresses: cfg.Controller.Addresses, Token: cfg.Controller.Token,
		FollowMembers: true, OnMembers: func(addrs []string) { saveAddresses(agentDir, addrs, log) }})
	if err != nil {
		return nil, fmt.Errorf("cannot connect to controller: %w", err)
	}
	conn := &Connection{client: c, done: make(chan struct{})}
	if err := conn.start(agentDir, app, cfg, clk, logger); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func (conn *Connection) start(agentDir, app string, cfg Config, clk clock.Clock, logger zerolog.Logger) error {
	log := logger.With().Str("unit", cfg.Unit).Logger()
	tracker, err := leadership.New(leadership.Config{
		App: app, Unit: cfg.Unit, Client: leaseClient{conn.client}, Clock: clk, Logger: log,
		Guarantee: time.Duration(cfg.LeadershipGuarantee), Fatal: fatal,
	})
	if err != nil {
		return err
	}
	conn.tracker = tracker
	watcher, err := remotestate.New(remotestate.Config{
		Unit: cfg.Unit, Client: unitClient{conn.client}, Leadership: trackerSource{tracker},
		Clock: clk, Logger: log, Fatal: fatal,
	})
	if err != nil {
		return err
	}
	conn.watcher = watcher
	if err := installTools(agentDir, log); err != nil {
		return err
	}
	tools, err := hooktools.NewServer(hooktools.ServerConfig{SocketPath: SocketPath(agentDir), Logger: logger, Clock: clk})
	if err != nil {
		return err
	}
	conn.tools = tools
	ctx, cancel := context.WithCancel(context.Background())
	conn.cancel = cancel
	conn.Reporter = NewReporter(conn.client, cfg.Unit, clk, log, 20*time.Second)
	conn.Sources = Sources{Remote: watcher, Tracker: tracker, Controller: conn.client, Tools: tools, Status: conn.Reporter.Set}
	go func() {
		defer close(conn.done)
		conn.Reporter.Run(ctx)
	}()
	return nil
}

// installTools points the hook-tool symlinks in agentDir at the small
// uniter-hooktools binary beside this uniter binary, or at this binary
// when that is missing (slower to start, same behaviour).
func installTools(agentDir string, log zerolog.Logger) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find uniter binary for hook tools: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return fmt.Errorf("cannot find uniter binary for hook tools: %w", err)
	}
	target, small, why := hooktools.ToolTarget(exe)
	if !small {
		log.Warn().Str("missing", hooktools.ClientPath(exe)).Str("reason", why).Str("target", target).
			Msg("no usable uniter-hooktools beside the uniter binary: hook tools will start slower")
	}
	return hooktools.InstallSymlinks(ToolsDir(agentDir), target)
}

// Dead is closed when the tracker or the watcher has stopped by itself.
func (conn *Connection) Dead() <-chan struct{} {
	dead := make(chan struct{})
	go func() {
		defer close(dead)
		select {
		case <-conn.tracker.Done():
		case <-conn.watcher.Done():
		case <-conn.done:
		}
	}()
	return dead
}

// Err returns why the tracker or the watcher failed, if one did.
func (conn *Connection) Err() error {
	for _, done := range []<-chan struct{}{conn.tracker.Done(), conn.watcher.Done()} {
		select {
		case <-done:
		default:
			continue
		}
		if err := errors.Join(conn.tracker.Wait(), conn.watcher.Wait()); err != nil {
			return fmt.Errorf("cannot follow the controller: %w", err)
		}
	}
	return nil
}

// Deregister removes the unit from the controller, once its remove hook
// has run.
func (conn *Connection) Deregister(ctx context.Context, unit string) error {
	if err := conn.client.DeregisterUnit(ctx, unit); err != nil && !errors.Is(err, api.ErrUnknownUnit) {
		return fmt.Errorf("cannot deregister %s: %w", unit, err)
	}
	return nil
}

// Close stops every worker. The lease is kept: a restarted agent finds it
// still held and carries on as leader.
func (conn *Connection) Close() {
	if conn.cancel != nil {
		conn.cancel()
		<-conn.done
	}
	if conn.tools != nil {
		conn.tools.Close()
	}
	if conn.watcher != nil {
		conn.watcher.Kill()
		conn.watcher.Wait()
	}
	if conn.tracker != nil {
		// Renew once more, so a restart finds the longest lease left.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn.tracker.Renew(ctx)
		cancel()
		conn.tracker.Kill()
		conn.tracker.Wait()
	}
	conn.client.Close()
}

// leaseClient adapts the controller client to the tracker.
type leaseClient struct{ c *client.Client }

func toLease(l api.Lease) leadership.Lease {
	return leadership.Lease{Holder: l.Holder, Term: l.Term, StepDown: l.StepDown, Pinned: len(l.Pins) > 0}
}

// denials maps the API's refusals to the tracker's.
var denials = []struct{ from, to error }{
	{api.ErrClaimDenied, leadership.ErrClaimDenied},
	{api.ErrNotHolder, leadership.ErrNotHolder},
	{api.ErrStepDownPending, leadership.ErrStepDownPending},
	{api.ErrUnitDying, leadership.ErrUnitDying},
}

// denial is err in the tracker's words when it is a refusal it knows.
func denial(err error) error {
	for _, d := range denials {
		if errors.Is(err, d.from) {
			return leadership.Denial(d.to, err)
		}
	}
	return err
}

func (a leaseClient) Claim(ctx context.Context, app, unit string, d time.Duration) (leadership.Lease, uint64, error) {
	l, i, err := a.c.ClaimWithIndex(ctx, app, unit, d)
	return toLease(l), i, denial(err)
}

func (a leaseClient) Extend(ctx context.Context, app, unit string, d time.Duration, term uint64) (leadership.Lease, uint64, error) {
	l, i, err := a.c.ExtendWithIndex(ctx, app, unit, d, term)
	return toLease(l), i, denial(err)
}

func (a leaseClient) Revoke(ctx context.Context, app, unit string, term uint64) error {
	return denial(a.c.Revoke(ctx, app, unit, term))
}

func (a leaseClient) WatchLease(ctx context.Context, app string, index uint64, wait time.Duration) (leadership.Lease, uint64, error) {
	l, i, err := a.c.WatchLease(ctx, app, index, wait)
	return toLease(l), i, denial(err)
}

// unitClient adapts the controller client to the remote state watcher.
type unitClient struct{ c *client.Client }

func (a unitClient) WatchUnit(ctx context.Context, unit string, index uint64, wait time.Duration) (remotestate.UnitView, uint64, error) {
	v, i, err := a.c.WatchUnit(ctx, unit, index, wait)
	return remotestate.UnitView{
		Life: remotestate.Life(v.Life), ResolvedID: v.ResolvedID, ResolvedNoRetry: v.ResolvedNoRetry,
		ConfigVersion: v.ConfigVersion, LeaderSettingsVersion: v.LeaderSettingsVersion, Term: v.Lease.Term,
	}, i, err
}

// trackerSource adapts the tracker to the remote state watcher.
type trackerSource struct{ t *leadership.Tracker }

func (a trackerSource) Leadership() (remotestate.LeaderState, bool) {
	s := a.t.State()
	return remotestate.LeaderState{Leader: s.Leader, Term: s.Term, StepDown: s.StepDown, Gained: s.Gained}, s.Known
}

func (a trackerSource) Changes() <-chan struct{} { return a.t.Changes() }

// saveAddresses records the controller's members, which the client now
// uses, in agent.yaml, so that a restarted agent starts from them too.
func saveAddresses(agentDir string, addrs []string, log zerolog.Logger) {
	if err := SetControllerAddresses(agentDir, addrs); err != nil {
		log.Error().Err(err).Strs("addresses", addrs).Msg("cannot record controller addresses")
		return
	}
	log.Info().Strs("addresses", addrs).Msg("controller addresses changed")
}
