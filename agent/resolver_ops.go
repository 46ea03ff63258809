package agent

import (
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// The resolver's actions for the unit's operation queue (actions and
// execs), numbered apart from the hook actions.
const (
	// RunOperation: start and run the action or exec in
	// Decision.Operation, or, for one the state file has as done, report
	// its result.
	RunOperation Action = 100 + iota
	// AbortOperation: report the operation in Decision.Operation aborted,
	// without running it: it was interrupted by a crash or a kill (the
	// state file has it pending, or the controller has it running while
	// this agent, just started, is not running it).
	AbortOperation
)

// Operation kinds as the controller names them.
const (
	opKindAction = "action"
	opKindExec   = "exec"
	opPending    = "pending"
	opRunning    = "running"
)

// recoverOperation resumes an action or exec the state file holds: a done
// one is reported, a pending one was interrupted and is aborted, never run
// again behind the operator's back.
func recoverOperation(local operation.State) (Decision, bool) {
	op := local.Op
	if op == nil || (op.Kind != operation.RunAction && op.Kind != operation.RunExec) || op.Operation == nil {
		return Decision{}, false
	}
	ref := remotestate.Operation{ID: op.Operation.ID, Kind: opKindAction, Action: op.Operation.Action}
	if op.Kind == operation.RunExec {
		ref.Kind = opKindExec
	}
	if op.Step == operation.Done {
		ref.Status = opRunning
		return Decision{Action: RunOperation, Operation: ref}, true
	}
	return Decision{Action: AbortOperation, Operation: ref}, true
}

// abortRunning: the controller has an operation of this unit running that
// the agent is not running (it started it, then crashed or was killed
// before or after recording it). The loop hides the operations it has
// just ended itself, whose end the snapshot may not show yet.
func abortRunning(remote remotestate.Snapshot) (Decision, bool) {
	if n := remote.NextOperation; n.ID != "" && n.Status == opRunning {
		return Decision{Action: AbortOperation, Operation: n}, true
	}
	return Decision{}, false
}

// runQueued runs the head of the queue, if it is pending and the unit is
// alive, but never between a leadership change and its leader-deposed or
// leader-elected: those run first (in error state too, where
// leader-elected waits for the error to be resolved, so the operation
// waits with it).
func runQueued(local operation.State, remote remotestate.Snapshot) (Decision, bool) {
	n := remote.NextOperation
	switch {
	case n.ID == "" || n.Status != opPending || remote.Life != remotestate.Alive:
		return Decision{}, false
	case local.Leader && lostLeadership(local, remote):
		return Decision{}, false
	case remote.Leader && !remote.StepDown && (!local.Leader || local.LeaderTerm != remote.Term):
		return Decision{}, false // leader-elected is due
	}
	return Decision{Action: RunOperation, Operation: n, Hook: operation.HookInfo{
		Term: remote.Term, ConfigVersion: remote.ConfigVersion, LeaderSettingsVersion: remote.LeaderSettingsVersion,
	}}, true
}
