package controller

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/lease/raftnode"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
)

// principal is who a request's bearer token names: the admin, a
// controller node (which may only announce itself), or one unit.
type principal struct {
	admin bool
	node  bool
	unit  string // "app/N" for a unit token
	app   string
}

func (p principal) String() string {
	switch {
	case p.admin:
		return "admin"
	case p.node:
		return "node"
	case p.unit == "":
		return "none"
	}
	return p.unit
}

// request is one authenticated API call.
type request struct {
	ctx  context.Context
	w    http.ResponseWriter
	r    *http.Request
	who  principal
	body []byte // the whole body, at most MaxBodyBytes
}

// httpError is an answer other than 2xx that is not a lease error.
type httpError struct {
	status int
	code   string
	msg    string
	leader string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, code: api.CodeBadRequest, msg: fmt.Sprintf(format, args...)}
}

func forbidden(format string, args ...any) error {
	return &httpError{status: http.StatusForbidden, code: api.CodeForbidden, msg: "forbidden: " + fmt.Sprintf(format, args...)}
}

func unavailable(leader, format string, args ...any) error {
	return &httpError{status: http.StatusServiceUnavailable, code: api.CodeUnavailable, msg: fmt.Sprintf(format, args...), leader: leader}
}

var errUnauthorized = &httpError{status: http.StatusUnauthorized, code: api.CodeUnauthorized, msg: "unauthorized"}

// denial is a lease command's refusal, with the lease as it stands.
type denial struct {
	err   error
	lease *lease.Lease
}

func (d *denial) Error() string { return d.err.Error() }
func (d *denial) Unwrap() error { return d.err }

// hasBearer reports whether the request carries a bearer token at all.
func hasBearer(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// authenticate finds the principal of the request's bearer token. The token
// is only ever hashed, compared in constant time and dropped.
func (s *Server) authenticate(r *http.Request) (principal, error) {
	if !hasBearer(r) {
		return principal{}, errUnauthorized
	}
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	hash := lease.HashToken(token)
	if subtle.ConstantTimeCompare([]byte(hash), []byte(s.cfg.AdminTokenHash)) == 1 {
		return principal{admin: true}, nil
	}
	if subtle.ConstantTimeCompare([]byte(hash), []byte(s.nodeHash)) == 1 {
		return principal{node: true}, nil
	}
	if name, app, ok := s.node.FSM().UnitIdentity(hash); ok {
		return principal{unit: name, app: app}, nil
	}
	return principal{}, errUnauthorized
}

// readBody reads the whole body, refusing more than MaxBodyBytes with 413.
// A request without a body (every GET: net/http gives it http.NoBody)
// reads nothing and allocates nothing, so a parked blocking query holds
// no buffer of its own.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, &httpError{status: http.StatusRequestEntityTooLarge, code: api.CodeTooLarge,
			msg: fmt.Sprintf("request body is larger than %d bytes", limit)}
	case err != nil:
		return nil, badRequest("cannot read request body: %v", err)
	}
	return data, nil
}

// DecodeRequest decodes body strictly into v: exactly one JSON object, no
// unknown fields, no trailing data. An empty body decodes as {} when
// optional. Errors are one line and name the problem.
func DecodeRequest(body []byte, v any, optional bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return errors.New("empty request body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed request body: %s", oneLine(err.Error()))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("malformed request body: trailing data after the JSON object")
	}
	return nil
}

func (rq *request) decode(v any) error { return rq.decodeBody(v, false) }

func (rq *request) decodeOptional(v any) error { return rq.decodeBody(v, true) }

// decodeBody decodes the request body strictly into v (see DecodeRequest);
// a malformed body is a 400.
func (rq *request) decodeBody(v any, optional bool) error {
	if err := DecodeRequest(rq.body, v, optional); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	status, data := jsonBody(status, v)
	writeBody(w, status, data)
}

// jsonBody is v as a JSON document and its newline, answered with
// status; if v does not encode, a 500 and an internal error.
func jsonBody(status int, v any) (int, []byte) {
	data, err := json.Marshal(v)
	if err != nil {
		return http.StatusInternalServerError, []byte(`{"error":"cannot encode response","code":"internal"}` + "\n")
	}
	return status, append(data, '\n')
}

// writeBody answers status with data, a JSON document and its newline.
func writeBody(w http.ResponseWriter, status int, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(data)
}

// errorResponse maps err to a status and a one-line error body.
func errorResponse(err error) (int, api.Error) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, api.Error{Error: oneLine(he.msg), Code: he.code, Leader: he.leader}
	}
	body := api.Error{Error: oneLine(err.Error()), Code: errorCode(err)}
	var d *denial
	if errors.As(err, &d) && d.lease != nil {
		l := apiLease(*d.lease)
		body.Lease = &l
	}
	switch {
	case errors.Is(err, lease.ErrUnknownApplication), errors.Is(err, lease.ErrUnknownUnit),
		errors.Is(err, lease.ErrUnknownRelation), errors.Is(err, lease.ErrUnknownOperation),
		errors.Is(err, lease.ErrUnknownAction):
		return http.StatusNotFound, body
	case errors.Is(err, lease.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, body
	case isInvalid(err):
		return http.StatusBadRequest, body
	case isTransient(err):
		if body.Code == "" {
			body.Code = api.CodeUnavailable
		}
		return http.StatusServiceUnavailable, api.Error{Error: body.Error, Code: body.Code}
	case body.Code != "":
		return http.StatusConflict, body
	}
	return http.StatusInternalServerError, api.Error{Error: body.Error, Code: api.CodeInternal}
}

// isTransient reports whether a raft call failed in a way a retry (maybe
// on another node) can fix: 503.
func isTransient(err error) bool {
	return errors.Is(err, raftnode.ErrRetryable) || errors.Is(err, raftnode.ErrNodeClosed) ||
		errors.Is(err, raftnode.ErrNotRaftLeader) || errors.Is(err, context.DeadlineExceeded)
}

// statusRecorder remembers the status a handler wrote, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

// Unwrap gives http.ResponseController the connection's writer (a
// parked watch hijacks the connection through it).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// since is the time elapsed from start on the server's clock.
func (s *Server) since(start time.Time) time.Duration { return s.cfg.Clock.Now().Sub(start) }
