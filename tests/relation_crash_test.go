package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/operation"
)

// startTestAgent runs u as this test binary's agent (the real agent with
// a crash-point state writer) against the real controller.
func startTestAgent(t *testing.T, u *agentUnit, env ...string) {
	t.Helper()
	u.p = startBin(t, testAgentBin(t), u.path("agent.out"), append([]string{envAgentDir + "=" + u.dir, envRealController + "=1"}, env...))
}

var (
	testAgentOnce sync.Once
	testAgentPath string
	testAgentErr  error
)

// testAgentBin is this test binary placed beside the built uniter, so that
// the agent it runs points the hook tools at the uniter-hooktools there
// (this binary is no hook tool).
func testAgentBin(t *testing.T) string {
	t.Helper()
	testAgentOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			testAgentErr = err
			return
		}
		testAgentPath = filepath.Join(filepath.Dir(uniterBin), "e2e-agent")
		if err := os.Link(self, testAgentPath); err == nil {
			return
		}
		data, err := os.ReadFile(self)
		if err == nil {
			err = os.WriteFile(testAgentPath, data, 0o755)
		}
		testAgentErr = err
	})
	if testAgentErr != nil {
		t.Fatalf("cannot place the test agent binary: %v", testAgentErr)
	}
	return testAgentPath
}

func agentState(t *testing.T, u *agentUnit) operation.State {
	t.Helper()
	st, _, err := operation.NewStateFile(agent.StatePath(u.dir)).Read()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRelationHookCrashTable (issue 12, must show 4): a sink unit's agent
// is SIGKILLed while its -joined runs, and between the -joined's done step
// and its commit; restarted, it runs the hook as the executor's rules say
// (pending: retried; done: committed, never run again), then -changed once,
// as the relation log proves; the state file records the member.
func TestRelationHookCrashTable(t *testing.T) {
	const joined = "token-relation-joined"
	for _, tc := range []struct {
		name string
		// crash starts the sink's agent, brings it to the boundary after
		// relate, and kills it.
		crash func(t *testing.T, c *cluster, sink *agentUnit)
		// starts and ends are how often -joined began and ended.
		starts, ends int
	}{
		{name: "during -joined", starts: 2, ends: 1, crash: func(t *testing.T, c *cluster, sink *agentUnit) {
			block := sink.path("charm", "block-"+joined)
			if err := os.WriteFile(block, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			startTestAgent(t, sink)
			waitStarted(t, sink)
			relate(t, c, "relay-sink", "relay-source")
			pidFile := sink.path("charm", "blocked-"+joined+".pid")
			testutil.WaitUntil(t, 60*time.Second, "-joined to block", func() bool { return exists(pidFile) })
			sink.p.stop(syscall.SIGKILL)
			data, err := os.ReadFile(pidFile)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil || pid <= 0 {
				t.Fatalf("pid file: %q, %v", data, err)
			}
			// The hook is in its own process group and outlives the agent,
			// as it would; end it before the restart.
			if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
				t.Fatalf("cannot kill the orphaned hook: %v", err)
			}
			if st := agentState(t, sink); st.Op == nil || st.Op.Step != operation.Pending || string(st.Op.Hook.Kind) != joined {
				t.Fatalf("state at kill = %+v, want -joined pending", st.Op)
			}
			os.Remove(block)
		}},
		{name: "done, not committed", starts: 1, ends: 1, crash: func(t *testing.T, c *cluster, sink *agentUnit) {
			startTestAgent(t, sink, envCrashAt+"=done:"+joined)
			waitStarted(t, sink)
			relate(t, c, "relay-sink", "relay-source")
			testutil.WaitUntil(t, 60*time.Second, "the done step", func() bool { return exists(sink.path(crashMarker)) })
			sink.p.stop(syscall.SIGKILL)
			st := agentState(t, sink)
			if st.Op == nil || st.Op.Step != operation.Done || string(st.Op.Hook.Kind) != joined || len(st.Relations[0].Members) != 0 {
				t.Fatalf("state at kill = %+v, want -joined done and no member recorded", st)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, 1)
			waitProtocol4(t, c)
			fast := func(cfg *agent.Config) {
				cfg.RetryInitial, cfg.RetryMax = agent.Duration(200*time.Millisecond), agent.Duration(time.Second)
			}
			source := c.addUnit("relay-source/0", "relay-source", fast)
			source.start()
			sink := c.addUnit("relay-sink/0", "relay-sink", fast)
			tc.crash(t, c, sink)
			os.Remove(sink.path(crashMarker))
			startTestAgent(t, sink)
			testutil.WaitUntil(t, 60*time.Second, "-changed for the joined source unit to commit", func() bool {
				st := agentState(t, sink)
				_, ok := st.Relations[0].Members["relay-source/0"]
				return ok && st.Relations[0].ChangedPending == "" && st.Op == nil && st.Error == nil
			})
			if msg := c.unitStatus("relay-sink", "relay-sink/0").Workload.Message; msg != "token=relay-token-1" {
				t.Errorf("sink's status %q", msg)
			}
			log := relationLog(t, sink)
			var starts, ends, changed int
			for _, e := range log {
				switch {
				case e.Hook == joined && e.Value == "start":
					starts++
				case e.Hook == joined:
					ends++
				case e.Hook == "token-relation-changed" && e.Remote == "relay-source/0" && e.Value != "start":
					changed++
				}
			}
			if starts != tc.starts || ends != tc.ends || changed != 1 {
				t.Errorf("-joined started %d and ended %d times, -changed ended %d; want %d, %d, 1:\n%v",
					starts, ends, changed, tc.starts, tc.ends, log)
			}
			hooks := relationHooks(log)
			if i := indexOf(hooks, joined+" relay-source/0"); i < 0 || i+1 >= len(hooks) || hooks[i+1] != "token-relation-changed relay-source/0" {
				t.Errorf("-joined not followed at once by its -changed: %v", hooks)
			}
		})
	}
}

// waitStarted waits until a relay unit has run start.
func waitStarted(t *testing.T, u *agentUnit) {
	t.Helper()
	testutil.WaitUntil(t, 60*time.Second, u.unit+" to start", func() bool { return count2(ended(relationLog(t, u)), "start") == 1 })
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
