package tests

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The secret-looking leader settings tools-bash writes; they must never
// reach an agent's log.
const (
	bashToken    = "tok-5f0c1d2e3b4a69788796a5b4" // leader-set k=v
	bashPassword = "pw-8c7d6e5f4a3b2c1d0e9f"      // leader-set --file -
)

// TestToolsBashCharm runs two units of testcharms/tools-bash under real
// agents and a real controller and checks every hook tool call of its
// hooks, byte for byte, in the forms bash charms use (HOOK-TOOLS.md §4-6,
// issue 12 must show 6: the relation tools from the hooks of its peer
// relation, created, joined, changed for a unit and for the application,
// and departed once the minion is removed, with network-get, unit-get and
// the port tools);
// that the writes reached the controller; that juju-log reached the agent
// log with unit, hook and level; that leader settings written by the
// leader reach the minion's leader-settings-changed; that a minion is
// refused with Juju's exact texts; and that no secret written with
// leader-set appears in any agent log.
func TestToolsBashCharm(t *testing.T) {
	tc := startToolsCharm(t, "tools-bash", bashRuns)
	L := tc.leader.unit
	settings := func(x int) map[string]string {
		return map[string]string{"a": "1", "api-token": bashToken, "b": "two", "db-password": bashPassword,
			"leader": L, "price": "1.50", "x": strconv.Itoa(x)}
	}
	defaults := map[string]any{"api-key": nil, "debug": false, "message": "hello", "port": 8080, "ratio": 0.25}
	set := map[string]any{"api-key": nil, "debug": true, "message": "hello world", "port": 9090, "ratio": 2.5}

	table, facts := bashTable(t, L, settings)
	table = append(table, bashRelationTable(t, L, tc.minion.unit)...)
	for _, cc := range []struct {
		at  stage
		cfg map[string]any
		x   int // the leader's counter once it ran
	}{{atDefaults, defaults, 2}, {atConfigSet, set, 3}} {
		table = append(table, bashConfigTable(t, cc.at, cc.cfg, cc.x)...)
		facts = append(facts, bashConfigFacts(cc.at, cc.cfg, cc.x)...)
	}
	tc.check(t, toolsCharm[bashRun]{
		calls:     bashCalls,
		isLeader:  func(_ *testing.T, r bashRun) bool { return r.vars["role"] == "leader" },
		term:      func(r bashRun) string { return r.vars["term"] },
		counter:   func(r bashRun) string { return r.vars["x"] },
		hasConfig: func(t *testing.T, r bashRun) bool { return r.call(t, "cfg-port").stdout == "9090\n" },
		relEnv: func(r bashRun) relEnv {
			v := r.vars
			return relEnv{v["relation"], v["relation-id"], v["remote-unit"], v["remote-app"], v["departing-unit"]}
		},
		sawRemoteData: func(r bashRun) bool { return r.vars["remote-role"] == "created" },

		table: table,
		facts: facts,

		set:             set,
		settings:        settings(3),
		secrets:         []string{bashToken, bashPassword},
		appMessage:      "led by " + L,
		workloadMessage: "message=hello world port=9090",
		version:         "1.2.3",
	})
}

// bashTable is the calls of tools-bash's hooks but config-changed, and the
// facts of leader-elected; L is the leader, settings the application's
// leader settings once the leader's counter is x. tools-bash records no
// argv: testcharms/tools-bash/hooks/tools-hook names each call.
func bashTable(t *testing.T, L string, settings func(x int) map[string]string) ([]toolRow, []factRow[bashRun]) {
	table := []toolRow{
		{atInstall, onEach, "status-set", nil, silent},
		{atInstall, onEach, "status-get", nil, says("maintenance\n")},
		{atInstall, onEach, "status-get-json", nil, says(`{"message":"installing tools-bash","status":"maintenance","status-data":{}}` + "\n")},
		{atInstall, onEach, "log-plain", nil, silent.logged("tools-bash: plain message", "info", "info")},
		{atInstall, onEach, "log-words", nil, silent.logged("tools-bash: several words, one entry", "info", "info")},
		{atInstall, onEach, "log-warning", nil, silent.logged("tools-bash: disk at 91%", "warning", "warn")},
		{atInstall, onEach, "log-debug", nil, silent.logged("-tools-bash: a message led by a dash", "debug", "debug")},
		{atInstall, onEach, "log-debug-flag", nil, silent.logged("tools-bash: the --debug flag", "debug", "debug")},
		{atInstall, onEach, "log-critical", nil, silent.logged("tools-bash: critical", "critical", "error")},
		{atInstall, onEach, "log-unknown", nil, silent.logged("tools-bash: unknown level", "info", "info")},
		{atInstall, onEach, "log-multiline", nil, silent.logged("tools-bash: line one\nline two", "info", "info")},
		{atInstall, onEach, "log-format", nil, toolWant{stderr: "--format flag deprecated for command \"juju-log\"\n"}.
			logged("tools-bash: with a format flag", "info", "info")},
		{atInstall, onEach, "app-version", nil, silent},
		{atInstall, onEach, "help", nil, toolWant{stdout: "Usage: is-leader", prefix: true}},
		{atInstall, onEach, "bad-flag", nil, toolWant{rc: 2, stderr: "ERROR option provided but not defined: --bogus\n\nUsage: is-leader", prefix: true}},

		{atLeaderElected, onLeader, "is-leader", nil, says("True\n")},
		{atLeaderElected, onLeader, "is-leader-json", nil, says("true\n")},
		{atLeaderElected, onLeader, "is-leader-yaml", nil, says("true\n")},
		{atLeaderElected, onLeader, "leader-get-empty", nil, says("{}\n")},
		{atLeaderElected, onLeader, "leader-set-x", nil, silent},
		{atLeaderElected, onLeader, "leader-get-x", nil, says("1\n")},
		{atLeaderElected, onLeader, "leader-set-args", nil, silent},
		{atLeaderElected, onLeader, "leader-set-file", nil, silent},
		{atLeaderElected, onLeader, "leader-set-delete", nil, silent},
		{atLeaderElected, onLeader, "leader-get-doomed", nil, silent},
		{atLeaderElected, onLeader, "leader-get-doomed-json", nil, says("null\n")},
		{atLeaderElected, onLeader, "leader-get-price", nil, says("1.50\n")},
		{atLeaderElected, onLeader, "leader-get-all", nil, says(settingsYAML(settings(1)))},
		{atLeaderElected, onLeader, "leader-get-all-json", nil, says(mustJSON(t, settings(1)) + "\n")},
		{atLeaderElected, onLeader, "status-set-app", nil, silent},
		{atLeaderElected, onLeader, "status-get-app", nil, toolWant{out: appStatusIs("led by "+L, L, "installing tools-bash")}},

		{atLeaderSettings, onMinion, "is-leader", nil, says("False\n")},
		{atLeaderSettings, onMinion, "is-leader-json", nil, says("false\n")},
		{atLeaderSettings, onMinion, "leader-get-x", nil, says("3\n")},
		{atLeaderSettings, onMinion, "leader-get-token", nil, says(bashToken + "\n")},
		{atLeaderSettings, onMinion, "leader-get-doomed", nil, silent},
		{atLeaderSettings, onMinion, "leader-get-doomed-json", nil, says("null\n")},
		{atLeaderSettings, onMinion, "leader-get-all", nil, says(settingsYAML(settings(3)))},
		{atLeaderSettings, onMinion, "leader-get-all-json", nil, says(mustJSON(t, settings(3)) + "\n")},
		{atLeaderSettings, onMinion, "leader-set-refused", nil, refused(errLeaderSetNotLeader)},
		{atLeaderSettings, onMinion, "status-set-app-refused", nil, refused(errStatusNotLeader)},
		{atLeaderSettings, onMinion, "status-get-app-refused", nil, refused(errStatusGetNotLeader)},
	}
	facts := []factRow[bashRun]{
		{atLeaderElected, onLeader, "x-before", func(t *testing.T, _ *agentUnit, r bashRun) {
			if r.vars["x-before"] != "" {
				t.Errorf("leader-elected vars %v; want no x yet", r.vars)
			}
		}},
	}
	return table, facts
}

// bashRelationTable is the calls of the relation tools, network-get,
// unit-get and the port tools in tools-bash's hooks (HOOK-TOOLS.md §6),
// L the leader and M the minion. Each unit's -created writes its unit
// bag (unit, role, and source and seq from a YAML file on stdin) over the seed of
// its scope entry; the leader's leader-elected writes the application bag
// (leader, and token and count from a JSON file).
func bashRelationTable(t *testing.T, L, M string) []toolRow {
	app := "tools-bash"
	unitBag := func(u string) map[string]string {
		return withBag(seedBag(u), map[string]string{"unit": u, "role": "created", "source": "a yaml file", "seq": "1", "format": "ignored"})
	}
	appBag := map[string]string{"leader": L, "token": "tok-" + strings.TrimPrefix(L, app+"/"), "count": "1"}
	ownPending := func(u string) map[string]string {
		return map[string]string{"unit": u, "role": "created", "source": "a yaml file", "seq": "1", "format": "ignored"}
	}
	// both is the rows of tool on the leader and on the minion, each with
	// want of the unit and the other one.
	both := func(at stage, tool string, want func(self, other string) toolWant) []toolRow {
		return []toolRow{{at, onLeader, tool, nil, want(L, M)}, {at, onMinion, tool, nil, want(M, L)}}
	}
	table := []toolRow{
		{atInstall, onEach, "rel-ids-install", nil, silent},
		{atInstall, onEach, "rel-ids-no-name", nil, usage("ERROR no endpoint name specified\n")},
		{atInstall, onEach, "rel-list-no-id", nil, usage("ERROR no relation id specified\n")},
		{atInstall, onEach, "rel-set-help", nil, toolWant{out: mentions("--file")}},

		{atRelCreated, onEach, "rel-ids", nil, says(peerRelation + "\n")},
		{atRelCreated, onEach, "rel-ids-json", nil, says(`["` + peerRelation + `"]` + "\n")},
		{atRelCreated, onEach, "rel-ids-unknown", nil, silent},
		{atRelCreated, onEach, "rel-list", nil, silent},
		{atRelCreated, onEach, "rel-list-json", nil, says("[]\n")},
		{atRelCreated, onEach, "rel-list-app", nil, says(app + "\n")},
		{atRelCreated, onEach, "rel-set", nil, silent},
		{atRelCreated, onEach, "rel-set-file", nil, silent},
		{atRelCreated, onEach, "rel-set-delete", nil, silent},
		{atRelCreated, onEach, "rel-set-format", nil, toolWant{stderr: "--format flag deprecated for command \"relation-set\"\n"}},
		{atRelCreated, onEach, "rel-get-app-default", nil, says("null\n")},
		{atRelCreated, onEach, "rel-get-bad-id", nil, usage(`ERROR invalid value "99" for option -r: relation not found` + "\n")},
		{atRelCreated, onEach, "rel-list-bad-id", nil, usage(`ERROR invalid value "cluster:x" for option -r: invalid relation id` + "\n")},
		{atRelCreated, onEach, "rel-list-wrong-endpoint", nil, usage(`ERROR invalid value "db:0" for option -r: relation not found` + "\n")},
		{atRelCreated, onEach, "rel-set-bad-arg", nil, usage(`ERROR expected "key=value", got "novalue"` + "\n")},
		// Issue 12 must show 7: refused by relation-set itself; the bags
		// below hold neither big nor also.
		{atRelCreated, onEach, "rel-set-too-big", nil, refused(`ERROR cannot set relation settings: value of "big" is 2097152 bytes; the limit is 262144` + "\n")},

		{atLeaderElected, onLeader, "rel-ids-leader", nil, says(peerRelation + "\n")},
		{atLeaderElected, onLeader, "rel-set-app", nil, silent},
		{atLeaderElected, onLeader, "rel-set-app-file", nil, silent},
		{atLeaderElected, onLeader, "rel-get-app", nil, says(settingsYAML(appBag))},
		{atLeaderElected, onLeader, "rel-get-app-json", nil, says(`"` + L + `"` + "\n")},
		{atLeaderElected, onLeader, "goal-state", nil, toolWant{out: goalStateYAMLHasUnits(L, M)}},
		{atLeaderElected, onLeader, "goal-state-json", nil, toolWant{out: goalStateHasUnits(L, M)}},

		{atRelJoined, onEach, "rel-get-missing", nil, silent},
		{atRelJoined, onEach, "rel-get-missing-json", nil, says("null\n")},
		{atRelJoined, onEach, "rel-get-app-name", nil, usage(`ERROR expected unit name, got application name "tools-bash"` + "\n")},
		{atRelJoined, onEach, "rel-get-bad-unit", nil, usage(`ERROR invalid unit name "Bad/x"` + "\n")},
		{atRelJoined, onEach, "rel-get-elsewhere", nil, refused("ERROR permission denied\n")},
		{atRelJoined, onEach, "net-bad", nil, refused(`ERROR no network config found for binding "nope"` + "\n")},
		{atRelJoined, onEach, "net-none", nil, usage("ERROR no arguments specified\n")},
		{atRelJoined, onEach, "unit-get-bad", nil, usage(`ERROR unknown setting "address"` + "\n")},
		{atRelJoined, onEach, "open-port", nil, silent},
		{atRelJoined, onEach, "open-port-tcp", nil, silent},
		{atRelJoined, onEach, "open-port-icmp", nil, silent},
		{atRelJoined, onEach, "open-port-bad", nil, usage("ERROR port range bounds must be between 0 and 65535, got 1-70000\n")},
		{atRelJoined, onEach, "close-port", nil, silent},
		{atRelJoined, onEach, "close-port-bad", nil, usage(`ERROR invalid protocol "sctp", expected "tcp", "udp", or "icmp"` + "\n")},
		// 80 opened and closed in the same hook; sorted by protocol.
		{atRelJoined, onEach, "opened-ports", nil, says("icmp\n8000-8010/udp\n")},
		{atRelJoined, onEach, "opened-ports-endpoints", nil, says(`["icmp (*)","8000-8010/udp (*)"]` + "\n")},
		{atRelJoined, onEach, "opened-ports-bad", nil, usage(`ERROR unrecognized args: ["80"]` + "\n")},

		{atRelChangedApp, onEach, "rel-get-app", nil, says(settingsYAML(appBag))},
		{atRelChangedApp, onEach, "rel-get-app-key", nil, says(appBag["token"] + "\n")},
		{atRelChangedApp, onEach, "rel-get-app-as-unit", nil, usage(`ERROR expected unit name, got application name "tools-bash"` + "\n")},

		// The minion removed: the leader's -departed for it, and the
		// minion's own for the leader.
		{atRelDeparted, onEach, "rel-list", nil, silent},
		{atRelDeparted, onEach, "rel-list-app", nil, says(app + "\n")},
		{atRelDeparted, onLeader, "rel-ids", nil, says(peerRelation + "\n")},
		{atRelDeparted, onMinion, "rel-ids", nil, silent},
		{atRelDeparted, onEach, "opened-ports", nil, says("icmp\n8000-8010/udp\n")},

		{atLeaderSettings, onMinion, "rel-get-leader", nil, says(settingsYAML(unitBag(L)))},
		{atLeaderSettings, onMinion, "rel-get-app", nil, says(settingsYAML(appBag))},
		{atLeaderSettings, onMinion, "rel-get-app-json", nil, says(mustJSON(t, appBag) + "\n")},
		{atLeaderSettings, onMinion, "rel-set-app-refused", nil, refused(errRelationSetApp)},
	}
	for _, rows := range [][]toolRow{
		// Not in the scope yet: the hook's own writes only.
		both(atRelCreated, "rel-get-own", func(u, _ string) toolWant { return says(settingsYAML(ownPending(u))) }),
		both(atRelCreated, "rel-get-own-json", func(u, _ string) toolWant { return says(mustJSON(t, ownPending(u)) + "\n") }),

		both(atRelJoined, "rel-list", func(_, o string) toolWant { return says(o + "\n") }),
		both(atRelJoined, "rel-list-r-json", func(_, o string) toolWant { return says(`["` + o + `"]` + "\n") }),
		both(atRelJoined, "rel-get-addr", func(_, o string) toolWant { return says(toolAddress(o) + "\n") }),
		both(atRelJoined, "rel-get-ingress-json", func(_, o string) toolWant { return says(`"` + toolAddress(o) + `"` + "\n") }),
		both(atRelJoined, "net-get", func(u, _ string) toolWant { return says(networkGetYAML(u)) }),
		both(atRelJoined, "net-get-json", func(u, _ string) toolWant { return says(networkGetJSON(u)) }),
		both(atRelJoined, "net-primary", func(u, _ string) toolWant { return says(toolAddress(u) + "\n") }),
		both(atRelJoined, "net-ingress-r", func(u, _ string) toolWant { return says(toolAddress(u) + "\n") }),
		both(atRelJoined, "net-two", func(u, _ string) toolWant {
			return says(`{"egress-subnets":["` + toolAddress(u) + `/32"],"ingress-address":"` + toolAddress(u) + `"}` + "\n")
		}),
		both(atRelJoined, "net-bind", func(u, _ string) toolWant { return says(toolAddress(u) + "\n") }),
		both(atRelJoined, "net-egress", func(u, _ string) toolWant { return says(toolAddress(u) + "/32\n") }),
		both(atRelJoined, "unit-get-private", func(u, _ string) toolWant { return says(toolAddress(u) + "\n") }),
		both(atRelJoined, "unit-get-public-json", func(u, _ string) toolWant { return says(`"` + toolAddress(u) + `"` + "\n") }),

		both(atRelChanged, "rel-get", func(_, o string) toolWant { return says(settingsYAML(unitBag(o))) }),
		both(atRelChanged, "rel-get-json", func(_, o string) toolWant { return says(mustJSON(t, unitBag(o)) + "\n") }),
		both(atRelChanged, "rel-get-key", func(_, o string) toolWant { return says(o + "\n") }),
	} {
		table = append(table, rows...)
	}
	return table
}

// bashConfigTable is the calls of the config-changed run of at, whose
// config is cfg, the leader's counter x once it ran.
func bashConfigTable(t *testing.T, at stage, cfg map[string]any, x int) []toolRow {
	set := maps.Clone(cfg)
	delete(set, "api-key")
	smartBool := map[bool]string{true: "True\n", false: "False\n"}
	return []toolRow{
		{at, onEach, "config-get", nil, says(configYAML(set))},
		{at, onEach, "config-get-all", nil, says(configYAML(cfg))},
		{at, onEach, "config-get-all-json", nil, says(mustJSON(t, cfg) + "\n")},
		{at, onEach, "config-get-json", nil, says(mustJSON(t, set) + "\n")},
		{at, onEach, "cfg-message", nil, says(cfg["message"].(string) + "\n")},
		{at, onEach, "cfg-port", nil, says(fmt.Sprint(cfg["port"]) + "\n")},
		{at, onEach, "cfg-port-json", nil, says(fmt.Sprint(cfg["port"]) + "\n")},
		{at, onEach, "cfg-ratio", nil, says(fmt.Sprint(cfg["ratio"]) + "\n")},
		{at, onEach, "cfg-debug", nil, says(smartBool[cfg["debug"].(bool)])},
		{at, onEach, "cfg-api-key", nil, silent},
		{at, onEach, "cfg-api-key-json", nil, says("null\n")},
		{at, onLeader, "leader-set-x", nil, silent},
		{at, onLeader, "leader-get-x", nil, says(fmt.Sprintf("%d\n", x))},
		{at, onLeader, "status-set-app", nil, silent},
		{at, onEach, "status-set", nil, silent},
		{at, onEach, "status-get-json", nil, says(mustJSON(t, map[string]any{"message": fmt.Sprintf("message=%s port=%v", cfg["message"], cfg["port"]),
			"status": "active", "status-data": map[string]any{}}) + "\n")},
	}
}

// bashConfigFacts is the facts of the config-changed run of at, whose
// config is cfg, the leader's counter x once it ran.
func bashConfigFacts(at stage, cfg map[string]any, x int) []factRow[bashRun] {
	return []factRow[bashRun]{
		{at, onLeader, "x-before", func(t *testing.T, u *agentUnit, r bashRun) {
			if r.vars["x-before"] != strconv.Itoa(x-1) {
				t.Errorf("%s: x=$(leader-get x) gave %q, want %d", u.unit, r.vars["x-before"], x-1)
			}
		}},
		{at, onEach, "debug", func(t *testing.T, u *agentUnit, r bashRun) {
			if (r.vars["debug"] == "on") != cfg["debug"].(bool) {
				t.Errorf(`%s: [ "$(config-get debug)" = True ] was %v with debug=%v`, u.unit, r.vars["debug"] == "on", cfg["debug"])
			}
		}},
	}
}

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
		runs = append(runs, bashRun{dir: dir, vars: vars})
	}
}

// call reads the recorded call name: its stdout, stderr and exit code.
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
	return toolCall{name: name, rc: rc, stdout: read(".out"), stderr: read(".err")}
}

// bashCalls reads every call r recorded, in the order of their names.
func bashCalls(t *testing.T, r bashRun) []toolCall {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(r.dir, "*.rc"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".rc"))
	}
	slices.Sort(names)
	var calls []toolCall
	for _, name := range names {
		calls = append(calls, r.call(t, name))
	}
	return calls
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
