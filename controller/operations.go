package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/charm"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
)

// errInvalidParams marks action params the action's schema refuses: 400
// invalid-params.
var errInvalidParams = errors.New("controller: invalid action params")

// operationsProtocol is the controller protocol of actions and exec.
const operationsProtocol = 4

// operationRoutes registers the endpoints of actions and operations
// (doc.go has them in its table).
func (s *Server) operationRoutes() {
	s.handle("GET /v1/applications/{app}/actions", local, s.getActions)
	s.handle("POST /v1/operations", write, s.enqueueOperation)
	s.handle("GET /v1/operations", local, s.listOperations)
	s.handle("GET /v1/operations/{id}", blocking, s.getOperation)
	s.handle("POST /v1/operations/{id}/cancel", write, s.cancelOperation)
	s.handle("POST /v1/operations/{id}/start", write, s.startOperation)
	s.handle("POST /v1/operations/{id}/log", write, s.logOperation)
	s.handle("POST /v1/operations/{id}/finish", write, s.finishOperation)
	s.handle("POST /v1/operations/{id}/abort", write, s.abortOperation)
}

// leaseActions converts (and checks) a registration's actions: names by
// Juju's rule, schemas that compile. nil stays nil, and so do actions sent
// to a cluster below protocol 4, which cannot hold them: the unit is
// registered without them (enqueuing needs protocol 4 anyway), and a
// registration after the upgrade brings them.
func (s *Server) leaseActions(in map[string]api.ActionSpec, unit string) (map[string]lease.ActionSpec, error) {
	if in == nil {
		return nil, nil
	}
	out := make(map[string]lease.ActionSpec, len(in))
	for _, name := range slices.Sorted(maps.Keys(in)) {
		a := in[name]
		if !charm.ValidActionName(name) {
			return nil, badRequest("invalid action name %q", name)
		}
		if _, err := compileSchema(a.Schema); err != nil {
			return nil, badRequest("invalid params schema for action %q: %v", name, err)
		}
		out[name] = lease.ActionSpec{Description: a.Description, Schema: a.Schema}
	}
	// Decided on the raft leader (a follower forwards the request, and the
	// leader runs this again): a follower may lag the version's raise.
	if v := s.node.FSM().EffectiveVersion(); v < operationsProtocol && s.node.IsLeader() {
		s.log.Info().Str("unit", unit).Uint64("protocol", v).
			Msg("registering unit without its charm's actions: the cluster runs a protocol before actions")
		return nil, nil
	}
	return out, nil
}

// compileSchema compiles an action's JSON Schema.
func compileSchema(raw json.RawMessage) (*charm.Schema, error) {
	var doc any
	if err := decodeNumbers(raw, &doc); err != nil {
		return nil, err
	}
	return charm.CompileSchema(doc)
}

// decodeNumbers decodes one JSON value, numbers as json.Number (exact).
func decodeNumbers(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func (s *Server) getActions(rq *request) error {
	app, err := s.readApp(rq)
	if err != nil {
		return err
	}
	a, ok := s.node.FSM().Application(app)
	if !ok {
		return &denial{err: lease.ErrUnknownApplication}
	}
	out := api.ActionsResponse{Actions: make(map[string]api.ActionSpec, len(a.Actions))}
	for name, spec := range a.Actions {
		out.Actions[name] = api.ActionSpec{Description: spec.Description, Schema: spec.Schema}
	}
	writeJSON(rq.w, http.StatusOK, out)
	return nil
}

func (s *Server) enqueueOperation(rq *request) error {
	if err := requireAdmin(rq, "enqueue operations"); err != nil {
		return err
	}
	var body api.EnqueueRequest
	if err := rq.decode(&body); err != nil {
		return err
	}
	app, err := enqueueTarget(body.Unit)
	if err != nil {
		return err
	}
	if !s.node.IsLeader() {
		// Params are checked against the schema the leader's state has:
		// a follower may lag a registration.
		return errForward
	}
	if err := lease.RefuseNewer(lease.EnqueueOperation{}, s.node.FSM().EffectiveVersion()); err != nil {
		return err // before the schema, which a cluster below actions does not have
	}
	op := lease.EnqueueOperation{Key: body.Key, Unit: body.Unit}
	switch {
	case body.Action != "" && body.Command == "" && body.Timeout == "":
		op.Kind, op.Action = lease.OperationAction, body.Action
		if op.Params, err = s.checkParams(app, body.Unit, body.Action, body.Params); err != nil {
			return err
		}
	case body.Command != "" && body.Action == "" && len(body.Params) == 0:
		op.Kind, op.Command = lease.OperationExec, body.Command
		if op.Timeout, err = execTimeout(body.Timeout); err != nil {
			return err
		}
	default:
		return badRequest("give either an action (with params) or a command (with a timeout)")
	}
	res, err := s.apply(rq, op)
	if err != nil {
		return err
	}
	return operationAnswer(rq, res)
}

// enqueueTarget checks an enqueue's unit, APP/N or APP/leader, and returns
// its application.
func enqueueTarget(unit string) (string, error) {
	if app, ok := strings.CutSuffix(unit, "/leader"); ok && lease.ValidApplicationName(app) {
		return app, nil
	}
	app, err := lease.UnitApplication(unit)
	if err != nil {
		return "", badRequest("invalid unit %q: want APP/N or APP/leader", unit)
	}
	return app, nil
}

func execTimeout(s string) (time.Duration, error) {
	if s == "" {
		return api.DefaultExecTimeout, nil
	}
	d, err := api.ParseDuration(s, false)
	if err != nil {
		return 0, badRequest("bad timeout: %v", err)
	}
	if d <= 0 || d > lease.MaxDuration {
		return 0, badRequest("timeout %s out of range (0, %s]", s, lease.MaxDuration)
	}
	return d, nil
}

// checkParams validates an action's params against the schema the
// application's units registered and returns them with the schema's
// defaults inserted, as Juju does before it enqueues an action.
func (s *Server) checkParams(app, unit, action string, raw json.RawMessage) (json.RawMessage, error) {
	a, ok := s.node.FSM().Application(app)
	if !ok {
		if strings.HasSuffix(unit, "/leader") {
			return nil, &denial{err: lease.ErrUnknownApplication}
		}
		return nil, &denial{err: fmt.Errorf("unit %q: %w", unit, lease.ErrUnknownUnit)}
	}
	spec, ok := a.Actions[action]
	if !ok {
		return nil, &denial{err: fmt.Errorf("action %q not defined on application %q (%s): %w",
			action, app, actionNames(a.Actions), lease.ErrUnknownAction)}
	}
	schema, err := compileSchema(spec.Schema)
	if err != nil {
		return nil, fmt.Errorf("cannot compile the schema of action %q: %w", action, err)
	}
	params := map[string]any{}
	if len(raw) > 0 && string(raw) != "null" {
		if err := decodeNumbers(raw, &params); err != nil || params == nil {
			return nil, badRequest("params of action %q are not a JSON object", action)
		}
	}
	if err := schema.Validate(params); err != nil {
		return nil, &httpError{status: http.StatusBadRequest, code: api.CodeInvalidParams,
			msg: fmt.Sprintf("cannot run action %q: %v", action, err)}
	}
	out, err := json.Marshal(schema.InsertDefaults(params))
	if err != nil {
		return nil, fmt.Errorf("cannot encode params: %w", err)
	}
	return out, nil
}

// actionNames says which actions an application has, for a refusal.
func actionNames(actions map[string]lease.ActionSpec) string {
	switch {
	case actions == nil:
		return "its units registered no actions; 'uniter unit add' registers the charm's actions.yaml"
	case len(actions) == 0:
		return "its charm defines no actions"
	}
	return "its actions: " + strings.Join(slices.Sorted(maps.Keys(actions)), ", ")
}

// operationAnswer answers an operation write with the operation, and its
// modify index in X-Uniter-Index: a blocking read of the operation from
// that index waits for its next change on any node.
func operationAnswer(rq *request, res lease.Result) error {
	if res.Operation == nil {
		return ok(rq, res)
	}
	rq.w.Header().Set(api.HeaderIndex, strconv.FormatUint(res.Operation.ModifyIndex, 10))
	writeJSON(rq.w, http.StatusOK, api.OperationResponse{Operation: apiOperation(*res.Operation)})
	return nil
}

// operationParam is the {id} of the path.
func operationParam(rq *request) (uint64, error) {
	v := rq.r.PathValue("id")
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil || id == 0 || strconv.FormatUint(id, 10) != v {
		return 0, badRequest("invalid operation id %q", v)
	}
	return id, nil
}

func (s *Server) listOperations(rq *request) error {
	if err := requireAdmin(rq, "list operations"); err != nil {
		return err
	}
	q := rq.r.URL.Query()
	f := lease.OperationFilter{App: q.Get("app"), Unit: q.Get("unit")}
	if f.App != "" && !lease.ValidApplicationName(f.App) {
		return badRequest("invalid application name %q", f.App)
	}
	if _, err := lease.UnitApplication(f.Unit); f.Unit != "" && err != nil {
		return badRequest("invalid unit name %q", f.Unit)
	}
	if v := q.Get("status"); v != "" {
		for st := range strings.SplitSeq(v, ",") {
			if !slices.Contains(api.OperationStatuses, st) {
				return badRequest("unknown operation status %q (want %s)", st, strings.Join(api.OperationStatuses, ", "))
			}
			f.Statuses = append(f.Statuses, st)
		}
	}
	out := api.OperationsResponse{Operations: []api.Operation{}}
	for _, o := range s.node.FSM().Operations(f) {
		out.Operations = append(out.Operations, apiOperation(o))
	}
	writeJSON(rq.w, http.StatusOK, out)
	return nil
}

// getOperation is a blocking query on one operation: the admin's, or its
// unit's agent's.
func (s *Server) getOperation(rq *request) error {
	id, err := operationParam(rq)
	if err != nil {
		return err
	}
	fsm := s.node.FSM()
	if !rq.who.admin {
		if o, ok := fsm.Operation(id); ok && o.Unit != rq.who.unit {
			return forbidden("unit %s may not read operation %d of unit %s", rq.who.unit, id, o.Unit)
		}
	}
	idx, err := s.block(rq, func() uint64 { return fsm.OperationIndex(id) },
		func() <-chan struct{} { return fsm.WatchOperation(id) }, nil)
	if err != nil {
		return err
	}
	o, ok := fsm.Operation(id)
	switch {
	case !ok:
		return &denial{err: fmt.Errorf("operation %d: %w", id, lease.ErrUnknownOperation)}
	case !rq.who.admin && o.Unit != rq.who.unit:
		return forbidden("unit %s may not read operation %d of unit %s", rq.who.unit, id, o.Unit)
	}
	rq.w.Header().Set(api.HeaderIndex, strconv.FormatUint(idx, 10))
	writeJSON(rq.w, http.StatusOK, api.OperationResponse{Operation: apiOperation(o)})
	return nil
}

func (s *Server) cancelOperation(rq *request) error {
	if err := requireAdmin(rq, "cancel operations"); err != nil {
		return err
	}
	id, err := operationParam(rq)
	if err != nil {
		return err
	}
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	res, err := s.apply(rq, lease.CancelOperation{ID: id})
	if err != nil {
		return err
	}
	return operationAnswer(rq, res)
}

// ownOperation checks that the principal is the agent of operation id's
// unit: only it may start, log to, finish or abort the operation (not
// another unit, and not the admin, who could fake results). It is checked
// on the raft leader, whose state is authoritative.
func (s *Server) ownOperation(rq *request, what string, body any, optional bool) (uint64, error) {
	id, err := operationParam(rq)
	if err != nil {
		return 0, err
	}
	if rq.who.unit == "" {
		return 0, forbidden("only the agent of the operation's unit may %s it", what)
	}
	if err := rq.decodeBody(body, optional); err != nil {
		return 0, err
	}
	if !s.node.IsLeader() {
		return 0, errForward
	}
	o, ok := s.node.FSM().Operation(id)
	switch {
	case !ok:
		return 0, &denial{err: fmt.Errorf("operation %d: %w", id, lease.ErrUnknownOperation)}
	case o.Unit != rq.who.unit:
		return 0, forbidden("unit %s may not %s operation %d of unit %s", rq.who.unit, what, id, o.Unit)
	}
	return id, nil
}

func (s *Server) startOperation(rq *request) error {
	id, err := s.ownOperation(rq, "start", &struct{}{}, true)
	if err != nil {
		return err
	}
	res, err := s.apply(rq, lease.StartOperation{ID: id, Unit: rq.who.unit})
	if err != nil {
		return err
	}
	return operationAnswer(rq, res)
}

func (s *Server) logOperation(rq *request) error {
	var body api.LogRequest
	id, err := s.ownOperation(rq, "log to", &body, false)
	if err != nil {
		return err
	}
	res, err := s.apply(rq, lease.LogOperation{ID: id, Unit: rq.who.unit, Seq: body.Seq, Message: body.Message})
	if err != nil {
		return err
	}
	return ok(rq, res)
}

func (s *Server) finishOperation(rq *request) error {
	var body api.FinishRequest
	id, err := s.ownOperation(rq, "finish", &body, false)
	if err != nil {
		return err
	}
	res, err := s.apply(rq, lease.FinishOperation{ID: id, Unit: rq.who.unit, Status: body.Status,
		Message: body.Message, Results: body.Results})
	if err != nil {
		return err
	}
	return operationAnswer(rq, res)
}

func (s *Server) abortOperation(rq *request) error {
	var body api.AbortRequest
	id, err := s.ownOperation(rq, "abort", &body, true)
	if err != nil {
		return err
	}
	res, err := s.apply(rq, lease.AbortOperation{ID: id, Unit: rq.who.unit, Message: body.Message})
	if err != nil {
		return err
	}
	return operationAnswer(rq, res)
}

// apiOperation is an operation's wire form.
func apiOperation(o lease.Operation) api.Operation {
	out := api.Operation{
		ID: strconv.FormatUint(o.ID, 10), Unit: o.Unit, Kind: o.Kind, Action: o.Action, Params: o.Params,
		Command: o.Command, Status: o.Status, Message: o.Message, Results: o.Results, Enqueued: o.Enqueued,
	}
	if o.Timeout > 0 {
		out.Timeout = o.Timeout.String()
	}
	for _, m := range o.Log {
		out.Log = append(out.Log, api.OperationMessage{Time: m.Time, Message: m.Message})
	}
	if !o.Started.IsZero() {
		out.Started = &o.Started
	}
	if !o.Completed.IsZero() {
		out.Completed = &o.Completed
	}
	return out
}

// apiQueue is a unit's queue as its watch shows it.
func apiQueue(ops []lease.Operation) []api.QueuedOperation {
	out := make([]api.QueuedOperation, 0, len(ops))
	for _, o := range ops {
		out = append(out, api.QueuedOperation{ID: strconv.FormatUint(o.ID, 10), Kind: o.Kind, Action: o.Action, Status: o.Status})
	}
	return out
}
