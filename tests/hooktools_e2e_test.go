package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// The secret-looking leader settings the tool charms write; they must never
// reach an agent's log.
const (
	bashToken    = "tok-5f0c1d2e3b4a69788796a5b4" // tools-bash, leader-set k=v
	bashPassword = "pw-8c7d6e5f4a3b2c1d0e9f"      // tools-bash, leader-set --file -
	pyToken      = "pytok-0a9b8c7d6e5f4a3b2c1d"   // tools-python, charmhelpers leader_set
)

// Exact texts of the contract (HOOK-TOOLS.md §4).
const (
	errLeaderSetNotLeader = "ERROR cannot write leadership settings: cannot write settings: not the leader\n"
	errStatusNotLeader    = "ERROR this unit is not the leader\n"
	errStatusGetNotLeader = "ERROR finding application status: this unit is not the leader\n"
)

// toolUnits adds n units of charm to c, tuned for quick tests, and starts
// their agents.
func toolUnits(c *cluster, charmName string, n int) []*agentUnit {
	c.t.Helper()
	var units []*agentUnit
	for i := range n {
		u := c.addUnit(fmt.Sprintf("%s/%d", charmName, i), charmName, func(cfg *agent.Config) {
			cfg.RetryInitial = agent.Duration(200 * time.Millisecond)
			cfg.StopTimeout = agent.Duration(10 * time.Second)
		})
		units = append(units, u)
	}
	for _, u := range units {
		u.start()
	}
	return units
}

// cliStatus is `uniter status --format json` of the real CLI.
func cliStatus(c *cluster) api.Status {
	c.t.Helper()
	res := c.run("status", "--format", "json")
	var st api.Status
	if res.code != 0 {
		return api.Status{}
	}
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		c.t.Fatalf("uniter status --format json: %v\n%s", err, res.stdout)
	}
	return st
}

// leaderAndMinion waits until app has a leader among units and returns it
// and another unit.
func leaderAndMinion(c *cluster, app string, units []*agentUnit, ready func(leader *agentUnit) bool) (leader, minion *agentUnit) {
	c.t.Helper()
	testutil.WaitUntil(c.t, 30*time.Second, app+" to have a leader", func() bool {
		st := cliStatus(c)
		a := st.Applications[app]
		if a.Leader == nil {
			return false
		}
		for _, u := range units {
			if u.unit == *a.Leader {
				leader = u
			}
		}
		return leader != nil && ready(leader)
	})
	for _, u := range units {
		if u != leader {
			minion = u
			break
		}
	}
	return leader, minion
}

// logEntry is one JSON line of an agent's log.
type logEntry map[string]any

func (e logEntry) str(k string) string { s, _ := e[k].(string); return s }

// agentLog reads every line of u's agent log (and its rotated files).
func agentLog(t *testing.T, u *agentUnit) (entries []logEntry, raw string) {
	t.Helper()
	paths, _ := filepath.Glob(agent.LogPath(u.dir) + "*")
	var all strings.Builder
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e logEntry
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				entries = append(entries, e)
			}
		}
	}
	return entries, all.String()
}

// jujuLogEntries returns the entries juju-log wrote, by message.
func jujuLogEntries(entries []logEntry) map[string]logEntry {
	out := map[string]logEntry{}
	for _, e := range entries {
		if _, ok := e["juju_level"]; ok {
			out[e.str("message")] = e
		}
	}
	return out
}

// checkJujuLog asserts that u's agent log has an entry for each message
// with the unit, hook, juju_level and log level.
func checkJujuLog(t *testing.T, u *agentUnit, hook string, want map[string][2]string) {
	t.Helper()
	var got map[string]logEntry
	testutil.WaitUntil(t, 10*time.Second, u.unit+"'s juju-log entries in its agent log", func() bool {
		entries, _ := agentLog(t, u)
		got = jujuLogEntries(entries)
		for msg := range want {
			if _, ok := got[msg]; !ok {
				return false
			}
		}
		return true
	})
	for msg, lv := range want {
		e := got[msg]
		if e.str("unit") != u.unit || e.str("hook") != hook || e.str("juju_level") != lv[0] || e.str("level") != lv[1] {
			t.Errorf("%s: juju-log entry %q: unit %q hook %q juju_level %q level %q; want %s %s %s %s",
				u.unit, msg, e.str("unit"), e.str("hook"), e.str("juju_level"), e.str("level"), u.unit, hook, lv[0], lv[1])
		}
	}
}

// checkNoSecrets asserts that none of secrets appears in u's agent log, at
// any level (the agent logs at debug, so nothing above trace may hold them:
// tool arguments and stdin are trace only).
func checkNoSecrets(t *testing.T, u *agentUnit, secrets ...string) {
	t.Helper()
	entries, raw := agentLog(t, u)
	if len(entries) == 0 {
		t.Fatalf("%s: empty agent log", u.unit)
	}
	for _, s := range secrets {
		if !strings.Contains(raw, s) {
			continue
		}
		for _, e := range entries {
			b, _ := json.Marshal(e)
			if strings.Contains(string(b), s) {
				t.Errorf("%s: secret %q in the agent log at level %q: %s", u.unit, s, e.str("level"), b)
			}
		}
		t.Errorf("%s: secret %q in the agent log", u.unit, s)
	}
}

// ---- what both tool charms check ----

// toolsCluster is a controller and two running units of one tool charm,
// once its leader has run leader-elected and both units have run start.
type toolsCluster[R any] struct {
	name           string // the charm, and its application
	runs           func(t *testing.T, u *agentUnit, hook string) []R
	c              *cluster
	units          []*agentUnit
	leader, minion *agentUnit
}

// startToolsCharm starts a controller and two units of charm name, whose
// hooks' records runs reads (the complete runs of a hook on a unit, in
// order).
func startToolsCharm[R any](t *testing.T, name string, runs func(t *testing.T, u *agentUnit, hook string) []R) *toolsCluster[R] {
	t.Helper()
	c := startCluster(t, 1)
	units := toolUnits(c, name, 2)
	ran := func(u *agentUnit, hook string) bool { return len(runs(t, u, hook)) > 0 }
	leader, minion := leaderAndMinion(c, name, units, func(l *agentUnit) bool { return ran(l, "leader-elected") })
	for _, u := range units {
		testutil.WaitUntil(t, 30*time.Second, u.unit+" to start", func() bool { return ran(u, "start") })
	}
	return &toolsCluster[R]{name: name, runs: runs, c: c, units: units, leader: leader, minion: minion}
}

// lastRun returns the last of runs, if any.
func lastRun[R any](runs []R) (R, bool) {
	if len(runs) == 0 {
		var none R
		return none, false
	}
	return runs[len(runs)-1], true
}

// toolsCharm is what differs between the tool charms: how to read what a
// run recorded, the checks of each hook's run in the charm's own forms,
// and the values its hooks write. toolsCluster.check makes every check the
// charms share.
type toolsCharm[R any] struct {
	// isLeader is what is-leader said in the run; term is the run's
	// $UNITER_LEADERSHIP_TERM; counter is the leader's counter as
	// leader-settings-changed read it with leader-get.
	isLeader func(t *testing.T, r R) bool
	term     func(r R) string
	counter  func(r R) string
	// settings is the application's leader settings once the leader's
	// counter is n; secrets are the ones that no agent log may hold.
	settings func(n int) map[string]string
	secrets  []string

	// The charm's own checks of each hook's run.
	install               func(t *testing.T, u *agentUnit, r R)
	leaderElected         func(t *testing.T, r R, settings map[string]string)
	configChanged         func(t *testing.T, u *agentUnit, r R, cfg map[string]any, n int)
	leaderSettingsChanged func(t *testing.T, r R, settings map[string]string)
	// appStatus is leader-elected's status-get --application
	// --format=json, decoded; false when the call failed (which
	// leaderElected reports).
	appStatus func(t *testing.T, r R) (map[string]any, bool)
	// hasConfig tells whether a config-changed run saw the set config.
	hasConfig func(t *testing.T, r R) bool

	installLog      map[string][2]string // juju-log's entries in install: juju_level and level
	defaults, set   map[string]any       // the config before and after `uniter config set`
	installMessage  string               // the unit status message install sets last
	appMessage      string               // the application status message the leader sets
	workloadMessage string               // each unit's status message after config set
	version         string               // the application version install sets last
}

// check runs every check of the tool charm's hooks, in the order the hooks
// ran.
func (tc *toolsCluster[R]) check(t *testing.T, ch toolsCharm[R]) {
	leader, minion, L := tc.leader, tc.minion, tc.leader.unit
	once := func(t *testing.T, u *agentUnit, hook string) R {
		t.Helper()
		runs := tc.runs(t, u, hook)
		if len(runs) != 1 {
			t.Fatalf("%s ran %s %d times", u.unit, hook, len(runs))
		}
		return runs[0]
	}
	role := func(t *testing.T, u *agentUnit, hook string, r R) {
		t.Helper()
		if got := ch.isLeader(t, r); got != (u == leader) {
			t.Errorf("%s: is-leader %v in %s; the leader is %s", u.unit, got, hook, L)
		}
	}

	t.Run("through uniter-hooktools", func(t *testing.T) {
		// Every tool call went through the small binary (TestToolsBinary).
		want := filepath.Join(filepath.Dir(uniterBin), "uniter-hooktools")
		for _, u := range tc.units {
			if got, err := os.Readlink(filepath.Join(agent.ToolsDir(u.dir), "is-leader")); got != want {
				t.Errorf("%s: tools/is-leader -> %q, %v; want %q", u.unit, got, err, want)
			}
		}
	})

	t.Run("install", func(t *testing.T) {
		for _, u := range tc.units {
			r := once(t, u, "install")
			if ch.isLeader(t, r) {
				// Not even the future leader: is-leader is true only once
				// leader-elected runs (DESIGN.md 4.4 (2a)).
				t.Errorf("%s: is-leader true in install", u.unit)
			}
			ch.install(t, u, r)
			checkJujuLog(t, u, "install", ch.installLog)
		}
	})

	t.Run("leader-elected", func(t *testing.T) {
		if runs := tc.runs(t, minion, "leader-elected"); len(runs) != 0 {
			t.Fatalf("minion %s ran leader-elected", minion.unit)
		}
		r := once(t, leader, "leader-elected")
		role(t, leader, "leader-elected", r)
		if term := cliStatus(tc.c).Applications[tc.name].Term; ch.term(r) != strconv.FormatUint(term, 10) {
			t.Errorf("UNITER_LEADERSHIP_TERM %q in leader-elected, controller term %d", ch.term(r), term)
		}
		ch.leaderElected(t, r, ch.settings(1))
		if doc, ok := ch.appStatus(t, r); ok {
			app, _ := doc["application-status"].(map[string]any)
			units, _ := app["units"].(map[string]any)
			_, data := app["status-data"].(map[string]any)
			if app["status"] != "active" || app["message"] != ch.appMessage || !data || len(units) != 2 {
				t.Errorf("status-get --application --format=json: %v", doc)
			}
			if u := units[L]; !reflect.DeepEqual(u, map[string]any{"status": "maintenance", "message": ch.installMessage, "status-data": map[string]any{}}) {
				t.Errorf("status-get --application: the leader's own unit is %v", u)
			}
		}
	})

	t.Run("config-changed with the defaults", func(t *testing.T) {
		for _, u := range tc.units {
			r := once(t, u, "config-changed")
			role(t, u, "config-changed", r)
			ch.configChanged(t, u, r, ch.defaults, 2)
		}
	})

	t.Run("config-changed after config set", func(t *testing.T) {
		args := []string{"config", "set", tc.name}
		for _, k := range slices.Sorted(maps.Keys(ch.set)) {
			if v := ch.set[k]; v != nil {
				args = append(args, fmt.Sprintf("%s=%v", k, v))
			}
		}
		if res := tc.c.run(args...); res.code != 0 {
			t.Fatalf("%q: exit %d: %s", args, res.code, res.stderr)
		}
		for _, u := range tc.units {
			var r R
			testutil.WaitUntil(t, 30*time.Second, u.unit+" to run config-changed with the new config", func() bool {
				var ok bool
				r, ok = lastRun(tc.runs(t, u, "config-changed"))
				return ok && ch.hasConfig(t, r)
			})
			role(t, u, "config-changed", r)
			ch.configChanged(t, u, r, ch.set, 3)
		}
	})

	t.Run("leader-settings-changed on the minion", func(t *testing.T) {
		var r R
		testutil.WaitUntil(t, 30*time.Second, minion.unit+" to see the counter at 3 in leader-settings-changed", func() bool {
			var ok bool
			r, ok = lastRun(tc.runs(t, minion, "leader-settings-changed"))
			return ok && ch.counter(r) == "3"
		})
		if runs := tc.runs(t, leader, "leader-settings-changed"); len(runs) != 0 {
			t.Errorf("leader %s ran leader-settings-changed", L)
		}
		role(t, minion, "leader-settings-changed", r)
		settings := ch.settings(3)
		ch.leaderSettingsChanged(t, r, settings)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ls, err := tc.c.client().LeaderSettings(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ls.Values, settings) {
			t.Errorf("controller's leader settings %v, want %v (the minion's leader-set must not have landed)", ls.Values, settings)
		}
	})

	t.Run("uniter status shows what the hooks set", func(t *testing.T) {
		var a api.ApplicationStatus
		testutil.WaitUntil(t, 10*time.Second, "uniter status to show the statuses", func() bool {
			a = cliStatus(tc.c).Applications[tc.name]
			for _, u := range tc.units {
				if a.Units[u.unit].Workload.Message != ch.workloadMessage {
					return false
				}
			}
			return true
		})
		if a.Leader == nil || *a.Leader != L {
			t.Errorf("leader %v, want %s", a.Leader, L)
		}
		if a.Status == nil || a.Status.Status != "active" || a.Status.Message != ch.appMessage {
			t.Errorf("application status %+v, want active %q", a.Status, ch.appMessage)
		}
		if a.Version != ch.version {
			t.Errorf("application version %q, want %s", a.Version, ch.version)
		}
		for _, u := range tc.units {
			if us := a.Units[u.unit]; us.Workload.Status != "active" || us.ApplicationVersion != ch.version {
				t.Errorf("%s: workload %+v, version %q", u.unit, us.Workload, us.ApplicationVersion)
			}
		}
	})

	t.Run("no secret in any agent log", func(t *testing.T) {
		for _, u := range tc.units {
			checkNoSecrets(t, u, ch.secrets...)
		}
	})
}

// ---- tools-bash ----

// bashRun is one run of a tools-bash hook: results/<hook>.<n>/.
type bashRun struct {
	dir  string
	vars map[string]string
}

// bashRuns returns the complete runs of hook on u, in order.
func bashRuns(t *testing.T, u *agentUnit, hook string) []bashRun {
	t.Helper()
	var runs []bashRun
	for n := 1; ; n++ {
		dir := u.path("charm", "results", fmt.Sprintf("%s.%d", hook, n))
		b, err := os.ReadFile(filepath.Join(dir, "vars"))
		if errors.Is(err, fs.ErrNotExist) {
			return runs
		}
		if err != nil {
			t.Fatal(err)
		}
		vars := map[string]string{}
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			k, v, _ := strings.Cut(line, "=")
			vars[k] = v
		}
		r := bashRun{dir: dir, vars: vars}
		runs = append(runs, r)
	}
}

// toolCall is one recorded tool call: its stdout, stderr and exit code. With
// prefix set, want's stdout and stderr are prefixes.
type toolCall struct {
	out, err string
	rc       int
	prefix   bool
}

func (r bashRun) call(t *testing.T, name string) toolCall {
	t.Helper()
	read := func(ext string) string {
		b, err := os.ReadFile(filepath.Join(r.dir, name+ext))
		if err != nil {
			t.Fatalf("%s: %v", r.dir, err)
		}
		return string(b)
	}
	rc, err := strconv.Atoi(strings.TrimSpace(read(".rc")))
	if err != nil {
		t.Fatalf("%s: bad exit code of %s: %v", r.dir, name, err)
	}
	return toolCall{out: read(".out"), err: read(".err"), rc: rc}
}

// names lists the calls the run recorded.
func (r bashRun) names(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(r.dir, "*.rc"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		out = append(out, strings.TrimSuffix(filepath.Base(f), ".rc"))
	}
	slices.Sort(out)
	return out
}

// expect asserts that the run recorded exactly the calls of want, each with
// the wanted stdout, stderr and exit code.
func (r bashRun) expect(t *testing.T, want map[string]toolCall) {
	t.Helper()
	if got, keys := r.names(t), slices.Sorted(maps.Keys(want)); !slices.Equal(got, keys) {
		t.Errorf("%s: recorded calls %q, want %q", r.dir, got, keys)
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		w, got := want[name], r.call(t, name)
		ok := got.rc == w.rc && got.out == w.out && got.err == w.err
		if w.prefix {
			ok = got.rc == w.rc && strings.HasPrefix(got.out, w.out) && strings.HasPrefix(got.err, w.err)
		}
		if !ok {
			t.Errorf("%s: %s:\n got exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q (prefix %v)",
				filepath.Base(r.dir), name, got.rc, got.out, got.err, w.rc, w.out, w.err, w.prefix)
		}
	}
}

func toolSays(out string) toolCall { return toolCall{out: out} }

var toolSilent = toolCall{}

// TestToolsBashCharm runs two units of testcharms/tools-bash under real
// agents and a real controller and checks every hook tool call of its
// hooks, byte for byte, in the forms bash charms use (HOOK-TOOLS.md §4-5);
// that the writes reached the controller; that juju-log reached the agent
// log with unit, hook and level; that leader settings written by the
// leader reach the minion's leader-settings-changed; that a minion is
// refused with Juju's exact texts; and that no secret written with
// leader-set appears in any agent log.
func TestToolsBashCharm(t *testing.T) {
	tc := startToolsCharm(t, "tools-bash", bashRuns)
	leader, L := tc.leader, tc.leader.unit
	tc.check(t, toolsCharm[bashRun]{
		isLeader: func(_ *testing.T, r bashRun) bool { return r.vars["role"] == "leader" },
		term:     func(r bashRun) string { return r.vars["term"] },
		counter:  func(r bashRun) string { return r.vars["x"] },
		settings: func(x int) map[string]string {
			return map[string]string{"a": "1", "api-token": bashToken, "b": "two", "db-password": bashPassword,
				"leader": L, "price": "1.50", "x": strconv.Itoa(x)}
		},
		secrets: []string{bashToken, bashPassword},

		install: func(t *testing.T, _ *agentUnit, r bashRun) {
			r.expect(t, map[string]toolCall{
				"status-set":      toolSilent,
				"status-get":      toolSays("maintenance\n"),
				"status-get-json": toolSays(`{"message":"installing tools-bash","status":"maintenance","status-data":{}}` + "\n"),
				"log-plain":       toolSilent,
				"log-words":       toolSilent,
				"log-warning":     toolSilent,
				"log-debug":       toolSilent,
				"log-debug-flag":  toolSilent,
				"log-critical":    toolSilent,
				"log-unknown":     toolSilent,
				"log-multiline":   toolSilent,
				"log-format":      {err: "--format flag deprecated for command \"juju-log\"\n"},
				"app-version":     toolSilent,
				"help":            {out: "Usage: is-leader", prefix: true},
				"bad-flag":        {err: "ERROR flag provided but not defined: --bogus\n\nUsage: is-leader", rc: 2, prefix: true},
			})
		},
		installLog: map[string][2]string{
			"tools-bash: plain message":            {"info", "info"},
			"tools-bash: several words, one entry": {"info", "info"},
			"tools-bash: disk at 91%":              {"warning", "warn"},
			"-tools-bash: a message led by a dash": {"debug", "debug"},
			"tools-bash: the --debug flag":         {"debug", "debug"},
			"tools-bash: critical":                 {"critical", "error"},
			"tools-bash: unknown level":            {"info", "info"},
			"tools-bash: line one\nline two":       {"info", "info"},
			"tools-bash: with a format flag":       {"info", "info"},
		},

		leaderElected: func(t *testing.T, r bashRun, all map[string]string) {
			if r.vars["x-before"] != "" {
				t.Errorf("leader-elected vars %v; want no x yet", r.vars)
			}
			r.expect(t, map[string]toolCall{
				"is-leader":              toolSays("True\n"),
				"is-leader-json":         toolSays("true\n"),
				"is-leader-yaml":         toolSays("true\n"),
				"leader-get-empty":       toolSays("{}\n"),
				"leader-set-x":           toolSilent,
				"leader-get-x":           toolSays("1\n"),
				"leader-set-args":        toolSilent,
				"leader-set-file":        toolSilent,
				"leader-set-delete":      toolSilent,
				"leader-get-doomed":      toolSilent,
				"leader-get-doomed-json": toolSays("null\n"),
				"leader-get-price":       toolSays("1.50\n"),
				"leader-get-all":         toolSays(settingsYAML(all)),
				"leader-get-all-json":    toolSays(mustJSON(t, all) + "\n"),
				"status-set-app":         toolSilent,
				"status-get-app":         {out: r.call(t, "status-get-app").out}, // exit 0, no stderr; decoded and checked through toolsCharm.appStatus
			})
		},
		appStatus: func(t *testing.T, r bashRun) (map[string]any, bool) {
			sg := r.call(t, "status-get-app")
			if sg.rc != 0 {
				return nil, false
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(sg.out), &doc); err != nil {
				t.Fatal(err)
			}
			return doc, true
		},

		configChanged: func(t *testing.T, u *agentUnit, r bashRun, cfg map[string]any, x int) {
			t.Helper()
			set := maps.Clone(cfg)
			delete(set, "api-key")
			smartBool := map[bool]string{true: "True\n", false: "False\n"}
			want := map[string]toolCall{
				"config-get":          toolSays(configYAML(set)),
				"config-get-all":      toolSays(configYAML(cfg)),
				"config-get-all-json": toolSays(mustJSON(t, cfg) + "\n"),
				"config-get-json":     toolSays(mustJSON(t, set) + "\n"),
				"cfg-message":         toolSays(cfg["message"].(string) + "\n"),
				"cfg-port":            toolSays(fmt.Sprint(cfg["port"]) + "\n"),
				"cfg-port-json":       toolSays(fmt.Sprint(cfg["port"]) + "\n"),
				"cfg-ratio":           toolSays(fmt.Sprint(cfg["ratio"]) + "\n"),
				"cfg-debug":           toolSays(smartBool[cfg["debug"].(bool)]),
				"cfg-api-key":         toolSilent,
				"cfg-api-key-json":    toolSays("null\n"),
				"status-set":          toolSilent,
				"status-get-json": toolSays(mustJSON(t, map[string]any{"message": fmt.Sprintf("message=%s port=%v", cfg["message"], cfg["port"]),
					"status": "active", "status-data": map[string]any{}}) + "\n"),
			}
			if u == leader {
				want["leader-set-x"] = toolSilent
				want["leader-get-x"] = toolSays(fmt.Sprintf("%d\n", x))
				want["status-set-app"] = toolSilent
				if r.vars["x-before"] != strconv.Itoa(x-1) {
					t.Errorf("%s: x=$(leader-get x) gave %q, want %d", u.unit, r.vars["x-before"], x-1)
				}
			}
			if (r.vars["debug"] == "on") != cfg["debug"].(bool) {
				t.Errorf(`%s: [ "$(config-get debug)" = True ] was %v with debug=%v`, u.unit, r.vars["debug"] == "on", cfg["debug"])
			}
			r.expect(t, want)
		},
		hasConfig: func(t *testing.T, r bashRun) bool { return r.call(t, "cfg-port").out == "9090\n" },
		defaults:  map[string]any{"api-key": nil, "debug": false, "message": "hello", "port": 8080, "ratio": 0.25},
		set:       map[string]any{"api-key": nil, "debug": true, "message": "hello world", "port": 9090, "ratio": 2.5},

		leaderSettingsChanged: func(t *testing.T, r bashRun, all map[string]string) {
			r.expect(t, map[string]toolCall{
				"is-leader":              toolSays("False\n"),
				"is-leader-json":         toolSays("false\n"),
				"leader-get-x":           toolSays("3\n"),
				"leader-get-token":       toolSays(bashToken + "\n"),
				"leader-get-doomed":      toolSilent,
				"leader-get-doomed-json": toolSays("null\n"),
				"leader-get-all":         toolSays(settingsYAML(all)),
				"leader-get-all-json":    toolSays(mustJSON(t, all) + "\n"),
				"leader-set-refused":     {err: errLeaderSetNotLeader, rc: 1},
				"status-set-app-refused": {err: errStatusNotLeader, rc: 1},
				"status-get-app-refused": {err: errStatusGetNotLeader, rc: 1},
			})
		},

		installMessage:  "installing tools-bash",
		appMessage:      "led by " + L,
		workloadMessage: "message=hello world port=9090",
		version:         "1.2.3",
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// asLoaded is v as json.loads (and json.Unmarshal into an any) gives it
// back.
func asLoaded(t *testing.T, v any) any {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(mustJSON(t, v)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// settingsYAML is leader settings as the smart format prints them: YAML
// with sorted keys, strings that look like numbers quoted.
func settingsYAML(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	return b.String()
}

// configYAML is config as the smart format prints it: YAML with sorted
// keys; nil is null.
func configYAML(m map[string]any) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if v == nil {
			v = "null"
		}
		fmt.Fprintf(&b, "%s: %v\n", k, v)
	}
	return b.String()
}

// ---- tools-python ----

// pyCall is one tool call of the tools-python charm, as it recorded it.
type pyCall struct {
	Lib    string   `json:"lib"`
	Label  string   `json:"label"`
	Argv   []string `json:"argv"`
	RC     int      `json:"rc"`
	Stdout string   `json:"stdout"`
	Stderr string   `json:"stderr"`
}

// pyValue is what a library function returned (value and Python type) or
// the CalledProcessError it raised (error and rc).
type pyValue struct {
	Value any    `json:"value"`
	Type  string `json:"type"`
	Error string `json:"error"`
	RC    int    `json:"rc"`
}

// pyRun is one results/<hook>.<n>.json of tools-python.
type pyRun struct {
	name string
	Hook string `json:"hook"`
	Unit string `json:"unit"`
	Env  struct {
		JujuVersion      string            `json:"juju_version"`
		Plain            bool              `json:"juju_version_plain"`
		OpsAppData       bool              `json:"ops_app_data"`
		OperatorDispatch bool              `json:"operator_dispatch"`
		DispatchPath     string            `json:"dispatch_path"`
		HookName         string            `json:"hook_name"`
		Argv0            string            `json:"argv0"`
		Cwd              string            `json:"cwd"`
		CharmDir         string            `json:"charm_dir"`
		Term             string            `json:"term"`
		Which            map[string]string `json:"which"`
	} `json:"env"`
	Calls  []pyCall           `json:"calls"`
	Values map[string]pyValue `json:"values"`
	State  struct {
		Hooks []string `json:"hooks"`
		Mode  string   `json:"mode"`
		Path  string   `json:"path"`
	} `json:"state"`
	Error string `json:"error"`
}

// pyRuns returns the complete runs of hook on u, in order.
func pyRuns(t *testing.T, u *agentUnit, hook string) []pyRun {
	t.Helper()
	var runs []pyRun
	for n := 1; ; n++ {
		name := fmt.Sprintf("%s.%d.json", hook, n)
		b, err := os.ReadFile(u.path("charm", "results", name))
		if errors.Is(err, fs.ErrNotExist) {
			return runs
		}
		if err != nil {
			t.Fatal(err)
		}
		r := pyRun{name: name}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		runs = append(runs, r)
	}
}

// expect asserts the run's environment checks and that it made exactly the
// calls of want, in order, each with the wanted exit code and output.
func (r pyRun) expect(t *testing.T, u *agentUnit, want []pyCall) {
	t.Helper()
	where := u.unit + " " + r.name
	if r.Error != "" {
		t.Errorf("%s: the hook failed:\n%s", where, r.Error)
	}
	charmDir := u.path("charm")
	e := r.Env
	switch {
	case !e.Plain || !e.OpsAppData:
		t.Errorf("%s: JUJU_VERSION %q: plain X.Y.Z %v, ops would enable application data %v", where, e.JujuVersion, e.Plain, e.OpsAppData)
	case e.OperatorDispatch:
		t.Errorf("%s: OPERATOR_DISPATCH is set", where)
	case e.DispatchPath != "hooks/"+r.Hook || e.HookName != r.Hook:
		t.Errorf("%s: JUJU_DISPATCH_PATH %q, JUJU_HOOK_NAME %q", where, e.DispatchPath, e.HookName)
	case e.Argv0 != filepath.Join(charmDir, "dispatch") || e.Cwd != charmDir || e.CharmDir != charmDir:
		t.Errorf("%s: argv[0] %q, cwd %q, JUJU_CHARM_DIR %q; want the dispatch of, and, %s", where, e.Argv0, e.Cwd, e.CharmDir, charmDir)
	case e.Which["is-leader"] != filepath.Join(agent.ToolsDir(u.dir), "is-leader"):
		t.Errorf("%s: is-leader found at %q", where, e.Which["is-leader"])
	}
	if s := r.State; s.Path != filepath.Join(charmDir, ".unit-state.db") || s.Mode != "0o600" || len(s.Hooks) == 0 || s.Hooks[len(s.Hooks)-1] != r.Hook {
		t.Errorf("%s: .unit-state.db: %+v", where, s)
	}
	got := r.Calls
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Errorf("%s: missing call %d: %+v", where, i, want[i])
			continue
		case i >= len(want):
			t.Errorf("%s: unexpected call %d: %+v", where, i, got[i])
			continue
		}
		g, w := got[i], want[i]
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: call %d:\n got %+v\nwant %+v", where, i, g, w)
		}
	}
}

// value returns a recorded library result, failing if it is missing.
func (r pyRun) value(t *testing.T, label string) pyValue {
	t.Helper()
	v, ok := r.Values[label]
	if !ok {
		t.Fatalf("%s: no value %s", r.name, label)
	}
	return v
}

// expectValue asserts a recorded library result and its Python type.
func (r pyRun) expectValue(t *testing.T, label string, want any, typ string) {
	t.Helper()
	v := r.value(t, label)
	if v.Error != "" || v.Type != typ || !reflect.DeepEqual(v.Value, want) {
		t.Errorf("%s: %s = %#v (%s, error %q); want %#v (%s)", r.name, label, v.Value, v.Type, v.Error, want, typ)
	}
}

// TestToolsPythonCharm runs two units of testcharms/tools-python (a
// standard-library Python dispatch charm) under real agents and checks
// every tool call of the charmhelpers, ops 3.x and ops 2.x forms: argv,
// exit code, stdout and stderr exactly, and what json.loads made of the
// output (bool for is-leader, int/float/bool/str config values, None for
// an unset option); the hook environment ops relies on (JUJU_VERSION
// X.Y.Z, no OPERATOR_DISPATCH, cwd = charm dir with a writable
// .unit-state.db); the minion's refusals with the exact texts ops and
// charmhelpers see; status and version at the controller; juju-log in the
// agent log; and no leader-set secret in any agent log.
func TestToolsPythonCharm(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3 (scripts/install-deps.sh installs it)")
	}
	tc := startToolsCharm(t, "tools-python", pyRuns)
	leader, minion, L := tc.leader, tc.minion, tc.leader.unit
	boolJSON := map[bool]string{true: "true\n", false: "false\n"}
	call := func(lib, label, out string, argv ...string) pyCall {
		return pyCall{Lib: lib, Label: label, Argv: argv, Stdout: out}
	}
	refused := func(lib, label, stderr string, argv ...string) pyCall {
		return pyCall{Lib: lib, Label: label, Argv: argv, RC: 1, Stderr: stderr}
	}
	tool := func(u *agentUnit, name string) string { return filepath.Join(agent.ToolsDir(u.dir), name) }
	unitStatusJSON := func(status, msg string) string {
		return mustJSON(t, map[string]any{"message": msg, "status": status, "status-data": map[string]any{}}) + "\n"
	}

	tc.check(t, toolsCharm[pyRun]{
		isLeader: func(t *testing.T, r pyRun) bool {
			t.Helper()
			b, ok := r.value(t, "ch.is_leader").Value.(bool)
			if !ok {
				t.Errorf("%s: ch.is_leader is %#v, not a bool", r.name, r.Values["ch.is_leader"])
			}
			return b
		},
		term: func(r pyRun) string { return r.Env.Term },
		counter: func(r pyRun) string {
			all, _ := r.Values["ch.leader_get"].Value.(map[string]any)
			n, _ := all["n"].(string)
			return n
		},
		settings: func(n int) map[string]string {
			return map[string]string{"leader": L, "n": strconv.Itoa(n), "token": pyToken}
		},
		secrets: []string{pyToken},

		install: func(t *testing.T, u *agentUnit, r pyRun) {
			r.expect(t, u, []pyCall{
				call("charmhelpers", "ch.is-leader", "false\n", "is-leader", "--format=json"),
				call("charmhelpers", "ch.log", "", "juju-log", "tools-python: charmhelpers info"),
				call("charmhelpers", "ch.log-warning", "", "juju-log", "-l", "WARNING", "tools-python: charmhelpers warning"),
				call("ops3", "ops3.log", "", "juju-log", "--log-level", "DEBUG", "--", "-tools-python: ops 3 debug, dash first"),
				call("ops2", "ops2.log", "", tool(u, "juju-log"), "--log-level", "ERROR", "tools-python: ops 2 error"),
				call("charmhelpers", "ch.status-set", "", "status-set", "maintenance", "installing (charmhelpers)"),
				call("charmhelpers", "ch.status-get", unitStatusJSON("maintenance", "installing (charmhelpers)"), "status-get", "--format=json", "--include-data"),
				call("ops2", "ops2.status-set", "", tool(u, "status-set"), "--application=False", "maintenance", "installing (ops 2)"),
				call("ops2", "ops2.status-get", unitStatusJSON("maintenance", "installing (ops 2)"), tool(u, "status-get"), "--include-data", "--application=False", "--format=json"),
				call("ops3", "ops3.status-set", "", "status-set", "--application=False", "maintenance", "--", "installing (ops 3)"),
				call("ops3", "ops3.status-get", unitStatusJSON("maintenance", "installing (ops 3)"), "status-get", "--include-data", "--format=json", "--application=false"),
				call("charmhelpers", "ch.application-version-set", "", "application-version-set", "0.1.0"),
				call("ops2", "ops2.application-version-set", "", tool(u, "application-version-set"), "0.2.0"),
				call("ops3", "ops3.application-version-set", "", "application-version-set", "--", "3.0.0"),
				call("ops3", "ops3.is-leader", "false\n", "is-leader", "--format=json"),
			})
			r.expectValue(t, "ch.is_leader", false, "bool")
			r.expectValue(t, "ops3.is_leader", false, "bool")
			for label, want := range map[string]any{
				"ch.status_get":   []any{"maintenance", "installing (charmhelpers)"},
				"ops2.status_get": map[string]any{"message": "installing (ops 2)", "status": "maintenance", "status-data": map[string]any{}},
				"ops3.status_get": map[string]any{"message": "installing (ops 3)", "status": "maintenance", "status-data": map[string]any{}},
			} {
				r.expectValue(t, label, want, map[bool]string{true: "tuple", false: "dict"}[label == "ch.status_get"])
			}
			if !slices.Equal(r.State.Hooks, []string{"install"}) {
				t.Errorf("%s: .unit-state.db holds %q after install", u.unit, r.State.Hooks)
			}
		},
		installLog: map[string][2]string{
			"tools-python: charmhelpers info":        {"info", "info"},
			"tools-python: charmhelpers warning":     {"warning", "warn"},
			"-tools-python: ops 3 debug, dash first": {"debug", "debug"},
			"tools-python: ops 2 error":              {"error", "error"},
		},

		leaderElected: func(t *testing.T, r pyRun, all map[string]string) {
			appStatus := r.Calls[len(r.Calls)-2].Stdout // decoded and checked through toolsCharm.appStatus
			r.expect(t, leader, []pyCall{
				call("charmhelpers", "ch.is-leader", "true\n", "is-leader", "--format=json"),
				call("ops2", "ops2.is-leader", "true\n", tool(leader, "is-leader"), "--format=json"),
				call("charmhelpers", "ch.leader-get.initial", "{}\n", "leader-get", "--format=json", "-"),
				call("charmhelpers", "ch.leader-set", "", "leader-set", "leader="+L, "token="+pyToken, "n=1", "scratch=x"),
				call("charmhelpers", "ch.leader-set.delete", "", "leader-set", "scratch="),
				call("charmhelpers", "ch.leader-get.scratch", "null\n", "leader-get", "--format=json", "scratch"),
				call("charmhelpers", "ch.leader-get.n", "\"1\"\n", "leader-get", "--format=json", "n"),
				call("charmhelpers", "ch.leader-get", mustJSON(t, all)+"\n", "leader-get", "--format=json", "-"),
				call("charmhelpers", "ch.status-set.app", "", "status-set", "--application", "active", "python leader (charmhelpers)"),
				call("ops3", "ops3.status-set.app", "", "status-set", "--application=True", "active", "--", "python leader (ops 3)"),
				call("ops3", "ops3.status-get.app", appStatus, "status-get", "--include-data", "--format=json", "--application=true"),
				call("ops3", "ops3.is-leader", "true\n", "is-leader", "--format=json"),
			})
			r.expectValue(t, "ch.is_leader", true, "bool")
			r.expectValue(t, "ops2.is_leader", true, "bool")
			r.expectValue(t, "ops3.is_leader", true, "bool")
			r.expectValue(t, "ch.leader_get.initial", map[string]any{}, "dict")
			r.expectValue(t, "ch.leader_get.scratch", nil, "NoneType")
			r.expectValue(t, "ch.leader_get.n", "1", "str")
			r.expectValue(t, "ch.leader_get", asLoaded(t, all), "dict")
		},
		appStatus: func(t *testing.T, r pyRun) (map[string]any, bool) {
			v := r.value(t, "ops3.status_get.app")
			if v.Error != "" {
				t.Errorf("ops 3 status_get(is_app=True) raised: %q", v.Error)
				return nil, false
			}
			doc, _ := v.Value.(map[string]any)
			return doc, true
		},

		configChanged: func(t *testing.T, u *agentUnit, r pyRun, cfg map[string]any, n int) {
			t.Helper()
			set := maps.Clone(cfg)
			delete(set, "password")
			want := []pyCall{
				call("charmhelpers", "ch.is-leader", boolJSON[u == leader], "is-leader", "--format=json"),
				call("charmhelpers", "ch.config-get", mustJSON(t, cfg)+"\n", "config-get", "--all", "--format=json"),
				call("ops3", "ops3.config-get", mustJSON(t, set)+"\n", "config-get", "--format=json"),
				call("ops2", "ops2.config-get", mustJSON(t, set)+"\n", tool(u, "config-get"), "--format=json"),
			}
			if u == leader {
				want = append(want,
					call("charmhelpers", "ch.leader-get.n", fmt.Sprintf("%q\n", strconv.Itoa(n-1)), "leader-get", "--format=json", "n"),
					call("charmhelpers", "ch.leader-set.n", "", "leader-set", fmt.Sprintf("n=%d", n)))
			}
			want = append(want,
				call("ops3", "ops3.status-set", "", "status-set", "--application=False", "active", "--", fmt.Sprintf("name=%s workers=%v", cfg["name"], cfg["workers"])),
				call("ops3", "ops3.is-leader", boolJSON[u == leader], "is-leader", "--format=json"))
			r.expect(t, u, want)
			// json.loads gives the types charms rely on.
			types := map[string]any{"enabled": "bool", "name": "str", "threshold": "float", "workers": "int"}
			r.expectValue(t, "ops3.config_get.types", types, "dict")
			r.expectValue(t, "ops2.config_get.types", types, "dict")
			types["password"] = "NoneType"
			r.expectValue(t, "ch.config.types", types, "dict")
			r.expectValue(t, "ch.config", asLoaded(t, cfg), "dict")
			if !slices.Contains(r.State.Hooks, "install") {
				t.Errorf("%s: .unit-state.db lost the install hook: %q", u.unit, r.State.Hooks)
			}
			// The second config-changed: install, config-changed, start and this one at least.
			if n == 3 && (len(r.State.Hooks) < 4 || r.State.Hooks[0] != "install") {
				t.Errorf("%s: .unit-state.db holds %q", u.unit, r.State.Hooks)
			}
		},
		hasConfig: func(_ *testing.T, r pyRun) bool {
			cfg, _ := r.Values["ops3.config_get"].Value.(map[string]any)
			return cfg["workers"] == 8.0
		},
		defaults: map[string]any{"enabled": true, "name": "world", "password": nil, "threshold": 0.75, "workers": 4},
		set:      map[string]any{"enabled": false, "name": "python", "password": nil, "threshold": 1.5, "workers": 8},

		leaderSettingsChanged: func(t *testing.T, r pyRun, all map[string]string) {
			r.expect(t, minion, []pyCall{
				call("charmhelpers", "ch.is-leader", "false\n", "is-leader", "--format=json"),
				call("ops2", "ops2.is-leader", "false\n", tool(minion, "is-leader"), "--format=json"),
				call("charmhelpers", "ch.leader-get", mustJSON(t, all)+"\n", "leader-get", "--format=json", "-"),
				call("charmhelpers", "ch.leader-get.token", strconv.Quote(pyToken)+"\n", "leader-get", "--format=json", "token"),
				call("charmhelpers", "ch.leader-get.scratch", "null\n", "leader-get", "--format=json", "scratch"),
				refused("charmhelpers", "ch.leader-set.refused", errLeaderSetNotLeader, "leader-set", "n=99"),
				refused("charmhelpers", "ch.status-set.app", errStatusNotLeader, "status-set", "--application", "active", "a minion's claim"),
				call("charmhelpers", "ch.status-set.app.failed", "", "juju-log", "-l", "INFO", "status-set failed: active a minion's claim"),
				refused("ops3", "ops3.status-set.app", errStatusNotLeader, "status-set", "--application=True", "active", "--", "a minion's claim (ops 3)"),
				refused("ops3", "ops3.status-get.app", errStatusGetNotLeader, "status-get", "--include-data", "--format=json", "--application=true"),
				call("ops3", "ops3.is-leader", "false\n", "is-leader", "--format=json"),
			})
			r.expectValue(t, "ch.is_leader", false, "bool")
			r.expectValue(t, "ops2.is_leader", false, "bool")
			r.expectValue(t, "ch.leader_get", asLoaded(t, all), "dict")
			r.expectValue(t, "ch.leader_get.token", pyToken, "str")
			r.expectValue(t, "ch.leader_get.scratch", nil, "NoneType")
			r.expectValue(t, "ch.status_set.app", false, "bool")
			if v := r.value(t, "ch.leader_set.refused"); v.RC != 1 || v.Error != errLeaderSetNotLeader {
				t.Errorf("charmhelpers leader_set on a minion raised %+v", v)
			}
			checkJujuLog(t, minion, "leader-settings-changed", map[string][2]string{
				"status-set failed: active a minion's claim": {"info", "info"},
			})
		},

		installMessage:  "installing (ops 3)",
		appMessage:      "python leader (ops 3)",
		workloadMessage: "name=python workers=8",
		version:         "3.0.0", // ops 3's application-version-set -- 3.0.0, the last
	})
}
