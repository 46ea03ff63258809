package operation_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/operation"
)

// observed records what an observer is told, one string per call.
type observed struct{ calls []string }

func (o *observed) HookRan(kind hooks.Kind, outcome operation.HookOutcome, took time.Duration) {
	o.calls = append(o.calls, fmt.Sprintf("hook %s %s %v", kind, outcome, took))
}

func (o *observed) OperationEnded(r operation.Result) {
	o.calls = append(o.calls, "op "+string(r))
}

// slowRunner takes took on clk, then returns err (cancelling first when
// cancel is set, as an agent stopping would).
type slowRunner struct {
	clk    *clocktest.Clock
	took   time.Duration
	err    error
	cancel context.CancelFunc
}

func (r *slowRunner) Run(context.Context, hooks.Params) error {
	r.clk.Advance(r.took)
	if r.cancel != nil {
		r.cancel()
	}
	return r.err
}

// TestObserversSeeEveryEnding: the hook observer is told each run's
// outcome and its duration on the hook's clock, and the executor's
// observer how the operation ended; a skipped hook runs nothing.
func TestObserversSeeEveryEnding(t *testing.T) {
	exit1 := &hooks.ExitError{Kind: hooks.Install, Code: 1}
	timeout := fmt.Errorf("hook killed: %w", hooks.ErrTimeout)
	for _, tc := range []struct {
		name    string
		err     error
		stop    bool // the agent stops while the hook runs
		skip    bool // Prepare skips the hook
		writeAt int  // fail this write
		want    []string
	}{
		{name: "ok", want: []string{"hook install ok 2s", "op committed"}},
		{name: "exit 1", err: exit1, want: []string{"hook install error 2s", "op failed"}},
		{name: "timeout", err: timeout, want: []string{"hook install timeout 2s", "op failed"}},
		{name: "missing", err: hooks.ErrMissing, want: []string{"hook install missing 2s", "op committed"}},
		{name: "killed by a stop", err: context.Canceled, stop: true, want: []string{"hook install killed 2s", "op failed"}},
		{name: "skipped", skip: true, want: []string{"op skipped"}},
		{name: "state not written", writeAt: 1, want: []string{"op failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktest.New(time.Unix(0, 0))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			r := &slowRunner{clk: clk, took: 2 * time.Second, err: tc.err}
			if tc.stop {
				r.cancel = cancel
			}
			obs := &observed{}
			x, err := operation.NewExecutor(operation.ExecutorConfig{Writer: &recorder{failAt: tc.writeAt}, Locker: &nopLocker{},
				Logger: zerolog.New(zerolog.NewTestWriter(t)), Observer: obs})
			if err != nil {
				t.Fatal(err)
			}
			deps := operation.HookDeps{Runner: r, Contexts: &fakeContexts{}, Clock: clk, Logger: zerolog.New(zerolog.NewTestWriter(t)),
				Observer: obs}
			if tc.skip {
				deps.Check = func(context.Context, operation.HookInfo) error { return operation.ErrSkip }
			}
			err = x.Run(ctx, operation.NewRunHook(operation.HookInfo{Kind: hooks.Install}, deps))
			if failed := obs.calls[len(obs.calls)-1] == "op failed"; failed != (err != nil) {
				t.Errorf("Run = %v, but the observer was told %q", err, obs.calls[len(obs.calls)-1])
			}
			if diff := cmp.Diff(tc.want, obs.calls); diff != "" {
				t.Errorf("observed (-want +got):\n%s", diff)
			}
		})
	}
}

// TestObserverIsOptional: a nil observer changes nothing.
func TestObserverIsOptional(t *testing.T) {
	x := newExecutor(t, operation.State{}, &recorder{}, &nopLocker{})
	if err := x.Run(t.Context(), hookOp(t, hooks.Install, &fakeRunner{err: errors.New("boom")})); !errors.Is(err, operation.ErrHookFailed) {
		t.Fatalf("Run = %v, want a failed hook", err)
	}
}
