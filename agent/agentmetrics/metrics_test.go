package agentmetrics_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/agent/agentmetrics"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/internal/machinelock"
	"github.com/uniter-dev/uniter/leadership"
	"github.com/uniter-dev/uniter/operation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Metrics is every observer the agent wires it in as.
var (
	_ operation.HookObserver = (*agentmetrics.Metrics)(nil)
	_ operation.Observer     = (*agentmetrics.Metrics)(nil)
	_ machinelock.Observer   = (*agentmetrics.Metrics)(nil)
	_ leadership.Observer    = (*agentmetrics.Metrics)(nil)
	_ hooktools.Observer     = (*agentmetrics.Metrics)(nil)
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newMetrics(t *testing.T, clk *clocktest.Clock) *agentmetrics.Metrics {
	t.Helper()
	m, err := agentmetrics.New(agentmetrics.Config{Unit: "app/0", App: "app", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// serve serves m on a unix socket and returns a scrape function.
func serve(t *testing.T, m *agentmetrics.Metrics) func() []byte {
	t.Helper()
	dir, err := os.MkdirTemp("", "am")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "run", "metrics.sock")
	ln, err := agentmetrics.Listen(agentmetrics.UnixPrefix + sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln) }()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return func() []byte {
		t.Helper()
		resp, err := hc.Get("http://agent/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
		}
		return body
	}
}

// parse reads an exposition with Prometheus' text parser.
func parse(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, body)
	}
	return fams
}

// value is the value of name's sample with exactly labels (a histogram's
// sample count); ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		if len(m.Label)*2 != len(labels) {
			continue
		}
		match := true
		for i, l := range m.Label {
			match = match && l.GetName() == labels[2*i] && l.GetValue() == labels[2*i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestObservationsMoveTheirMetrics: each observer call moves its metric
// and nothing else, over a real socket, in an exposition that parses and
// passes Prometheus' own lint.
func TestObservationsMoveTheirMetrics(t *testing.T) {
	m := newMetrics(t, clocktest.New(epoch))
	scrape := serve(t, m)
	type sample struct {
		name   string
		labels []string
	}
	for _, tc := range []struct {
		name    string
		observe func()
		moved   []sample // each +1, and nothing else moves
	}{
		{"hook ok", func() { m.HookRan(hooks.UpdateStatus, operation.OutcomeOK, 2*time.Second) }, []sample{
			{"uniter_agent_hook_runs_total", []string{"hook", "update-status", "outcome", "ok"}},
			{"uniter_agent_hook_duration_seconds", []string{"hook", "update-status"}}}},
		{"hook error", func() { m.HookRan(hooks.Install, operation.OutcomeError, time.Second) }, []sample{
			{"uniter_agent_hook_runs_total", []string{"hook", "install", "outcome", "error"}},
			{"uniter_agent_hook_duration_seconds", []string{"hook", "install"}}}},
		{"hook killed", func() { m.HookRan(hooks.Install, operation.OutcomeKilled, time.Second) }, []sample{
			{"uniter_agent_hook_runs_total", []string{"hook", "install", "outcome", "killed"}},
			{"uniter_agent_hook_duration_seconds", []string{"hook", "install"}}}},
		{"operation committed", func() { m.OperationEnded(operation.Committed) },
			[]sample{{"uniter_agent_operations_total", []string{"result", "committed"}}}},
		{"operation failed", func() { m.OperationEnded(operation.Failed) },
			[]sample{{"uniter_agent_operations_total", []string{"result", "failed"}}}},
		{"is-leader true", func() { m.IsLeaderAnswered(true) },
			[]sample{{"uniter_agent_is_leader_answers_total", []string{"answer", "true"}}}},
		{"is-leader false", func() { m.IsLeaderAnswered(false) },
			[]sample{{"uniter_agent_is_leader_answers_total", []string{"answer", "false"}}}},
		{"gained", func() { m.LeadershipGained() }, []sample{{"uniter_agent_leadership_gained_total", nil}}},
		{"lost", func() { m.LeadershipLost(leadership.LostExpired) },
			[]sample{{"uniter_agent_leadership_lost_total", []string{"reason", "expired"}}}},
		{"lock wait", func() { m.LockWaited(time.Millisecond) }, []sample{{"uniter_agent_machine_lock_wait_seconds", nil}}},
		{"lock hold", func() { m.LockHeld(time.Second) }, []sample{{"uniter_agent_machine_lock_hold_seconds", nil}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := parse(t, scrape())
			tc.observe()
			after := parse(t, scrape())
			moved := map[string]bool{}
			for _, s := range tc.moved {
				was, _ := value(before, s.name, s.labels...)
				now, ok := value(after, s.name, s.labels...)
				if !ok || now != was+1 {
					t.Errorf("%s%v went from %v to %v (present %v), want +1", s.name, s.labels, was, now, ok)
				}
				moved[s.name] = true
			}
			for name, f := range after {
				if moved[name] || !strings.HasPrefix(name, "uniter_agent_") {
					continue
				}
				if before[name].String() != f.String() {
					t.Errorf("%s changed too:\nbefore %v\nafter  %v", name, before[name], f)
				}
			}
		})
	}
	body := scrape()
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	for name := range parse(t, body) {
		if !strings.HasPrefix(name, "uniter_agent_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric %s is not named uniter_agent_*", name)
		}
	}
	if v, ok := value(parse(t, body), "uniter_agent_info", "application", "app", "unit", "app/0", "version", versionOf(t, body)); !ok || v != 1 {
		t.Errorf("uniter_agent_info = %v (present %v), want 1", v, ok)
	}
}

// versionOf is the version label of uniter_agent_info.
func versionOf(t *testing.T, body []byte) string {
	t.Helper()
	for _, m := range parse(t, body)["uniter_agent_info"].GetMetric() {
		for _, l := range m.Label {
			if l.GetName() == "version" {
				return l.GetValue()
			}
		}
	}
	t.Fatal("uniter_agent_info has no version label")
	return ""
}

// TestStateIsReadAtScrape: error state and the guarantee left are read
// when scraped, the guarantee on the injected clock, never below 0.
func TestStateIsReadAtScrape(t *testing.T) {
	clk := clocktest.New(epoch)
	m := newMetrics(t, clk)
	scrape := serve(t, m)
	if fams := parse(t, scrape()); fams["uniter_agent_error_state"] != nil || fams["uniter_agent_leader"] != nil {
		t.Fatal("state metrics served before their readers were set")
	}
	inError := false
	g := leadership.Guaranteed{Held: true, Until: epoch.Add(10 * time.Second)}
	m.ReadErrorState(func() bool { return inError })
	m.ReadLeadership(func() leadership.Guaranteed { return g })
	for _, step := range []struct {
		name                   string
		change                 func()
		inError, leader, guard float64
	}{
		{"held", func() {}, 0, 1, 10},
		{"4s later", func() { clk.Advance(4 * time.Second) }, 0, 1, 6},
		{"in error", func() { inError = true }, 1, 1, 6},
		{"past the guarantee", func() { clk.Advance(time.Minute) }, 1, 1, 0},
		{"not held", func() { g = leadership.Guaranteed{} }, 1, 0, 0},
		{"resolved", func() { inError = false }, 0, 0, 0},
	} {
		step.change()
		fams := parse(t, scrape())
		for name, want := range map[string]float64{"uniter_agent_error_state": step.inError, "uniter_agent_leader": step.leader,
			"uniter_agent_leadership_guarantee_seconds": step.guard} {
			if got, ok := value(fams, name); !ok || got != want {
				t.Errorf("%s: %s = %v (present %v), want %v", step.name, name, got, ok, want)
			}
		}
	}
}

func TestNewRefusesMissingConfig(t *testing.T) {
	for _, cfg := range []agentmetrics.Config{{App: "app", Clock: clocktest.New(epoch)}, {Unit: "app/0", App: "app"}} {
		if _, err := agentmetrics.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
