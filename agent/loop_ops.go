package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// AbortMessage is the message an operation interrupted by a crash or a
// kill of its agent is reported aborted with.
const AbortMessage = "interrupted: the unit's agent stopped while it ran (crash or kill); it was not run again"

// Operations makes and aborts the unit's actions and execs for the loop;
// agent/actions.go has the controller-backed one.
type Operations interface {
	// New returns the executor operation of op, run against the remote
	// versions in info (its Kind is empty).
	New(op remotestate.Operation, info operation.HookInfo) operation.Operation
	// Abort reports op aborted with message. One already ended is not an
	// error. It returns only once the controller has it, or ctx ended.
	Abort(ctx context.Context, op remotestate.Operation, message string) error
}

// maxEndedOps bounds the ids of operations the loop remembers ending.
const maxEndedOps = 16

// opsState is what the loop keeps of the operation queue between
// decisions: the operations it ended, which a snapshot behind the
// controller may still show queued, and the one it holds back after a
// failed start until backoff fires.
type opsState struct {
	ended   []string
	held    string
	backoff clock.Timer
}

func (s *opsState) end(id string) {
	if len(s.ended) == maxEndedOps {
		s.ended = s.ended[1:]
	}
	s.ended = append(s.ended, id)
}

func (s *opsState) release() {
	if s.backoff != nil {
		s.backoff.Stop()
		s.backoff = nil
	}
	s.held = ""
}

// visible is the snapshot the resolver decides on: without the queue head
// when this agent runs no operations, has just ended it, or holds it back.
func (l *loop) visible(remote remotestate.Snapshot) remotestate.Snapshot {
	id := remote.NextOperation.ID
	if id != "" && (l.cfg.Operations == nil || slices.Contains(l.ops.ended, id) || id == l.ops.held) {
		remote.NextOperation = remotestate.Operation{}
	}
	return remote
}

// describeOp is the agent status message of a running operation.
func describeOp(op remotestate.Operation) string {
	if op.Kind == opKindExec {
		return fmt.Sprintf("running exec (operation %s)", op.ID)
	}
	return fmt.Sprintf("running action %s", op.Action)
}

// runOperation runs (or reports) d's operation through the executor,
// under the machine lock. A failing action is not an error here: the
// unit's error state and its retry timer are left as they were.
func (l *loop) runOperation(ctx context.Context, d Decision) error {
	op := d.Operation
	if l.cfg.Operations == nil {
		return errors.New("cannot run operation: the agent runs no operations")
	}
	l.cfg.Status(StatusExecuting, describeOp(op))
	err := l.cfg.Executor.Run(ctx, l.cfg.Operations.New(op, d.Hook))
	switch {
	case err == nil:
		l.ops.end(op.ID)
		return nil
	case ctx.Err() != nil:
		return nil // stopping: a restart aborts or reports it
	}
	if st := l.cfg.Executor.State(); st.Op != nil && st.Op.Operation != nil && st.Op.Operation.ID == op.ID {
		// It ran (or may have started): the next decision reports or
		// aborts it from the state file.
		l.log.Warn().Err(err).Str("operation", op.ID).Msg("operation interrupted")
		l.ops.end(op.ID)
		return nil
	}
	if errors.Is(err, operation.ErrStart) {
		l.log.Warn().Err(err).Str("operation", op.ID).Dur("retry_in", l.cfg.RetryInitial).Msg("cannot start operation: retrying later")
		l.ops.release()
		l.ops.held = op.ID
		l.ops.backoff = l.cfg.Clock.NewTimer(l.cfg.RetryInitial)
		return nil
	}
	return err
}

// abortOperation reports d's operation aborted and forgets it.
func (l *loop) abortOperation(ctx context.Context, d Decision) error {
	op := d.Operation
	l.log.Warn().Str("operation", op.ID).Str("action", op.Action).Msg("operation interrupted by a restart: reporting it aborted")
	if l.cfg.Operations == nil {
		return errors.New("cannot abort operation: the agent runs no operations")
	}
	if err := l.cfg.Operations.Abort(ctx, op, AbortMessage); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot abort operation %s: %w", op.ID, err)
	}
	l.ops.end(op.ID)
	st := l.cfg.Executor.State()
	if st.Op != nil && st.Op.Operation != nil && st.Op.Operation.ID == op.ID {
		st.Op = nil
		return l.cfg.Executor.SetState(st)
	}
	return nil
}
