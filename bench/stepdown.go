package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/journal"
	"github.com/uniter-dev/uniter/bench/report"
)

// runStepDown (B2) measures a handover by step-down (what `uniter leadership revoke
// APP` asks): from the request to the start of the successor's
// leader-elected hook, minus the run time of the old leader's
// leader-deposed hook (start to end in the journal), which the handover
// must wait for by design.
func runStepDown(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	a, closeAll, err := leaderApp(ctx, s, env, "handover", failoverG)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	n := s.trials(5, 20)
	var handover, raw []float64
	for i := range n {
		h, r, err := stepDownTrial(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		s.logf("B2 trial %d/%d: handover %.1f ms (%.1f ms with leader-deposed)", i+1, n, h, r)
		handover, raw = append(handover, h), append(raw, r)
	}
	return stepDownRows(handover, raw), nil
}

// stepDownRows are B2's rows: each trial's handover without and with the
// leader-deposed hook's run time, in ms.
func stepDownRows(handover, raw []float64) []report.Row {
	return []report.Row{
		newRow("handover", "ms", handover).WithPercentiles(handover).
			WithFacts(stepDownFacts{Units: leaderAppUnits, GuaranteeS: failoverG.Seconds(), SpacingS: stepDownSpacing.Seconds()}),
		newRow("handover_with_deposed", "ms", raw).WithPercentiles(raw),
	}
}

// stepDownFacts are B2's setup: the guarantee G, and the least time
// between two trials.
type stepDownFacts struct {
	Units      int     `json:"units"`
	GuaranteeS float64 `json:"g_s"`
	SpacingS   float64 `json:"spacing_s"`
}

// stepDownSpacing is the least time between a resignation and the next trial:
// longer than the hold-off of a unit that resigned (a claim, G + 0.5 s).
const stepDownSpacing = failoverG + time.Second

// stepDownTrial asks the leader to step down once; it returns the handover
// without and with the leader-deposed hook's run time, in ms.
func stepDownTrial(ctx context.Context, a *deploy.App) (handover, raw float64, err error) {
	settled, err := a.Settle(ctx, settleTimeout)
	if err != nil {
		return 0, 0, err
	}
	// A unit that resigned holds off claiming again for a claim duration
	// (G + 0.5 s); space the trials so no unit is still holding off, as
	// operators' revokes are, and both others race for the lease.
	if err := sleep(ctx, stepDownSpacing); err != nil {
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
