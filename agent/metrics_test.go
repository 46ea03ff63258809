package agent_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// notes records what an agent's notifier is told, and whether the
// hook-tool and metrics sockets were there when it was told Ready.
type notes struct {
	mu      sync.Mutex
	seen    []string
	sockets []string // must exist at Ready
}

func (n *notes) Ready() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.sockets {
		if _, err := os.Stat(s); err != nil {
			n.seen = append(n.seen, "ready before "+s)
		}
	}
	n.seen = append(n.seen, "ready")
}

func (n *notes) Stopping() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seen = append(n.seen, "stopping")
}

func (n *notes) got() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.seen)
}

// scrapeUnix reads GET /metrics on the unix socket sock and parses it
// with Prometheus' text parser.
func scrapeUnix(t *testing.T, sock string) map[string]*dto.MetricFamily {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://agent/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fams, err := testutil.ParseMetrics(body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v\n%s", resp.StatusCode, err, body)
	}
	return fams
}

// sample is the value of name's first sample whose labels include
// labels (a histogram's count).
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	for _, m := range fams[name].GetMetric() {
		if testutil.HasLabels(m, labels...) {
			return testutil.SampleValue(m)
		}
	}
	return -1
}

// TestRunServesMetricsAndNotifies: with a metrics-addr the agent serves
// its metrics, which count what it did (its hooks, its lease, the machine
// lock); the notifier hears Ready once the hook-tool and metrics sockets
// are up and Stopping when the agent stops, and the metrics socket goes
// with the agent.
func TestRunServesMetricsAndNotifies(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	sockDir, err := os.MkdirTemp("", "agm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "run", "metrics.sock")
	n := &notes{sockets: []string{sock}}
	a := newLiveAgentWith(t, func(dir string) {
		n.sockets = append(n.sockets, agent.SocketPath(dir))
		cfg, err := agent.ReadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		cfg.MetricsAddr = "unix:" + sock
		if err := agent.WriteConfig(dir, cfg); err != nil {
			t.Fatal(err)
		}
	}, n)
	a.waitIdle()
	if got := n.got(); !slices.Equal(got, []string{"ready"}) {
		t.Fatalf("notifier saw %q, want ready (after the sockets)", got)
	}
	var fams map[string]*dto.MetricFamily
	testutil.WaitUntil(t, 10*time.Second, "the metrics to show the leader-elected hook", func() bool {
		fams = scrapeUnix(t, sock)
		return sample(fams, "uniter_agent_hook_runs_total", "hook", "leader-elected") >= 1
	})
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"uniter_agent_hook_runs_total", []string{"hook", "install", "outcome", "ok"}, 1},
		{"uniter_agent_hook_duration_seconds", []string{"hook", "install"}, 1},
		{"uniter_agent_operations_total", []string{"result", "committed"}, 3},
		{"uniter_agent_machine_lock_wait_seconds", nil, 3},
		{"uniter_agent_machine_lock_hold_seconds", nil, 3},
		{"uniter_agent_leadership_gained_total", nil, 1},
		{"uniter_agent_leader", nil, 1},
		{"uniter_agent_leadership_guarantee_seconds", nil, 1},
		{"uniter_agent_error_state", nil, 0},
	} {
		if v := sample(fams, c.name, c.labels...); v < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}
	if v := sample(fams, "uniter_agent_error_state"); v != 0 {
		t.Errorf("uniter_agent_error_state = %v on a unit in no error", v)
	}
	a.stop()
	if err := a.wait(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := n.got(); !slices.Equal(got, []string{"ready", "stopping"}) {
		t.Errorf("notifier saw %q, want ready then stopping", got)
	}
	if _, err := os.Stat(sock); err == nil {
		t.Error("the metrics socket outlived the agent")
	}
	a.closeAll()
	goleak.VerifyNone(t, ignore)
}

// TestRunRefusesABadMetricsListener: a metrics socket that cannot be
// made stops the agent before it connects anywhere, with the reason.
func TestRunRefusesABadMetricsListener(t *testing.T) {
	open, err := os.MkdirTemp("", "agm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	os.Chmod(open, 0o755)
	a := newLiveAgent(t, func(dir string) {
		cfg, _ := agent.ReadConfig(dir)
		cfg.MetricsAddr = "unix:" + filepath.Join(open, "metrics.sock")
		if err := agent.WriteConfig(dir, cfg); err != nil {
			t.Fatal(err)
		}
	})
	if err := a.wait(); err == nil || !strings.Contains(err.Error(), "must be 0700") {
		t.Fatalf("Run = %v, want the socket directory refused", err)
	}
	if _, err := os.Stat(agent.SocketPath(a.dir)); err == nil {
		t.Error("the hook-tool socket was made although the agent could not start")
	}
	a.closeAll()
}
