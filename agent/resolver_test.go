package agent_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// running is the local state of an installed, started unit that has seen
// config version 1.
var running = operation.State{Installed: true, Started: true, ConfigVersion: 1}

var alive = remotestate.Snapshot{Life: remotestate.Alive, ConfigVersion: 1, LeaderSettingsVersion: 1}

func with(s remotestate.Snapshot, fn func(*remotestate.Snapshot)) remotestate.Snapshot {
	fn(&s)
	return s
}

func local(fn func(*operation.State)) operation.State {
	s := running.Clone()
	fn(&s)
	return s
}

func TestNext(t *testing.T) {
	failed := &operation.HookError{Hook: hooks.ConfigChanged, Attempts: 1}
	electedFailed := &operation.HookError{Hook: hooks.LeaderElected, Info: operation.HookInfo{Kind: hooks.LeaderElected, Term: 5}, Attempts: 1}
	deposedFailed := &operation.HookError{Hook: hooks.LeaderDeposed, Info: operation.HookInfo{Kind: hooks.LeaderDeposed, Term: 4}, Attempts: 1}
	for _, tc := range []struct {
		name   string
		local  operation.State
		remote remotestate.Snapshot
		timers agent.Timers
		action agent.Action
		hook   hooks.Kind
		term   uint64
	}{
		{name: "new unit installs first", local: operation.State{}, remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term = true, 1 }),
			action: agent.RunHook, hook: hooks.Install, term: 1},
		{name: "leader-elected after install", local: operation.State{Installed: true},
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term = true, 1 }), action: agent.RunHook, hook: hooks.LeaderElected, term: 1},
		{name: "config-changed after leader-elected", local: operation.State{Installed: true, Leader: true, LeaderTerm: 1},
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term = true, 1 }), action: agent.RunHook, hook: hooks.ConfigChanged, term: 1},
		{name: "minion gets leader-settings-changed before start", local: operation.State{Installed: true, ConfigVersion: 1},
			remote: alive, action: agent.RunHook, hook: hooks.LeaderSettingsChanged},
		{name: "leader skips leader-settings-changed", local: operation.State{Installed: true, ConfigVersion: 1, Leader: true, LeaderTerm: 2},
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term = true, 2 }), action: agent.RunHook, hook: hooks.Start, term: 2},
		{name: "start last", local: operation.State{Installed: true, ConfigVersion: 1, LeaderSettingsVersion: 1},
			remote: alive, action: agent.RunHook, hook: hooks.Start},
		{name: "idle", local: local(func(s *operation.State) { s.LeaderSettingsVersion = 1 }), remote: alive, action: agent.Idle},
		{name: "update-status when due", local: local(func(s *operation.State) { s.LeaderSettingsVersion = 1 }), remote: alive,
			timers: agent.Timers{UpdateStatusDue: true}, action: agent.RunHook, hook: hooks.UpdateStatus},
		{name: "config change", local: local(func(s *operation.State) { s.LeaderSettingsVersion = 1 }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.ConfigVersion = 2 }), action: agent.RunHook, hook: hooks.ConfigChanged},
		{name: "lost leadership runs deposed with the old term", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm = true, 4 }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Term = 5 }), action: agent.RunHook, hook: hooks.LeaderDeposed, term: 4},
		{name: "lost and regained: deposed first", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm = true, 4 }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term = true, 6 }), action: agent.RunHook, hook: hooks.LeaderDeposed, term: 4},
		{name: "step-down runs deposed", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm = true, 4 }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term, s.StepDown = true, 4, true }), action: agent.RunHook, hook: hooks.LeaderDeposed, term: 4},
		{name: "removal of the leader runs deposed first", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm = true, 4 }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term, s.Life = true, 4, remotestate.Dying }), action: agent.RunHook, hook: hooks.LeaderDeposed, term: 4},
		{name: "deposed even in error state", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm, s.Error = true, 4, failed }),
			remote: alive, action: agent.RunHook, hook: hooks.LeaderDeposed, term: 4},
		// A failed leader-deposed follows the error-state backoff like any
		// failed hook, and still comes before every other hook.
		{name: "failed deposed waits for its retry", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm, s.Error = true, 4, deposedFailed }),
			remote: alive, action: agent.WaitRetry, hook: hooks.LeaderDeposed, term: 4},
		{name: "failed deposed of a step-down waits for its retry", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm, s.Error = true, 4, deposedFailed }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term, s.StepDown = true, 4, true }), action: agent.WaitRetry, hook: hooks.LeaderDeposed, term: 4},
		{name: "failed deposed retries when due", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm, s.Error = true, 4, deposedFailed }),
			remote: alive, timers: agent.Timers{RetryDue: true}, action: agent.RunHook, hook: hooks.LeaderDeposed, term: 4},
		{name: "failed deposed waits before a regained leadership's elected", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm, s.Error = true, 4, deposedFailed }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term = true, 6 }), action: agent.WaitRetry, hook: hooks.LeaderDeposed, term: 4},
		{name: "failed deposed retried before a regained leadership's elected", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm, s.Error = true, 4, deposedFailed }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term = true, 6 }), timers: agent.Timers{RetryDue: true},
			action: agent.RunHook, hook: hooks.LeaderDeposed, term: 4},
		{name: "failed deposed retried at once on resolved", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm, s.Error = true, 4, deposedFailed }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.ResolvedID = 1 }), action: agent.RunHook, hook: hooks.LeaderDeposed, term: 4},
		{name: "failed deposed resolved --no-retry", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm, s.Error = true, 4, deposedFailed }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.ResolvedID, s.ResolvedNoRetry = 1, true }), action: agent.ResolveNoRetry, hook: hooks.LeaderDeposed, term: 4},
		{name: "failed deposed of a dying unit waits for its retry", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm, s.Error = true, 4, deposedFailed }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Life = remotestate.Dying }), action: agent.WaitRetry, hook: hooks.LeaderDeposed, term: 4},
		{name: "deposed interrupted by a restart is a failure", local: local(func(s *operation.State) {
			s.Leader, s.LeaderTerm = true, 4
			s.Op = &operation.Op{Kind: operation.RunHook, Step: operation.Pending, Hook: operation.HookInfo{Kind: hooks.LeaderDeposed, Term: 4}}
		}), remote: alive, action: agent.EnterError, hook: hooks.LeaderDeposed, term: 4},
		// A lease the unit holds but never committed (leader-elected in
		// error, or not run yet) is released at once on a step-down or a
		// removal: there is nothing to depose, and the lease must move.
		{name: "step-down of a leader in error on leader-elected releases the lease", local: local(func(s *operation.State) { s.Error = electedFailed }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term, s.StepDown = true, 5, true }), action: agent.Release, term: 5},
		{name: "step-down before leader-elected ran releases the lease", local: operation.State{Installed: true},
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term, s.StepDown = true, 5, true }), action: agent.Release, term: 5},
		{name: "removal of a unit holding an uncommitted lease releases it", local: local(func(s *operation.State) { s.Error = electedFailed }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term, s.Life = true, 5, remotestate.Dying }), action: agent.Release, term: 5},
		{name: "step-down of a new term after a lost one: deposed first", local: local(func(s *operation.State) { s.Leader, s.LeaderTerm = true, 4 }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term, s.StepDown = true, 5, true }), action: agent.RunHook, hook: hooks.LeaderDeposed, term: 4},
		{name: "leader in error on leader-elected without a step-down waits", local: local(func(s *operation.State) { s.Error = electedFailed }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Leader, s.Term = true, 5 }), action: agent.WaitRetry, hook: hooks.LeaderElected, term: 5},
		{name: "retry after another hook ran keeps the failed hook's versions",
			local: local(func(s *operation.State) {
				s.Error = &operation.HookError{Hook: hooks.ConfigChanged, Info: operation.HookInfo{Kind: hooks.ConfigChanged, Term: 7}, Attempts: 1}
			}), remote: alive, timers: agent.Timers{RetryDue: true}, action: agent.RunHook, hook: hooks.ConfigChanged, term: 7},
		{name: "error state waits", local: local(func(s *operation.State) { s.Error = failed }), remote: alive, action: agent.WaitRetry, hook: hooks.ConfigChanged},
		{name: "error state retries when due", local: local(func(s *operation.State) { s.Error = failed }), remote: alive,
			timers: agent.Timers{RetryDue: true}, action: agent.RunHook, hook: hooks.ConfigChanged},
		{name: "resolved retries at once", local: local(func(s *operation.State) { s.Error = failed }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.ResolvedID = 1 }), action: agent.RunHook, hook: hooks.ConfigChanged},
		{name: "resolved --no-retry", local: local(func(s *operation.State) { s.Error = failed }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.ResolvedID, s.ResolvedNoRetry = 1, true }), action: agent.ResolveNoRetry, hook: hooks.ConfigChanged},
		{name: "old resolved request ignored", local: local(func(s *operation.State) { s.Error, s.ResolvedSeen = failed, 3 }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.ResolvedID = 3 }), action: agent.WaitRetry, hook: hooks.ConfigChanged},
		{name: "resolved while healthy is acknowledged", local: local(func(s *operation.State) { s.LeaderSettingsVersion = 1 }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.ResolvedID = 2 }), action: agent.AckResolved},
		{name: "pending after restart is a failure", local: local(func(s *operation.State) {
			s.Op = &operation.Op{Kind: operation.RunHook, Step: operation.Pending, Hook: operation.HookInfo{Kind: hooks.Start}}
		}), remote: alive, action: agent.EnterError, hook: hooks.Start},
		{name: "done after restart commits", local: local(func(s *operation.State) {
			s.Op = &operation.Op{Kind: operation.RunHook, Step: operation.Done, Hook: operation.HookInfo{Kind: hooks.Start}}
		}), remote: alive, action: agent.RunHook, hook: hooks.Start},
		{name: "gained and lost runs nothing", local: local(func(s *operation.State) { s.LeaderSettingsVersion = 1 }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Term = 9 }), action: agent.Idle},
		{name: "dying unit stops", local: local(func(s *operation.State) { s.LeaderSettingsVersion = 1 }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Life = remotestate.Dying }), action: agent.RunHook, hook: hooks.Stop},
		{name: "stopped dying unit is removed", local: local(func(s *operation.State) { s.Stopped = true }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Life = remotestate.Dying }), action: agent.RunHook, hook: hooks.Remove},
		{name: "removed unit terminates", local: local(func(s *operation.State) { s.Stopped, s.Removed = true, true }),
			remote: with(alive, func(s *remotestate.Snapshot) { s.Life = remotestate.Dying }), action: agent.Terminate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := agent.Next(tc.local, tc.remote, tc.timers)
			got := struct {
				Action agent.Action
				Hook   hooks.Kind
				Term   uint64
			}{d.Action, d.Hook.Kind, d.Hook.Term + d.Term} // a Release has no hook, only a term
			want := struct {
				Action agent.Action
				Hook   hooks.Kind
				Term   uint64
			}{tc.action, tc.hook, tc.term}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("Next (-want +got):\n%s", d)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	var got []time.Duration
	for a := 1; a <= 9; a++ {
		got = append(got, agent.Backoff(a, 5*time.Second, 5*time.Minute))
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("backoff schedule (-want +got):\n%s", d)
	}
}
