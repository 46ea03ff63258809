package controller_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// parkedWatches reads the node's uniter_api_parked_watches gauge.
func parkedWatches(t *testing.T, raw *rawHTTP, admin string) int {
	t.Helper()
	r := raw.json("GET", "/metrics", admin, "")
	for line := range strings.SplitSeq(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, "uniter_api_parked_watches "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("gauge line %q: %v", line, err)
			}
			return int(n)
		}
	}
	t.Fatalf("no uniter_api_parked_watches in /metrics (status %d)", r.status)
	return 0
}

// waitParked waits until n unit watches are parked on the node.
func waitParked(t *testing.T, raw *rawHTTP, admin string, n int) {
	t.Helper()
	testutil.WaitUntil(t, 10*time.Second, fmt.Sprintf("%d parked watches", n), func() bool {
		return parkedWatches(t, raw, admin) == n
	})
}

type watchResult struct {
	w   client.UnitWatch
	err error
}

// TestParkedWatchAnswersEveryChange: an agent's unit watch that has to
// wait is parked (the gauge says so), and whatever changes next, its unit
// (status), its application (config, lease) or both, wakes it with a
// newer index and the new state; round after round, on one client, so
// every round parks a connection the HTTP server was given back. A lost
// wake-up would leave the watch waiting its whole minute, past the test's
// deadline.
func TestParkedWatchAnswersEveryChange(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 60*time.Second)
	raw := newRaw(t, c.APIAddr())
	op, db0, db1 := newClient(t, admin, c.APIAddr()), newClient(t, tokDB0, c.APIAddr()), newClient(t, tokDB1, c.APIAddr())
	w, err := db1.WatchUnitStream(ctx, "db/1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	changes := []struct {
		what  string
		do    func(i int) error
		check func(v api.UnitView) bool
	}{
		{"unit status", func(i int) error {
			return db1.SetUnitStatus(ctx, "db/1", "workload", "active", fmt.Sprint("round ", i))
		}, nil},
		{"config", func(i int) error {
			return op.SetConfig(ctx, "db", map[string]string{"name": fmt.Sprint("n", i)})
		}, func(v api.UnitView) bool { return v.ConfigVersion > w.View.ConfigVersion }},
		{"lease claim or extend", func(int) error {
			_, err := db0.Claim(ctx, "db", "db/0", time.Minute)
			return err
		}, func(v api.UnitView) bool { return v.Lease.Holder == "db/0" }},
	}
	for i := range 30 {
		change := changes[i%len(changes)]
		got := make(chan watchResult, 1)
		go func() {
			next, err := db1.WatchUnitStream(ctx, "db/1", w.Index, time.Minute)
			got <- watchResult{next, err}
		}()
		waitParked(t, raw, admin, 1)
		if err := change.do(i); err != nil {
			t.Fatalf("round %d, %s: %v", i, change.what, err)
		}
		r := <-got
		if r.err != nil || r.w.Index <= w.Index {
			t.Fatalf("round %d, %s: the parked watch answered index %d (was %d): %v", i, change.what, r.w.Index, w.Index, r.err)
		}
		if change.check != nil && !change.check(r.w.View) {
			t.Fatalf("round %d, %s: the change is not in the answer: %+v", i, change.what, r.w.View)
		}
		w = r.w
	}
	if n := parkedWatches(t, raw, admin); n != 0 {
		t.Fatalf("%d watches still parked after every one was answered", n)
	}
}

// tracedGet is a GET on raw's client that reports whether it went over a
// connection used before. It may run in any goroutine.
func tracedGet(raw *rawHTTP, path, token string) (status int, header http.Header, reused bool, err error) {
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(raw.t.Context(), trace), "GET", raw.base+path, nil)
	if err != nil {
		return 0, nil, false, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := raw.hc.Do(req)
	if err != nil {
		return 0, nil, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header, reused, err
}

type getResult struct {
	status int
	header http.Header
	reused bool
	err    error
}

// goGet runs tracedGet in a goroutine of its own.
func goGet(raw *rawHTTP, path, token string) <-chan getResult {
	done := make(chan getResult, 1)
	go func() {
		var r getResult
		r.status, r.header, r.reused, r.err = tracedGet(raw, path, token)
		done <- r
	}()
	return done
}

// TestParkedConnectionIsServedAgain: the answer of a parked watch keeps
// the connection alive (X-Uniter-Index and X-Uniter-Members as on any
// answer), the HTTP server reads the client's next requests from it, any
// endpoint, and a watch that ends at its wait answers the index as it
// stands.
func TestParkedConnectionIsServedAgain(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 30*time.Second)
	raw := newRaw(t, c.APIAddr())
	raw.hc.Transport.(*http.Transport).MaxIdleConnsPerHost = 1
	status, h, _, err := tracedGet(raw, "/v1/units/db/1/watch", tokDB1)
	idx, _ := strconv.ParseUint(h.Get(api.HeaderIndex), 10, 64)
	if err != nil || status != http.StatusOK || idx == 0 {
		t.Fatalf("first watch: %d, index %q, %v", status, h.Get(api.HeaderIndex), err)
	}

	started := time.Now()
	status, h, reused, err := tracedGet(raw, fmt.Sprintf("/v1/units/db/1/watch?index=%d&wait=300ms", idx), tokDB1)
	if err != nil || status != http.StatusOK || h.Get(api.HeaderIndex) != strconv.FormatUint(idx, 10) || !reused {
		t.Fatalf("watch that ran out its wait: %d, index %q (want %d), reused %v, %v", status, h.Get(api.HeaderIndex), idx, reused, err)
	}
	if took := time.Since(started); took < 300*time.Millisecond {
		t.Fatalf("a 300ms wait answered after %v", took)
	}
	if h.Get(api.HeaderMembers) == "" {
		t.Error("a parked watch's answer carries no " + api.HeaderMembers)
	}

	done := goGet(raw, fmt.Sprintf("/v1/units/db/1/watch?index=%d&wait=1m", idx), tokDB1)
	waitParked(t, newRaw(t, c.APIAddr()), admin, 1)
	if err := newClient(t, admin, c.APIAddr()).SetConfig(ctx, "db", map[string]string{"name": "x"}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || !r.reused {
		t.Fatalf("the woken watch: reused the handed-back connection %v, %v", r.reused, r.err)
	}
	if next, _ := strconv.ParseUint(r.header.Get(api.HeaderIndex), 10, 64); next <= idx {
		t.Fatalf("woken watch answered index %q, not past %d", r.header.Get(api.HeaderIndex), idx)
	}
	if status, _, reused, err := tracedGet(raw, "/v1/leases/db", tokDB1); err != nil || status != http.StatusOK || !reused {
		t.Fatalf("a lease read after the watch: %d, reused %v, %v", status, reused, err)
	}
}

// TestParkedWatchOfARemovedUnit: a parked watch whose unit is
// deregistered answers 404 unknown-unit, as a waiting one did.
func TestParkedWatchOfARemovedUnit(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	raw := newRaw(t, c.APIAddr())
	idx := raw.json("GET", "/v1/units/db/1/watch", tokDB1, "").header.Get(api.HeaderIndex)
	done := goGet(newRaw(t, c.APIAddr()), "/v1/units/db/1/watch?wait=1m&index="+idx, tokDB1)
	waitParked(t, raw, admin, 1)
	if r := raw.json("DELETE", "/v1/units/db/1", admin, ""); r.status != http.StatusOK {
		t.Fatalf("deregister: %d %s", r.status, r.body)
	}
	if got := <-done; got.err != nil || got.status != http.StatusNotFound {
		t.Fatalf("parked watch of a deregistered unit: %d, %v", got.status, got.err)
	}
	// The code, from a watch that does not wait: the parked one answers
	// through the same errorResponse.
	var e api.Error
	r := raw.json("GET", "/v1/units/db/1/watch?wait=1m&index="+idx, admin, "")
	mustJSON(t, r.body, &e)
	if r.status != http.StatusNotFound || e.Code != api.CodeUnknownUnit {
		t.Fatalf("watch of a deregistered unit: %d %s", r.status, r.body)
	}
}

// TestPipelinedRequestAfterAParkedWatch: a client that sends its next
// request before the watch's answer (HTTP/1.1 pipelining) gets both
// answers, in order, on its connection: the bytes the server read ahead
// are not lost when the watch parks.
func TestPipelinedRequestAfterAParkedWatch(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	raw := newRaw(t, c.APIAddr())
	idx := raw.json("GET", "/v1/units/db/1/watch", tokDB1, "").header.Get(api.HeaderIndex)
	conn, err := tls.Dial("tcp", c.APIAddr(), testTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	req := func(path string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tokDB1 + "\r\n\r\n"
	}
	if _, err := conn.Write([]byte(req("/v1/units/db/1/watch?wait=1m&index="+idx) + req("/v1/leases/db"))); err != nil {
		t.Fatal(err)
	}
	waitParked(t, raw, admin, 1)
	if err := newClient(t, admin, c.APIAddr()).SetConfig(ctxTimeout(t, 10*time.Second), "db", map[string]string{"name": "y"}); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for _, want := range []string{"watch", "lease"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the %s answer: %v", want, err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("%s answer: %d, %v", want, resp.StatusCode, err)
		}
		if _, isWatch := body["config_version"]; isWatch != (want == "watch") {
			t.Fatalf("answers out of order: the %s answer was %v", want, body)
		}
	}
}

// TestParkedWatchesEndAtShutdown: a node that shuts down answers its
// parked watches at once (the index as it stands, Connection: close)
// instead of leaving them to their wait; goleak (TestMain) checks that
// nothing of the parker is left.
func TestParkedWatchesEndAtShutdown(t *testing.T) {
	c, err := controller.Start(t.Context(), nodeConfig(t, nodeOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	registerCA(c)
	waitWritable(t, c)
	path, _ := c.ClientFile()
	f, err := client.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, c.APIAddr(), f.Token)
	raw := newRaw(t, c.APIAddr())
	idx := raw.json("GET", "/v1/units/db/1/watch", tokDB1, "").header.Get(api.HeaderIndex)
	done := goGet(newRaw(t, c.APIAddr()), "/v1/units/db/1/watch?wait=5m&index="+idx, tokDB1)
	waitParked(t, raw, f.Token, 1)
	raw.hc.CloseIdleConnections()
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	select {
	case got := <-done:
		if got.err != nil || got.status != http.StatusOK || got.header.Get(api.HeaderIndex) != idx {
			t.Errorf("parked watch at shutdown: %d, index %q (want %s), %v", got.status, got.header.Get(api.HeaderIndex), idx, got.err)
		}
	case <-ctx.Done():
		t.Fatal("a parked watch was not answered when its node shut down")
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
