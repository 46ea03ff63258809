// Package agent is the composition root of one unit agent and its resolver
// loop: it reads the committed local state, watches the remote state, and
// runs the operation the resolver picks, one at a time, until it is stopped
// or the unit is removed.
package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// RemoteState is the source of remote snapshots.
type RemoteState interface {
	// Snapshot returns the latest remote state.
	Snapshot() remotestate.Snapshot
	// Changes receives a value once the first snapshot is complete and
	// whenever it may have changed since; bursts coalesce into one receive.
	Changes() <-chan struct{}
}

// Leadership is what the loop needs of the leadership tracker.
type Leadership interface {
	// Resign releases the lease for term if this unit still holds it.
	Resign(ctx context.Context, term uint64) error
	// Holds reports, fresh, whether the unit still holds term with some
	// of its guarantee left.
	Holds(ctx context.Context, term uint64) bool
}

// ErrTerminated is returned by Loop when the unit was removed.
var ErrTerminated = errors.New("agent: unit removed")

// LoopConfig holds what the resolver loop needs.
type LoopConfig struct {
	Executor *operation.Executor
	Remote   RemoteState
	// Leadership, if set, is told to resign after leader-deposed commits.
	Leadership Leadership
	// Status, if set, is told the agent's status on every change.
	Status func(status, message string)
	// NewHook makes the operation that runs a hook.
	NewHook func(info operation.HookInfo) operation.Operation
	// Operations, if set, runs the unit's actions and execs; without it
	// the queue is left alone.
	Operations Operations
	Clock      clock.Clock
	Logger     zerolog.Logger
	// UpdateStatusInterval is how often update-status runs (default 5m).
	UpdateStatusInterval time.Duration
	// RetryInitial and RetryMax bound the error-state backoff (5s, 5m).
	RetryInitial, RetryMax time.Duration
	// StopTimeout is how long a running hook may go on after the loop's
	// context ends before it is killed (default 30s).
	StopTimeout time.Duration
	// EnterScope, if set, puts the unit in the scope of a relation
	// (agent/relations.go).
	EnterScope func(ctx context.Context, relation int) error
}

func (c *LoopConfig) validate() error {
	if c.Executor == nil || c.Remote == nil || c.NewHook == nil || c.Clock == nil {
		return errors.New("cannot start resolver loop: executor, remote state, hook factory and clock are required")
	}
	c.UpdateStatusInterval = orDefault(c.UpdateStatusInterval, 5*time.Minute)
	c.RetryInitial = orDefault(c.RetryInitial, 5*time.Second)
	c.RetryMax = orDefault(c.RetryMax, 5*time.Minute)
	c.StopTimeout = orDefault(c.StopTimeout, 30*time.Second)
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Loop runs the resolver loop until ctx ends (returning nil once the
// running operation has finished or been killed at StopTimeout), the unit is
// removed (ErrTerminated), or an operation fails in a way that is not a hook
// failure (an unwritable state file, say).
func Loop(ctx context.Context, cfg LoopConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.Status == nil {
		cfg.Status = func(string, string) {}
	}
	l := &loop{cfg: cfg, log: cfg.Logger}
	return l.run(ctx)
}

type loop struct {
	cfg    LoopConfig
	log    zerolog.Logger
	timers Timers
	gained uint64      // the tracker's gained count at the last leadership hook
	retry  clock.Timer // armed while in error state
	status clock.Timer // update-status
	ops    opsState    // the operations this loop ended or holds back (loop_ops.go)
}

func (l *loop) run(ctx context.Context) error {
	opCtx, cancelOps := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelOps(nil)
	stopWatch := l.killOpsAfterStop(ctx, cancelOps)
	defer stopWatch()

	l.status = l.cfg.Clock.NewTimer(l.cfg.UpdateStatusInterval)
	defer l.status.Stop()
	if st := l.cfg.Executor.State(); st.Error != nil {
		l.armRetry(st.Error.Attempts)
	}
	defer l.stopRetry()
	defer l.ops.release()
	// Nothing is decided before the first complete remote snapshot: a
	// zero snapshot would say "not leader" and depose a leader that is
	// merely restarting.
	select {
	case <-l.cfg.Remote.Changes():
	case <-ctx.Done():
		return nil
	}
	for ctx.Err() == nil {
		local, remote := l.cfg.Executor.State(), l.visible(l.cfg.Remote.Snapshot())
		d := Next(local, remote, l.timers)
		l.warnFlaps(local, remote, d)
		done, err := l.act(opCtx, d)
		if err != nil || done {
			return err
		}
		// After a Release, the snapshot changes once the tracker has
		// let go (or its guarantee has run out, if the controller could
		// not be reached): wait for it rather than release again. The
		// same after an EnterScope, until the watch shows the scope.
		if d.Action == Idle || d.Action == WaitRetry || d.Action == Release || d.Action == EnterScope {
			l.report(d)
			l.wait(ctx)
		}
	}
	return nil
}

// killOpsAfterStop cancels running operations StopTimeout after ctx ends.
func (l *loop) killOpsAfterStop(ctx context.Context, cancel context.CancelCauseFunc) func() {
	quit := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-quit:
			return
		}
		select {
		case <-l.cfg.Clock.After(l.cfg.StopTimeout):
			cancel(errors.New("agent stopping: hook deadline passed"))
		case <-quit:
		}
	}()
	return func() { close(quit) }
}

// act carries out d. done is true when the loop must end.
func (l *loop) act(ctx context.Context, d Decision) (done bool, err error) {
	x := l.cfg.Executor
	switch d.Action {
	case RunHook:
		d = l.deposeIfLost(ctx, d)
		if d.Resolved != 0 {
			if err := l.markResolved(d.Resolved, nil); err != nil {
				return true, err
			}
		}
		return false, l.runHook(ctx, d)
	case EnterError:
		st := x.State()
		st.Error = &operation.HookError{Hook: d.Hook.Kind, Info: d.Hook, Message: fmt.Sprintf("hook failed: %q", d.Hook.Kind),
			Since: l.cfg.Clock.Now(), Attempts: 1}
		l.log.Warn().Str("hook", string(d.Hook.Kind)).Msg("hook interrupted by restart: treating as failed")
		l.armRetry(1)
		return false, x.SetState(st)
	case ResolveNoRetry:
		l.log.Info().Str("hook", string(d.Hook.Kind)).Msg("hook resolved without retry")
		l.stopRetry()
		if err := l.markResolved(d.Resolved, &d.Hook); err != nil {
			return false, err
		}
		if d.Hook.Kind == hooks.LeaderDeposed {
			l.resign(ctx, d.Hook.Term) // in case it could not be released when the hook failed
		}
		return false, nil
	case AckResolved:
		return false, l.markResolved(d.Resolved, nil)
	case Release:
		l.log.Info().Uint64("term", d.Term).Msg("releasing lease: no committed leadership to depose")
		if l.cfg.Leadership != nil {
			if err := l.cfg.Leadership.Resign(ctx, d.Term); err != nil {
				l.log.Warn().Err(err).Uint64("term", d.Term).Msg("cannot release lease")
			}
		}
		return false, nil
	case EnterScope:
		l.enterScope(ctx, d.Relation)
		return false, nil
	case Terminate:
		return true, ErrTerminated
	case RunOperation:
		return false, l.runOperation(ctx, d)
	case AbortOperation:
		return false, l.abortOperation(ctx, d)
	}
	return false, nil
}

func (l *loop) runHook(ctx context.Context, d Decision) error {
	if d.Hook.Kind == hooks.UpdateStatus {
		l.timers.UpdateStatusDue = false
		l.status.Reset(l.cfg.UpdateStatusInterval)
	}
	l.timers.RetryDue = false
	l.cfg.Status(StatusExecuting, fmt.Sprintf("running %s hook", d.Hook.Kind))
	err := l.cfg.Executor.Run(ctx, l.cfg.NewHook(d.Hook))
	if d.Hook.Kind == hooks.LeaderDeposed && (err == nil || errors.Is(err, operation.ErrHookFailed)) {
		// leader-deposed has run, even if it failed: the unit gives the
		// lease up now, so that a successor need not wait for it to
		// expire. A failed leader-deposed is then retried on the backoff,
		// with is-leader false throughout (docs/leadership.md).
		l.resign(ctx, d.Hook.Term)
	}
	if errors.Is(err, operation.ErrHookFailed) {
		l.armRetry(l.cfg.Executor.State().Error.Attempts)
		return nil
	}
	if err == nil {
		// A leader-deposed run in error state leaves the other hook's
		// error, which still needs its retry timer.
		if st := l.cfg.Executor.State(); st.Error == nil {
			l.stopRetry()
		} else if l.retry == nil {
			l.armRetry(st.Error.Attempts)
		}
	}
	if err != nil && ctx.Err() != nil {
		return nil // stopping: the pending state makes a restart retry it
	}
	return err
}

// resign hands over a lease the unit still holds for term (a step-down or
// a removal); a lease already lost is not held, and nothing happens.
func (l *loop) resign(ctx context.Context, term uint64) {
	if l.cfg.Leadership == nil {
		return
	}
	if err := l.cfg.Leadership.Resign(ctx, term); err != nil {
		l.log.Warn().Err(err).Uint64("term", term).Msg("cannot release lease after leader-deposed")
	}
}

// report tells the controller the agent is idle or in error state.
func (l *loop) report(d Decision) {
	if st := l.cfg.Executor.State(); st.Error != nil {
		l.cfg.Status(StatusError, st.Error.Message)
		return
	}
	l.cfg.Status(StatusIdle, "")
}

// warnFlaps logs leadership changes the hooks will not show one by one:
// lost-and-regained (deposed then elected) and gained-and-lost (no hook).
func (l *loop) warnFlaps(local operation.State, remote remotestate.Snapshot, d Decision) {
	switch {
	case d.Action == RunHook && d.Hook.Kind == hooks.LeaderDeposed && remote.Leader && remote.Term != local.LeaderTerm:
		l.log.Warn().Uint64("term", local.LeaderTerm).Uint64("new_term", remote.Term).Str("flap", "lost-and-regained").
			Msg("leadership flapped")
	case d.Action == RunHook && d.Hook.Kind == hooks.LeaderElected:
		l.gained = remote.Gained
	case remote.Gained > l.gained && !remote.Leader && !local.Leader:
		l.log.Warn().Uint64("term", remote.Term).Uint64("terms_missed", remote.Gained-l.gained).Str("flap", "gained-and-lost").
			Msg("leadership flapped")
		l.gained = remote.Gained
	}
}

// deposeIfLost replaces d with leader-deposed when the committed leader no
// longer holds its lease, though the snapshot has not caught up yet (an
// agent resumed after being frozen past its lease, say): leader-deposed
// runs before any other hook.
func (l *loop) deposeIfLost(ctx context.Context, d Decision) Decision {
	local := l.cfg.Executor.State()
	recovering := local.Op != nil && local.Error == nil // a done op commits; a queued one runs as chosen
	if l.cfg.Leadership == nil || !local.Leader || d.Hook.Kind == hooks.LeaderDeposed || recovering {
		return d
	}
	if l.cfg.Leadership.Holds(ctx, local.LeaderTerm) {
		return d
	}
	l.log.Warn().Uint64("term", local.LeaderTerm).Str("instead_of", string(d.Hook.Kind)).
		Msg("lease no longer guaranteed: running leader-deposed first")
	deposed := d
	deposed.Resolved = 0
	deposed.Hook.Kind, deposed.Hook.Term = hooks.LeaderDeposed, local.LeaderTerm
	deposed.Hook.Relation = operation.RelationHookInfo{} // not a relation hook
	return deposed
}

// markResolved records resolved request id as seen; with hook set, it also
// commits that failed hook as if it had succeeded.
func (l *loop) markResolved(id uint64, hook *operation.HookInfo) error {
	st := l.cfg.Executor.State()
	st.ResolvedSeen = id
	if hook != nil {
		operation.Apply(&st, *hook)
	}
	return l.cfg.Executor.SetState(st)
}

func (l *loop) armRetry(attempts int) {
	l.stopRetry()
	delay := Backoff(attempts, l.cfg.RetryInitial, l.cfg.RetryMax)
	l.log.Info().Int("attempts", attempts).Dur("retry_in", delay).Msg("waiting to retry failed hook")
	l.retry = l.cfg.Clock.NewTimer(delay)
}

func (l *loop) stopRetry() {
	if l.retry != nil {
		l.retry.Stop()
		l.retry = nil
	}
	l.timers.RetryDue = false
}

// wait blocks until the remote state changes, a timer fires or ctx ends.
func (l *loop) wait(ctx context.Context) {
	var retryC <-chan time.Time
	if l.retry != nil {
		retryC = l.retry.Chan()
	}
	var opsC <-chan time.Time
	if l.ops.backoff != nil {
		opsC = l.ops.backoff.Chan()
	}
	select {
	case <-opsC:
		l.ops.release()
	case <-ctx.Done():
	case <-l.cfg.Remote.Changes():
	case <-retryC:
		l.retry = nil
		l.timers.RetryDue = true
	case <-l.status.Chan():
		l.timers.UpdateStatusDue = true
	}
}
