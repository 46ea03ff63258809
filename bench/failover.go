package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/journal"
	"github.com/uniter-dev/uniter/bench/report"
)

// runB1 measures failover after a crash: SIGKILL the leader's agent and
// time, on CLOCK_MONOTONIC, from the kill to the start of the successor's
// leader-elected hook (the journal charm's timestamp). Each trial waits a
// random part of the renewal period first, so the kill lands anywhere in
// the leader's renewal cycle, then restarts the killed agent and lets the
// application settle.
func runB1(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	a, closeAll, err := leaderApp(ctx, s, env, "failover", failoverG)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	n := s.trials(3, 10)
	var samples []float64
	for i := range n {
		d, err := b1Trial(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		s.logf("B1 trial %d/%d: failover %.0f ms", i+1, n, d)
		samples = append(samples, d)
	}
	s.publish("B1.failover", samples)
	target := float64(failoverG+2*time.Second) / 1e6
	row := report.NewRow("B1", "failover after a crash", "failover: SIGKILL leader agent → successor's leader-elected start", "ms", samples).
		WithPercentiles(samples).
		WithTarget(report.Target{Stat: "median", Op: "<=", Value: target, Text: fmt.Sprintf("p50 ≤ G+2 s = %.0f ms", target)}).
		WithNote("3 units, G = %v (claims of G+0.5 s renewed every %v), 1-node controller; kill at a random point of the renewal cycle.",
			failoverG, renewalPeriod(failoverG))
	return []report.Row{row}, nil
}

// b1Trial kills the leader's agent once and returns the failover in ms.
func b1Trial(ctx context.Context, a *deploy.App) (float64, error) {
	settled, err := a.Settle(ctx, settleTimeout)
	if err != nil {
		return 0, err
	}
	if err := sleep(ctx, randomPhase(renewalPeriod(failoverG))); err != nil {
		return 0, err
	}
	leader := a.Unit(settled.Leader)
	t0 := journal.Now()
	leader.Agent().Kill()
	elected, err := journal.WaitFor(ctx, a.Journal, 3*failoverG+30*time.Second, func(r journal.Run) bool {
		return r.Hook == "leader-elected" && r.Unit != leader.Name && r.Start > t0
	})
	if err != nil {
		return 0, err
	}
	if err := leader.StartAgent(); err != nil {
		return 0, err
	}
	return ms(elected.Start - t0), nil
}
