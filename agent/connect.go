package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/internal/worker"
	"github.com/uniter-dev/uniter/leadership"
	"github.com/uniter-dev/uniter/remotestate"
)

// connection is what the agent reads through its workers: the sources the
// resolver loop and the hooks read, and, when they come from the
// controller, how to deregister the unit and close the client.
type connection struct {
	Sources
	// deregister, if set, removes the unit from the controller once its
	// remove hook has run.
	deregister func(ctx context.Context) error
	// close releases the client once every worker has returned.
	close func()
}

// fatal reports whether a controller error means this agent cannot go on:
// its token is refused or its unit no longer exists.
func fatal(err error) bool {
	return errors.Is(err, client.ErrUnauthorized) || errors.Is(err, api.ErrUnknownUnit)
}

// connectController connects the agent to its controller and starts the
// workers that feed it in g, in the order they depend on each other: the
// unit watch (the agent's one blocking query), the leadership tracker, the remote state watcher (which reads the tracker),
// the status reporter and the hook-tool server (which hooks use until they
// end). g stops them in the reverse order. On an error the workers started
// so far are left to g, and the returned connection's close must still be
// called.
func (a *unitAgent) connectController(g *worker.Group) (*connection, error) {
	cfg, clk := a.deps.Config, a.deps.Clock
	conn := &connection{close: func() {}}
	if len(cfg.Controller.Addresses) == 0 {
		return conn, fmt.Errorf("cannot connect to controller: agent.yaml of %s lists no controller addresses", cfg.Unit)
	}
	if cfg.Controller.CACert == "" && cfg.Controller.CAFingerprint == "" {
		return conn, fmt.Errorf("cannot connect to controller: agent.yaml of %s pins no controller CA (controller.ca-cert or controller.ca-fingerprint; `uniter unit add` writes them)", cfg.Unit)
	}
	ccfg := cfg.Controller.ClientConfig()
	ccfg.FollowMembers = true
	ccfg.OnMembers = func(addrs []string) { saveAddresses(a.deps.AgentDir, addrs, a.log) }
	c, err := client.New(ccfg)
	if err != nil {
		return conn, fmt.Errorf("cannot connect to controller: %w", err)
	}
	conn.close = c.Close
	conn.deregister = func(ctx context.Context) error { return deregister(ctx, c, cfg.Unit) }
	// One blocking query on the controller feeds both the tracker and the
	// remote state watcher; it stops after them (g stops in reverse).
	stream := newUnitStream(c, cfg.Unit, clk, a.log, fatal)
	g.Go("unit watch", func(ctx context.Context) error {
		stream.run(ctx)
		return nil
	})
	tracker, err := leadership.New(leadership.Config{
		App: a.app, Unit: cfg.Unit, Client: streamLeaseClient{leaseClient{c}, stream.reader()}, Clock: clk, Logger: a.log,
		Guarantee: time.Duration(cfg.LeadershipGuarantee), Fatal: fatal, Observer: a.metrics,
	})
	if err != nil {
		return conn, err
	}
	a.metrics.ReadLeadership(tracker.Guarantee)
	g.Go("leadership tracker", func(ctx context.Context) error { return runTracker(ctx, tracker) })
	watcher, err := remotestate.New(remotestate.Config{
		Unit: cfg.Unit, Client: streamUnitClient{stream.reader()}, Leadership: trackerSource{tracker},
		Clock: clk, Logger: a.log, Fatal: fatal,
	})
	if err != nil {
		return conn, err
	}
	g.Go("remote state watcher", func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			watcher.Kill()
		case <-watcher.Done():
		}
		return watcher.Wait()
	})
	reporter := NewReporter(c, cfg.Unit, clk, a.log, 20*time.Second)
	g.Go("status reporter", func(ctx context.Context) error {
		reporter.Run(ctx)
		return nil
	})
	if err := installTools(a.deps.AgentDir, a.log); err != nil {
		return conn, err
	}
	// The server adds unit and hook to every line itself.
	tools, err := hooktools.NewServer(hooktools.ServerConfig{SocketPath: SocketPath(a.deps.AgentDir), Logger: a.deps.Logger, Clock: clk,
		Observer: a.metrics})
	if err != nil {
		return conn, err
	}
	g.Go("hook-tool server", func(ctx context.Context) error {
		<-ctx.Done()
		if err := tools.Close(); err != nil {
			a.log.Warn().Err(err).Msg("cannot close hook-tool server")
		}
		return nil
	})
	conn.Sources = Sources{Remote: watcher, Tracker: tracker, Controller: c, Tools: tools, Status: reporter.Set}
	return conn, nil
}

// runTracker is the tracker's worker. Stopped, the tracker renews a held
// lease once more before it ends, so a restart finds the longest lease
// left (DESIGN.md §4.4 rule 6); it keeps the lease.
func runTracker(ctx context.Context, t *leadership.Tracker) error {
	select {
	case <-ctx.Done():
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		t.Renew(rctx)
		cancel()
		t.Kill()
	case <-t.Done():
	}
	return t.Wait()
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

// deregister removes the unit from the controller, once its remove hook
// has run.
func deregister(ctx context.Context, c *client.Client, unit string) error {
	if err := c.DeregisterUnit(ctx, unit); err != nil && !errors.Is(err, api.ErrUnknownUnit) {
		return fmt.Errorf("cannot deregister %s: %w", unit, err)
	}
	return nil
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
	return toUnitView(v), i, err
}

// toUnitView is the watch's answer as the remote state watcher sees it.
func toUnitView(v api.UnitView) remotestate.UnitView {
	view := remotestate.UnitView{
		Life: remotestate.Life(v.Life), ResolvedID: v.ResolvedID, ResolvedNoRetry: v.ResolvedNoRetry,
		ConfigVersion: v.ConfigVersion, LeaderSettingsVersion: v.LeaderSettingsVersion, Term: v.Lease.Term,
	}
	for _, o := range v.Operations {
		view.Operations = append(view.Operations, remotestate.Operation{ID: o.ID, Kind: o.Kind, Action: o.Action, Status: o.Status})
	}
	for _, r := range v.Relations {
		view.Relations = append(view.Relations, remotestate.Relation{
			ID: r.ID, Endpoint: r.Endpoint, Interface: r.Interface, RemoteApp: r.RemoteApp, Peer: r.Peer,
			Life: remotestate.Life(r.Life), InScope: r.InScope, Members: maps.Clone(r.Members), RemoteAppVersion: r.RemoteAppVersion,
		})
	}
	return view
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
