package agent

import (
	"time"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// Action is what the resolver decides the agent should do next.
type Action int

// Actions, in the order of the resolver's rules.
const (
	// Idle: nothing to do until something changes.
	Idle Action = iota
	// RunHook: run (or resume) the hook in Decision.Hook.
	RunHook
	// EnterError: a hook was interrupted by a crash; record it as failed.
	EnterError
	// WaitRetry: in error state, waiting for the retry timer or resolved.
	WaitRetry
	// ResolveNoRetry: commit the failed hook as if it had succeeded.
	ResolveNoRetry
	// Terminate: the unit is removed; the agent exits.
	Terminate
	// AckResolved: a resolved request arrived while not in error state; it
	// is recorded as seen so that it cannot resolve a later failure.
	AckResolved
	// Release: give up the lease of term Decision.Term, which the unit
	// holds but must not keep (a step-down or a removal) and has no
	// committed leadership of to depose: no hook runs.
	Release
	// EnterScope: enter the scope of relation Decision.Relation, which the
	// charm knows of but the unit is not in (its -relation-created was
	// resolved without running, say).
	EnterScope
)

// Decision is the resolver's answer.
type Decision struct {
	Action Action
	Hook   operation.HookInfo
	// Resolved is the resolved request the decision acts on (0: none).
	Resolved uint64
	// Term is the lease term a Release gives up.
	Term uint64
	// Relation is the relation an EnterScope enters.
	Relation int
	// Operation is the action or exec a RunOperation or AbortOperation
	// is about (resolver_ops.go); a RunOperation's Hook holds the remote
	// versions it runs against.
	Operation remotestate.Operation
}

// Timers are the local, time-driven inputs of the resolver.
type Timers struct {
	// RetryDue is true once the error-state backoff has elapsed.
	RetryDue bool
	// UpdateStatusDue is true once the update-status interval has elapsed.
	UpdateStatusDue bool
}

// Next decides the next step from the committed local state and the latest
// remote snapshot (DESIGN.md §4.3). It is a pure function.
func Next(local operation.State, remote remotestate.Snapshot, timers Timers) Decision {
	if d, ok := recoverOperation(local); ok {
		return d
	}
	if d, ok := recoverOp(local); ok {
		return d
	}
	if d, ok := abortRunning(remote); ok {
		return d
	}
	if local.Leader && lostLeadership(local, remote) {
		// The safety hook runs even in error state; once it has failed
		// itself, it is retried on the error-state backoff like any
		// failed hook, and nothing else runs before it succeeds.
		if local.Error == nil || local.Error.Hook != hooks.LeaderDeposed {
			return runHook(hooks.LeaderDeposed, local.LeaderTerm, remote)
		}
		return inError(local, remote, timers)
	}
	if mustRelease(local, remote) {
		// Even in error state: a leader stuck on an uncommitted
		// leader-elected must not keep the lease from the other units.
		return Decision{Action: Release, Term: remote.Term}
	}
	if local.Error != nil {
		// Actions and execs run in error state (as in Juju), while the
		// failed hook waits for its retry, which they leave as it is.
		d := inError(local, remote, timers)
		if op, ok := runQueued(local, remote); ok && d.Action == WaitRetry {
			return op
		}
		return d
	}
	if remote.ResolvedID > local.ResolvedSeen {
		return Decision{Action: AckResolved, Resolved: remote.ResolvedID}
	}
	for _, rule := range lifecycle {
		if d, ok := rule(local, remote); ok {
			return d
		}
	}
	if d, ok := runQueued(local, remote); ok {
		return d
	}
	if remote.Life == remotestate.Dying {
		return Decision{Action: Terminate}
	}
	if timers.UpdateStatusDue {
		return runHook(hooks.UpdateStatus, remote.Term, remote)
	}
	return Decision{Action: Idle}
}

// recoverOp resumes an operation interrupted by a restart.
func recoverOp(local operation.State) (Decision, bool) {
	op := local.Op
	if op == nil {
		return Decision{}, false
	}
	switch {
	case op.Step == operation.Queued, op.Step == operation.Done:
		return Decision{Action: RunHook, Hook: op.Hook}, true
	case op.Step == operation.Pending && local.Error == nil:
		return Decision{Action: EnterError, Hook: op.Hook}, true
	}
	return Decision{}, false // pending with error state: handled by inError
}

// lostLeadership: the committed term is no longer this unit's to keep —
// lost, expired, revoked, regained as a new term, asked to step down, or
// the unit is being removed.
func lostLeadership(local operation.State, remote remotestate.Snapshot) bool {
	return !remote.Leader || remote.Term != local.LeaderTerm || remote.StepDown || remote.Life == remotestate.Dying
}

// mustRelease: the unit holds a lease it must give up (asked to step down,
// or being removed) but has no committed leadership of it, so there is no
// leader-deposed to run first. (A committed leader is handled by the
// leader-deposed rule before this one.)
func mustRelease(local operation.State, remote remotestate.Snapshot) bool {
	return remote.Leader && (remote.StepDown || remote.Life == remotestate.Dying) && !local.Leader
}

func inError(local operation.State, remote remotestate.Snapshot, timers Timers) Decision {
	failed := local.Error.Info
	if failed.Kind == "" {
		failed = operation.HookInfo{Kind: local.Error.Hook}
	}
	if local.Op != nil && local.Op.Hook.Kind == local.Error.Hook {
		failed = local.Op.Hook
	}
	if remote.ResolvedID > local.ResolvedSeen {
		if remote.ResolvedNoRetry {
			return Decision{Action: ResolveNoRetry, Hook: failed, Resolved: remote.ResolvedID}
		}
		return Decision{Action: RunHook, Hook: failed, Resolved: remote.ResolvedID}
	}
	if timers.RetryDue {
		return Decision{Action: RunHook, Hook: failed}
	}
	return Decision{Action: WaitRetry, Hook: failed}
}

// rule picks a hook, or not.
type rule func(operation.State, remotestate.Snapshot) (Decision, bool)

// hookRule is a rule for one hook of fixed kind, run against the remote
// state's term and versions.
func hookRule(f func(operation.State, remotestate.Snapshot) (hooks.Kind, bool)) rule {
	return func(l operation.State, r remotestate.Snapshot) (Decision, bool) {
		kind, ok := f(l, r)
		if !ok {
			return Decision{}, false
		}
		return runHook(kind, r.Term, r), true
	}
}

// lifecycle lists the hook rules in the order DESIGN.md §4.3 gives them,
// with the relation rules (resolver_relations.go) in their places: a new
// unit's -created after install, the other relation hooks after start
// (and, for a unit going away, before stop).
var lifecycle = []rule{
	hookRule(func(l operation.State, _ remotestate.Snapshot) (hooks.Kind, bool) {
		return hooks.Install, !l.Installed
	}),
	relationsCreatedRule,
	hookRule(func(l operation.State, r remotestate.Snapshot) (hooks.Kind, bool) {
		gained := r.Leader && !r.StepDown && (!l.Leader || l.LeaderTerm != r.Term)
		return hooks.LeaderElected, gained && r.Life == remotestate.Alive
	}),
	hookRule(func(l operation.State, r remotestate.Snapshot) (hooks.Kind, bool) {
		return hooks.ConfigChanged, r.ConfigVersion != l.ConfigVersion && r.Life == remotestate.Alive
	}),
	hookRule(func(l operation.State, r remotestate.Snapshot) (hooks.Kind, bool) {
		changed := !r.Leader && r.LeaderSettingsVersion != l.LeaderSettingsVersion
		return hooks.LeaderSettingsChanged, changed && r.Life == remotestate.Alive
	}),
	hookRule(func(l operation.State, r remotestate.Snapshot) (hooks.Kind, bool) {
		return hooks.Start, !l.Started && r.Life == remotestate.Alive
	}),
	relationsRule,
	hookRule(func(l operation.State, r remotestate.Snapshot) (hooks.Kind, bool) {
		return hooks.Stop, r.Life == remotestate.Dying && l.Started && !l.Stopped
	}),
	hookRule(func(l operation.State, r remotestate.Snapshot) (hooks.Kind, bool) {
		return hooks.Remove, r.Life == remotestate.Dying && !l.Removed
	}),
}

func runHook(kind hooks.Kind, term uint64, r remotestate.Snapshot) Decision {
	return Decision{Action: RunHook, Hook: operation.HookInfo{
		Kind:                  kind,
		Term:                  term,
		ConfigVersion:         r.ConfigVersion,
		LeaderSettingsVersion: r.LeaderSettingsVersion,
	}}
}

// Backoff returns how long to wait before retry number attempts (1-based)
// of a failed hook: initial, doubling, capped at max.
func Backoff(attempts int, initial, max time.Duration) time.Duration {
	d := initial
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
