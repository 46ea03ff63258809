package controller_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
)

const (
	tokDB0 = "db0-token-0123456789abcdef"
	tokDB1 = "db1-token-0123456789abcdef"
	tokWeb = "web0-token-0123456789abcde"
)

// seed registers db/0, db/1 and web/0 (db with a config schema) and makes
// db/0 the leader of db for an hour.
func seed(t *testing.T, addr, admin string) {
	t.Helper()
	ctx := ctxTimeout(t, 30*time.Second)
	c := newClient(t, admin, addr)
	port := "80"
	schema := map[string]api.Option{"port": {Type: "int", Default: &port}, "name": {Type: "string"}}
	for unit, tok := range map[string]string{"db/0": tokDB0, "db/1": tokDB1, "web/0": tokWeb} {
		s := schema
		if !strings.HasPrefix(unit, "db/") {
			s = nil
		}
		if err := c.RegisterUnit(ctx, unit, tok, s); err != nil {
			t.Fatalf("cannot register %s: %v", unit, err)
		}
	}
	db0 := newClient(t, tokDB0, addr)
	if _, err := db0.Claim(ctx, "db", "db/0", time.Hour); err != nil {
		t.Fatalf("cannot claim: %v", err)
	}
}

// TestRefusedRequests: every request a token may not make, or that is
// malformed, gets its 4xx with a one-line JSON error, and changes nothing.
func TestRefusedRequests(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	raw := newRaw(t, c.APIAddr())
	claim0 := `{"unit":"db/0","duration":"30s"}`
	huge := `{"unit":"db/0","duration":"30s","pad":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`

	tests := []struct {
		name, method, path, token, body string
		hdr                             []string
		status                          int
		code                            string
	}{
		// Authentication.
		{"no token", "GET", "/v1/status", "", "", nil, 401, "unauthorized"},
		{"wrong token", "POST", "/v1/leases/db/claim", "nope-nope-nope-nope", claim0, nil, 401, "unauthorized"},
		{"not bearer", "GET", "/v1/status", "", "", []string{"Authorization", "Basic " + admin}, 401, "unauthorized"},
		{"empty bearer", "GET", "/v1/status", "", "", []string{"Authorization", "Bearer "}, 401, "unauthorized"},
		{"token hash as token", "GET", "/v1/status", lease.HashToken(admin), "", nil, 401, "unauthorized"},
		{"unauthenticated write", "PATCH", "/v1/applications/db/config", "", `{"changes":{"port":"1"}}`, nil, 401, "unauthorized"},
		// A unit doing admin things.
		{"unit pins", "POST", "/v1/leases/db/pin", tokDB0, `{"entity":"op","reason":"x"}`, nil, 403, "forbidden"},
		{"unit unpins", "POST", "/v1/leases/db/unpin", tokDB0, `{"entity":"op"}`, nil, 403, "forbidden"},
		{"unit steps down", "POST", "/v1/leases/db/step-down", tokDB0, "", nil, 403, "forbidden"},
		{"unit reads status", "GET", "/v1/status", tokDB0, "", nil, 403, "forbidden"},
		{"unit sets config", "PATCH", "/v1/applications/db/config", tokDB0, `{"changes":{"port":"1"}}`, nil, 403, "forbidden"},
		{"unit registers", "POST", "/v1/units", tokDB0, `{"unit":"db/5","token":"0123456789abcdef0"}`, nil, 403, "forbidden"},
		{"unit removes itself", "POST", "/v1/units/db/0/remove", tokDB0, "", nil, 403, "forbidden"},
		{"unit resolves itself", "POST", "/v1/units/db/0/resolved", tokDB0, `{"no_retry":true}`, nil, 403, "forbidden"},
		{"unit joins a node", "POST", "/v1/cluster/join", tokDB0, `{"id":"x","raft_addr":"127.0.0.1:1","api_addr":"127.0.0.1:2"}`, nil, 403, "forbidden"},
		{"unit removes a node", "DELETE", "/v1/cluster/nodes/x", tokDB0, "", nil, 403, "forbidden"},
		// A unit acting for another unit or application.
		{"claim for another unit", "POST", "/v1/leases/db/claim", tokDB1, claim0, nil, 403, "forbidden"},
		{"extend another app", "POST", "/v1/leases/web/extend", tokDB0, `{"unit":"web/0","duration":"30s"}`, nil, 403, "forbidden"},
		{"revoke another unit", "POST", "/v1/leases/db/revoke", tokDB1, `{"unit":"db/0"}`, nil, 403, "forbidden"},
		{"status of another unit", "POST", "/v1/units/db/1/status", tokDB0, `{"kind":"workload","status":"active"}`, nil, 403, "forbidden"},
		{"version of another unit", "POST", "/v1/units/web/0/application-version", tokDB0, `{"version":"1"}`, nil, 403, "forbidden"},
		{"deregister another unit", "DELETE", "/v1/units/db/1", tokDB0, "", nil, 403, "forbidden"},
		{"watch another unit", "GET", "/v1/units/db/1/watch", tokDB0, "", nil, 403, "forbidden"},
		{"read another app's lease", "GET", "/v1/leases/web", tokDB0, "", nil, 403, "forbidden"},
		{"read another app's config", "GET", "/v1/applications/db/config", tokWeb, "", nil, 403, "forbidden"},
		{"read another app's settings", "GET", "/v1/applications/db/leader-settings", tokWeb, "", nil, 403, "forbidden"},
		{"leader settings as another unit", "PATCH", "/v1/applications/db/leader-settings", tokDB1, `{"unit":"db/0","term":1,"changes":{"a":"b"}}`, nil, 403, "forbidden"},
		{"app status as another unit", "POST", "/v1/applications/db/status", tokDB1, `{"unit":"db/0","term":1,"status":"active"}`, nil, 403, "forbidden"},
		// Malformed bodies.
		{"malformed json", "POST", "/v1/leases/db/claim", tokDB0, `{"unit":`, nil, 400, "bad-request"},
		{"unknown field", "POST", "/v1/leases/db/claim", tokDB0, `{"unit":"db/0","duration":"30s","x":1}`, nil, 400, "bad-request"},
		{"trailing data", "POST", "/v1/leases/db/claim", tokDB0, claim0 + claim0, nil, 400, "bad-request"},
		{"empty body", "POST", "/v1/leases/db/claim", tokDB0, "", nil, 400, "bad-request"},
		{"array body", "POST", "/v1/leases/db/claim", tokDB0, `[1]`, nil, 400, "bad-request"},
		{"wrong type", "POST", "/v1/leases/db/claim", tokDB0, `{"unit":7,"duration":"30s"}`, nil, 400, "bad-request"},
		{"oversized body", "POST", "/v1/leases/db/claim", tokDB0, huge, nil, 413, "too-large"},
		{"body on empty endpoint", "POST", "/v1/leases/db/step-down", admin, `{"x":1}`, nil, 400, "bad-request"},
		// Bad durations.
		{"bad duration", "POST", "/v1/leases/db/claim", tokDB0, `{"unit":"db/0","duration":"30 parsecs"}`, nil, 400, "bad-request"},
		{"negative duration", "POST", "/v1/leases/db/extend", tokDB0, `{"unit":"db/0","duration":"-1s"}`, nil, 400, "bad-request"},
		{"zero duration", "POST", "/v1/leases/db/claim", tokDB0, `{"unit":"db/0","duration":"0s"}`, nil, 400, "bad-request"},
		{"duration too long", "POST", "/v1/leases/db/claim", tokDB0, `{"unit":"db/0","duration":"25h"}`, nil, 400, "bad-request"},
		{"missing duration", "POST", "/v1/leases/db/claim", tokDB0, `{"unit":"db/0"}`, nil, 400, "bad-request"},
		{"bad pin for", "POST", "/v1/leases/db/pin", admin, `{"entity":"op","for":"soon"}`, nil, 400, "bad-request"},
		{"bad wait", "GET", "/v1/leases/db?index=1&wait=forever", tokDB0, "", nil, 400, "bad-request"},
		{"bad index", "GET", "/v1/leases/db?index=-1", tokDB0, "", nil, 400, "bad-request"},
		// Bad names and values.
		{"bad app name", "POST", "/v1/leases/Bad_App/claim", admin, claim0, nil, 400, "bad-request"},
		{"bad unit name", "POST", "/v1/units", admin, `{"unit":"db-0","token":"0123456789abcdef0"}`, nil, 400, "bad-request"},
		{"unit of another app", "POST", "/v1/leases/web/claim", admin, claim0, nil, 400, "bad-request"},
		{"short token", "POST", "/v1/units", admin, `{"unit":"db/5","token":"short"}`, nil, 400, "bad-request"},
		{"bad schema type", "POST", "/v1/units", admin, `{"unit":"db/5","token":"0123456789abcdef0","config_schema":{"x":{"type":"list"}}}`, nil, 400, "bad-request"},
		{"bad default", "POST", "/v1/units", admin, `{"unit":"db/5","token":"0123456789abcdef0","config_schema":{"x":{"type":"int","default":"ten"}}}`, nil, 400, "invalid-command"},
		{"admin token as unit token", "POST", "/v1/units", admin, `{"unit":"db/5","token":"` + admin + `"}`, nil, 400, "bad-request"},
		{"another unit's token", "POST", "/v1/units", admin, `{"unit":"db/5","token":"` + tokDB1 + `"}`, nil, 400, "bad-request"},
		{"missing entity", "POST", "/v1/leases/db/pin", admin, `{"reason":"x"}`, nil, 400, "bad-request"},
		{"empty config key", "PATCH", "/v1/applications/db/config", admin, `{"changes":{"":"x"}}`, nil, 400, "bad-request"},
		{"config not in schema", "PATCH", "/v1/applications/db/config", admin, `{"changes":{"colour":"red"}}`, nil, 400, "invalid-config"},
		{"config of wrong type", "PATCH", "/v1/applications/db/config", admin, `{"changes":{"port":"eighty"}}`, nil, 400, "invalid-config"},
		{"bad status kind", "POST", "/v1/units/db/0/status", tokDB0, `{"kind":"mood","status":"active"}`, nil, 400, "bad-request"},
		{"bad status", "POST", "/v1/units/db/0/status", tokDB0, `{"kind":"workload","status":"happy"}`, nil, 400, "invalid-command"},
		{"bad join address", "POST", "/v1/cluster/join", admin, `{"id":"n9","raft_addr":"nowhere","api_addr":"127.0.0.1:2"}`, nil, 400, "bad-request"},
		// Unknown things.
		{"unknown app", "POST", "/v1/leases/nope/pin", admin, `{"entity":"op"}`, nil, 404, "unknown-application"},
		{"unknown app lease", "GET", "/v1/leases/nope", admin, "", nil, 404, "unknown-application"},
		{"unknown app config", "PATCH", "/v1/applications/nope/config", admin, `{"changes":{"a":"b"}}`, nil, 404, "unknown-application"},
		{"unknown unit", "POST", "/v1/units/db/9/resolved", admin, "", nil, 404, "unknown-unit"},
		{"unknown unit claims", "POST", "/v1/leases/db/claim", admin, `{"unit":"db/9","duration":"30s"}`, nil, 404, "unknown-unit"},
		{"unknown unit watch", "GET", "/v1/units/db/9/watch", admin, "", nil, 404, "unknown-unit"},
		{"unknown node", "DELETE", "/v1/cluster/nodes/nope", admin, "", nil, 404, "not-found"},
		{"unknown endpoint", "GET", "/v1/nothing", admin, "", nil, 404, "not-found"},
		{"wrong method", "GET", "/v1/leases/db/claim", admin, "", nil, 405, "method-not-allowed"},
		// Lease refusals.
		{"claim denied", "POST", "/v1/leases/db/claim", tokDB1, `{"unit":"db/1","duration":"30s"}`, nil, 409, "claim-denied"},
		{"extend by non-holder", "POST", "/v1/leases/db/extend", tokDB1, `{"unit":"db/1","duration":"30s"}`, nil, 409, "not-holder"},
		{"fenced leader settings", "PATCH", "/v1/applications/db/leader-settings", tokDB1, `{"unit":"db/1","term":1,"changes":{"a":"b"}}`, nil, 409, "not-leader"},
		{"stale term", "PATCH", "/v1/applications/db/leader-settings", tokDB0, `{"unit":"db/0","term":7,"changes":{"a":"b"}}`, nil, 409, "not-leader"},
		{"unpin unpinned", "POST", "/v1/leases/db/unpin", admin, `{"entity":"op"}`, nil, 409, "not-pinned"},
		{"pin vacant", "POST", "/v1/leases/web/pin", admin, `{"entity":"op"}`, nil, 409, "no-leader"},
		{"re-register with another token", "POST", "/v1/units", admin, `{"unit":"db/0","token":"another-token-0123456"}`, nil, 409, "unit-exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := stableState(c)
			resp := raw.json(tt.method, tt.path, tt.token, tt.body, tt.hdr...)
			if resp.status != tt.status {
				t.Errorf("status %d, want %d (body %s)", resp.status, tt.status, resp.body)
			}
			checkErrorBody(t, resp, tt.code)
			if diff := cmp.Diff(before, stableState(c), cmpopts.IgnoreUnexported(lease.State{})); diff != "" {
				t.Errorf("refused request changed the state (-before +after):\n%s", diff)
			}
		})
	}
}

// checkErrorBody: one line of JSON with an error message and the code.
func checkErrorBody(t *testing.T, resp rawResp, code string) {
	t.Helper()
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if bytes.Count(resp.body, []byte("\n")) != 1 || !bytes.HasSuffix(resp.body, []byte("\n")) {
		t.Errorf("error body is not one line: %q", resp.body)
	}
	var e api.Error
	mustJSON(t, resp.body, &e)
	if e.Error == "" || e.Code != code {
		t.Errorf("error body %s, want code %q", resp.body, code)
	}
}

// TestClaimDeniedShowsHolder: a 409 carries the lease, and the client
// returns it with an error matching the lease sentinel.
func TestClaimDeniedShowsHolder(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 30*time.Second)
	db1 := newClient(t, tokDB1, c.APIAddr())
	l, err := db1.Claim(ctx, "db", "db/1", time.Minute)
	if !errors.Is(err, api.ErrClaimDenied) {
		t.Fatalf("claim: %v, want claim denied", err)
	}
	if l.Holder != "db/0" || l.Term != 1 || l.Duration != time.Hour {
		t.Errorf("denied claim shows lease %+v, want db/0's", l)
	}
	resp := newRaw(t, c.APIAddr()).json("POST", "/v1/leases/db/claim", tokDB1, `{"unit":"db/1","duration":"30s"}`)
	var e api.Error
	mustJSON(t, resp.body, &e)
	if e.Lease == nil || e.Lease.Holder != "db/0" {
		t.Errorf("409 body %s has no lease", resp.body)
	}
	if resp.status != http.StatusConflict {
		t.Errorf("status %d", resp.status)
	}
}
