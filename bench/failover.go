package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/journal"
	"github.com/uniter-dev/uniter/bench/report"
)

// runFailover (B1) measures failover after a crash: SIGKILL the leader's agent and
// time, on CLOCK_MONOTONIC, from the kill to the start of the successor's
// leader-elected hook (the journal charm's timestamp). Each trial waits a
// random part of the renewal period first, so the kill lands anywhere in
// the leader's renewal cycle, then restarts the killed agent and lets the
// application settle.
func runFailover(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	a, closeAll, err := leaderApp(ctx, s, env, "failover", failoverG)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	n := s.trials(3, 10)
	var samples []float64
	for i := range n {
		d, err := failoverTrial(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		s.logf("B1 trial %d/%d: failover %.0f ms", i+1, n, d)
		samples = append(samples, d)
	}
	s.publish(publishedFailover, samples)
	return failoverRows(samples), nil
}

// failoverRows is B1's row: the failover of each trial, in ms.
func failoverRows(samples []float64) []report.Row {
	return []report.Row{newRow("failover", "ms", samples).WithPercentiles(samples).
		WithFacts(failoverFacts{Units: leaderAppUnits, GuaranteeS: failoverG.Seconds(), RenewalS: renewalPeriod(failoverG).Seconds()})}
}

// failoverFacts are B1's setup: the guarantee G, and how often the
// leader renews its lease.
type failoverFacts struct {
	Units      int     `json:"units"`
	GuaranteeS float64 `json:"g_s"`
	RenewalS   float64 `json:"renewal_s"`
}

// failoverTrial kills the leader's agent once and returns the failover in ms.
func failoverTrial(ctx context.Context, a *deploy.App) (float64, error) {
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
