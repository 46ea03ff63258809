package client_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/controller/api"
)

// TestRelationRequests: each relation method sends its request to its
// path with its body.
func TestRelationRequests(t *testing.T) {
	s := newServer(t, 200, `{}`)
	c := newClient(t, s.addr())
	ctx := t.Context()
	tests := []struct {
		name         string
		call         func() error
		method, path string
		body         string
	}{
		{"relate", func() error { _, err := c.AddRelation(ctx, "web:db", "db"); return err },
			"POST", "/v1/relations", `{"endpoints":["web:db","db"]}`},
		{"remove", func() error { return c.RemoveRelation(ctx, "db:3") }, "DELETE", "/v1/relations/db:3", ``},
		{"list", func() error { _, err := c.Relations(ctx); return err }, "GET", "/v1/relations", ``},
		{"list an application's", func() error { _, err := c.ApplicationRelations(ctx, "web"); return err },
			"GET", "/v1/applications/web/relations", ``},
		{"read", func() error { _, err := c.Relation(ctx, "3"); return err }, "GET", "/v1/relations/3", ``},
		{"watch", func() error { _, _, err := c.WatchRelation(ctx, "3", 9, time.Second); return err },
			"GET", "/v1/relations/3?index=9&wait=1s", ``},
		{"enter", func() error {
			_, err := c.EnterScope(ctx, "3", "web/0", map[string]string{"private-address": "10.0.0.1"})
			return err
		},
			"POST", "/v1/relations/3/enter-scope", `{"unit":"web/0","data":{"private-address":"10.0.0.1"}}`},
		{"enter without data", func() error { _, err := c.EnterScope(ctx, "3", "web/0", nil); return err },
			"POST", "/v1/relations/3/enter-scope", `{"unit":"web/0"}`},
		{"leave", func() error { return c.LeaveScope(ctx, "3", "web/0") }, "POST", "/v1/relations/3/leave-scope", `{"unit":"web/0"}`},
		{"unit data", func() error {
			_, err := c.SetUnitRelationData(ctx, "db:3", "web/0", map[string]string{"a": "1", "b": ""})
			return err
		},
			"PATCH", "/v1/relations/db:3/unit-data", `{"unit":"web/0","changes":{"a":"1","b":""}}`},
		{"unit data, nothing", func() error { _, err := c.SetUnitRelationData(ctx, "3", "web/0", nil); return err },
			"PATCH", "/v1/relations/3/unit-data", `{"unit":"web/0","changes":{}}`},
		{"app data", func() error {
			_, err := c.SetAppRelationData(ctx, "3", "web/0", 4, map[string]string{"a": "1"})
			return err
		},
			"PATCH", "/v1/relations/3/app-data", `{"unit":"web/0","term":4,"changes":{"a":"1"}}`},
		{"commit", func() error {
			return c.CommitRelationData(ctx, "web/0", 4, []api.RelationCommit{
				{Relation: "db:3", Unit: map[string]string{"a": "1"}, App: map[string]string{"t": ""}}, {Relation: "0"}})
		}, "POST", "/v1/units/web/0/relation-data", `{"term":4,"relations":[{"relation":"db:3","unit":{"a":"1"},"app":{"t":""}},{"relation":"0"}]}`},
		{"empty commit", func() error { return c.CommitRelationData(ctx, "web/0", 0, nil) },
			"POST", "/v1/units/web/0/relation-data", `{"relations":[]}`},
		{"register with endpoints", func() error {
			return c.Register(ctx, api.RegisterUnitRequest{Unit: "db/0", Token: "tok",
				Endpoints: map[string]api.Endpoint{"cluster": {Role: "peer", Interface: "db-peers"}}})
		}, "POST", "/v1/units", `{"unit":"db/0","token":"tok","config_schema":null,"endpoints":{"cluster":{"role":"peer","interface":"db-peers"}}}`},
		{"register without endpoints", func() error {
			return c.Register(ctx, api.RegisterUnitRequest{Unit: "db/0", Token: "tok", Endpoints: map[string]api.Endpoint{}})
		}, "POST", "/v1/units", `{"unit":"db/0","token":"tok","config_schema":null,"endpoints":{}}`},
		{"register leaving the endpoints alone", func() error { return c.RegisterUnit(ctx, "db/0", "tok", nil) },
			"POST", "/v1/units", `{"unit":"db/0","token":"tok","config_schema":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatalf("%s %s: %v", tt.method, tt.path, err)
			}
			r := s.last.Load().(*http.Request)
			if r.Method != tt.method || r.URL.RequestURI() != tt.path || s.body.Load() != tt.body {
				t.Errorf("got %s %s %s, want %s %s %s", r.Method, r.URL.RequestURI(), s.body.Load(), tt.method, tt.path, tt.body)
			}
		})
	}
}

// TestRelationAnswers: the answers decode into the API's types, and the
// refusals match their api sentinels.
func TestRelationAnswers(t *testing.T) {
	ctx := t.Context()
	rel := `{"relation":{"id":3,"key":"web:db db:server","endpoints":[{"app":"web","name":"db","role":"requirer","interface":"pgsql"},` +
		`{"app":"db","name":"server","role":"provider","interface":"pgsql"}],"interface":"pgsql","peer":false,"life":"alive",` +
		`"scope":["db/0","web/0"],"app_data":{"db":{"values":{"host":"h"},"version":7}},"modify_index":9}}`
	r, err := newClient(t, newServer(t, 200, rel).addr()).Relation(ctx, "3")
	if err != nil {
		t.Fatal(err)
	}
	if remote, ok := r.Remote("web"); !ok || remote.String() != "db:server" || r.AppData["db"].Values["host"] != "h" ||
		!cmp.Equal(r.Scope, []string{"db/0", "web/0"}) {
		t.Errorf("relation %+v", r)
	}
	if _, ok := r.Endpoint("report"); ok {
		t.Error("report is no endpoint of the relation")
	}
	v, err := newClient(t, newServer(t, 200, `{"index":12,"version":12}`).addr()).SetUnitRelationData(ctx, "3", "web/0", map[string]string{"a": "1"})
	if err != nil || v != 12 {
		t.Errorf("version %d, %v", v, err)
	}
	for _, tc := range []struct {
		status int
		body   string
		want   error
	}{
		{404, `{"error":"relation 3: lease: relation not found","code":"unknown-relation"}`, api.ErrUnknownRelation},
		{409, `{"error":"cannot commit relation data of relation 3: not the leader","code":"not-leader"}`, api.ErrNotLeader},
		{409, `{"error":"x","code":"not-in-scope"}`, api.ErrNotInScope},
		{409, `{"error":"x","code":"relation-exists"}`, api.ErrRelationExists},
		{409, `{"error":"x","code":"cannot-enter-scope"}`, api.ErrCannotEnterScope},
		{413, `{"error":"x","code":"limit-exceeded"}`, api.ErrLimitExceeded},
		{409, `{"error":"x","code":"needs-protocol"}`, api.ErrNeedsProtocol},
	} {
		c := newClient(t, newServer(t, tc.status, tc.body).addr())
		if err := c.CommitRelationData(ctx, "web/0", 1, []api.RelationCommit{{Relation: "3"}}); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.body, err, tc.want)
		}
	}
}

// TestRelationArgumentsCheckedBeforeSending: a malformed id, endpoint or
// unit, and a key or value over the databag limits, are refused without
// a request, with the sentinel the controller would answer.
func TestRelationArgumentsCheckedBeforeSending(t *testing.T) {
	s := newServer(t, 200, `{}`)
	c := newClient(t, s.addr())
	ctx := t.Context()
	huge := strings.Repeat("x", api.MaxDatabagValueBytes+1)
	for _, tc := range []struct {
		name string
		call func() error
		want error
		text string
	}{
		{"a bad id", func() error { return c.RemoveRelation(ctx, "db:03") }, api.ErrInvalidCommand, `invalid relation id "db:03"`},
		{"a bad id in a commit", func() error {
			return c.CommitRelationData(ctx, "web/0", 1, []api.RelationCommit{{Relation: "x:"}})
		}, api.ErrInvalidCommand, "invalid relation id"},
		{"a bad endpoint", func() error { _, err := c.AddRelation(ctx, "web:DB", "db"); return err }, api.ErrInvalidCommand, "invalid endpoint"},
		{"a bad unit", func() error { return c.CommitRelationData(ctx, "web-0", 1, nil) }, api.ErrInvalidCommand, "malformed unit name"},
		{"a value over the limit", func() error {
			_, err := c.SetUnitRelationData(ctx, "3", "web/0", map[string]string{"k": huge})
			return err
		}, api.ErrLimitExceeded, `cannot set relation data of relation 3: value of "k" is 262145 bytes; the limit is 262144`},
		{"a key over the limit", func() error {
			_, err := c.EnterScope(ctx, "3", "web/0", map[string]string{strings.Repeat("k", 257): "v"})
			return err
		}, api.ErrLimitExceeded, "bytes; the limit is 256"},
		{"an application value over the limit in a commit", func() error {
			return c.CommitRelationData(ctx, "web/0", 1, []api.RelationCommit{{Relation: "3", App: map[string]string{"k": huge}}})
		}, api.ErrLimitExceeded, "cannot commit relation data of relation 3: value of"},
	} {
		if err := tc.call(); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v, want %v %q", tc.name, err, tc.want, tc.text)
		}
	}
	if n := s.hits.Load(); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}
