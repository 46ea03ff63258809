package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/proc"
	"github.com/uniter-dev/uniter/bench/report"
)

// b8Parts is how many parts B8's window is cut into for its CPU figures.
const b8Parts = 5

// runB8 measures the footprint of an idle agent (the journal charm's
// leader, default G = 30 s, so it renews every 15.25 s and reports its
// status every 20 s) and of its idle 1-node controller: RSS sampled every
// second over the window, CPU over each fifth of it.
func runB8(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	a, closeAll, err := startApp(ctx, env, "idle", s.charm("journal"), 1, 0, true)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	if err := sleep(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	window := pick(s, 10*time.Second, 30*time.Second)
	agentPID, ctrlPID := a.Units[0].Agent().PID(), a.Cluster.Nodes[0].PID()
	pids := []int{agentPID, ctrlPID}
	sampler := proc.StartSampler(pids, time.Second)
	if err := sleep(ctx, window); err != nil {
		sampler.Stop(pids)
		return nil, err
	}
	sampler.Stop(pids)
	agentSamples, ctrlSamples := sampler.Samples(agentPID), sampler.Samples(ctrlPID)
	if len(agentSamples) < 2 || len(ctrlSamples) < 2 {
		return nil, fmt.Errorf("too few samples of the agent (%d) or the controller (%d)", len(agentSamples), len(ctrlSamples))
	}
	ag, ct := proc.Summarize(agentSamples), proc.Summarize(ctrlSamples)
	last := agentSamples[len(agentSamples)-1]
	note := fmt.Sprintf("Sampled every 1 s over %v; CPU per fifth of the window (%.0f%% over all of it).", window, ag.CPUPercent)
	return []report.Row{
		report.NewRow("B8", "footprint", "idle agent RSS", "MiB", ag.RSSMB).
			WithTarget(report.Target{Stat: "max", Op: "<=", Value: 20, Text: "≤ 20 MB"}).
			WithNote("Peak (VmHWM) %.1f MiB, %d threads, %d open files.", ag.PeakMB, last.Threads, last.FDs),
		report.NewRow("B8", "footprint", "idle agent CPU", "% of a core", cpuParts(agentSamples)).
			WithTarget(report.Target{Stat: "median", Op: "<=", Value: 0.5, Text: "~0 % (≤ 0.5 %)"}).WithNote("%s", note),
		report.NewRow("B8", "footprint", "idle 1-node controller RSS", "MiB", ct.RSSMB).
			WithNote("Peak (VmHWM) %.1f MiB.", ct.PeakMB),
		report.NewRow("B8", "footprint", "idle 1-node controller CPU", "% of a core", cpuParts(ctrlSamples)).
			WithNote("%.1f%% over the whole window (the raft leader's time advancer writes one entry per tick).", ct.CPUPercent),
	}, nil
}

// cpuParts is the CPU % over each of b8Parts consecutive parts of samples.
func cpuParts(samples []proc.Sample) []float64 {
	var out []float64
	n := len(samples) - 1
	for i := range b8Parts {
		a, b := i*n/b8Parts, (i+1)*n/b8Parts
		if b > a {
			out = append(out, proc.CPUPercent(samples[a], samples[b]))
		}
	}
	return out
}
