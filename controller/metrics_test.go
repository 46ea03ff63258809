package controller_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/version"

	dto "github.com/prometheus/client_model/go"
	"github.com/uniter-dev/uniter/internal/testutil"
)

const tokMetrics = "metrics-token-0123456789"

// scrape reads /metrics with token and parses it with Prometheus' own
// text parser.
func scrape(t *testing.T, raw *rawHTTP, token string) map[string]*dto.MetricFamily {
	t.Helper()
	resp := raw.json("GET", "/metrics", token, "")
	if resp.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.status, resp.body)
	}
	fams, err := testutil.ParseMetrics(resp.body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// value is the value of the sample of name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var pairs []string
	for k, v := range want {
		pairs = append(pairs, k, v)
	}
	for _, m := range fams[name].GetMetric() {
		if testutil.HasLabels(m, pairs...) {
			return testutil.SampleValue(m)
		}
	}
	return 0
}

// TestMetrics: /metrics parses, is refused without the admin or metrics
// token, and its counters move with the calls made (deltas, not values).
func TestMetrics(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{metricsTok: tokMetrics})
	seed(t, c.APIAddr(), admin)
	raw := newRaw(t, c.APIAddr())
	ctx := ctxTimeout(t, 30*time.Second)

	for _, tok := range []string{"", "wrong-token-0123456789", tokDB0} {
		if resp := raw.json("GET", "/metrics", tok, ""); resp.status != http.StatusUnauthorized {
			t.Errorf("GET /metrics with token %q: %d, want 401", tok, resp.status)
		}
	}
	if resp := raw.json("GET", "/v1/status", tokMetrics, ""); resp.status == http.StatusOK {
		t.Error("the metrics token read /v1/status")
	}
	_, binMax, err := version.Protocol()
	if err != nil {
		t.Fatal(err)
	}
	waitVersion(t, c, binMax) // claims are batched from protocol 6
	before := scrape(t, raw, tokMetrics)
	claimOK := map[string]string{"op": "claim", "outcome": "ok"}
	claimDenied := map[string]string{"op": "claim", "outcome": "denied"}
	db1 := newClient(t, tokDB1, c.APIAddr())
	db0 := newClient(t, tokDB0, c.APIAddr())
	if _, err := db0.Claim(ctx, "db", "db/0", time.Hour); err != nil { // the holder's claim extends
		t.Fatal(err)
	}
	if _, err := db1.Claim(ctx, "db", "db/1", time.Hour); err == nil {
		t.Fatal("a second unit's claim was granted")
	}
	after := scrape(t, raw, admin) // the admin token reads it too
	if d := value(after, "uniter_lease_calls_total", claimOK) - value(before, "uniter_lease_calls_total", claimOK); d != 1 {
		t.Errorf("claims ok moved by %v, want 1", d)
	}
	if d := value(after, "uniter_lease_calls_total", claimDenied) - value(before, "uniter_lease_calls_total", claimDenied); d != 1 {
		t.Errorf("claims denied moved by %v, want 1", d)
	}
	route := map[string]string{"route": "POST /v1/leases/{app}/claim", "code": "409"}
	if d := value(after, "uniter_api_requests_total", route) - value(before, "uniter_api_requests_total", route); d != 1 {
		t.Errorf("409 claim requests moved by %v, want 1", d)
	}
	if value(after, "uniter_raft_state", map[string]string{"state": "leader"}) != 1 || value(after, "uniter_node_ready", nil) != 1 {
		t.Error("a single ready node does not report itself raft leader and ready")
	}
	if value(after, "uniter_leases_held", nil) < 1 || value(after, "uniter_lease_term", map[string]string{"application": "db"}) != 1 {
		t.Error("the db lease is not reported held at term 1")
	}
	// Sequential claims: each its own batcher entry.
	for _, name := range []string{"uniter_raft_batch_entries_total", "uniter_raft_batch_commands_total"} {
		if d := value(after, name, nil) - value(before, name, nil); d != 2 {
			t.Errorf("%s moved by %v, want 2", name, d)
		}
	}
	// A holder's extend of at most a minute is answered from the leader's
	// memory: no log entry of its own.
	if _, err := db0.Extend(ctx, "db", "db/0", 30*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	renewed := scrape(t, raw, admin)
	if d := value(renewed, "uniter_lease_leader_renewals_total", nil) - value(after, "uniter_lease_leader_renewals_total", nil); d != 1 {
		t.Errorf("uniter_lease_leader_renewals_total moved by %v, want 1", d)
	}
	if d := value(renewed, "uniter_raft_batch_commands_total", nil) - value(after, "uniter_raft_batch_commands_total", nil); d != 0 {
		t.Errorf("the extend answered from memory went through the batcher (%v commands)", d)
	}
	if _, ok := after["uniter_raft_commitTime"]; !ok {
		t.Error("raft's own metrics (uniter_raft_commitTime) are not bridged")
	}
}
