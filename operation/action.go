package operation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/rs/zerolog"
)

// Operation kinds of the operator's requests: a charm action (`uniter
// run`) and an exec (`uniter exec`). Both run charm code serialized with
// the hooks, under the machine lock.
const (
	RunAction Kind = "run-action"
	RunExec   Kind = "exec"
)

// Final statuses an action or exec is reported with (the controller's).
const (
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// ErrStart matches the error of an action or exec that could not be
// started on the controller (unreachable, say): nothing ran and nothing
// was recorded, so it may be tried again.
var ErrStart = errors.New("operation: cannot start")

// startError is a failed Start.
type startError struct {
	id  string
	err error
}

func (e *startError) Error() string   { return fmt.Sprintf("cannot start operation %s: %v", e.id, e.err) }
func (e *startError) Unwrap() []error { return []error{ErrStart, e.err} }

// OperationInfo is an action or exec as the state file records it: which
// one (its controller id), and once it has run, its result, which Commit
// reports (so a restart after the run reports it, never runs it again).
type OperationInfo struct {
	// ID is the controller's operation id, a decimal string.
	ID string `yaml:"id"`
	// Action names the action; empty for an exec.
	Action string `yaml:"action,omitempty"`
	// Result is set in the done step.
	Result *OperationResult `yaml:"result,omitempty"`
}

// OperationResult is how an action or exec ended: StatusCompleted or
// StatusFailed, a message, and its results as a JSON object (or empty).
type OperationResult struct {
	Status  string `yaml:"status"`
	Message string `yaml:"message,omitempty"`
	Results string `yaml:"results,omitempty"`
}

// validateOperation checks the op of a RunAction or RunExec.
func (op *Op) validateOperation() error {
	o := op.Operation
	switch {
	case o == nil:
		return fmt.Errorf("operation %q without its operation", op.Kind)
	case !validID(o.ID):
		return fmt.Errorf("operation %q: invalid id %q", op.Kind, o.ID)
	case op.Kind == RunAction && o.Action == "":
		return fmt.Errorf("operation %q %s: no action", op.Kind, o.ID)
	case op.Kind == RunExec && o.Action != "":
		return fmt.Errorf("operation %q %s: an exec names no action", op.Kind, o.ID)
	case op.Step == Done && o.Result == nil:
		return fmt.Errorf("operation %q %s is done without a result", op.Kind, o.ID)
	case o.Result != nil:
		return o.Result.validate()
	}
	return nil
}

func (r *OperationResult) validate() error {
	if r.Status != StatusCompleted && r.Status != StatusFailed {
		return fmt.Errorf("operation result: unknown status %q", r.Status)
	}
	if r.Results != "" {
		var m map[string]any
		if err := json.Unmarshal([]byte(r.Results), &m); err != nil || m == nil {
			return errors.New("operation result: results are not a JSON object")
		}
	}
	return nil
}

// validID: a controller operation id, a positive decimal.
func validID(id string) bool {
	n, err := strconv.ParseUint(id, 10, 64)
	return err == nil && n > 0 && strconv.FormatUint(n, 10) == id
}

// OperationWork is the work of one action or exec; the agent's starts it
// on the controller, runs the charm process and reports the result.
type OperationWork interface {
	// Start marks the operation running on the controller. One that can
	// no longer start (cancelled meanwhile) returns ErrSkip.
	Start(ctx context.Context) error
	// Run runs it and returns its result; an action that fails is a
	// result (StatusFailed), not an error. An error means it could not be
	// run to an end (the agent stopping): it stays pending, and a
	// restart reports it aborted.
	Run(ctx context.Context) (OperationResult, error)
	// Finish reports res to the controller; it may be called again for
	// the same result after a restart.
	Finish(ctx context.Context, res OperationResult) error
}

// NewRunOperation returns the executor operation of the action or exec
// info names (kind RunAction or RunExec). Its steps: Prepare starts it
// on the controller and records it pending; Execute runs it and records
// its result (done); Commit reports the result and clears it. A failing
// action leaves the unit's error state as it was.
func NewRunOperation(kind Kind, info OperationInfo, work OperationWork, log zerolog.Logger) Operation {
	info.Result = nil
	return &runOperation{kind: kind, info: info, work: work, log: log}
}

type runOperation struct {
	kind Kind
	info OperationInfo
	work OperationWork
	log  zerolog.Logger
}

func (r *runOperation) String() string {
	if r.kind == RunAction {
		return fmt.Sprintf("run action %s (operation %s)", r.info.Action, r.info.ID)
	}
	return fmt.Sprintf("run exec (operation %s)", r.info.ID)
}

func (r *runOperation) Prepare(ctx context.Context, st State) (*State, error) {
	if r.kind != RunAction && r.kind != RunExec {
		return nil, fmt.Errorf("cannot prepare operation %s: kind %q", r.info.ID, r.kind)
	}
	if err := r.work.Start(ctx); errors.Is(err, ErrSkip) {
		return nil, ErrSkip // nothing was recorded for it: the state stays
	} else if err != nil {
		return nil, &startError{id: r.info.ID, err: err}
	}
	info := r.info
	st.Op = &Op{Kind: r.kind, Step: Pending, Operation: &info}
	return &st, nil
}

func (r *runOperation) Execute(ctx context.Context, st State) (*State, error) {
	res, err := r.work.Run(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot run operation %s: %w", r.info.ID, err)
	}
	if err := res.validate(); err != nil {
		return nil, fmt.Errorf("cannot run operation %s: %w", r.info.ID, err)
	}
	info := r.info
	info.Result = &res
	st.Op = &Op{Kind: r.kind, Step: Done, Operation: &info}
	return &st, nil
}

func (r *runOperation) Commit(ctx context.Context, st State) (*State, error) {
	if st.Op == nil || st.Op.Operation == nil || st.Op.Operation.Result == nil || st.Op.Operation.ID != r.info.ID {
		return nil, fmt.Errorf("cannot commit operation %s: the state holds no result for it", r.info.ID)
	}
	res := *st.Op.Operation.Result
	if err := r.work.Finish(ctx, res); err != nil {
		return nil, fmt.Errorf("cannot report operation %s: %w", r.info.ID, err)
	}
	r.log.Info().Str("operation", r.info.ID).Str("action", r.info.Action).Str("status", res.Status).Msg("operation finished")
	st.Op = nil
	return &st, nil
}
