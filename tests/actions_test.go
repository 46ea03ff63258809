package tests

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// waitProtocol4 waits until the cluster runs the protocol of actions.
func waitProtocol4(t *testing.T, c *cluster) {
	t.Helper()
	testutil.WaitUntil(t, 30*time.Second, "protocol 4", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		v, _, err := c.client().Cluster(ctx, 0, 0)
		return err == nil && v.EffectiveVersion >= 4
	})
}

// runExec is cluster.run for `uniter exec FLAGS -- COMMAND`: the client
// config goes before the "--".
func (c *cluster) runExec(flags []string, command string) result {
	c.t.Helper()
	args := append(append([]string{"exec"}, flags...), "--client-config", c.clientFile, "--", command)
	return runUniter(c.t, args...)
}

// waitIdle waits until every unit of app has an idle agent and the
// application a leader, and returns the leader.
func waitIdle(t *testing.T, c *cluster, app string, units int) string {
	t.Helper()
	var leader string
	testutil.WaitUntil(t, 60*time.Second, app+"'s agents to be idle with a leader", func() bool {
		st := jsonStatus(t, c)
		a := st.Applications[app]
		if len(a.Units) != units || a.Leader == nil {
			return false
		}
		for _, u := range a.Units {
			if u.Agent.Status != "idle" {
				return false
			}
		}
		leader = *a.Leader
		return true
	})
	return leader
}

// operationView is `uniter show-operation --format yaml`, decoded.
type operationView struct {
	ID      string            `yaml:"id"`
	Unit    string            `yaml:"unit"`
	Status  string            `yaml:"status"`
	Message string            `yaml:"message"`
	Results map[string]any    `yaml:"results"`
	Log     []string          `yaml:"log"`
	Timing  map[string]string `yaml:"timing"`
}

func showOperation(t *testing.T, c *cluster, id string) operationView {
	t.Helper()
	r := c.run("show-operation", id)
	var v operationView
	if r.code != 0 {
		t.Fatalf("show-operation %s: exit %d: %s", id, r.code, r.stderr)
	}
	if err := yaml.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("show-operation %s: %v\n%s", id, err, r.stdout)
	}
	return v
}

// operationID is the id in "Running operation N on ..." or "Scheduled
// operation N on ...".
var operationID = regexp.MustCompile(`(?:Running|Scheduled) operation (\d+) on (\S+)`)

func opID(t *testing.T, out string) (id, unit string) {
	t.Helper()
	m := operationID.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no operation id in %q", out)
	}
	return m[1], m[2]
}

// stamped is a progress line as run and show-operation print it.
var stamped = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (.*)$`)

// TestActionsAndExecOnRealAgents: three leader-demo units run by real
// agents on a real controller. `uniter run leader-demo/leader greet
// name=x` runs on the current leader, whose action-get reads x, and its
// action-set results come back in run's output and in show-operation;
// count's action-log lines come back stamped with the time; a failing
// action (action-fail) reads failed with its message and leaves the unit
// out of error state; `uniter exec --app leader-demo -- is-leader` prints
// True for exactly the leader.
func TestActionsAndExecOnRealAgents(t *testing.T) {
	c := startCluster(t, 1)
	waitProtocol4(t, c)
	var units []*agentUnit
	for i := range 3 {
		u := c.addUnit("leader-demo/"+strconv.Itoa(i), "leader-demo", nil)
		u.start()
		units = append(units, u)
	}
	leader := waitIdle(t, c, "leader-demo", 3)

	// 1. The leader greets x.
	r := c.run("run", "leader-demo/leader", "greet", "name=x")
	if r.code != 0 {
		t.Fatalf("run greet: exit %d: %s\n%s", r.code, r.stderr, r.stdout)
	}
	id, unit := opID(t, r.stderr)
	if unit != leader || !strings.Contains(r.stderr, "(the leader of leader-demo)") {
		t.Errorf("run picked %s (%q), the leader is %s", unit, r.stderr, leader)
	}
	var results map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &results); err != nil {
		t.Fatalf("run output: %v\n%s", err, r.stdout)
	}
	want := map[string]any{"greeting": "hello x", "unit": leader, "leader": "True", "return-code": 0}
	for k, v := range want {
		if results[k] != v {
			t.Errorf("run results[%s] = %v, want %v (all: %v)", k, results[k], v, results)
		}
	}
	v := showOperation(t, c, id)
	if v.Status != "completed" || v.Unit != leader || v.Results["greeting"] != "hello x" || v.Timing["completed"] == "" {
		t.Errorf("show-operation %s: %+v", id, v)
	}

	// action-log lines, stamped, in run's stderr and in show-operation.
	minion := "leader-demo/0"
	if minion == leader {
		minion = "leader-demo/1"
	}
	r = c.run("run", minion, "count", "to=3")
	if r.code != 0 {
		t.Fatalf("run count: exit %d: %s", r.code, r.stderr)
	}
	var logged []string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if m := stamped.FindStringSubmatch(l); m != nil {
			logged = append(logged, m[1])
		}
	}
	if strings.Join(logged, "|") != "step 1 of 3|step 2 of 3|step 3 of 3" {
		t.Errorf("run count printed %q, want three stamped steps", r.stderr)
	}
	id, _ = opID(t, r.stderr)
	v = showOperation(t, c, id)
	if len(v.Log) != 3 || !stamped.MatchString(v.Log[0]) || !strings.HasSuffix(v.Log[2], " step 3 of 3") || v.Results["counted"] != "3" {
		t.Errorf("show-operation %s: log %q results %v", id, v.Log, v.Results)
	}

	// 2. A failing action: failed with its message; the unit not in error.
	r = c.run("run", minion, "fail", "message=nope")
	id, _ = opID(t, r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "operation "+id+" failed on "+minion+": nope") {
		t.Errorf("run fail: exit %d: %q", r.code, r.stderr)
	}
	if v := showOperation(t, c, id); v.Status != "failed" || v.Message != "nope" {
		t.Errorf("show-operation %s: %+v", id, v)
	}
	waitIdle(t, c, "leader-demo", 3)
	if u := jsonStatus(t, c).Applications["leader-demo"].Units[minion]; u.Agent.Status != "idle" {
		t.Errorf("%s after a failed action: agent %+v, want idle", minion, u.Agent)
	}

	// 5. exec is-leader: True for exactly the leader, in a hook context.
	r = c.runExec([]string{"--app", "leader-demo"}, "is-leader")
	if r.code != 0 {
		t.Fatalf("exec is-leader: exit %d: %s\n%s", r.code, r.stderr, r.stdout)
	}
	var execOut map[string]struct {
		Status   string `yaml:"status"`
		ExitCode *int   `yaml:"exit-code"`
		Stdout   string `yaml:"stdout"`
		Stderr   string `yaml:"stderr"`
	}
	if err := yaml.Unmarshal([]byte(r.stdout), &execOut); err != nil || len(execOut) != 3 {
		t.Fatalf("exec output: %v\n%s", err, r.stdout)
	}
	for _, u := range units {
		got, want := execOut[u.unit], "False\n"
		if u.unit == leader {
			want = "True\n"
		}
		if got.Status != "completed" || got.ExitCode == nil || *got.ExitCode != 0 || got.Stdout != want || got.Stderr != "" {
			t.Errorf("exec on %s: %+v, want stdout %q", u.unit, got, want)
		}
	}
	// The command's exit code and stderr come back; a failing command
	// makes exec exit 1. JUJU_CONTEXT_ID is valid for the command's run.
	r = c.runExec([]string{"--unit", minion}, `config-get greeting; echo "$JUJU_CONTEXT_ID" >&2; exit 3`)
	if r.code != 1 || !strings.Contains(r.stdout, "exit-code: 3") || !strings.Contains(r.stdout, "stdout: |\n        hello") {
		t.Errorf("exec exit 3: exit %d: %s\n%s", r.code, r.stdout, r.stderr)
	}
}

// slowCharm is leader-demo with two more actions: slow, which records
// its run (and its pid) and then sleeps, and crash, which exits 3; and a
// config-changed that fails while the unit's charm directory holds
// fail-config-changed.
func slowCharm(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "leader-demo")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "testcharms", "leader-demo"))); err != nil {
		t.Fatal(err)
	}
	actions, err := os.ReadFile(filepath.Join(dir, "actions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	actions = append(actions, "\nslow:\n  description: record the run, then sleep\ncrash:\n  description: exit 3\n"...)
	files := map[string]string{
		"actions.yaml":  string(actions),
		"actions/slow":  "#!/bin/bash\necho $$ >> \"$CHARM_DIR/slow.runs\"\nexec sleep 600\n",
		"actions/crash": "#!/bin/bash\necho about to crash\nexit 3\n",
	}
	hook, err := os.ReadFile(filepath.Join(dir, "hooks", "demo-hook"))
	if err != nil {
		t.Fatal(err)
	}
	files["hooks/demo-hook"] = strings.Replace(string(hook), "case \"$hook\" in\n",
		"if [ \"$hook\" = config-changed ] && [ -e \"$CHARM_DIR/fail-config-changed\" ]; then\n\techo config-changed >> \"$CHARM_DIR/failures\"\n\texit 1\nfi\ncase \"$hook\" in\n", 1)
	for name, body := range files {
		path := filepath.Join(dir, name)
		os.Remove(path) // the copied symlinks
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestActionInterruptedAndInErrorState: SIGKILL of the agent while an
// action runs: after the restart the operation reads aborted and never
// runs again. An action exiting non-zero fails with its exit status. And
// actions queued while the unit is in error state run, while the failed
// hook goes on being retried on its backoff until it succeeds.
func TestActionInterruptedAndInErrorState(t *testing.T) {
	c := startCluster(t, 1)
	waitProtocol4(t, c)
	u := c.addUnitFrom("demo/0", slowCharm(t), func(cfg *agent.Config) {
		cfg.RetryInitial, cfg.RetryMax = agent.Duration(time.Second), agent.Duration(2*time.Second)
	})
	u.start()
	waitIdle(t, c, "demo", 1)

	// 4. SIGKILL during an action.
	r := c.run("run", "demo/0", "slow", "--background")
	if r.code != 0 {
		t.Fatalf("run slow: exit %d: %s", r.code, r.stderr)
	}
	id, _ := opID(t, r.stdout)
	runs := u.path("charm", "slow.runs")
	testutil.WaitUntil(t, 30*time.Second, "slow to start", func() bool { return len(readFields(t, runs, 1)) == 1 })
	if v := showOperation(t, c, id); v.Status != "running" {
		t.Fatalf("slow while it sleeps: %+v", v)
	}
	u.stop(syscall.SIGKILL)
	if pid, err := strconv.Atoi(readFields(t, runs, 1)[0][0]); err == nil {
		syscall.Kill(pid, syscall.SIGKILL) // the orphaned sleep
	}
	u.start()
	testutil.WaitUntil(t, 60*time.Second, "the interrupted action to read aborted", func() bool {
		return showOperation(t, c, id).Status == "aborted"
	})
	if v := showOperation(t, c, id); !strings.Contains(v.Message, "not run again") {
		t.Errorf("aborted operation's message: %q", v.Message)
	}
	waitIdle(t, c, "demo", 1)
	// An action exiting 3 fails with its exit status; it runs after the
	// abort, so slow has not run again before it either.
	r = c.run("run", "demo/0", "crash")
	if r.code != 1 || !strings.Contains(r.stderr, "failed on demo/0: exit status 3") || !strings.Contains(r.stdout, "return-code: 3") ||
		!strings.Contains(r.stdout, "stdout: |\n    about to crash") {
		t.Errorf("run crash: exit %d: %s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := len(readFields(t, runs, 1)); n != 1 {
		t.Errorf("slow ran %d times, want once: an interrupted action is never run again", n)
	}

	// 6. Actions in error state.
	if err := os.WriteFile(u.path("charm", "fail-config-changed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := c.run("config", "set", "demo", "greeting=hi"); r.code != 0 {
		t.Fatalf("config set: exit %d: %s", r.code, r.stderr)
	}
	inError := func() bool { return jsonStatus(t, c).Applications["demo"].Units["demo/0"].Agent.Status == "error" }
	testutil.WaitUntil(t, 30*time.Second, "the unit to be in error state", inError)
	failures := func() int { return len(readFields(t, u.path("charm", "failures"), 1)) }
	before := failures()
	r = c.run("run", "demo/0", "greet", "name=y")
	if r.code != 0 || !strings.Contains(r.stdout, "greeting: hello y") {
		t.Fatalf("run greet in error state: exit %d: %s\n%s", r.code, r.stdout, r.stderr)
	}
	// The failed hook is still retried on its own, with no `resolved`.
	testutil.WaitUntil(t, 30*time.Second, "config-changed to be retried after the action", func() bool { return failures() >= before+2 })
	if !inError() {
		t.Errorf("the unit left error state though config-changed still fails")
	}
	os.Remove(u.path("charm", "fail-config-changed"))
	testutil.WaitUntil(t, 30*time.Second, "the retry to succeed", func() bool { return !inError() })
	waitIdle(t, c, "demo", 1)
}
