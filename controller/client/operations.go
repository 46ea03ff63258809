package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/controller/api"
)

func operationPath(id, rest string) string {
	return "/v1/operations/" + url.PathEscape(id) + rest
}

// Register registers a unit (admin) with everything the request carries:
// the charm's config schema, actions and relation endpoints (actions and
// endpoints need controller protocol 4). RegisterUnit is its short form.
func (c *Client) Register(ctx context.Context, req api.RegisterUnitRequest) error {
	return c.write(ctx, http.MethodPost, "/v1/units", req)
}

// Actions returns the actions app's units registered (admin, or a unit of
// app), by name.
func (c *Client) Actions(ctx context.Context, app string) (map[string]api.ActionSpec, error) {
	var out api.ActionsResponse
	_, err := c.do(ctx, call{method: http.MethodGet, path: appPath(app, "/actions"), out: &out})
	return out.Actions, err
}

// Enqueue queues an action or an exec (admin) and returns the operation,
// which names the unit an APP/leader request went to, and its modify
// index (see WatchOperation). Without a key in req, it makes a random one,
// so that its own retries cannot queue the operation twice. Params the
// action's schema refuses match api.ErrInvalidParams; an action the charm
// lacks, api.ErrUnknownAction; a vacant APP/leader, api.ErrNoLeader.
func (c *Client) Enqueue(ctx context.Context, req api.EnqueueRequest) (api.Operation, uint64, error) {
	if req.Key == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return api.Operation{}, 0, fmt.Errorf("cannot make enqueue key: %w", err)
		}
		req.Key = hex.EncodeToString(b)
	}
	return c.operationCall(ctx, http.MethodPost, "/v1/operations", req)
}

// EnqueueAction queues action on unit (APP/N or APP/leader) with params
// (nil: none), which are sent as JSON.
func (c *Client) EnqueueAction(ctx context.Context, unit, action string, params map[string]any) (api.Operation, uint64, error) {
	var raw json.RawMessage
	if params != nil {
		var err error
		if raw, err = json.Marshal(params); err != nil {
			return api.Operation{}, 0, fmt.Errorf("cannot encode params: %w", err)
		}
	}
	return c.Enqueue(ctx, api.EnqueueRequest{Unit: unit, Action: action, Params: raw})
}

// EnqueueExec queues command on unit, run by a shell in a hook context
// and killed after timeout (0: the controller's default).
func (c *Client) EnqueueExec(ctx context.Context, unit, command string, timeout time.Duration) (api.Operation, uint64, error) {
	req := api.EnqueueRequest{Unit: unit, Command: command}
	if timeout > 0 {
		req.Timeout = timeout.String()
	}
	return c.Enqueue(ctx, req)
}

// OperationFilter selects operations to list; empty fields select all.
type OperationFilter struct {
	App, Unit string
	Statuses  []string
}

// Operations lists the operations filter selects (admin), sorted by id,
// without their params, results and log.
func (c *Client) Operations(ctx context.Context, filter OperationFilter) ([]api.Operation, error) {
	q := url.Values{}
	if filter.App != "" {
		q.Set("app", filter.App)
	}
	if filter.Unit != "" {
		q.Set("unit", filter.Unit)
	}
	if len(filter.Statuses) > 0 {
		q.Set("status", strings.Join(filter.Statuses, ","))
	}
	var out api.OperationsResponse
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/operations", query: q, out: &out})
	return out.Operations, err
}

// Operation returns operation id (admin, or its unit's agent); a missing
// one matches api.ErrUnknownOperation.
func (c *Client) Operation(ctx context.Context, id string) (api.Operation, error) {
	o, _, err := c.WatchOperation(ctx, id, 0, 0)
	return o, err
}

// WatchOperation is WatchLease for an operation: it answers once the
// operation's modify index exceeds index (or after wait). An operation
// not yet known to the node answering (a follower a little behind the
// enqueue) is waited for as a change too, so pass the index Enqueue
// returned minus one to wait until any node has it.
func (c *Client) WatchOperation(ctx context.Context, id string, index uint64, wait time.Duration) (api.Operation, uint64, error) {
	q, timeout := c.blockingQuery(index, wait)
	var out api.OperationResponse
	h, err := c.do(ctx, call{method: http.MethodGet, path: operationPath(id, ""), query: q, out: &out, timeout: timeout})
	if err != nil {
		return api.Operation{}, 0, err
	}
	return out.Operation, headerIndex(h), nil
}

// CancelOperation cancels a pending operation (admin); a running or
// finished one matches api.ErrOperationStatus.
func (c *Client) CancelOperation(ctx context.Context, id string) (api.Operation, error) {
	o, _, err := c.operationCall(ctx, http.MethodPost, operationPath(id, "/cancel"), nil)
	return o, err
}

// StartOperation tells the controller the unit's agent starts its pending
// operation id (unit token only) and returns it, params included.
func (c *Client) StartOperation(ctx context.Context, id string) (api.Operation, error) {
	o, _, err := c.operationCall(ctx, http.MethodPost, operationPath(id, "/start"), nil)
	return o, err
}

// LogOperation adds progress message number seq (0 first) to the unit's
// running operation id (unit token only); a retry with the same seq is
// not logged twice.
func (c *Client) LogOperation(ctx context.Context, id string, seq int, message string) error {
	return c.write(ctx, http.MethodPost, operationPath(id, "/log"), api.LogRequest{Seq: seq, Message: message})
}

// FinishOperation ends the unit's running operation id as completed or
// failed, with results (nil: none) and a message (unit token only).
func (c *Client) FinishOperation(ctx context.Context, id, status, message string, results map[string]any) (api.Operation, error) {
	req := api.FinishRequest{Status: status, Message: message}
	if results != nil {
		raw, err := json.Marshal(results)
		if err != nil {
			return api.Operation{}, fmt.Errorf("cannot encode results: %w", err)
		}
		req.Results = raw
	}
	o, _, err := c.operationCall(ctx, http.MethodPost, operationPath(id, "/finish"), req)
	return o, err
}

// AbortOperation ends the unit's running operation id as aborted (unit
// token only): its agent found it interrupted and will not run it again.
func (c *Client) AbortOperation(ctx context.Context, id, message string) (api.Operation, error) {
	o, _, err := c.operationCall(ctx, http.MethodPost, operationPath(id, "/abort"), api.AbortRequest{Message: message})
	return o, err
}

func (c *Client) operationCall(ctx context.Context, method, path string, body any) (api.Operation, uint64, error) {
	var out api.OperationResponse
	h, err := c.do(ctx, call{method: method, path: path, body: body, out: &out})
	if err != nil {
		return api.Operation{}, 0, err
	}
	return out.Operation, headerIndex(h), nil
}
