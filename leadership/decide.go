package leadership

import (
	"context"

	"github.com/uniter-dev/uniter/hooks"
)

// HookView is what the agent knows when a hook asks is-leader: the
// committed leadership and the hook that is running.
type HookView struct {
	// CommittedLeader and CommittedTerm are the state file's leader and
	// leader-term: leader-elected for that term was committed.
	CommittedLeader bool
	CommittedTerm   uint64
	// Hook is the running hook, and HookTerm the term it runs against.
	Hook     hooks.Kind
	HookTerm uint64
}

// ClaimedTerm applies rule 2(a) of the leadership contract (DESIGN.md
// §4.4): the unit may call itself leader for term T only while the committed
// state says leader for T, or the running hook is leader-elected for T —
// and never inside leader-deposed.
func ClaimedTerm(v HookView) (uint64, bool) {
	switch {
	case v.Hook == hooks.LeaderDeposed:
		return 0, false
	case v.Hook == hooks.LeaderElected && v.HookTerm != 0:
		return v.HookTerm, true
	case v.CommittedLeader && v.CommittedTerm != 0:
		return v.CommittedTerm, true
	}
	return 0, false
}

// Checker is the lease half of the decision; *Tracker implements it.
type Checker interface {
	Check(ctx context.Context, term uint64) (bool, error)
}

// IsLeader is the whole is-leader decision, rules 2(a)–(c): the claimed
// term must be held, guaranteed for at least G (extending synchronously if
// needed) and not stepping down. Stickiness within a hook (once false,
// always false) is the hook tool server's, which sees the whole hook.
func IsLeader(ctx context.Context, c Checker, v HookView) (bool, error) {
	term, ok := ClaimedTerm(v)
	if !ok {
		return false, nil
	}
	return c.Check(ctx, term)
}
