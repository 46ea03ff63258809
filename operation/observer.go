package operation

import (
	"errors"
	"time"

	"github.com/uniter-dev/uniter/hooks"
)

// HookOutcome is how one hook run ended, as a HookObserver is told.
type HookOutcome string

// Hook outcomes.
const (
	// OutcomeOK: the hook exited 0.
	OutcomeOK HookOutcome = "ok"
	// OutcomeError: the hook exited non-zero, or could not be started; the
	// unit is in error state.
	OutcomeError HookOutcome = "error"
	// OutcomeTimeout: the hook ran past the hook timeout and was killed.
	OutcomeTimeout HookOutcome = "timeout"
	// OutcomeKilled: the agent stopped and killed the hook at its stop
	// timeout (a restart runs it again).
	OutcomeKilled HookOutcome = "killed"
	// OutcomeMissing: the charm has no handler for it; nothing ran.
	OutcomeMissing HookOutcome = "missing"
)

// HookObserver is told of every hook run. It must return at once: it is
// called on the operation's goroutine.
type HookObserver interface {
	HookRan(kind hooks.Kind, outcome HookOutcome, took time.Duration)
}

// Result is how the executor ended one operation, as an Observer is told.
type Result string

// Operation results.
const (
	// Committed: the operation ran (or was already done) and its result is
	// recorded.
	Committed Result = "committed"
	// Skipped: Prepare dropped it (ErrSkip); nothing ran.
	Skipped Result = "skipped"
	// Failed: a phase failed (a failed hook included); the recorded state
	// says what a restart or retry does.
	Failed Result = "failed"
)

// Observer is told how the executor ended each operation. It must return
// at once: it is called on the executor's goroutine.
type Observer interface {
	OperationEnded(result Result)
}

// hookOutcome classifies the error of a hook run; stopped is whether the
// agent's context had ended.
func hookOutcome(err error, stopped bool) HookOutcome {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, hooks.ErrMissing):
		return OutcomeMissing
	case stopped:
		return OutcomeKilled
	case errors.Is(err, hooks.ErrTimeout):
		return OutcomeTimeout
	}
	return OutcomeError
}
