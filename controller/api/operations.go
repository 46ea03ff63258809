package api

import (
	"encoding/json"
	"time"
)

// Operation kinds: a charm action, or an exec (a command line run in a
// hook context).
const (
	OperationAction = "action"
	OperationExec   = "exec"
)

// Operation statuses. Pending and running are queued; the rest are
// final.
const (
	OperationPending   = "pending"
	OperationRunning   = "running"
	OperationCompleted = "completed"
	OperationFailed    = "failed"
	OperationCancelled = "cancelled"
	OperationAborted   = "aborted"
)

// OperationStatuses lists every operation status.
var OperationStatuses = []string{OperationPending, OperationRunning, OperationCompleted,
	OperationFailed, OperationCancelled, OperationAborted}

// The results of an exec, as its unit's agent finishes it (Juju's keys):
// the command's exit code, and its output as text, or base64 with the
// encoding key set to "base64" when it is not valid UTF-8.
const (
	ResultReturnCode     = "return-code"
	ResultStdout         = "stdout"
	ResultStderr         = "stderr"
	ResultStdoutEncoding = "stdout-encoding"
	ResultStderrEncoding = "stderr-encoding"
)

// DefaultExecTimeout is an exec's timeout when the request gives none
// (Juju's `juju exec --timeout` default).
const DefaultExecTimeout = 5 * time.Minute

// ActionSpec is one action of an application's charm (actions.yaml):
// its description and the JSON Schema of its params, as Juju builds it
// ({"type":"object","title":NAME,"properties":{...},...}).
type ActionSpec struct {
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
}

// ActionsResponse answers GET /v1/applications/{app}/actions. Actions is
// {} for an application whose units registered none.
type ActionsResponse struct {
	Actions map[string]ActionSpec `json:"actions"`
}

// EnqueueRequest is the body of POST /v1/operations: an action (Action,
// with Params, a JSON object validated against the action's schema) or
// an exec (Command, run by a shell in a hook context, killed after
// Timeout, default DefaultExecTimeout). Unit is APP/N, or APP/leader for
// the application's leader when the controller applies the request; the
// answer's operation names the unit. Key (at most 64 bytes), if set, makes
// the request idempotent: a retry with the same key answers the operation
// the first one queued (the Go client sets a random one per call).
type EnqueueRequest struct {
	Key     string          `json:"key,omitempty"`
	Unit    string          `json:"unit"`
	Action  string          `json:"action,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Command string          `json:"command,omitempty"`
	Timeout string          `json:"timeout,omitempty"`
}

// OperationMessage is one progress message (action-log), stamped with the
// controller's global time.
type OperationMessage struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// Operation is one action or exec of one unit. ID is a decimal string
// ("7"). Params, Results and Log are left out of listings
// (GET /v1/operations); GET /v1/operations/{id} has them. Params and
// Results are JSON objects, passed as they are (decode them with
// json.Decoder.UseNumber to keep large integers exact).
type Operation struct {
	ID        string             `json:"id"`
	Unit      string             `json:"unit"`
	Kind      string             `json:"kind"`
	Action    string             `json:"action,omitempty"`
	Params    json.RawMessage    `json:"params,omitempty"`
	Command   string             `json:"command,omitempty"`
	Timeout   string             `json:"timeout,omitempty"`
	Status    string             `json:"status"`
	Message   string             `json:"message,omitempty"`
	Results   json.RawMessage    `json:"results,omitempty"`
	Log       []OperationMessage `json:"log,omitempty"`
	Enqueued  time.Time          `json:"enqueued"`
	Started   *time.Time         `json:"started,omitempty"`
	Completed *time.Time         `json:"completed,omitempty"`
}

// Finished reports whether the operation has its final status.
func (o Operation) Finished() bool {
	return o.Status != OperationPending && o.Status != OperationRunning
}

// OperationResponse answers the writes and the read of one operation.
type OperationResponse struct {
	Operation Operation `json:"operation"`
}

// OperationsResponse answers GET /v1/operations, sorted by id.
type OperationsResponse struct {
	Operations []Operation `json:"operations"`
}

// QueuedOperation is one pending or running operation of a unit, as its
// agent sees it in its watch (UnitView.Operations); the agent reads the
// params when it starts the operation.
type QueuedOperation struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Action string `json:"action,omitempty"`
	Status string `json:"status"`
}

// LogRequest is the body of POST /v1/operations/{id}/log: Seq is the
// message's position in the operation's log (0 first), so that a retried
// request is not logged twice.
type LogRequest struct {
	Seq     int    `json:"seq"`
	Message string `json:"message"`
}

// FinishRequest is the body of POST /v1/operations/{id}/finish: Status is
// completed or failed; Results a JSON object (or absent).
type FinishRequest struct {
	Status  string          `json:"status"`
	Message string          `json:"message,omitempty"`
	Results json.RawMessage `json:"results,omitempty"`
}

// AbortRequest is the (optional) body of POST /v1/operations/{id}/abort.
type AbortRequest struct {
	Message string `json:"message,omitempty"`
}
