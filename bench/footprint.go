package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/proc"
	"github.com/uniter-dev/uniter/bench/report"
)

// footprintParts is how many parts B8's window is cut into for its CPU figures.
const footprintParts = 5

// runFootprint (B8) measures the footprint of an idle agent (the journal charm's
// leader, default G = 30 s, so it renews every 15.25 s and reports its
// status every 20 s) and of its idle 1-node controller: RSS sampled every
// second over the window, CPU over each fifth of it.
func runFootprint(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
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
	sampler := proc.StartSampler(pids, footprintSample)
	if err := sleep(ctx, window); err != nil {
		sampler.Stop(pids)
		return nil, err
	}
	sampler.Stop(pids)
	agentSamples, ctrlSamples := sampler.Samples(agentPID), sampler.Samples(ctrlPID)
	if len(agentSamples) < 2 || len(ctrlSamples) < 2 {
		return nil, fmt.Errorf("too few samples of the agent (%d) or the controller (%d)", len(agentSamples), len(ctrlSamples))
	}
	return footprintRows(window, agentSamples, ctrlSamples), nil
}

// footprintFacts are a process's figures beside its RSS or CPU row: its
// peak RSS (VmHWM), threads and open files at the end, and its CPU over
// the whole window, sampled every SampleS.
type footprintFacts struct {
	WindowS   float64 `json:"window_s"`
	SampleS   float64 `json:"sample_s"`
	Parts     int     `json:"parts"`
	PeakMiB   float64 `json:"peak_mib"`
	Threads   int     `json:"threads"`
	OpenFiles int     `json:"open_files"`
	CPU       float64 `json:"cpu"`
}

// footprintRows are B8's rows: RSS at every sample and CPU per part of
// the window, of the agent and of the controller.
func footprintRows(window time.Duration, agentSamples, ctrlSamples []proc.Sample) []report.Row {
	facts := func(samples []proc.Sample) footprintFacts {
		use, last := proc.Summarize(samples), samples[len(samples)-1]
		return footprintFacts{WindowS: window.Seconds(), SampleS: footprintSample.Seconds(), Parts: footprintParts,
			PeakMiB: use.PeakMB, Threads: last.Threads, OpenFiles: last.FDs, CPU: use.CPUPercent}
	}
	ag, ct := facts(agentSamples), facts(ctrlSamples)
	return []report.Row{
		newRow("agent_rss", "MiB", proc.Summarize(agentSamples).RSSMB).WithFacts(ag),
		newRow("agent_cpu", "% of a core", cpuParts(agentSamples)).WithFacts(ag),
		newRow("controller_rss", "MiB", proc.Summarize(ctrlSamples).RSSMB).WithFacts(ct),
		newRow("controller_cpu", "% of a core", cpuParts(ctrlSamples)).WithFacts(ct),
	}
}

// footprintSample is how often B8 samples the processes.
const footprintSample = time.Second

// cpuParts is the CPU % over each of footprintParts consecutive parts of samples.
func cpuParts(samples []proc.Sample) []float64 {
	var out []float64
	n := len(samples) - 1
	for i := range footprintParts {
		a, b := i*n/footprintParts, (i+1)*n/footprintParts
		if b > a {
			out = append(out, proc.CPUPercent(samples[a], samples[b]))
		}
	}
	return out
}
