package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/report"
	"github.com/uniter-dev/uniter/bench/stats"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/logging"
	"github.com/uniter-dev/uniter/internal/machinelock"
	"github.com/uniter-dev/uniter/operation"
)

// executorHooks is the number of hooks per B4 trial.
const executorHooks = 500

// executorScript is the trivial hook both sides run.
const executorScript = "#!/bin/sh\nexit 0\n"

// runExecutor (B4) measures the executor's overhead in-process: executorHooks trivial
// update-status hooks through operation.Executor (a real StateFile written
// and fsynced at every step, a real machine lock, hooks.Runner, a debug
// log file as the agent keeps) against exec'ing the same script directly
// executorHooks times. The two alternate hook by hook, so both see the same
// noise.
func runExecutor(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	x, err := newHookExecutor(env.Dir)
	if err != nil {
		return nil, err
	}
	defer x.close()
	n := s.trials(5, 10)
	var added, rate, direct, perHook []float64
	for i := range n {
		exe, dir, err := x.trial(ctx)
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		e, d := stats.Summarize(exe), stats.Summarize(dir)
		added = append(added, e.Mean-d.Mean)
		rate = append(rate, 1000/e.Mean)
		direct = append(direct, 1000/d.Mean)
		perHook = append(perHook, exe...)
		s.logf("B4 trial %d/%d: %.2f ms per hook through the executor, %.2f ms direct", i+1, n, e.Mean, d.Mean)
	}
	return executorRows(added, rate, direct, perHook), nil
}

// executorRows are B4's rows: per trial, the added cost per hook in ms and
// the hooks/s through the executor and direct; and every hook's latency.
func executorRows(added, rate, direct, perHook []float64) []report.Row {
	return []report.Row{
		newRow("added_per_hook", "ms", added).WithFacts(executorFacts{Hooks: executorHooks}),
		newRow("hooks_per_s", "hooks/s", rate).WithBaseline("direct exec", stats.Summarize(direct).Median),
		newRow("hook_latency", "ms", perHook).WithPercentiles(perHook),
	}
}

// executorFacts are B4's setup.
type executorFacts struct {
	// Hooks is how many hooks each trial runs each way.
	Hooks int `json:"hooks"`
}

// hookExecutor is an executor over a real state file and machine lock.
type hookExecutor struct {
	charmDir string
	x        *operation.Executor
	deps     operation.HookDeps
	params   hooks.Params
	logFile  *logging.RotatingFile
}

func newHookExecutor(dir string) (*hookExecutor, error) {
	b := &hookExecutor{charmDir: filepath.Join(dir, "charm")}
	if err := os.MkdirAll(filepath.Join(b.charmDir, "hooks"), 0o755); err != nil {
		return nil, fmt.Errorf("cannot make the B4 charm: %w", err)
	}
	if err := os.WriteFile(filepath.Join(b.charmDir, "hooks", string(hooks.UpdateStatus)), []byte(executorScript), 0o755); err != nil {
		return nil, fmt.Errorf("cannot make the B4 charm: %w", err)
	}
	var err error
	if b.logFile, err = logging.OpenRotating(filepath.Join(dir, "log", "agent.log"), 10<<20, 3); err != nil {
		return nil, err
	}
	log := logging.New(logging.Options{File: b.logFile, Level: zerolog.DebugLevel})
	lock, err := machinelock.New(machinelock.Config{Path: filepath.Join(dir, "machine-lock"), Unit: "bench/0", Clock: clock.Real})
	if err != nil {
		return nil, err
	}
	state := operation.State{Installed: true, Started: true}
	b.x, err = operation.NewExecutor(operation.ExecutorConfig{State: state, Writer: operation.NewStateFile(filepath.Join(dir, "state", "uniter.yaml")),
		Locker: lock, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return nil, err
	}
	runner, err := hooks.NewRunner(hooks.Config{Logger: log, Clock: clock.Real})
	if err != nil {
		return nil, err
	}
	b.params = hooks.Params{Kind: hooks.UpdateStatus, Unit: "bench/0", CharmDir: b.charmDir, ContextID: "bench-0"}
	b.deps = operation.HookDeps{Runner: runner, Contexts: fixedContexts{b.params}, Clock: clock.Real, Logger: log}
	return b, nil
}

func (b *hookExecutor) close() { b.logFile.Close() }

// trial runs executorHooks hooks each way, alternating; it returns per-hook ms.
func (b *hookExecutor) trial(ctx context.Context) (exe, direct []float64, err error) {
	script := filepath.Join(b.charmDir, "hooks", string(hooks.UpdateStatus))
	env := hooks.Environ(b.params, nil)
	for range executorHooks {
		start := time.Now()
		if err := b.x.Run(ctx, operation.NewRunHook(operation.HookInfo{Kind: hooks.UpdateStatus}, b.deps)); err != nil {
			return nil, nil, fmt.Errorf("cannot run hook through the executor: %w", err)
		}
		exe = append(exe, float64(time.Since(start))/1e6)
		start = time.Now()
		cmd := exec.CommandContext(ctx, script)
		cmd.Env, cmd.Dir = env, b.charmDir
		if err := cmd.Run(); err != nil {
			return nil, nil, fmt.Errorf("cannot exec hook: %w", err)
		}
		direct = append(direct, float64(time.Since(start))/1e6)
	}
	return exe, direct, nil
}

// fixedContexts gives every hook the same parameters: B4 measures the
// executor, not the hook-tool server.
type fixedContexts struct{ p hooks.Params }

func (c fixedContexts) NewContext(context.Context, operation.HookInfo) (hooks.Params, func(), error) {
	return c.p, func() {}, nil
}
