package bench

import (
	"context"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
)

// failoverG is the guarantee G of B1, B2 and B9's failover.
const failoverG = 3 * time.Second

// renewalPeriod is how often an idle leader's tracker extends a lease of
// G + 500 ms: at half the claim (leadership.Tracker's renewAt).
func renewalPeriod(g time.Duration) time.Duration { return (g + 500*time.Millisecond) / 2 }

// settleTimeout bounds waiting for an application to come to rest.
const settleTimeout = 90 * time.Second

// leaderAppUnits is how many units B1 and B2's application has.
const leaderAppUnits = 3

// leaderApp is the setup of B1 and B2: leaderAppUnits units of the journal
// charm with guarantee G, all writing one journal, on a 1-node controller.
func leaderApp(ctx context.Context, s *Suite, env deploy.Env, app string, g time.Duration) (*deploy.App, func(), error) {
	return startApp(ctx, env, app, s.charm("journal"), leaderAppUnits, g, true)
}

// startApp starts a 1-node controller (a `uniter controller` process),
// adds n units of app running charmDir to it as Cluster.AddApp does, and
// starts each unit's agent (a `uniter agent` process); it returns once
// the application is at rest, with a func that stops the agents and then
// the controller. The controller is the App's Cluster.
func startApp(ctx context.Context, env deploy.Env, app, charmDir string, n int, g time.Duration, journaled bool) (*deploy.App, func(), error) {
	c, err := deploy.StartCluster(ctx, env, 1)
	if err != nil {
		return nil, nil, err
	}
	a, err := c.AddApp(ctx, app, charmDir, n, g, journaled)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	closeAll := func() {
		a.Stop()
		c.Close()
	}
	if err := a.Start(); err != nil {
		closeAll()
		return nil, nil, err
	}
	if _, err := a.Settle(ctx, settleTimeout); err != nil {
		closeAll()
		return nil, nil, err
	}
	return a, closeAll, nil
}
