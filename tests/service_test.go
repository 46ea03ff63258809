package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// TestAgentServiceUnitAndStopSequence: `uniter install-service agent`
// writes a unit that systemd-analyze accepts, with KillMode=mixed and a
// TimeoutStopSec above the agent's stop-timeout; the agent, stopped as
// systemd stops it (SIGTERM to the main process, SIGKILL to what is left
// at the timeout) and started again, keeps its lease: same holder, same
// term, and no leadership hook anywhere.
func TestAgentServiceUnitAndStopSequence(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is missing: run `make deps` (scripts/install-deps.sh installs Debian's systemd)")
	}
	c := startCluster(t, 1)
	var units []*agentUnit
	for i := range 2 {
		u := c.addUnit("journal/"+string(rune('0'+i)), "journal", nil)
		u.start()
		units = append(units, u)
	}
	journal := func(u *agentUnit) []entry { return readJournal(t, u.path("charm", "journal.log")) }
	holder, term := c.waitElected(units)
	leader := unitNamed(t, units, holder)

	unitDir := t.TempDir()
	if r := runUniter(t, "install-service", "agent", "--agent-dir", leader.dir, "--unit-dir", unitDir); r.code != 0 {
		t.Fatalf("install-service: exit %d: %s", r.code, r.stderr)
	}
	name := "uniter-agent-" + strings.ReplaceAll(holder, "/", "-") + ".service"
	unitFile := filepath.Join(unitDir, name)
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", unitFile).CombinedOutput(); err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s\n%s", err, out, data)
	}
	for _, want := range []string{"Type=notify", "KillMode=mixed", "Restart=on-failure", "KillSignal=SIGTERM",
		"ExecStart=" + uniterBin + " agent --agent-dir " + leader.dir} {
		if !strings.Contains(string(data), want+"\n") {
			t.Errorf("unit file lacks %q:\n%s", want, data)
		}
	}
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\d+)s$`).FindStringSubmatch(string(data))
	cfg, err := agent.ReadConfig(leader.dir)
	if err != nil {
		t.Fatal(err)
	}
	if m == nil {
		t.Fatalf("no TimeoutStopSec in:\n%s", data)
	}
	timeout, _ := time.ParseDuration(m[1] + "s")
	if timeout <= time.Duration(cfg.StopTimeout) {
		t.Fatalf("TimeoutStopSec %v is not above the agent's stop-timeout %v", timeout, time.Duration(cfg.StopTimeout))
	}

	marks := map[string]int{}
	for _, u := range units {
		marks[u.unit] = len(journal(u))
	}
	// systemd's stop with KillMode=mixed.
	leader.p.signal(syscall.SIGTERM)
	select {
	case err := <-leader.p.wait:
		leader.p.wait <- err
	case <-time.After(timeout):
		syscall.Kill(-leader.p.cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("the agent did not stop within TimeoutStopSec (%v)", timeout)
	}
	if h, tm := c.leader("journal"); h != holder || tm != term {
		t.Fatalf("after the stop the lease is %s term %d, want %s term %d (kept)", h, tm, holder, term)
	}
	gained := func() int {
		data, _ := os.ReadFile(leader.path("log", "agent.log"))
		return strings.Count(string(data), `"message":"leadership gained"`)
	}
	before := gained()
	leader.start() // Restart=on-failure, or the next boot
	testutil.WaitUntil(t, 30*time.Second, "the restarted agent to hold the lease again", func() bool { return gained() > before })
	deadline := time.Now().Add(3 * 3 * time.Second) // 3×G
	for time.Now().Before(deadline) {
		if h, tm := c.leader("journal"); h != holder || tm != term {
			t.Fatalf("after the restart the lease moved to %s term %d", h, tm)
		}
	}
	for _, u := range units {
		for _, e := range journal(u)[marks[u.unit]:] {
			if e.Hook == "leader-elected" || e.Hook == "leader-deposed" {
				t.Errorf("%s ran %s %s across the service restart", u.unit, e.Hook, e.Event)
			}
		}
	}
}
