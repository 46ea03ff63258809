package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// OperationAPI is what running the unit's actions and execs needs of the
// controller; the typed client (controller/client) implements it.
type OperationAPI interface {
	StartOperation(ctx context.Context, id string) (api.Operation, error)
	LogOperation(ctx context.Context, id string, seq int, message string) error
	FinishOperation(ctx context.Context, id, status, message string, results map[string]any) (api.Operation, error)
	AbortOperation(ctx context.Context, id, message string) (api.Operation, error)
}

// ProcessRunner runs actions and execs; *hooks.Runner is the production
// one.
type ProcessRunner interface {
	RunAction(ctx context.Context, a hooks.Action) (hooks.Output, error)
	RunCommand(ctx context.Context, c hooks.Command) (hooks.Output, error)
}

// maxResultsBytes is the controller's bound on an operation's results
// (lease.MaxOperationResultsBytes): output is cut down to fit under it.
const maxResultsBytes = 64 << 10

// Backoff of the reports to the controller that must get through (a
// finish, an abort): they are retried until they do or the agent stops.
const (
	reportRetryInitial = time.Second
	reportRetryMax     = 30 * time.Second
)

// controllerOps is the Operations of an agent connected to its controller.
type controllerOps struct {
	api      OperationAPI
	runner   ProcessRunner
	contexts *hookContexts
	unit     string
	clock    clock.Clock
	log      zerolog.Logger
}

var _ Operations = (*controllerOps)(nil)

// New implements Operations.
func (o *controllerOps) New(op remotestate.Operation, info operation.HookInfo) operation.Operation {
	kind := operation.RunAction
	if op.Kind == opKindExec {
		kind = operation.RunExec
	}
	w := &opWork{o: o, ref: op, info: info}
	return operation.NewRunOperation(kind, operation.OperationInfo{ID: op.ID, Action: op.Action}, w, o.log)
}

// Abort implements Operations.
func (o *controllerOps) Abort(ctx context.Context, op remotestate.Operation, message string) error {
	return o.retry(ctx, "abort", op.ID, func() error {
		_, err := o.api.AbortOperation(ctx, op.ID, message)
		if errors.Is(err, api.ErrOperationStatus) || errors.Is(err, api.ErrUnknownOperation) {
			return nil // it ended already (reported before the crash, or cancelled)
		}
		return err
	})
}

// transient reports whether a controller error may go away on its own.
func transient(err error) bool {
	return errors.Is(err, client.ErrUnreachable) || errors.Is(err, client.ErrUnavailable) ||
		errors.Is(err, api.ErrRetryable) || errors.Is(err, api.ErrNotRaftLeader) || errors.Is(err, api.ErrNodeClosed)
}

// retry calls f until it succeeds, fails for good, or ctx ends, backing
// off between transient failures.
func (o *controllerOps) retry(ctx context.Context, what, id string, f func() error) error {
	delay := reportRetryInitial
	for {
		err := f()
		if err == nil || !transient(err) {
			return err
		}
		o.log.Warn().Err(err).Str("operation", id).Str("call", what).Dur("retry_in", delay).Msg("cannot reach controller: retrying")
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot %s operation %s: %w (%w)", what, id, ctx.Err(), err)
		case <-o.clock.After(delay):
		}
		delay = min(2*delay, reportRetryMax)
	}
}

// opWork is one action or exec: the operation the controller started,
// and the seq of its next action-log message.
type opWork struct {
	o       *controllerOps
	ref     remotestate.Operation
	info    operation.HookInfo
	started api.Operation
	seq     int
}

// Start implements operation.OperationWork.
func (w *opWork) Start(ctx context.Context) error {
	got, err := w.o.api.StartOperation(ctx, w.ref.ID)
	switch {
	case errors.Is(err, api.ErrOperationStatus), errors.Is(err, api.ErrUnknownOperation):
		w.o.log.Info().Str("operation", w.ref.ID).Err(err).Msg("operation no longer pending: not running it")
		return operation.ErrSkip
	case err != nil:
		return err
	}
	w.started = got
	w.o.log.Info().Str("operation", got.ID).Str("kind", got.Kind).Str("action", got.Action).Msg("operation started")
	return nil
}

// LogAction implements hooktools.ActionLogger: the message goes to the
// controller as number seq; a retry of a lost answer is not logged twice.
func (w *opWork) LogAction(ctx context.Context, message string) error {
	if err := w.o.api.LogOperation(ctx, w.started.ID, w.seq, message); err != nil {
		return err
	}
	w.seq++
	return nil
}

// Run implements operation.OperationWork.
func (w *opWork) Run(ctx context.Context) (operation.OperationResult, error) {
	if w.started.Kind == api.OperationExec {
		return w.runExec(ctx)
	}
	return w.runAction(ctx)
}

func failedResult(msg string) operation.OperationResult {
	return operation.OperationResult{Status: operation.StatusFailed, Message: msg}
}

func (w *opWork) runAction(ctx context.Context) (operation.OperationResult, error) {
	op := w.started
	act, err := hooktools.NewAction(op.Action, op.ID, op.Params, w)
	if err != nil {
		return failedResult(err.Error()), nil
	}
	p, done, err := w.o.contexts.operationContext(ctx, w.info, "actions/"+op.Action, act)
	if err != nil {
		if ctx.Err() != nil {
			return operation.OperationResult{}, err
		}
		return failedResult(err.Error()), nil
	}
	out, runErr := w.o.runner.RunAction(ctx, hooks.Action{Params: p, Name: op.Action, ID: op.ID})
	commitErr := w.commit(ctx, runErr, p.ContextID)
	done()
	if runErr != nil && ctx.Err() != nil {
		return operation.OperationResult{}, runErr // stopped: a restart aborts it
	}
	recorded := act.Results()
	res := operation.OperationResult{Status: operation.StatusCompleted}
	switch {
	case commitErr != nil:
		res.Status, res.Message = operation.StatusFailed, commitErr.Error()
	case recorded.Failed:
		res.Status, res.Message = operation.StatusFailed, recorded.Message
	case errors.Is(runErr, hooks.ErrMissing):
		res.Status, res.Message = operation.StatusFailed, fmt.Sprintf("action not implemented on unit %q", w.o.unit)
	case runErr != nil:
		res.Status, res.Message = operation.StatusFailed, runErr.Error()
	}
	code, hasCode := hooks.ExitCode(runErr)
	res.Results = w.results(recorded.Values, out, code, hasCode && !errors.Is(runErr, hooks.ErrMissing), &res)
	w.logEnd(res, runErr)
	return res, nil
}

func (w *opWork) runExec(ctx context.Context) (operation.OperationResult, error) {
	op := w.started
	timeout := api.DefaultExecTimeout
	if op.Timeout != "" {
		d, err := time.ParseDuration(op.Timeout)
		if err != nil || d <= 0 {
			return failedResult(fmt.Sprintf("bad timeout %q", op.Timeout)), nil
		}
		timeout = d
	}
	p, done, err := w.o.contexts.operationContext(ctx, w.info, "exec", nil)
	if err != nil {
		if ctx.Err() != nil {
			return operation.OperationResult{}, err
		}
		return failedResult(err.Error()), nil
	}
	out, runErr := w.o.runner.RunCommand(ctx, hooks.Command{Params: p, Command: op.Command, ID: op.ID, Timeout: timeout})
	commitErr := w.commit(ctx, runErr, p.ContextID)
	done()
	if runErr != nil && ctx.Err() != nil {
		return operation.OperationResult{}, runErr
	}
	// A command that ran is completed whatever its exit code, which the
	// results carry (as Juju's exec does); one that could not run to its
	// end (timed out, not started) failed.
	res := operation.OperationResult{Status: operation.StatusCompleted}
	code, hasCode := hooks.ExitCode(runErr)
	if !hasCode {
		res.Status, res.Message = operation.StatusFailed, runErr.Error()
	}
	if commitErr != nil {
		res.Status, res.Message = operation.StatusFailed, commitErr.Error()
	}
	res.Results = w.results(nil, out, code, hasCode, &res)
	w.logEnd(res, runErr)
	return res, nil
}

// commit sends what an action or exec that exited 0 wrote with
// relation-set, open-port and close-port, as a hook's writes are sent
// (HOOK-TOOLS.md §6, "Commit rule"); one that failed, or was stopped, has
// its writes dropped. action-fail does not drop them: the process still
// exited 0, as in Juju.
func (w *opWork) commit(ctx context.Context, runErr error, contextID string) error {
	if runErr != nil {
		return nil
	}
	// No hook kind: an operation changes no relation's scope.
	return w.o.contexts.flush(ctx, operation.HookInfo{Term: w.info.Term}, contextID, w.started.Kind+" "+w.started.ID)
}

func (w *opWork) logEnd(res operation.OperationResult, runErr error) {
	ev := w.o.log.Info()
	if res.Status != operation.StatusCompleted {
		ev = w.o.log.Warn()
	}
	ev.Str("operation", w.started.ID).Str("action", w.started.Action).Str("status", res.Status).AnErr("reason", runErr).
		Msg("operation ran")
}

// results builds an operation's results as JSON: the action-set values,
// the exit code as return-code and the output as stdout and stderr (each
// left out when empty, base64 with an -encoding key when not UTF-8), as
// Juju's are. Output is cut to fit the controller's limit; values that do
// not fit alone fail the operation with a message saying so.
func (w *opWork) results(values map[string]any, out hooks.Output, code int, hasCode bool, res *operation.OperationResult) string {
	for limit := hooks.MaxCapturedBytes; ; limit /= 2 {
		r := maps.Clone(values)
		if r == nil {
			r = map[string]any{}
		}
		if hasCode {
			r[api.ResultReturnCode] = code
		}
		putOutput(r, api.ResultStdout, api.ResultStdoutEncoding, out.Stdout, limit)
		putOutput(r, api.ResultStderr, api.ResultStderrEncoding, out.Stderr, limit)
		data, err := json.Marshal(r)
		if err == nil && len(data) <= maxResultsBytes {
			if out.StdoutTruncated || out.StderrTruncated || limit < hooks.MaxCapturedBytes {
				w.o.log.Warn().Str("operation", w.started.ID).Int("kept_bytes", limit).Msg("operation output cut to fit its results")
			}
			return string(data)
		}
		if limit == 0 {
			res.Status = operation.StatusFailed
			res.Message = fmt.Sprintf("results too large: %d bytes of JSON, the limit is %d", len(data), maxResultsBytes)
			return ""
		}
	}
}

func putOutput(r map[string]any, key, encodingKey string, b []byte, limit int) {
	if len(b) > limit {
		b = b[:limit]
	}
	if len(b) == 0 {
		return
	}
	if utf8.Valid(b) {
		r[key] = string(b)
		return
	}
	r[key], r[encodingKey] = base64.StdEncoding.EncodeToString(b), "base64"
}

// Finish implements operation.OperationWork: it reports res until the
// controller has it. Results the controller refuses as too large are
// replaced by a failure saying so.
func (w *opWork) Finish(ctx context.Context, res operation.OperationResult) error {
	var results map[string]any
	if res.Results != "" {
		if err := json.Unmarshal([]byte(res.Results), &results); err != nil {
			return fmt.Errorf("cannot decode results: %w", err)
		}
	}
	return w.o.retry(ctx, "finish", w.ref.ID, func() error {
		_, err := w.o.api.FinishOperation(ctx, w.ref.ID, res.Status, res.Message, results)
		if errors.Is(err, api.ErrLimitExceeded) && results != nil {
			w.o.log.Warn().Err(err).Str("operation", w.ref.ID).Msg("controller refused the results: reporting the operation failed without them")
			_, err = w.o.api.FinishOperation(ctx, w.ref.ID, operation.StatusFailed, "results refused by the controller: "+err.Error(), nil)
		}
		if errors.Is(err, api.ErrOperationStatus) {
			return nil // reported before a restart
		}
		return err
	})
}

// operationContext gives an action or exec its process environment and
// hook-tool context, as a hook's (tools, config and leader settings at
// its start, is-leader live), with the action (nil for an exec) for the
// action tools. name is what the tools log as the hook.
func (h *hookContexts) operationContext(ctx context.Context, info operation.HookInfo, name string, act *hooktools.Action) (hooks.Params, func(), error) {
	info.Kind = ""
	p := hooks.Params{
		Unit: h.cfg.Unit, CharmDir: h.cfg.CharmDir, ToolsDir: ToolsDir(h.agentDir),
		SocketPath: SocketPath(h.agentDir), ModelName: h.cfg.ModelName, ModelUUID: h.cfg.ModelUUID,
		LeadershipTerm: info.Term,
	}
	return h.register(ctx, info, p, func(hc *hooktools.HookContext) { hc.Hook, hc.Action = name, act })
}
