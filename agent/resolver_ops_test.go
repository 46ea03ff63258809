package agent_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

func TestNextOperations(t *testing.T) {
	idle := local(func(s *operation.State) { s.LeaderSettingsVersion = 1 })
	leading := local(func(s *operation.State) { s.LeaderSettingsVersion, s.Leader, s.LeaderTerm = 1, true, 4 })
	failed := &operation.HookError{Hook: hooks.ConfigChanged, Info: operation.HookInfo{Kind: hooks.ConfigChanged, ConfigVersion: 1}, Attempts: 2}
	greet := remotestate.Operation{ID: "7", Kind: "action", Action: "greet", Status: "pending"}
	exec := remotestate.Operation{ID: "8", Kind: "exec", Status: "pending"}
	queued := func(op remotestate.Operation) func(*remotestate.Snapshot) {
		return func(s *remotestate.Snapshot) { s.NextOperation, s.QueuedOperations = op, 1 }
	}
	runningOp := greet
	runningOp.Status = "running"
	pendingAction := &operation.Op{Kind: operation.RunAction, Step: operation.Pending, Operation: &operation.OperationInfo{ID: "5", Action: "greet"}}
	pendingExec := &operation.Op{Kind: operation.RunExec, Step: operation.Pending, Operation: &operation.OperationInfo{ID: "6"}}
	doneAction := &operation.Op{Kind: operation.RunAction, Step: operation.Done, Operation: &operation.OperationInfo{ID: "5", Action: "greet",
		Result: &operation.OperationResult{Status: operation.StatusCompleted}}}
	for _, tc := range []struct {
		name   string
		local  operation.State
		remote remotestate.Snapshot
		timers agent.Timers
		want   agent.Decision
	}{
		{name: "idle unit runs the queue head", local: idle, remote: with(alive, queued(greet)),
			want: agent.Decision{Action: agent.RunOperation, Operation: greet, Hook: operation.HookInfo{ConfigVersion: 1, LeaderSettingsVersion: 1}}},
		{name: "exec too", local: idle, remote: with(alive, queued(exec)),
			want: agent.Decision{Action: agent.RunOperation, Operation: exec, Hook: operation.HookInfo{ConfigVersion: 1, LeaderSettingsVersion: 1}}},
		{name: "before update-status", local: idle, remote: with(alive, queued(greet)), timers: agent.Timers{UpdateStatusDue: true},
			want: agent.Decision{Action: agent.RunOperation, Operation: greet, Hook: operation.HookInfo{ConfigVersion: 1, LeaderSettingsVersion: 1}}},
		{name: "after install", local: operation.State{}, remote: with(alive, queued(greet)),
			want: agent.Decision{Action: agent.RunHook, Hook: operation.HookInfo{Kind: hooks.Install, ConfigVersion: 1, LeaderSettingsVersion: 1}}},
		{name: "after config-changed", local: idle, remote: with(alive, func(s *remotestate.Snapshot) { queued(greet)(s); s.ConfigVersion = 2 }),
			want: agent.Decision{Action: agent.RunHook, Hook: operation.HookInfo{Kind: hooks.ConfigChanged, ConfigVersion: 2, LeaderSettingsVersion: 1}}},
		{name: "leader-elected first", local: idle, remote: with(alive, func(s *remotestate.Snapshot) { queued(greet)(s); s.Leader, s.Term = true, 5 }),
			want: agent.Decision{Action: agent.RunHook, Hook: operation.HookInfo{Kind: hooks.LeaderElected, Term: 5, ConfigVersion: 1, LeaderSettingsVersion: 1}}},
		{name: "leader-deposed first", local: leading, remote: with(alive, func(s *remotestate.Snapshot) { queued(greet)(s); s.Term = 5 }),
			want: agent.Decision{Action: agent.RunHook, Hook: operation.HookInfo{Kind: hooks.LeaderDeposed, Term: 4, ConfigVersion: 1, LeaderSettingsVersion: 1}}},
		{name: "leader runs it with its term", local: leading, remote: with(alive, func(s *remotestate.Snapshot) { queued(greet)(s); s.Leader, s.Term = true, 4 }),
			want: agent.Decision{Action: agent.RunOperation, Operation: greet, Hook: operation.HookInfo{Term: 4, ConfigVersion: 1, LeaderSettingsVersion: 1}}},
		{name: "in error state while the retry waits", local: local(func(s *operation.State) { s.LeaderSettingsVersion, s.Error = 1, failed }),
			remote: with(alive, queued(greet)),
			want:   agent.Decision{Action: agent.RunOperation, Operation: greet, Hook: operation.HookInfo{ConfigVersion: 1, LeaderSettingsVersion: 1}}},
		{name: "a due retry first", local: local(func(s *operation.State) { s.LeaderSettingsVersion, s.Error = 1, failed }),
			remote: with(alive, queued(greet)), timers: agent.Timers{RetryDue: true},
			want: agent.Decision{Action: agent.RunHook, Hook: failed.Info}},
		{name: "a resolved request first", local: local(func(s *operation.State) { s.LeaderSettingsVersion, s.Error = 1, failed }),
			remote: with(alive, func(s *remotestate.Snapshot) { queued(greet)(s); s.ResolvedID = 1 }),
			want:   agent.Decision{Action: agent.RunHook, Hook: failed.Info, Resolved: 1}},
		{name: "in error state not before a gained leadership's elected",
			local:  local(func(s *operation.State) { s.LeaderSettingsVersion, s.Error = 1, failed }),
			remote: with(alive, func(s *remotestate.Snapshot) { queued(greet)(s); s.Leader, s.Term = true, 5 }),
			want:   agent.Decision{Action: agent.WaitRetry, Hook: failed.Info}},
		{name: "in error state not before a failed leader-deposed",
			local: local(func(s *operation.State) {
				s.LeaderSettingsVersion, s.Leader, s.LeaderTerm = 1, true, 4
				s.Error = &operation.HookError{Hook: hooks.LeaderDeposed, Info: operation.HookInfo{Kind: hooks.LeaderDeposed, Term: 4}, Attempts: 1}
			}),
			remote: with(alive, queued(greet)),
			want:   agent.Decision{Action: agent.WaitRetry, Hook: operation.HookInfo{Kind: hooks.LeaderDeposed, Term: 4}}},
		{name: "not on a dying unit", local: idle, remote: with(alive, func(s *remotestate.Snapshot) { queued(greet)(s); s.Life = remotestate.Dying }),
			want: agent.Decision{Action: agent.RunHook, Hook: operation.HookInfo{Kind: hooks.Stop, ConfigVersion: 1, LeaderSettingsVersion: 1}}},
		{name: "running at the controller, not here: abort", local: idle, remote: with(alive, queued(runningOp)),
			want: agent.Decision{Action: agent.AbortOperation, Operation: runningOp}},
		{name: "abort comes before leader-deposed", local: leading, remote: with(alive, func(s *remotestate.Snapshot) { queued(runningOp)(s); s.Term = 5 }),
			want: agent.Decision{Action: agent.AbortOperation, Operation: runningOp}},
		{name: "pending in the state file: interrupted, abort",
			local: local(func(s *operation.State) { s.Op = pendingAction }), remote: with(alive, queued(runningOp)),
			want: agent.Decision{Action: agent.AbortOperation, Operation: remotestate.Operation{ID: "5", Kind: "action", Action: "greet"}}},
		{name: "pending exec in the state file, in error state",
			local: local(func(s *operation.State) { s.Op, s.Error = pendingExec, failed }), remote: alive,
			want: agent.Decision{Action: agent.AbortOperation, Operation: remotestate.Operation{ID: "6", Kind: "exec"}}},
		{name: "done in the state file: report it",
			local: local(func(s *operation.State) { s.Op = doneAction }), remote: with(alive, queued(greet)),
			want: agent.Decision{Action: agent.RunOperation, Operation: remotestate.Operation{ID: "5", Kind: "action", Action: "greet", Status: "running"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := agent.Next(tc.local, tc.remote, tc.timers)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Next (-want +got):\n%s", d)
			}
		})
	}
}
