package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/agent/agentmetrics"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// metrics is one parsed scrape.
type metrics map[string]*dto.MetricFamily

// parseMetrics reads an exposition with Prometheus' own text parser.
func parseMetrics(t *testing.T, what string, body []byte) metrics {
	t.Helper()
	fams, err := testutil.ParseMetrics(body)
	if err != nil {
		t.Fatalf("%s: /metrics does not parse: %v\n%s", what, err, tail(string(body), 2000))
	}
	return fams
}

// sum adds the values of name's samples whose labels include labels
// (pairs); a histogram counts its observations. -1 when there is none.
func (m metrics) sum(name string, labels ...string) float64 {
	total, found := 0.0, false
	for _, s := range m[name].GetMetric() {
		if testutil.HasLabels(s, labels...) {
			total, found = total+testutil.SampleValue(s), true
		}
	}
	if !found {
		return -1
	}
	return total
}

// scrapeNode reads controller node i's /metrics through the typed client
// (the cluster's admin client config, that node's address only), so it
// speaks whatever the client speaks.
func (c *cluster) scrapeNode(i int) metrics {
	c.t.Helper()
	f, err := client.ReadFile(c.clientFile)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := f.Config()
	cfg.Addresses = []string{c.nodes[i].api}
	cl, err := client.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := cl.Metrics(ctx)
	if err != nil {
		c.t.Fatalf("node %d: GET /metrics: %v", i, err)
	}
	return parseMetrics(c.t, fmt.Sprintf("node %d", i), body)
}

// scrapeAgent reads an agent's metrics listener: addr is its
// metrics-addr, "unix:/PATH" or a loopback HOST:PORT (plain HTTP: the
// listener never leaves the machine).
func scrapeAgent(t *testing.T, addr string) metrics {
	t.Helper()
	dial := func(ctx context.Context, _, hostport string) (net.Conn, error) {
		if path, ok := strings.CutPrefix(addr, agentmetrics.UnixPrefix); ok {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
		return (&net.Dialer{}).DialContext(ctx, "tcp", hostport)
	}
	tr := &http.Transport{DialContext: dial}
	defer tr.CloseIdleConnections()
	host := addr
	if strings.HasPrefix(addr, agentmetrics.UnixPrefix) {
		host = "agent"
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + host + "/metrics")
	if err != nil {
		t.Fatalf("agent metrics at %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("agent metrics at %s: %d, %v", addr, resp.StatusCode, err)
	}
	return parseMetrics(t, addr, body)
}

// TestMetricsMoveWithClaimsFailoverAndHooks: on a running 3-node
// controller with two agents (one serving metrics on a unix socket, one
// on loopback TCP), every node's /metrics and every agent's parse with
// Prometheus' parser, and their counters move with what happens: a unit's
// claim, hook runs (update-status), is-leader answers, a failed hook's
// error state, and a raft failover after SIGKILL of the raft leader.
// Only deltas are asserted.
func TestMetricsMoveWithClaimsFailoverAndHooks(t *testing.T) {
	c := startCluster(t, 3)
	claims := func() float64 {
		total := 0.0
		for i := range c.nodes {
			total += max(c.scrapeNode(i).sum("uniter_lease_calls_total", "op", "claim", "outcome", "ok"), 0)
		}
		return total
	}
	claimsBefore := claims()

	addrs := map[string]string{}
	var units []*agentUnit
	for i := range 2 {
		name := fmt.Sprintf("journal/%d", i)
		u := c.addUnit(name, "journal", func(cfg *agent.Config) {
			cfg.UpdateStatusInterval = agent.Duration(time.Second)
			cfg.RetryInitial, cfg.RetryMax = agent.Duration(time.Second), agent.Duration(time.Second)
		})
		addrs[name] = "127.0.0.1:" + strings.Split(freePort(t), ":")[1]
		if i == 0 {
			addrs[name] = agentmetrics.UnixPrefix + u.path("run", "metrics.sock")
		}
		if err := os.WriteFile(u.path("charm", "ask-leader"), []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		u.p = startProc(t, u.path("agent.out"), nil, "agent", "--agent-dir", u.dir, "--metrics-addr", addrs[name])
		units = append(units, u)
	}
	holder, _ := c.waitElected(units)
	minion := units[0]
	if minion.unit == holder {
		minion = units[1]
	}

	// A claim: the lease calls counted by the nodes rose, and every node
	// has the application's lease term.
	testutil.WaitUntil(t, 10*time.Second, "the nodes to count the claim", func() bool { return claims() > claimsBefore })
	for i := range c.nodes {
		testutil.WaitUntil(t, 10*time.Second, fmt.Sprintf("node %d to show journal's lease term", i), func() bool {
			return c.scrapeNode(i).sum("uniter_lease_term", "application", "journal") >= 1
		})
	}

	// Hook runs and is-leader answers, on each agent.
	for _, u := range units {
		addr := addrs[u.unit]
		answer := "false"
		if u.unit == holder {
			answer = "true"
		}
		before := scrapeAgent(t, addr)
		// The machine lock is released (and its hold observed) after the
		// hook's run is counted: wait for both.
		const hold = "uniter_agent_machine_lock_hold_seconds"
		testutil.WaitUntil(t, 30*time.Second, u.unit+"'s update-status runs, is-leader "+answer+" answers and machine-lock holds to rise", func() bool {
			now := scrapeAgent(t, addr)
			return now.sum("uniter_agent_hook_runs_total", "hook", "update-status", "outcome", "ok") >
				before.sum("uniter_agent_hook_runs_total", "hook", "update-status", "outcome", "ok") &&
				now.sum("uniter_agent_is_leader_answers_total", "answer", answer) >
					before.sum("uniter_agent_is_leader_answers_total", "answer", answer) &&
				now.sum(hold) > before.sum(hold)
		})
		now := scrapeAgent(t, addr)
		wantLeader := map[bool]float64{true: 1, false: 0}[u.unit == holder]
		if got := now.sum("uniter_agent_leader"); got != wantLeader {
			t.Errorf("%s: uniter_agent_leader = %v, want %v", u.unit, got, wantLeader)
		}
		if g := now.sum("uniter_agent_leadership_guarantee_seconds"); (u.unit == holder) != (g > 0) {
			t.Errorf("%s: guarantee left %v s (holder %s)", u.unit, g, holder)
		}
		if got := now.sum("uniter_agent_info", "unit", u.unit, "application", "journal"); got != 1 {
			t.Errorf("%s: uniter_agent_info = %v, want 1", u.unit, got)
		}
	}

	// A failing update-status puts the minion in error; its retry, once
	// the hook succeeds again, takes it out.
	addr := addrs[minion.unit]
	errorsBefore := scrapeAgent(t, addr).sum("uniter_agent_hook_runs_total", "hook", "update-status", "outcome", "error")
	if err := os.WriteFile(minion.path("charm", "fail-update-status"), []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, 30*time.Second, minion.unit+" in error state", func() bool {
		return scrapeAgent(t, addr).sum("uniter_agent_error_state") == 1
	})
	testutil.WaitUntil(t, 30*time.Second, minion.unit+" out of error state", func() bool {
		return scrapeAgent(t, addr).sum("uniter_agent_error_state") == 0
	})
	if got := scrapeAgent(t, addr).sum("uniter_agent_hook_runs_total", "hook", "update-status", "outcome", "error"); got < max(errorsBefore, 0)+2 {
		t.Errorf("%s: update-status errors went from %v to %v, want 2 more", minion.unit, errorsBefore, got)
	}

	// A raft failover: SIGKILL the raft leader; the survivors' terms rise
	// and one of them leads.
	old := c.raftLeader()
	if old < 0 {
		t.Fatal("no raft leader")
	}
	terms := map[int]float64{}
	for i := range c.nodes {
		if i != old {
			terms[i] = c.scrapeNode(i).sum("uniter_raft_term")
		}
	}
	c.nodes[old].p.signal(syscall.SIGKILL)
	err := <-c.nodes[old].p.wait
	c.nodes[old].p.wait <- err
	testutil.WaitUntil(t, 30*time.Second, "a surviving node to lead raft", func() bool {
		for i := range terms {
			if c.scrapeNode(i).sum("uniter_raft_state", "state", "leader") == 1 {
				return true
			}
		}
		return false
	})
	for i, before := range terms {
		testutil.WaitUntil(t, 30*time.Second, fmt.Sprintf("node %d's raft term to rise past %v", i, before), func() bool {
			return c.scrapeNode(i).sum("uniter_raft_term") > before
		})
	}
	// The agents go on running hooks, and the survivors go on counting.
	for _, u := range units {
		before := scrapeAgent(t, addrs[u.unit]).sum("uniter_agent_hook_runs_total", "hook", "update-status", "outcome", "ok")
		testutil.WaitUntil(t, 30*time.Second, u.unit+"'s update-status after the failover", func() bool {
			return scrapeAgent(t, addrs[u.unit]).sum("uniter_agent_hook_runs_total", "hook", "update-status", "outcome", "ok") > before
		})
	}
}
