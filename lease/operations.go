package lease

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Operation kinds: a charm action (actions.yaml), or an exec (a command
// line run in a hook context, `uniter exec`).
const (
	OperationAction = "action"
	OperationExec   = "exec"
)

// Operation statuses. Pending and running operations are queued; the
// other four are final.
const (
	OperationPending   = "pending"
	OperationRunning   = "running"
	OperationCompleted = "completed"
	OperationFailed    = "failed"
	OperationCancelled = "cancelled"
	OperationAborted   = "aborted"
)

// operationsProtocol is the protocol of the operation commands and of
// register-unit's actions: the same unreleased protocol as relations, so
// that one raise brings both.
const operationsProtocol = 4

// The limits on operations. The state machine enforces them itself (they
// are part of protocol 4, like the databag limits), so no log entry can
// make the state pass them; a refusal wraps ErrTooLarge and names the
// limit, and nothing is applied. docs/controller.md ("Actions and
// operations") gives the reasons for each value.
const (
	// MaxQueuedOperations bounds a unit's pending and running operations.
	MaxQueuedOperations = 64
	// MaxRetainedOperations bounds the finished operations kept, cluster
	// wide: when one more finishes, the oldest finished (lowest id) go.
	MaxRetainedOperations = 1000
	// MaxOperationParamsBytes bounds an action's params (as canonical
	// JSON) and an exec's command line.
	MaxOperationParamsBytes = 16 << 10
	// MaxOperationResultsBytes bounds an operation's results (as
	// canonical JSON), an exec's output included.
	MaxOperationResultsBytes = 64 << 10
	// MaxOperationMessageBytes bounds one log message, and the final
	// message of a finish, abort or cancel.
	MaxOperationMessageBytes = 1024
	// MaxOperationMessages bounds the log messages of one operation.
	MaxOperationMessages = 100
)

// The refusals of the operation commands, wrapped with detail ("cannot
// start operation 3: it is completed: lease: ...").
var (
	// ErrUnknownOperation: no such operation (never enqueued, or finished
	// and pruned; see MaxRetainedOperations).
	ErrUnknownOperation = errors.New("lease: operation not found")
	// ErrUnknownAction: the unit's charm defines no such action.
	ErrUnknownAction = errors.New("lease: action not defined")
	// ErrOperationStatus: the operation's status does not allow the
	// command (a cancel of a running operation, a start of a finished one).
	ErrOperationStatus = errors.New("lease: wrong operation status")
)

// ActionSpec is one action of an application's charm, as its units
// registered it.
type ActionSpec struct {
	Description string `json:"description"`
	// Schema is the JSON Schema of the action's params, a JSON object
	// (canonical: compact, keys sorted). The controller validates params
	// against it at enqueue; the state machine only keeps it.
	Schema json.RawMessage `json:"schema"`
}

// OperationMessage is one progress message of an operation (action-log),
// stamped with the global time it was applied at.
type OperationMessage struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// Operation is one action or exec enqueued for one unit. Its id is
// cluster-unique, never reused, and shown as a decimal string ("7"), as
// Juju shows its ids.
type Operation struct {
	ID   uint64 `json:"id"`
	Unit string `json:"unit"`
	// Kind is OperationAction or OperationExec.
	Kind string `json:"kind"`
	// Action and Params (a JSON object, canonical; the schema's defaults
	// inserted) are an action's; Command (run by a shell) and Timeout an
	// exec's.
	Action  string          `json:"action,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Command string          `json:"command,omitempty"`
	Timeout time.Duration   `json:"timeout,omitempty"`
	// Status is one of the Operation* statuses; Message says why an
	// operation failed, was aborted or cancelled.
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	// Results is the JSON object the unit's agent finished it with
	// (action-set's values; an exec's return code and output).
	Results json.RawMessage    `json:"results,omitempty"`
	Log     []OperationMessage `json:"log,omitempty"`
	// Enqueued, Started and Completed are global times; Started and
	// Completed are zero until then (a cancelled operation never started).
	Enqueued  time.Time `json:"enqueued"`
	Started   time.Time `json:"started,omitzero"`
	Completed time.Time `json:"completed,omitzero"`
	// Key is the enqueue's idempotency key, if it had one.
	Key string `json:"key,omitempty"`
	// ModifyIndex is the log index of the last command that changed it.
	ModifyIndex uint64 `json:"modify_index"`
}

// MaxOperationKeyBytes bounds an enqueue's idempotency key.
const MaxOperationKeyBytes = 64

// Queued reports whether the operation is pending or running.
func (o *Operation) Queued() bool {
	return o.Status == OperationPending || o.Status == OperationRunning
}

// Clone returns a deep copy.
func (o *Operation) Clone() *Operation {
	out := *o
	out.Params = bytes.Clone(o.Params)
	out.Results = bytes.Clone(o.Results)
	out.Log = slices.Clone(o.Log)
	return &out
}

// light is a copy without the params, results and log (what a listing
// shows).
func (o *Operation) light() Operation {
	out := *o
	out.Params, out.Results, out.Log = nil, nil, nil
	return out
}

// EnqueueOperation (protocol 4) queues an operation for Unit, pending,
// with the next id; the result's Operation is a copy of it. Unit
// "APP/leader" is the application's lease holder when the command is
// applied (vacant: ErrNoLeader); the operation names the unit it picked.
// Kind OperationAction needs Action, one of the actions the unit's
// application registered (else ErrUnknownAction), and Params, a JSON
// object (none: {}); OperationExec needs Command and 0 < Timeout <=
// MaxDuration. Refused, changing nothing: an unknown unit or application
// (ErrUnknownUnit, ErrUnknownApplication), a dying unit (ErrUnitDying), a
// unit with MaxQueuedOperations queued, or params or a command over
// MaxOperationParamsBytes (ErrTooLarge), a malformed command
// (ErrInvalidCommand). Retry: idempotent with a Key (at most
// MaxOperationKeyBytes; the client makes a random one per request): an
// enqueue with the key of an operation still kept changes nothing and
// answers that operation. Without one, a replay queues a second operation.
type EnqueueOperation struct {
	Key     string          `json:"key,omitempty"`
	Unit    string          `json:"unit"`
	Kind    string          `json:"kind"`
	Action  string          `json:"action,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Command string          `json:"command,omitempty"`
	Timeout time.Duration   `json:"timeout,omitempty"`
}

// StartOperation (protocol 4) moves Unit's pending operation to running
// (its agent is about to run it). Another unit's: ErrInvalidCommand; not
// pending: ErrOperationStatus. Retry: idempotent (running stays running).
type StartOperation struct {
	ID   uint64 `json:"id"`
	Unit string `json:"unit"`
}

// LogOperation (protocol 4) appends a progress message to Unit's running
// operation. Seq is the message's position (0 for the first): a Seq the
// log already has is a replay and changes nothing; one beyond its length
// is invalid. Over MaxOperationMessageBytes, or a log of
// MaxOperationMessages: ErrTooLarge. Retry: idempotent by Seq.
type LogOperation struct {
	ID      uint64 `json:"id"`
	Unit    string `json:"unit"`
	Seq     int    `json:"seq"`
	Message string `json:"message"`
}

// FinishOperation (protocol 4) ends Unit's running operation as Status,
// OperationCompleted or OperationFailed, with Results (a JSON object,
// none: absent; over MaxOperationResultsBytes: ErrTooLarge) and Message.
// Not running: ErrOperationStatus. Retry: idempotent (a replay on an
// operation already in Status changes nothing).
type FinishOperation struct {
	ID      uint64          `json:"id"`
	Unit    string          `json:"unit"`
	Status  string          `json:"status"`
	Message string          `json:"message,omitempty"`
	Results json.RawMessage `json:"results,omitempty"`
}

// AbortOperation (protocol 4) ends Unit's running operation as
// OperationAborted: its agent found it interrupted (a crash, a kill) and
// will not run it again. Not running: ErrOperationStatus. Retry:
// idempotent.
type AbortOperation struct {
	ID      uint64 `json:"id"`
	Unit    string `json:"unit"`
	Message string `json:"message,omitempty"`
}

// CancelOperation (protocol 4) ends a pending operation as
// OperationCancelled (the operator's `uniter cancel`). Running or
// finished: ErrOperationStatus. Retry: idempotent.
type CancelOperation struct {
	ID uint64 `json:"id"`
}

// Type implements Op.
func (EnqueueOperation) Type() string { return "enqueue-operation" }

// Type implements Op.
func (StartOperation) Type() string { return "start-operation" }

// Type implements Op.
func (LogOperation) Type() string { return "log-operation" }

// Type implements Op.
func (FinishOperation) Type() string { return "finish-operation" }

// Type implements Op.
func (AbortOperation) Type() string { return "abort-operation" }

// Type implements Op.
func (CancelOperation) Type() string { return "cancel-operation" }

func operationsNeed(op Op) (uint64, string) { return operationsProtocol, "actions (" + op.Type() + ")" }

// needs implements gated: the operation commands are protocol 4.
func (c EnqueueOperation) needs() (uint64, string) { return operationsNeed(c) }
func (c StartOperation) needs() (uint64, string)   { return operationsNeed(c) }
func (c LogOperation) needs() (uint64, string)     { return operationsNeed(c) }
func (c FinishOperation) needs() (uint64, string)  { return operationsNeed(c) }
func (c AbortOperation) needs() (uint64, string)   { return operationsNeed(c) }
func (c CancelOperation) needs() (uint64, string)  { return operationsNeed(c) }

// operationDecoders are the decoders of the operation commands, added to
// the command registry.
var operationDecoders = map[string]func(json.RawMessage) (Op, error){
	EnqueueOperation{}.Type(): decodeAs[EnqueueOperation],
	StartOperation{}.Type():   decodeAs[StartOperation],
	LogOperation{}.Type():     decodeAs[LogOperation],
	FinishOperation{}.Type():  decodeAs[FinishOperation],
	AbortOperation{}.Type():   decodeAs[AbortOperation],
	CancelOperation{}.Type():  decodeAs[CancelOperation],
}

// operationKey names an operation's change channel.
func operationKey(id uint64) string { return "operation:" + strconv.FormatUint(id, 10) }

// touchOperation records that o changed at index; a change of whether it
// is queued also moves its unit, whose agent watches its queue.
func (s *State) touchOperation(o *Operation, index uint64, queueChanged bool) {
	o.ModifyIndex = index
	s.Index = index
	s.touched = append(s.touched, operationKey(o.ID))
	if u := s.Units[o.Unit]; queueChanged && u != nil {
		s.touchUnit(u, index)
	}
}

// tooLarge is the refusal of a value over a limit.
func tooLarge(what, format string, args ...any) Result {
	return fail(fmt.Errorf("cannot %s: %s: %w", what, fmt.Sprintf(format, args...), ErrTooLarge))
}

// canonicalObject checks that raw is one JSON object and returns it
// compact with sorted keys (numbers kept exactly as written).
func canonicalObject(raw json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if m == nil {
		return nil, errors.New("not a JSON object: null")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("trailing data after the JSON object")
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c EnqueueOperation) apply(s *State, index uint64) Result {
	const what = "enqueue operation"
	op := &Operation{Kind: c.Kind, Action: c.Action, Command: c.Command, Timeout: c.Timeout}
	switch c.Kind {
	case OperationAction:
		if c.Action == "" || c.Command != "" || c.Timeout != 0 {
			return invalid(what, "an action needs an action name, and no command or timeout")
		}
		raw := c.Params
		if len(raw) == 0 {
			raw = json.RawMessage("{}")
		}
		params, err := canonicalObject(raw)
		if err != nil {
			return invalid(what, "params: %v", err)
		}
		if len(params) > MaxOperationParamsBytes {
			return tooLarge(what, "params are %d bytes; the limit is %d", len(params), MaxOperationParamsBytes)
		}
		op.Params = params
	case OperationExec:
		switch {
		case strings.TrimSpace(c.Command) == "" || c.Action != "" || len(c.Params) != 0:
			return invalid(what, "an exec needs a command, and no action or params")
		case !validDuration(c.Timeout):
			return invalid(what, "exec timeout %v out of range (0, %v]", c.Timeout, MaxDuration)
		case len(c.Command) > MaxOperationParamsBytes:
			return tooLarge(what, "command is %d bytes; the limit is %d", len(c.Command), MaxOperationParamsBytes)
		}
	default:
		return invalid(what, "unknown kind %q (want %s or %s)", c.Kind, OperationAction, OperationExec)
	}
	if len(c.Key) > MaxOperationKeyBytes {
		return invalid(what, "key is %d bytes; the limit is %d", len(c.Key), MaxOperationKeyBytes)
	}
	if o := s.operationByKey(c.Key); o != nil {
		return Result{Operation: o.Clone()} // a replay
	}
	u, res, ok := s.operationTarget(what, c.Unit)
	if !ok {
		return res
	}
	if c.Kind == OperationAction {
		if _, ok := s.Applications[u.App].Actions[c.Action]; !ok {
			return fail(fmt.Errorf("cannot %s: action %q not defined on unit %q: %w", what, c.Action, u.Name, ErrUnknownAction))
		}
	}
	if n := s.queued(u.Name); n >= MaxQueuedOperations {
		return tooLarge(what, "unit %s has %d queued operations; the limit is %d", u.Name, n, MaxQueuedOperations)
	}
	s.LastOperationID++
	op.ID, op.Unit, op.Status, op.Enqueued, op.Key = s.LastOperationID, u.Name, OperationPending, s.GlobalTime, c.Key
	s.Operations[op.ID] = op
	s.touchOperation(op, index, true)
	return Result{Operation: op.Clone()}
}

// operationTarget resolves an enqueue's unit ("APP/leader": the lease
// holder), which must be registered and alive.
func (s *State) operationTarget(what, unit string) (*Unit, Result, bool) {
	if app, ok := strings.CutSuffix(unit, "/leader"); ok && ValidApplicationName(app) {
		a, ok := s.Applications[app]
		switch {
		case !ok:
			return nil, fail(fmt.Errorf("cannot %s: application %q: %w", what, app, ErrUnknownApplication)), false
		case a.Lease.Vacant():
			return nil, fail(fmt.Errorf("cannot %s on %s: %w", what, unit, ErrNoLeader)), false
		}
		unit = a.Lease.Holder
	}
	if _, err := parseUnitName(unit); err != nil {
		return nil, invalid(what, "%v", err), false
	}
	u, ok := s.Units[unit]
	switch {
	case !ok:
		return nil, fail(fmt.Errorf("cannot %s: unit %q: %w", what, unit, ErrUnknownUnit)), false
	case u.Life != LifeAlive:
		return nil, fail(fmt.Errorf("cannot %s: unit %q: %w", what, unit, ErrUnitDying)), false
	}
	return u, Result{}, true
}

// operationByKey is the operation enqueued with key, or nil ("" has none).
func (s *State) operationByKey(key string) *Operation {
	if key == "" {
		return nil
	}
	for _, o := range s.Operations {
		if o.Key == key {
			return o
		}
	}
	return nil
}

// queued counts unit's pending and running operations.
func (s *State) queued(unit string) int {
	n := 0
	for _, o := range s.Operations {
		if o.Unit == unit && o.Queued() {
			n++
		}
	}
	return n
}

// unitOperation finds operation id, which must be unit's.
func (s *State) unitOperation(what string, id uint64, unit string) (*Operation, Result, bool) {
	o, ok := s.Operations[id]
	if !ok {
		return nil, fail(fmt.Errorf("cannot %s %d: %w", what, id, ErrUnknownOperation)), false
	}
	if o.Unit != unit {
		return nil, invalid(fmt.Sprintf("%s %d", what, id), "it is unit %s's, not %q's", o.Unit, unit), false
	}
	return o, Result{}, true
}

// wrongStatus is the refusal of a command the operation's status forbids.
func wrongStatus(what string, o *Operation, detail string) Result {
	return Result{Err: fmt.Errorf("cannot %s %d: it is %s%s: %w", what, o.ID, o.Status, detail, ErrOperationStatus),
		Operation: o.Clone()}
}

func (c StartOperation) apply(s *State, index uint64) Result {
	const what = "start operation"
	o, res, ok := s.unitOperation(what, c.ID, c.Unit)
	if !ok {
		return res
	}
	switch o.Status {
	case OperationRunning:
		return Result{Operation: o.Clone()}
	case OperationPending:
	default:
		return wrongStatus(what, o, "")
	}
	o.Status, o.Started = OperationRunning, s.GlobalTime
	s.touchOperation(o, index, true)
	return Result{Operation: o.Clone()}
}

func (c LogOperation) apply(s *State, index uint64) Result {
	const what = "log to operation"
	switch {
	case c.Message == "":
		return invalid(what+" "+strconv.FormatUint(c.ID, 10), "empty message")
	case len(c.Message) > MaxOperationMessageBytes:
		return tooLarge(what+" "+strconv.FormatUint(c.ID, 10), "message is %d bytes; the limit is %d",
			len(c.Message), MaxOperationMessageBytes)
	}
	o, res, ok := s.unitOperation(what, c.ID, c.Unit)
	if !ok {
		return res
	}
	switch {
	case o.Status != OperationRunning:
		return wrongStatus(what, o, ", not running")
	case c.Seq < 0 || c.Seq > len(o.Log):
		return invalid(fmt.Sprintf("%s %d", what, o.ID), "message %d given, but the log has %d", c.Seq, len(o.Log))
	case c.Seq < len(o.Log):
		return Result{} // a replay
	case len(o.Log) >= MaxOperationMessages:
		return tooLarge(fmt.Sprintf("%s %d", what, o.ID), "operation has %d messages; the limit is %d",
			len(o.Log), MaxOperationMessages)
	}
	o.Log = append(o.Log, OperationMessage{Time: s.GlobalTime, Message: c.Message})
	s.touchOperation(o, index, false)
	return Result{}
}

func (c FinishOperation) apply(s *State, index uint64) Result {
	const what = "finish operation"
	if c.Status != OperationCompleted && c.Status != OperationFailed {
		return invalid(what, "status %q (want %s or %s)", c.Status, OperationCompleted, OperationFailed)
	}
	if len(c.Message) > MaxOperationMessageBytes {
		return tooLarge(what, "message is %d bytes; the limit is %d", len(c.Message), MaxOperationMessageBytes)
	}
	var results json.RawMessage
	if len(c.Results) > 0 {
		var err error
		if results, err = canonicalObject(c.Results); err != nil {
			return invalid(what, "results: %v", err)
		}
		if len(results) > MaxOperationResultsBytes {
			return tooLarge(what, "results are %d bytes; the limit is %d", len(results), MaxOperationResultsBytes)
		}
	}
	o, res, ok := s.unitOperation(what, c.ID, c.Unit)
	if !ok {
		return res
	}
	switch o.Status {
	case c.Status:
		return Result{Operation: o.Clone()}
	case OperationRunning:
	default:
		return wrongStatus(what, o, ", not running")
	}
	o.Results, o.Message = results, c.Message
	s.end(o, c.Status, index)
	return Result{Operation: o.Clone()}
}

func (c AbortOperation) apply(s *State, index uint64) Result {
	const what = "abort operation"
	if len(c.Message) > MaxOperationMessageBytes {
		return tooLarge(what, "message is %d bytes; the limit is %d", len(c.Message), MaxOperationMessageBytes)
	}
	o, res, ok := s.unitOperation(what, c.ID, c.Unit)
	if !ok {
		return res
	}
	switch o.Status {
	case OperationAborted:
		return Result{Operation: o.Clone()}
	case OperationRunning:
	default:
		return wrongStatus(what, o, ", not running")
	}
	o.Message = c.Message
	s.end(o, OperationAborted, index)
	return Result{Operation: o.Clone()}
}

func (c CancelOperation) apply(s *State, index uint64) Result {
	const what = "cancel operation"
	o, ok := s.Operations[c.ID]
	if !ok {
		return fail(fmt.Errorf("cannot %s %d: %w", what, c.ID, ErrUnknownOperation))
	}
	switch o.Status {
	case OperationCancelled:
		return Result{Operation: o.Clone()}
	case OperationPending:
	default:
		return wrongStatus(what, o, "; only a pending operation can be cancelled")
	}
	o.Message = "cancelled"
	s.end(o, OperationCancelled, index)
	return Result{Operation: o.Clone()}
}

// end gives o its final status at the global time, then prunes the
// oldest finished operations past MaxRetainedOperations.
func (s *State) end(o *Operation, status string, index uint64) {
	o.Status, o.Completed = status, s.GlobalTime
	s.touchOperation(o, index, true)
	var finished []uint64
	for id, op := range s.Operations {
		if !op.Queued() {
			finished = append(finished, id)
		}
	}
	if len(finished) <= MaxRetainedOperations {
		return
	}
	slices.Sort(finished)
	for _, id := range finished[:len(finished)-MaxRetainedOperations] {
		s.touchOperation(s.Operations[id], index, false)
		delete(s.Operations, id)
	}
}

// endUnitOperations ends a deregistered unit's queue: pending operations
// are cancelled and running ones aborted (no agent is left to finish
// them).
func (s *State) endUnitOperations(unit string, index uint64) {
	for _, id := range slices.Sorted(maps.Keys(s.Operations)) {
		o := s.Operations[id]
		if o.Unit != unit || !o.Queued() {
			continue
		}
		status := OperationCancelled
		if o.Status == OperationRunning {
			status = OperationAborted
		}
		o.Message = "unit " + unit + " was removed"
		s.end(o, status, index)
	}
}

// validActionSpecs checks the actions of a registration: valid names
// (Juju's rule: lower-case letters, digits and inner hyphens) and a
// schema that is a JSON object. It returns them canonical.
func validActionSpecs(actions map[string]ActionSpec) (map[string]ActionSpec, error) {
	if actions == nil {
		return nil, nil
	}
	out := make(map[string]ActionSpec, len(actions))
	for _, name := range slices.Sorted(maps.Keys(actions)) {
		if !validActionName(name) {
			return nil, fmt.Errorf("invalid action name %q", name)
		}
		schema, err := canonicalObject(actions[name].Schema)
		if err != nil {
			return nil, fmt.Errorf("action %q schema: %v", name, err)
		}
		out[name] = ActionSpec{Description: actions[name].Description, Schema: schema}
	}
	return out, nil
}

// validActionName is Juju's action name rule,
// ^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$, by hand.
func validActionName(name string) bool {
	if name == "" || name[0] == '-' || name[len(name)-1] == '-' {
		return false
	}
	for _, c := range []byte(name) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// setActions replaces a's actions with non-nil, canonical actions.
func (s *State) setActions(a *Application, actions map[string]ActionSpec, index uint64) {
	if actions == nil || (a.Actions != nil && maps.EqualFunc(a.Actions, actions, equalSpec)) {
		return
	}
	a.Actions = cloneActions(actions)
	s.touchApp(a, index)
}

func equalSpec(a, b ActionSpec) bool {
	return a.Description == b.Description && bytes.Equal(a.Schema, b.Schema)
}

// cloneActions deep-copies an application's actions, keeping nil nil.
func cloneActions(in map[string]ActionSpec) map[string]ActionSpec {
	if in == nil {
		return nil
	}
	out := make(map[string]ActionSpec, len(in))
	for k, a := range in {
		a.Schema = bytes.Clone(a.Schema)
		out[k] = a
	}
	return out
}

// cloneOperations deep-copies the operations.
func cloneOperations(in map[uint64]*Operation) map[uint64]*Operation {
	out := make(map[uint64]*Operation, len(in))
	for id, o := range in {
		out[id] = o.Clone()
	}
	return out
}

// hasOperationState reports whether s holds operations or actions, which
// only snapshot format 3 carries.
func (s *State) hasOperationState() bool {
	if len(s.Operations) > 0 || s.LastOperationID != 0 {
		return true
	}
	for _, a := range s.Applications {
		if a != nil && a.Actions != nil {
			return true
		}
	}
	return false
}

var operationStatuses = []string{OperationPending, OperationRunning, OperationCompleted,
	OperationFailed, OperationCancelled, OperationAborted}

// validateOperations checks the operations' invariants.
func (s *State) validateOperations() error {
	finished := 0
	for id, o := range s.Operations {
		if err := s.validateOperation(id, o); err != nil {
			return fmt.Errorf("invalid operation %d: %w", id, err)
		}
		if !o.Queued() {
			finished++
		}
	}
	if finished > MaxRetainedOperations {
		return fmt.Errorf("%d finished operations kept; the limit is %d", finished, MaxRetainedOperations)
	}
	for name, a := range s.Applications {
		if _, err := validActionSpecs(a.Actions); err != nil {
			return fmt.Errorf("invalid application %q: %w", name, err)
		}
	}
	return nil
}

func (s *State) validateOperation(id uint64, o *Operation) error {
	switch {
	case o == nil:
		return errors.New("missing record")
	case o.ID != id || id == 0 || id > s.LastOperationID:
		return fmt.Errorf("record has id %d (last id %d)", o.ID, s.LastOperationID)
	case !slices.Contains(operationStatuses, o.Status):
		return fmt.Errorf("unknown status %q", o.Status)
	case o.Kind != OperationAction && o.Kind != OperationExec:
		return fmt.Errorf("unknown kind %q", o.Kind)
	case o.ModifyIndex > s.Index:
		return fmt.Errorf("modify index %d is beyond state index %d", o.ModifyIndex, s.Index)
	case o.Queued() && s.Units[o.Unit] == nil:
		return fmt.Errorf("queued for unit %q, which is not registered", o.Unit)
	case o.Status == OperationPending && !o.Started.IsZero(), o.Status == OperationRunning && o.Started.IsZero():
		return fmt.Errorf("%s with start time %v", o.Status, o.Started)
	case o.Queued() != o.Completed.IsZero():
		return fmt.Errorf("%s with completion time %v", o.Status, o.Completed)
	}
	return nil
}

// normalizeOperations makes a missing operations map empty, so that a
// decoded state is identical to the one encoded.
func (s *State) normalizeOperations() {
	if s.Operations == nil {
		s.Operations = map[uint64]*Operation{} // formats 1 and 2, or none yet
	}
}

// OperationFilter selects operations: each non-empty field must match
// (Statuses: any of them).
type OperationFilter struct {
	App      string
	Unit     string
	Statuses []string
}

func (f OperationFilter) keep(o *Operation) bool {
	switch {
	case f.Unit != "" && o.Unit != f.Unit:
		return false
	case f.App != "" && !strings.HasPrefix(o.Unit, f.App+"/"):
		return false
	case len(f.Statuses) > 0 && !slices.Contains(f.Statuses, o.Status):
		return false
	}
	return true
}

// Operation returns a copy of operation id and whether it exists.
func (f *FSM) Operation(id uint64) (Operation, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	o, ok := f.state.Operations[id]
	if !ok {
		return Operation{}, false
	}
	return *o.Clone(), true
}

// Operations returns the operations filter selects, sorted by id, without
// their params, results and log (Operation has them).
func (f *FSM) Operations(filter OperationFilter) []Operation {
	return read(f, func(s *State) []Operation {
		// Filter, then sort what is kept: a unit's watch reads its queue
		// on every wake-up, among all the operations kept.
		var out []Operation
		for _, o := range s.Operations {
			if filter.keep(o) {
				out = append(out, o.light())
			}
		}
		slices.SortFunc(out, func(a, b Operation) int { return cmp.Compare(a.ID, b.ID) })
		return out
	})
}

// UnitQueue returns the unit's pending and running operations, oldest
// first, without params, results and log: what its agent watches.
func (f *FSM) UnitQueue(unit string) []Operation {
	return f.Operations(OperationFilter{Unit: unit, Statuses: []string{OperationPending, OperationRunning}})
}

// OperationIndex is the modify index of operation id, or State.Index if
// there is no such operation (pruned, or not there yet).
func (s *State) OperationIndex(id uint64) uint64 {
	if o, ok := s.Operations[id]; ok {
		return o.ModifyIndex
	}
	return s.Index
}

// OperationIndex returns operation id's modify index (State.OperationIndex).
func (f *FSM) OperationIndex(id uint64) uint64 {
	return read(f, func(s *State) uint64 { return s.OperationIndex(id) })
}

// WatchOperation is WatchApplication for an operation's modify index: an
// operation pruned, or not there yet, is woken by any change.
func (f *FSM) WatchOperation(id uint64) <-chan struct{} {
	return f.watchKey(operationKey(id), func(s *State) bool { return s.Operations[id] != nil })
}

// WaitOperation is WaitIndex for operation id's modify index.
func (f *FSM) WaitOperation(ctx context.Context, id uint64, after uint64) (uint64, error) {
	return f.wait(ctx, after, func(s *State) uint64 { return s.OperationIndex(id) },
		func() <-chan struct{} { return f.WatchOperation(id) })
}
