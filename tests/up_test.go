package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// upRun is a `uniter up` process under test, with its own UNITER_HOME.
type upRun struct {
	t     *testing.T
	home  string
	charm string
	p     *proc
}

func (u *upRun) env() []string { return []string{"UNITER_HOME=" + u.home} }

// cli runs a client command with the deployment's client.yaml.
func (u *upRun) cli(args ...string) result {
	u.t.Helper()
	return runUniter(u.t, append(args, "--client-config", filepath.Join(u.home, "client.yaml"))...)
}

func (u *upRun) status() api.Status {
	u.t.Helper()
	res := u.cli("status", "--format", "json")
	var st api.Status
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &st) != nil {
		return api.Status{}
	}
	return st
}

func (u *upRun) app() api.ApplicationStatus { return u.status().Applications["journal"] }

func (u *upRun) leader() string {
	if l := u.app().Leader; l != nil {
		return *l
	}
	return ""
}

func (u *upRun) unitDir(unit string) string {
	return filepath.Join(u.home, "up", "units", strings.ReplaceAll(unit, "/", "-"))
}

func (u *upRun) journal(unit string) []entry {
	return readJournal(u.t, filepath.Join(u.unitDir(unit), "charm", "journal.log"))
}

// agentPID finds the pid of unit's `uniter agent` process.
func (u *upRun) agentPID(unit string) int {
	u.t.Helper()
	want := "--agent-dir\x00" + u.unitDir(unit) + "\x00"
	var pid int
	testutil.WaitUntil(u.t, 30*time.Second, "the agent process of "+unit, func() bool {
		pid = findProc(want)
		return pid != 0
	})
	return pid
}

// findProc returns the pid of a process whose command line contains s.
func findProc(s string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) && !isZombie(pid) {
			return pid
		}
	}
	return 0
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z'
}

// TestUpEndToEnd walks the operator story of `uniter up`, in order.
func TestUpEndToEnd(t *testing.T) {
	u := &upRun{t: t, home: t.TempDir(), charm: filepath.Join("..", "testcharms", "journal")}
	u.p = startProc(t, filepath.Join(u.home, "up.out"), u.env(), "up", u.charm, "--units", "3", "--guarantee", "3s")
	t.Cleanup(func() {
		u.p.stop(syscall.SIGKILL)
		if t.Failed() {
			out, _ := os.ReadFile(filepath.Join(u.home, "up.out"))
			t.Logf("up output:\n%s", tail(string(out), 6000))
		}
		for _, unit := range []string{"journal/0", "journal/1", "journal/2"} {
			if pid := findProc(u.unitDir(unit)); pid != 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	g := 3 * time.Second

	t.Run("three units and one leader", func(t *testing.T) {
		testutil.WaitUntil(t, 60*time.Second, "3 idle units and a leader", func() bool {
			a := u.app()
			if len(a.Units) != 3 || a.Leader == nil {
				return false
			}
			leaders := 0
			for _, us := range a.Units {
				if us.Agent.Status != "idle" {
					return false
				}
				if us.Leader {
					leaders++
				}
			}
			return leaders == 1
		})
	})

	t.Run("frozen leader is replaced within G+2s and then deposed", func(t *testing.T) {
		old := u.leader()
		pid := u.agentPID(old)
		syscall.Kill(pid, syscall.SIGSTOP)
		frozen := time.Now()
		testutil.WaitUntil(t, 30*time.Second, "a new leader", func() bool { l := u.leader(); return l != "" && l != old })
		// The lease outlives the last renewal by at most G+0.5s, plus the
		// controller's expiry slack; status polling adds its own delay.
		if took := time.Since(frozen); took > g+2*time.Second+time.Second {
			t.Errorf("new leader after %v; want within G+2s (plus polling)", took)
		}
		mark := len(u.journal(old))
		syscall.Kill(pid, syscall.SIGCONT)
		testutil.WaitUntil(t, 30*time.Second, old+" to run leader-deposed", func() bool {
			return count(u.journal(old)[mark:], "leader-deposed", "end") == 1
		})
	})

	t.Run("pinned leadership survives a frozen leader", func(t *testing.T) {
		leader := u.leader()
		if res := u.cli("leadership", "pin", "journal", "--entity", "upgrade", "--reason", "maintenance"); res.code != 0 {
			t.Fatalf("pin: exit %d: %s", res.code, res.stderr)
		}
		if p := u.app().Pinned; len(p) != 1 || p[0].Entity != "upgrade" || p[0].Reason != "maintenance" {
			t.Fatalf("status shows pins %+v, want the upgrade pin", p)
		}
		pid := u.agentPID(leader)
		syscall.Kill(pid, syscall.SIGSTOP)
		defer syscall.Kill(pid, syscall.SIGCONT)
		deadline := time.Now().Add(3 * g)
		for time.Now().Before(deadline) {
			if l := u.leader(); l != leader {
				t.Fatalf("leadership moved to %q while pinned", l)
			}
		}
		t.Run("unpin restores normal expiry", func(t *testing.T) {
			if res := u.cli("leadership", "unpin", "journal", "--entity", "upgrade"); res.code != 0 {
				t.Fatalf("unpin: exit %d: %s", res.code, res.stderr)
			}
			testutil.WaitUntil(t, 30*time.Second, "a new leader after unpin", func() bool { l := u.leader(); return l != "" && l != leader })
		})
	})

	t.Run("config set runs config-changed on every unit", func(t *testing.T) {
		marks := map[string]int{}
		for _, unit := range []string{"journal/0", "journal/1", "journal/2"} {
			marks[unit] = len(u.journal(unit))
		}
		if res := u.cli("config", "set", "journal", "count=7"); res.code != 0 {
			t.Fatalf("config set: exit %d: %s", res.code, res.stderr)
		}
		for unit, mark := range marks {
			testutil.WaitUntil(t, 30*time.Second, unit+" config-changed", func() bool {
				return count(u.journal(unit)[mark:], "config-changed", "end") == 1
			})
		}
		// A compare-and-set against a version long gone is refused.
		if res := u.cli("config", "set", "journal", "count=9", "--if-version", "1"); res.code != 1 ||
			!strings.Contains(res.stderr, "config changed since the version given") {
			t.Fatalf("stale --if-version: exit %d: %s", res.code, res.stderr)
		}
		for _, bad := range [][]string{{"nosuch=1"}, {"count=abc"}} {
			if res := u.cli(append([]string{"config", "set", "journal"}, bad...)...); res.code != 1 {
				t.Fatalf("config set %v: exit %d, want 1 (refused)", bad, res.code)
			}
		}
	})

	t.Run("a failing hook shows error until resolved", func(t *testing.T) {
		unit := "journal/0"
		fail := filepath.Join(u.unitDir(unit), "charm", "fail-config-changed")
		if err := os.WriteFile(fail, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if res := u.cli("config", "set", "journal", "count=8"); res.code != 0 {
			t.Fatalf("config set: exit %d: %s", res.code, res.stderr)
		}
		testutil.WaitUntil(t, 30*time.Second, unit+" in error", func() bool {
			return u.app().Units[unit].Agent.Status == "error"
		})
		if msg := u.app().Units[unit].Agent.Message; msg != `hook failed: "config-changed"` {
			t.Fatalf("agent message %q", msg)
		}
		os.Remove(fail)
		if res := u.cli("resolved", unit); res.code != 0 {
			t.Fatalf("resolved: exit %d: %s", res.code, res.stderr)
		}
		testutil.WaitUntil(t, 30*time.Second, unit+" idle", func() bool { return u.app().Units[unit].Agent.Status == "idle" })
	})

	t.Run("unit remove runs the removal hooks", func(t *testing.T) {
		unit := "journal/2"
		mark := len(u.journal(unit))
		if res := u.cli("unit", "remove", unit); res.code != 0 {
			t.Fatalf("unit remove: exit %d: %s", res.code, res.stderr)
		}
		testutil.WaitUntil(t, 60*time.Second, unit+" gone", func() bool { _, ok := u.app().Units[unit]; return !ok })
		j := u.journal(unit)[mark:]
		for _, hook := range []string{"stop", "remove"} {
			if count(j, hook, "end") != 1 {
				t.Fatalf("%s did not run once on removal: %v", hook, j)
			}
		}
	})

	t.Run("a dead agent is restarted and up says so", func(t *testing.T) {
		unit := "journal/1"
		pid := u.agentPID(unit)
		syscall.Kill(pid, syscall.SIGKILL)
		testutil.WaitUntil(t, 30*time.Second, "a new agent process for "+unit, func() bool {
			p := findProc("--agent-dir\x00" + u.unitDir(unit) + "\x00")
			return p != 0 && p != pid
		})
		out, _ := os.ReadFile(filepath.Join(u.home, "up.out"))
		if !strings.Contains(string(out), "agent died unexpectedly") {
			t.Fatalf("up did not say the agent died:\n%s", tail(string(out), 2000))
		}
	})

	t.Run("Ctrl-C leaves no process behind", func(t *testing.T) {
		u.p.signal(syscall.SIGINT)
		select {
		case err := <-u.p.wait:
			u.p.wait <- err
			if err != nil {
				t.Fatalf("up exited with %v, want 0", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("up did not exit after Ctrl-C")
		}
		if pid := findProc(u.home); pid != 0 {
			cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
			t.Fatalf("process %d still running: %q", pid, cmd)
		}
	})
}
