package client_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
)

const opBody = `{"operation":{"id":"7","unit":"db/0","kind":"action","action":"greet","params":{"n":12345678901234567890},` +
	`"status":"running","enqueued":"2026-01-01T00:00:00Z","started":"2026-01-01T00:00:01Z"}}`

// TestOperationRequests: each operation method's path, method and body,
// and the operation it decodes.
func TestOperationRequests(t *testing.T) {
	s := newServer(t, 200, opBody)
	c := newClient(t, s.addr())
	ctx := t.Context()
	tests := []struct {
		call         func() error
		method, path string
		body         string
	}{
		{func() error {
			return c.Register(ctx, api.RegisterUnitRequest{Unit: "db/0", Token: "tok",
				Actions: map[string]api.ActionSpec{"greet": {Description: "d", Schema: json.RawMessage(`{"type":"object"}`)}}})
		}, "POST", "/v1/units", `{"unit":"db/0","token":"tok","config_schema":null,"actions":{"greet":{"description":"d","schema":{"type":"object"}}}}`},
		{func() error { _, err := c.Actions(ctx, "db"); return err }, "GET", "/v1/applications/db/actions", ``},
		{func() error {
			_, _, err := c.Enqueue(ctx, api.EnqueueRequest{Key: "k", Unit: "db/leader", Action: "greet", Params: json.RawMessage(`{"name":"x"}`)})
			return err
		}, "POST", "/v1/operations", `{"key":"k","unit":"db/leader","action":"greet","params":{"name":"x"}}`},
		{func() error {
			_, err := c.Operations(ctx, client.OperationFilter{App: "db", Unit: "db/0", Statuses: []string{"pending", "running"}})
			return err
		}, "GET", "/v1/operations?app=db&status=pending%2Crunning&unit=db%2F0", ``},
		{func() error { _, err := c.Operations(ctx, client.OperationFilter{}); return err }, "GET", "/v1/operations", ``},
		{func() error { _, _, err := c.WatchOperation(ctx, "7", 5, time.Second); return err }, "GET", "/v1/operations/7?index=5&wait=1s", ``},
		{func() error { _, err := c.Operation(ctx, "7"); return err }, "GET", "/v1/operations/7", ``},
		{func() error { _, err := c.CancelOperation(ctx, "7"); return err }, "POST", "/v1/operations/7/cancel", ``},
		{func() error { _, err := c.StartOperation(ctx, "7"); return err }, "POST", "/v1/operations/7/start", ``},
		{func() error { return c.LogOperation(ctx, "7", 2, "half way") }, "POST", "/v1/operations/7/log", `{"seq":2,"message":"half way"}`},
		{func() error {
			_, err := c.FinishOperation(ctx, "7", api.OperationFailed, "no", map[string]any{"a": map[string]any{"b": "c"}})
			return err
		}, "POST", "/v1/operations/7/finish", `{"status":"failed","message":"no","results":{"a":{"b":"c"}}}`},
		{func() error { _, err := c.FinishOperation(ctx, "7", api.OperationCompleted, "", nil); return err },
			"POST", "/v1/operations/7/finish", `{"status":"completed"}`},
		{func() error { _, err := c.AbortOperation(ctx, "7", "agent restarted"); return err }, "POST", "/v1/operations/7/abort", `{"message":"agent restarted"}`},
	}
	for _, tt := range tests {
		if err := tt.call(); err != nil {
			t.Errorf("%s %s: %v", tt.method, tt.path, err)
			continue
		}
		r := s.last.Load().(*http.Request)
		if r.Method != tt.method || r.URL.RequestURI() != tt.path || s.body.Load() != tt.body {
			t.Errorf("got %s %s %s, want %s %s %s", r.Method, r.URL.RequestURI(), s.body.Load(), tt.method, tt.path, tt.body)
		}
	}
	o, idx, err := c.Enqueue(ctx, api.EnqueueRequest{Unit: "db/0", Action: "greet"})
	if err != nil || o.ID != "7" || o.Status != "running" || o.Started == nil || idx != 42 {
		t.Fatalf("decoded %+v, index %d, %v", o, idx, err)
	}
	if string(o.Params) != `{"n":12345678901234567890}` {
		t.Errorf("params %s: large numbers must pass untouched", o.Params)
	}
}

// TestEnqueueKeepsItsKeyAcrossRetries: the client makes one random key
// per Enqueue and sends it on every attempt, so a retry after a 503 whose
// outcome is unknown cannot queue the operation twice.
func TestEnqueueKeepsItsKeyAcrossRetries(t *testing.T) {
	busy := newServer(t, 503, `{"error":"the outcome is unknown; retry","code":"retryable"}`)
	good := newServer(t, 200, opBody)
	c := newClient(t, busy.addr(), good.addr())
	keyOf := func(s *server) string {
		var req api.EnqueueRequest
		if err := json.Unmarshal([]byte(s.body.Load().(string)), &req); err != nil {
			t.Fatal(err)
		}
		return req.Key
	}
	if _, _, err := c.EnqueueExec(t.Context(), "db/0", "ls", time.Minute); err != nil {
		t.Fatal(err)
	}
	first := keyOf(good)
	if first == "" || keyOf(busy) != first {
		t.Errorf("keys %q (refused attempt) and %q (retry): want one non-empty key", keyOf(busy), first)
	}
	if _, _, err := c.EnqueueExec(t.Context(), "db/0", "ls", time.Minute); err != nil {
		t.Fatal(err)
	}
	if keyOf(good) == first {
		t.Error("two Enqueue calls sent the same key")
	}
}

func TestOperationRefusalsMapToSentinels(t *testing.T) {
	for code, want := range map[string]error{
		"unknown-operation": api.ErrUnknownOperation, "unknown-action": api.ErrUnknownAction,
		"operation-status": api.ErrOperationStatus, "invalid-params": api.ErrInvalidParams,
	} {
		s := newServer(t, 409, `{"error":"refused","code":"`+code+`"}`)
		if _, err := newClient(t, s.addr()).CancelOperation(t.Context(), "7"); !errors.Is(err, want) || err.Error() != "refused" {
			t.Errorf("%s: %v", code, err)
		}
	}
}
