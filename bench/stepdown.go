package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/journal"
	"github.com/uniter-dev/uniter/bench/report"
)

// runB2 measures a handover by step-down (what `uniter leadership revoke
// APP` asks): from the request to the start of the successor's
// leader-elected hook, minus the run time of the old leader's
// leader-deposed hook (start to end in the journal), which the handover
// must wait for by design.
func runB2(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	a, closeAll, err := leaderApp(ctx, s, env, "handover", failoverG)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	n := s.trials(5, 20)
	var handover, raw []float64
	for i := range n {
		h, r, err := b2Trial(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		s.logf("B2 trial %d/%d: handover %.1f ms (%.1f ms with leader-deposed)", i+1, n, h, r)
		handover, raw = append(handover, h), append(raw, r)
	}
	rows := []report.Row{
		report.NewRow("B2", "handover by step-down", "handover: step-down request → successor's leader-elected start, minus leader-deposed run time", "ms", handover).
			WithPercentiles(handover).
			WithTarget(report.Target{Stat: "p99", Op: "<", Value: 500, Text: "p99 < 500 ms"}).
			WithNote("3 units, G = %v, 1-node controller; the request is the typed client's RequestStepDown (what `uniter leadership revoke` sends); trials %v apart, so no unit is still in the hold-off (a claim duration) that follows its resignation; p99 is nearest-rank, so the max of fewer than 100 trials.", failoverG, b2Spacing),
		report.NewRow("B2", "handover by step-down", "handover including leader-deposed", "ms", raw).WithPercentiles(raw),
	}
	return rows, nil
}

// b2Spacing is the least time between a resignation and the next trial:
// longer than the hold-off of a unit that resigned (a claim, G + 0.5 s).
const b2Spacing = failoverG + time.Second

// b2Trial asks the leader to step down once; it returns the handover
// without and with the leader-deposed hook's run time, in ms.
func b2Trial(ctx context.Context, a *deploy.App) (handover, raw float64, err error) {
	settled, err := a.Settle(ctx, settleTimeout)
	if err != nil {
		return 0, 0, err
	}
	// A unit that resigned holds off claiming again for a claim duration
	// (G + 0.5 s); space the trials so no unit is still holding off, as
	// operators' revokes are, and both others race for the lease.
	if err := sleep(ctx, b2Spacing); err != nil {
		return 0, 0, err
	}
	old := settled.Leader
	t0 := journal.Now()
	if err := a.Cluster.Admin.RequestStepDown(ctx, a.Name); err != nil {
		return 0, 0, fmt.Errorf("cannot request step-down: %w", err)
	}
	wait := 3*failoverG + 30*time.Second
	elected, err := journal.WaitFor(ctx, a.Journal, wait, func(r journal.Run) bool {
		return r.Hook == "leader-elected" && r.Unit != old && r.Start > t0
	})
	if err != nil {
		return 0, 0, err
	}
	deposed, err := journal.WaitFor(ctx, a.Journal, wait, func(r journal.Run) bool {
		return r.Hook == "leader-deposed" && r.Unit == old && r.Start > t0 && r.End != 0
	})
	if err != nil {
		return 0, 0, err
	}
	raw = ms(elected.Start - t0)
	return raw - ms(deposed.End-deposed.Start), raw, nil
}
