package operation

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock"
)

// ErrHookFailed is returned when a hook ran and failed; the unit is now in
// error state.
var ErrHookFailed = errors.New("operation: hook failed")

// HookRunner runs one hook process. *hooks.Runner is the production one.
type HookRunner interface {
	Run(ctx context.Context, p hooks.Params) error
}

// ContextFactory prepares the context a hook runs in: its environment
// parameters (context id, socket, term) and whatever the hook tools serve.
// The returned done func is called when the hook has ended.
type ContextFactory interface {
	NewContext(ctx context.Context, info HookInfo) (p hooks.Params, done func(), err error)
}

// Flusher is a ContextFactory that has work to finish once a hook exited
// 0 and before it is recorded as done: the agent commits the hook's
// relation writes. An error fails the hook (it is retried like any failed
// hook); a failed hook is never flushed, so its writes are discarded.
// Flush returns info as the hook is to be recorded: with the relation
// databag version the hook read, when that is newer than the one it was
// chosen for (so that a -changed is not run again for data it has seen).
type Flusher interface {
	Flush(ctx context.Context, info HookInfo, p hooks.Params) (HookInfo, error)
}

// HookDeps are what a RunHook operation needs.
type HookDeps struct {
	Runner   HookRunner
	Contexts ContextFactory
	Clock    clock.Clock
	Logger   zerolog.Logger
	// Check, when set, is called in Prepare; an error there skips the hook
	// (ErrSkip) or fails the operation. leader-elected uses it to re-check
	// the lease.
	Check func(ctx context.Context, info HookInfo) error
	// Observer, if set, is told how each run of the hook ended and how
	// long it took.
	Observer HookObserver
}

// NewRunHook returns the operation that runs the hook info describes.
func NewRunHook(info HookInfo, deps HookDeps) Operation {
	return &runHook{info: info, deps: deps}
}

type runHook struct {
	info HookInfo
	deps HookDeps
}

func (r *runHook) String() string { return fmt.Sprintf("run %s hook", r.info.Kind) }

func (r *runHook) Prepare(ctx context.Context, st State) (*State, error) {
	if err := r.info.Kind.Validate(); err != nil {
		return nil, fmt.Errorf("cannot prepare hook: %w", err)
	}
	if r.deps.Check != nil {
		if err := r.deps.Check(ctx, r.info); errors.Is(err, ErrSkip) {
			// Nothing to do any more, including retrying this hook if it
			// had failed: the unit leaves error state.
			st.Op = nil
			if st.Error != nil && st.Error.Hook == r.info.Kind {
				st.Error = nil
			}
			return &st, err
		} else if err != nil {
			return nil, err
		}
	}
	st.Op = &Op{Kind: RunHook, Step: Pending, Hook: r.info}
	return &st, nil
}

func (r *runHook) Execute(ctx context.Context, st State) (*State, error) {
	log := r.deps.Logger.With().Str("hook", string(r.info.Kind)).Logger()
	params, done, err := r.deps.Contexts.NewContext(ctx, r.info)
	if err != nil {
		return nil, fmt.Errorf("cannot prepare context for hook %q: %w", r.info.Kind, err)
	}
	start := r.deps.Clock.Now()
	err = r.deps.Runner.Run(ctx, params)
	if f, ok := r.deps.Contexts.(Flusher); ok && (err == nil || errors.Is(err, hooks.ErrMissing)) {
		if info, ferr := f.Flush(ctx, r.info, params); ferr != nil {
			log.Error().Err(ferr).Msg("cannot commit hook's writes")
			err = ferr
		} else {
			r.info = info
		}
	}
	done()
	dur := r.deps.Clock.Now().Sub(start)
	if r.deps.Observer != nil {
		r.deps.Observer.HookRan(r.info.Kind, hookOutcome(err, ctx.Err() != nil), dur)
	}
	switch {
	case errors.Is(err, hooks.ErrMissing):
		log.Info().Msg("skipped hook (missing)")
	case err != nil && ctx.Err() != nil:
		// Stopped by the agent: the state stays pending, so a restart
		// treats the hook as failed and retries it.
		return nil, fmt.Errorf("cannot finish hook %q: %w", r.info.Kind, err)
	case err != nil:
		log.Error().Err(err).Dur("duration", dur).Int("exit_code", exitCode(err)).Msg("hook failed")
		st.Error = r.errorState(st.Error, err)
		return &st, fmt.Errorf("%w: %q: %w", ErrHookFailed, r.info.Kind, err)
	default:
		log.Info().Dur("duration", dur).Msg("ran hook")
	}
	st.Op = &Op{Kind: RunHook, Step: Done, Hook: r.info}
	return &st, nil
}

func (r *runHook) errorState(prev *HookError, err error) *HookError {
	e := &HookError{
		Hook:     r.info.Kind,
		Info:     r.info,
		Message:  fmt.Sprintf("hook failed: %q", r.info.Kind),
		Since:    r.deps.Clock.Now(),
		Attempts: 1,
	}
	if prev != nil && prev.Hook == r.info.Kind {
		e.Since, e.Attempts = prev.Since, prev.Attempts+1
	}
	return e
}

func (r *runHook) Commit(_ context.Context, st State) (*State, error) {
	Apply(&st, r.info)
	return &st, nil
}

// Apply records in st that the hook info describes has completed, and
// clears the operation, and the error state if it was this hook's (a
// leader-deposed run while another hook is in error leaves that error for
// its retry). It is idempotent.
func Apply(st *State, info HookInfo) {
	switch info.Kind {
	case hooks.Install:
		st.Installed = true
	case hooks.Start:
		st.Started = true
	case hooks.Stop:
		st.Stopped = true
	case hooks.Remove:
		st.Removed = true
	case hooks.ConfigChanged:
		st.ConfigVersion = info.ConfigVersion
	case hooks.LeaderElected:
		st.Leader, st.LeaderTerm = true, info.Term
	case hooks.LeaderDeposed:
		st.Leader = false
	case hooks.LeaderSettingsChanged:
		st.LeaderSettingsVersion = info.LeaderSettingsVersion
	default:
		applyRelation(st, info)
	}
	st.Op = nil
	if st.Error != nil && st.Error.Hook == info.Kind {
		st.Error = nil
	}
}

func exitCode(err error) int {
	var ee *hooks.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return -1
}
