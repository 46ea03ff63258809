package client_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/pki"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// server is a canned controller: it answers every request with status and
// body, and counts and records the requests.
type server struct {
	*httptest.Server
	hits atomic.Int32
	last atomic.Value // *http.Request with its body read into lastBody
	body atomic.Value // string
}

func newServer(t *testing.T, status int, body string) *server {
	s := &server{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		data, _ := io.ReadAll(r.Body)
		s.last.Store(r)
		s.body.Store(string(data))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(api.HeaderIndex, "42")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) addr() string { return strings.TrimPrefix(s.URL, "https://") }

// testCA is the certificate of every httptest TLS server (they share
// one), PEM: the CA the test clients pin.
var testCA = sync.OnceValue(func() []byte {
	s := httptest.NewTLSServer(http.NotFoundHandler())
	defer s.Close()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
})

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func newClient(t *testing.T, addrs ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Addresses: addrs, Token: "secret-token", Timeout: 5 * time.Second, CACert: testCA()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

const leaseBody = `{"lease":{"holder":"db/0","term":3,"start":"2026-01-01T00:00:00Z","duration":"30s","expiry":"2026-01-01T00:00:30Z","pins":[],"step_down":false}}`

func TestFailsOverToTheNextAddress(t *testing.T) {
	good := newServer(t, 200, leaseBody)
	c := newClient(t, deadAddr(t), good.addr())
	for range 3 {
		l, err := c.Claim(t.Context(), "db", "db/0", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if l.Holder != "db/0" || l.Term != 3 || l.Duration != 30*time.Second {
			t.Errorf("lease %+v", l)
		}
	}
	if n := good.hits.Load(); n != 3 {
		t.Errorf("good server hit %d times, want 3", n)
	}
	r := good.last.Load().(*http.Request)
	if r.Header.Get("Authorization") != "Bearer secret-token" || r.URL.Path != "/v1/leases/db/claim" || r.Method != "POST" {
		t.Errorf("request %s %s %v", r.Method, r.URL, r.Header)
	}
	if diff := cmp.Diff(`{"unit":"db/0","duration":"30s"}`, good.body.Load()); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

// hintingServer answers every request 200 with body, naming leader as the
// raft leader on writes as a real node does.
func hintingServer(t *testing.T, body string, leader *string) *server {
	s := &server{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.Method != http.MethodGet && *leader != "" {
			w.Header().Set(api.HeaderLeader, *leader)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestWritesFollowTheLeaderHint(t *testing.T) {
	tests := []struct {
		name       string
		hint       func(follower, leader *server) string
		wantLeader int32 // writes that reached the leader, of 5
	}{
		{"hint names one of the client's addresses", func(_, l *server) string { return l.addr() }, 4},
		{"hint names an address the client was not given", func(_, _ *server) string { return "203.0.113.9:17070" }, 0},
		{"no hint", func(_, _ *server) string { return "" }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hint string
			follower := hintingServer(t, leaseBody, &hint)
			leader := hintingServer(t, leaseBody, &hint)
			hint = tt.hint(follower, leader)
			c := newClient(t, follower.addr(), leader.addr())
			for range 5 {
				if _, err := c.Claim(t.Context(), "db", "db/0", 30*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if got := leader.hits.Load(); got != tt.wantLeader {
				t.Errorf("leader got %d of 5 writes, want %d (follower %d)", got, tt.wantLeader, follower.hits.Load())
			}
			// Reads stay where reads last succeeded: the first address.
			before := follower.hits.Load()
			if _, _, err := c.WatchLease(t.Context(), "db", 0, 0); err != nil {
				t.Fatal(err)
			}
			if follower.hits.Load() != before+1 {
				t.Errorf("read did not go to the follower")
			}
		})
	}
}

// TestWritesIgnoreAHintTheyCannotReach: a leader this client cannot reach
// (it accepts, never answers) costs one write its timeout; the writes after
// it stay on the follower that answers, instead of each waiting it out.
func TestWritesIgnoreAHintTheyCannotReach(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	var held sync.WaitGroup
	conns := make(chan net.Conn, 16)
	held.Go(func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			attempts.Add(1)
			conns <- conn // hold it open, unanswered
		}
	})
	t.Cleanup(func() {
		silent.Close()
		held.Wait()
		close(conns)
		for conn := range conns {
			conn.Close()
		}
	})
	hint := silent.Addr().String()
	follower := hintingServer(t, leaseBody, &hint)
	c, err := client.New(client.Config{Addresses: []string{follower.addr(), hint}, Token: "secret-token", Timeout: 300 * time.Millisecond, CACert: testCA()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for i := range 5 {
		if _, err := c.Claim(t.Context(), "db", "db/0", 30*time.Second); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("%d writes went to the unreachable leader, want 1", n)
	}
	if n := follower.hits.Load(); n != 5 {
		t.Errorf("the follower answered %d writes, want 5", n)
	}
}

func TestRetriesUnavailable(t *testing.T) {
	busy := newServer(t, 503, `{"error":"controller node n2 is not the raft leader","code":"unavailable"}`)
	good := newServer(t, 200, `{"index":7}`)
	c := newClient(t, busy.addr(), good.addr())
	if err := c.SetConfig(t.Context(), "db", map[string]string{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	if busy.hits.Load() != 1 || good.hits.Load() != 1 {
		t.Errorf("hits: busy %d, good %d", busy.hits.Load(), good.hits.Load())
	}
	// Only 503s: bounded retries, then an error saying so.
	c = newClient(t, busy.addr())
	err := c.SetConfig(t.Context(), "db", map[string]string{"a": "b"})
	if !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "not the raft leader") {
		t.Errorf("all unavailable: %v", err)
	}
	// Within the 5 s budget: pauses of 50, 100, ... 1000 ms doubling, each
	// jittered to half to all of it: 7 to 15 rounds (plus the first try).
	if n := busy.hits.Load(); n < 3 || n > 16 {
		t.Errorf("busy server hit %d times in all", n)
	}
}

func TestRetriesHonourContext(t *testing.T) {
	busy := newServer(t, 503, `{"error":"no leader","code":"unavailable"}`)
	c := newClient(t, busy.addr())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	if err := c.RequestStepDown(ctx, "db"); err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancelled call took %v", d)
	}
}

// TestErrorsMapToSentinels: refusals are never retried and match the
// lease sentinels (or the client's).
func TestErrorsMapToSentinels(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   error
		msg    string
	}{
		{401, `{"error":"unauthorized","code":"unauthorized"}`, client.ErrUnauthorized, "unauthorized"},
		{403, `{"error":"forbidden: unit db/1 may not act as unit db/0","code":"forbidden"}`, client.ErrForbidden, "forbidden: unit db/1 may not act as unit db/0"},
		{409, `{"error":"not the leader","code":"not-leader"}`, api.ErrNotLeader, "not the leader"},
		{409, `{"error":"application has no leader","code":"no-leader"}`, api.ErrNoLeader, "application has no leader"},
		{404, `{"error":"lease: unknown unit","code":"unknown-unit"}`, api.ErrUnknownUnit, "lease: unknown unit"},
		{400, `{"error":"cannot set config: unknown option \"x\": lease: invalid config","code":"invalid-config"}`, api.ErrInvalidConfig, `cannot set config: unknown option "x": lease: invalid config`},
		{400, `{"error":"malformed request body: x","code":"bad-request"}`, nil, "malformed request body: x"},
		{500, `not json`, nil, "controller answered 500 Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			s := newServer(t, tt.status, tt.body)
			other := newServer(t, 200, `{}`)
			c := newClient(t, s.addr(), other.addr())
			err := c.SetLeaderSettings(t.Context(), "db", "db/0", 1, map[string]string{"a": "b"})
			if err == nil || err.Error() != tt.msg {
				t.Errorf("error %v, want %q", err, tt.msg)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v does not match %v", err, tt.want)
			}
			if client.StatusCode(err) != tt.status {
				t.Errorf("status %d", client.StatusCode(err))
			}
			if s.hits.Load() != 1 || other.hits.Load() != 0 {
				t.Errorf("refusal retried: %d, %d hits", s.hits.Load(), other.hits.Load())
			}
		})
	}
}

func TestClaimDeniedReturnsTheLease(t *testing.T) {
	s := newServer(t, 409, `{"error":"lease: claim denied","code":"claim-denied","lease":`+strings.TrimSuffix(strings.TrimPrefix(leaseBody, `{"lease":`), "}")+`}`)
	l, err := newClient(t, s.addr()).Claim(t.Context(), "db", "db/1", time.Minute)
	if !errors.Is(err, api.ErrClaimDenied) || l.Holder != "db/0" || l.Term != 3 {
		t.Errorf("denied claim: %+v, %v", l, err)
	}
}

func TestLeaseAnswersCarryTheirIndex(t *testing.T) {
	denied := `{"error":"lease: step-down pending","code":"step-down-pending","lease":` + strings.TrimSuffix(strings.TrimPrefix(leaseBody, `{"lease":`), "}") + `}`
	ok := newServer(t, 200, leaseBody)
	if l, i, err := newClient(t, ok.addr()).ClaimWithIndex(t.Context(), "db", "db/0", time.Minute); err != nil || i != 42 || l.Holder != "db/0" {
		t.Errorf("claim = %+v, %d, %v; want db/0's lease at index 42", l, i, err)
	}
	refused := newServer(t, 409, denied)
	if l, i, err := newClient(t, refused.addr()).ExtendWithIndex(t.Context(), "db", "db/0", time.Minute, 3); !errors.Is(err, api.ErrStepDownPending) || i != 42 || l.Term != 3 {
		t.Errorf("extend = %+v, %d, %v; want the step-down denial with the lease at index 42", l, i, err)
	}
	// An older controller sends no index with a denial: 0, not an error.
	old := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(409)
		io.WriteString(w, denied)
	}))
	t.Cleanup(old.Close)
	if l, i, err := newClient(t, strings.TrimPrefix(old.URL, "https://")).ClaimWithIndex(t.Context(), "db", "db/0", time.Minute); !errors.Is(err, api.ErrStepDownPending) || i != 0 || l.Holder != "db/0" {
		t.Errorf("claim from an older controller = %+v, %d, %v; want the denial, its lease and index 0", l, i, err)
	}
}

func TestUnreachable(t *testing.T) {
	a, b := deadAddr(t), deadAddr(t)
	_, err := newClient(t, a).Status(t.Context())
	if want := "cannot reach controller at " + a + ": connection refused"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if !errors.Is(err, client.ErrUnreachable) {
		t.Errorf("%v is not ErrUnreachable", err)
	}
	_, err = newClient(t, a, b).Status(t.Context())
	want := "cannot reach controller at " + a + ": connection refused; cannot reach controller at " + b + ": connection refused"
	if err == nil || err.Error() != want || !errors.Is(err, client.ErrUnreachable) {
		t.Errorf("error %v, want %q", err, want)
	}
}

// TestRequests: each method's path, method and body.
func TestRequests(t *testing.T) {
	s := newServer(t, 200, `{}`)
	c := newClient(t, s.addr())
	ctx := t.Context()
	tests := []struct {
		call         func() error
		method, path string
		body         string
	}{
		{func() error { _, err := c.Extend(ctx, "db", "db/0", time.Minute, 2); return err },
			"POST", "/v1/leases/db/extend", `{"unit":"db/0","duration":"1m0s","term":2}`},
		{func() error { return c.Revoke(ctx, "db", "db/0", 2) }, "POST", "/v1/leases/db/revoke", `{"unit":"db/0","term":2}`},
		{func() error { return c.Pin(ctx, "db", "op", "upgrade", 10*time.Minute) }, "POST", "/v1/leases/db/pin", `{"entity":"op","reason":"upgrade","for":"10m0s"}`},
		{func() error { return c.Pin(ctx, "db", "op", "", 0) }, "POST", "/v1/leases/db/pin", `{"entity":"op","reason":""}`},
		{func() error { return c.Unpin(ctx, "db", "op") }, "POST", "/v1/leases/db/unpin", `{"entity":"op"}`},
		{func() error { return c.RequestStepDown(ctx, "db") }, "POST", "/v1/leases/db/step-down", `{}`},
		{func() error { return c.SetUnitStatus(ctx, "db/0", "workload", "active", "ok") }, "POST", "/v1/units/db/0/status", `{"kind":"workload","status":"active","message":"ok"}`},
		{func() error { return c.SetApplicationStatus(ctx, "db", "db/0", 3, "active", "") }, "POST", "/v1/applications/db/status", `{"unit":"db/0","term":3,"status":"active","message":""}`},
		{func() error { return c.SetApplicationVersion(ctx, "db/0", "1.2") }, "POST", "/v1/units/db/0/application-version", `{"version":"1.2"}`},
		{func() error { return c.RegisterUnit(ctx, "db/0", "tok", nil) }, "POST", "/v1/units", `{"unit":"db/0","token":"tok","config_schema":null}`},
		{func() error { return c.RegisterUnit(ctx, "db/0", "tok", map[string]api.Option{}) }, "POST", "/v1/units", `{"unit":"db/0","token":"tok","config_schema":{}}`},
		{func() error { return c.RemoveUnit(ctx, "db/0") }, "POST", "/v1/units/db/0/remove", ``},
		{func() error { return c.DeregisterUnit(ctx, "db/0") }, "DELETE", "/v1/units/db/0", ``},
		{func() error { return c.Resolved(ctx, "db/0", true) }, "POST", "/v1/units/db/0/resolved", `{"no_retry":true}`},
		{func() error {
			return c.Join(ctx, api.JoinRequest{ID: "n2", RaftAddr: "10.0.0.2:17071", APIAddr: "10.0.0.2:17070"})
		}, "POST", "/v1/cluster/join", `{"id":"n2","raft_addr":"10.0.0.2:17071","api_addr":"10.0.0.2:17070"}`},
		{func() error { return c.RemoveNode(ctx, "n2") }, "DELETE", "/v1/cluster/nodes/n2", ``},
		{func() error { _, _, err := c.WatchUnit(ctx, "db/0", 5, time.Second); return err }, "GET", "/v1/units/db/0/watch?index=5&wait=1s", ``},
		{func() error { _, _, err := c.WatchLease(ctx, "db", 0, time.Second); return err }, "GET", "/v1/leases/db", ``},
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
	if body, err := c.Metrics(ctx); err != nil || string(body) != `{}` {
		t.Errorf("Metrics = %q, %v; want the answer as it is", body, err)
	} else if r := s.last.Load().(*http.Request); r.URL.RequestURI() != "/metrics" || r.Header.Get("Authorization") == "" {
		t.Errorf("Metrics asked %s with authorization %q", r.URL.RequestURI(), r.Header.Get("Authorization"))
	}
	if _, idx, err := c.WatchLease(ctx, "db", 3, 0); err != nil || idx != 42 {
		t.Errorf("index %d, %v", idx, err)
	}
	if err := c.SetUnitStatus(ctx, "db-0", "workload", "active", ""); !errors.Is(err, api.ErrInvalidCommand) {
		t.Errorf("bad unit name: %v", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	ca := testCA()
	for _, cfg := range []client.Config{
		{Token: "t", CACert: ca},
		{Addresses: []string{"127.0.0.1:1"}, CACert: ca},
		{Addresses: []string{"ftp://x:1"}, Token: "t", CACert: ca},
		{Addresses: []string{"https://x:1/path"}, Token: "t", CACert: ca},
		{Addresses: []string{"http://x:1"}, Token: "t", CACert: ca}, // HTTPS only
		{Addresses: []string{"127.0.0.1:1"}, Token: "t"},            // no CA pinned
		{Addresses: []string{"127.0.0.1:1"}, Token: "t", CACert: []byte("not PEM")},
		{Addresses: []string{"127.0.0.1:1"}, Token: "t", CAFingerprint: "sha256:abc"},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "client.yaml")
	f := client.File{Controller: client.FileController{Addresses: []string{"127.0.0.1:17070"}}, Token: "tok"}
	if err := client.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	got, err := client.ReadFile(path)
	f.Version = client.FileVersion
	if diff := cmp.Diff(f, got); err != nil || diff != "" {
		t.Errorf("round trip (-want +got):\n%s %v", diff, err)
	}
	for name, content := range map[string]string{
		"unknown field": "version: 1\ncontroller: {addresses: [a:1]}\ntoken: t\nextra: 1\n",
		"no token":      "version: 1\ncontroller: {addresses: [a:1]}\n",
		"no addresses":  "version: 1\ntoken: t\n",
		"future":        "version: 9\ncontroller: {addresses: [a:1]}\ntoken: t\n",
	} {
		p := filepath.Join(t.TempDir(), "client.yaml")
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := client.ReadFile(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestRetryableCodes: a 503 with a lease code is retried, and the final
// error matches both ErrUnavailable and the lease sentinel.
func TestRetryableCodes(t *testing.T) {
	s := newServer(t, 503, `{"error":"cannot apply claim: cluster time not started yet: lease: retryable raft error","code":"retryable"}`)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err := newClient(t, s.addr()).RequestStepDown(ctx, "db")
	if !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, api.ErrRetryable) {
		t.Errorf("error %v", err)
	}
	if s.hits.Load() < 2 {
		t.Errorf("not retried: %d hits", s.hits.Load())
	}
}

func TestJitterSpreadsPauses(t *testing.T) {
	d := 100 * time.Millisecond
	seen := map[time.Duration]bool{}
	for range 200 {
		j := client.Jitter(d)
		if j < d/2 || j > d {
			t.Fatalf("jitter(%v) = %v, want within [%v, %v]", d, j, d/2, d)
		}
		seen[j] = true
	}
	if len(seen) < 100 {
		t.Errorf("200 pauses took only %d distinct values", len(seen))
	}
}

func TestSetAddressesMovesTheClient(t *testing.T) {
	old := newServer(t, 200, leaseBody)
	c := newClient(t, old.addr())
	if _, err := c.Claim(t.Context(), "db", "db/0", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	moved := newServer(t, 200, leaseBody)
	dead := deadAddr(t)
	if err := c.SetAddresses([]string{dead, moved.addr(), moved.addr()}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{dead, moved.addr()}, c.Addresses()); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	old.Close() // the old address is gone from the cluster
	for range 2 {
		if _, err := c.Claim(t.Context(), "db", "db/0", 30*time.Second); err != nil {
			t.Fatalf("claim after the move: %v", err)
		}
		if _, err := c.Config(t.Context(), "db"); err != nil {
			t.Fatalf("read after the move: %v", err)
		}
	}
	if n := moved.hits.Load(); n != 4 {
		t.Errorf("the new address answered %d calls, want 4", n)
	}
	if old.hits.Load() != 1 {
		t.Errorf("the removed address was called again")
	}
	for _, bad := range [][]string{nil, {"ftp://x:1"}} {
		if err := c.SetAddresses(bad); err == nil {
			t.Errorf("SetAddresses(%q) accepted", bad)
		}
	}
	if diff := cmp.Diff([]string{dead, moved.addr()}, c.Addresses()); diff != "" {
		t.Errorf("a refused SetAddresses changed the addresses:\n%s", diff)
	}
}

func TestFollowMembersTakesTheClusterList(t *testing.T) {
	other := newServer(t, 200, leaseBody)
	var members atomic.Value
	members.Store(other.addr())
	first := &server{}
	first.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.hits.Add(1)
		w.Header().Set(api.HeaderMembers, members.Load().(string))
		io.WriteString(w, leaseBody)
	}))
	t.Cleanup(first.Close)
	var mu sync.Mutex
	var reported [][]string
	c, err := client.New(client.Config{Addresses: []string{first.addr()}, Token: "secret-token", CACert: testCA(), FollowMembers: true,
		OnMembers: func(a []string) { mu.Lock(); reported = append(reported, a); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	members.Store(first.addr() + "," + other.addr())
	for range 3 { // the same list again and again is reported once
		if _, err := c.Config(t.Context(), "db"); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{first.addr(), other.addr()}
	if !client.SameAddresses(c.Addresses(), want) {
		t.Fatalf("addresses %v, want %v", c.Addresses(), want)
	}
	mu.Lock()
	if len(reported) != 1 || !client.SameAddresses(reported[0], want) {
		t.Errorf("OnMembers calls %v, want one with %v", reported, want)
	}
	mu.Unlock()
	// The first node is removed from the cluster: its own answer says so.
	members.Store(other.addr())
	if _, err := c.Config(t.Context(), "db"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{other.addr()}, c.Addresses()); diff != "" {
		t.Errorf("addresses after the removal (-want +got):\n%s", diff)
	}
	first.Close()
	if _, err := c.Claim(t.Context(), "db", "db/0", time.Second); err != nil {
		t.Fatalf("the client did not move to the remaining member: %v", err)
	}
}

// TestClientTrustsOnlyThePinnedCA: a server whose certificate the pinned
// CA issued answers, pinned by certificate or by fingerprint alone; one
// pinning another CA never sends the request (nor its token).
func TestClientTrustsOnlyThePinnedCA(t *testing.T) {
	ca, err := pki.NewCA("cluster", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("node-1", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	pair.Certificate = append(pair.Certificate, ca.Cert.Raw) // the chain carries the CA, as a node's does
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"nodes":[]}`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "https://")
	for _, tc := range []struct {
		name string
		cfg  client.Config
		ok   bool
	}{
		{"the CA certificate", client.Config{CACert: ca.CertPEM()}, true},
		{"the CA fingerprint", client.Config{CAFingerprint: ca.Fingerprint()}, true},
		{"another CA", client.Config{CACert: other.CertPEM()}, false},
		{"another fingerprint", client.Config{CAFingerprint: other.Fingerprint()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Addresses, tc.cfg.Token, tc.cfg.Timeout = []string{addr}, "secret-token", 5*time.Second
			c, err := client.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			before := hits.Load()
			_, err = c.Nodes(t.Context())
			if tc.ok && err != nil {
				t.Fatalf("Nodes: %v", err)
			}
			if !tc.ok {
				if !errors.Is(err, client.ErrUnreachable) || !strings.Contains(err.Error(), "cannot reach controller at "+addr) {
					t.Errorf("Nodes = %v, want unreachable for a certificate failure", err)
				}
				if hits.Load() != before {
					t.Error("the request reached a server the client does not trust")
				}
			}
		})
	}
}
