package tests

import (
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

	"github.com/uniter-dev/uniter/agent"
)

// pyToken is the secret-looking leader setting tools-python writes with
// charmhelpers' leader_set; it must never reach an agent's log.
const pyToken = "pytok-0a9b8c7d6e5f4a3b2c1d"

// TestToolsPythonCharm runs two units of testcharms/tools-python (a
// standard-library Python dispatch charm) under real agents and checks
// every tool call of the charmhelpers, ops 3.x and ops 2.x forms (the
// relation, network and port tools too, from the hooks of its peer
// relation: issue 12 must show 6): argv, exit code, stdout and stderr
// exactly, and what json.loads made of the output (bool for is-leader, int/float/bool/str config values, None for
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
	L := tc.leader.unit
	settings := func(n int) map[string]string {
		return map[string]string{"leader": L, "n": strconv.Itoa(n), "token": pyToken}
	}
	defaults := map[string]any{"enabled": true, "name": "world", "password": nil, "threshold": 0.75, "workers": 4}
	set := map[string]any{"enabled": false, "name": "python", "password": nil, "threshold": 1.5, "workers": 8}

	table, facts := pyTable(t, L, settings)
	relTable, relFacts := pyRelationTable(t, L, tc.minion.unit)
	table, facts = append(table, relTable...), append(facts, relFacts...)
	for _, cc := range []struct {
		at  stage
		cfg map[string]any
		n   int // the leader's counter once it ran
	}{{atDefaults, defaults, 2}, {atConfigSet, set, 3}} {
		table = append(table, pyConfigTable(t, cc.at, cc.cfg, cc.n)...)
		facts = append(facts, pyConfigFacts(t, cc.at, cc.cfg)...)
	}
	for _, at := range allStages {
		facts = append(facts,
			factRow[pyRun]{at, onEach, "no traceback", func(t *testing.T, u *agentUnit, r pyRun) {
				if r.Error != "" {
					t.Errorf("%s %s: the hook failed:\n%s", u.unit, r.name, r.Error)
				}
			}},
			factRow[pyRun]{at, onEach, "environment", pyCheckEnv},
			factRow[pyRun]{at, onEach, ".unit-state.db", pyCheckState})
	}
	tc.check(t, toolsCharm[pyRun]{
		calls:   pyCalls,
		ordered: true,
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
		hasConfig: func(_ *testing.T, r pyRun) bool {
			cfg, _ := r.Values["ops3.config_get"].Value.(map[string]any)
			return cfg["workers"] == 8.0
		},

		relEnv: func(r pyRun) relEnv {
			e := r.Env
			return relEnv{e.Relation, e.RelationID, e.RemoteUnit, e.RemoteApp, e.DepartingUnit}
		},
		sawRemoteData: func(r pyRun) bool {
			bag, _ := r.Values["ops3.relation_get"].Value.(map[string]any)
			return bag["role"] == "created"
		},

		table: table,
		facts: facts,

		set:             set,
		settings:        settings(3),
		secrets:         []string{pyToken},
		appMessage:      "python leader (ops 3)",
		workloadMessage: "name=python workers=8",
		version:         "3.0.0", // ops 3's application-version-set -- 3.0.0, the last
	})
}

// pyTable is the calls of tools-python's hooks but config-changed, with the
// facts of those runs; L is the leader, settings the application's leader
// settings once the leader's counter is n. ops 2 calls "$TOOLS/" tools.
func pyTable(t *testing.T, L string, settings func(n int) map[string]string) ([]toolRow, []factRow[pyRun]) {
	argv := func(a ...string) []string { return a }
	unitStatusJSON := func(status, msg string) string {
		return mustJSON(t, map[string]any{"message": msg, "status": status, "status-data": map[string]any{}}) + "\n"
	}
	isLeaderJSON := argv("is-leader", "--format=json")
	table := []toolRow{
		{atInstall, onEach, "ch.is-leader", isLeaderJSON, says("false\n")},
		{atInstall, onEach, "ch.log", argv("juju-log", "tools-python: charmhelpers info"),
			silent.logged("tools-python: charmhelpers info", "info", "info")},
		{atInstall, onEach, "ch.log-warning", argv("juju-log", "-l", "WARNING", "tools-python: charmhelpers warning"),
			silent.logged("tools-python: charmhelpers warning", "warning", "warn")},
		{atInstall, onEach, "ops3.log", argv("juju-log", "--log-level", "DEBUG", "--", "-tools-python: ops 3 debug, dash first"),
			silent.logged("-tools-python: ops 3 debug, dash first", "debug", "debug")},
		{atInstall, onEach, "ops2.log", argv("$TOOLS/juju-log", "--log-level", "ERROR", "tools-python: ops 2 error"),
			silent.logged("tools-python: ops 2 error", "error", "error")},
		{atInstall, onEach, "ch.status-set", argv("status-set", "maintenance", "installing (charmhelpers)"), silent},
		{atInstall, onEach, "ch.status-get", argv("status-get", "--format=json", "--include-data"),
			says(unitStatusJSON("maintenance", "installing (charmhelpers)"))},
		{atInstall, onEach, "ops2.status-set", argv("$TOOLS/status-set", "--application=False", "maintenance", "installing (ops 2)"), silent},
		{atInstall, onEach, "ops2.status-get", argv("$TOOLS/status-get", "--include-data", "--application=False", "--format=json"),
			says(unitStatusJSON("maintenance", "installing (ops 2)"))},
		{atInstall, onEach, "ops3.status-set", argv("status-set", "--application=False", "maintenance", "--", "installing (ops 3)"), silent},
		{atInstall, onEach, "ops3.status-get", argv("status-get", "--include-data", "--format=json", "--application=false"),
			says(unitStatusJSON("maintenance", "installing (ops 3)"))},
		{atInstall, onEach, "ch.application-version-set", argv("application-version-set", "0.1.0"), silent},
		{atInstall, onEach, "ops2.application-version-set", argv("$TOOLS/application-version-set", "0.2.0"), silent},
		{atInstall, onEach, "ops3.application-version-set", argv("application-version-set", "--", "3.0.0"), silent},
		// No relation is known before cluster-relation-created; outside a
		// relation hook relation-get exits 2, which charmhelpers makes None.
		{atInstall, onEach, "ch.relation-ids", argv("relation-ids", "--format=json", "cluster"), says("[]\n")},
		{atInstall, onEach, "ch.relation-get.none", argv("relation-get", "--format=json", "-"), usage("ERROR no relation id specified\n")},
		{atInstall, onEach, "ops3.is-leader", isLeaderJSON, says("false\n")},

		{atLeaderElected, onLeader, "ch.is-leader", isLeaderJSON, says("true\n")},
		{atLeaderElected, onLeader, "ops2.is-leader", argv("$TOOLS/is-leader", "--format=json"), says("true\n")},
		{atLeaderElected, onLeader, "ch.leader-get.initial", argv("leader-get", "--format=json", "-"), says("{}\n")},
		{atLeaderElected, onLeader, "ch.leader-set", argv("leader-set", "leader="+L, "token="+pyToken, "n=1", "scratch=x"), silent},
		{atLeaderElected, onLeader, "ch.leader-set.delete", argv("leader-set", "scratch="), silent},
		{atLeaderElected, onLeader, "ch.leader-get.scratch", argv("leader-get", "--format=json", "scratch"), says("null\n")},
		{atLeaderElected, onLeader, "ch.leader-get.n", argv("leader-get", "--format=json", "n"), says("\"1\"\n")},
		{atLeaderElected, onLeader, "ch.leader-get", argv("leader-get", "--format=json", "-"), says(mustJSON(t, settings(1)) + "\n")},
		{atLeaderElected, onLeader, "ch.status-set.app", argv("status-set", "--application", "active", "python leader (charmhelpers)"), silent},
		{atLeaderElected, onLeader, "ops3.status-set.app", argv("status-set", "--application=True", "active", "--", "python leader (ops 3)"), silent},
		{atLeaderElected, onLeader, "ops3.status-get.app", argv("status-get", "--include-data", "--format=json", "--application=true"),
			toolWant{out: appStatusIs("python leader (ops 3)", L, "installing (ops 3)")}},
		{atLeaderElected, onLeader, "ops3.relation-ids", argv("relation-ids", "cluster", "--format=json"), says(`["` + peerRelation + `"]` + "\n")},
		{atLeaderElected, onLeader, "ops3.goal-state", argv("goal-state", "--format=json"), toolWant{out: goalStateHasUnits("tools-python/0", "tools-python/1")}},
		{atLeaderElected, onLeader, "ops3.relation-set.app", argv("relation-set", "-r", "0", "--app", "--file", "-"), silent},
		{atLeaderElected, onLeader, "ops2.relation-set.app", argv("$TOOLS/relation-set", "-r", "0", "--app", "--file", "-"), silent},
		{atLeaderElected, onLeader, "ops3.relation-get.app", argv("relation-get", "-r", "0", "-", "tools-python", "--app", "--format=json"),
			says(mustJSON(t, pyAppBag(L)) + "\n")},
		{atLeaderElected, onLeader, "ch.goal-state", argv("goal-state", "--format=json"), toolWant{out: goalStateHasUnits("tools-python/0", "tools-python/1")}},
		{atLeaderElected, onLeader, "ops3.is-leader", isLeaderJSON, says("true\n")},

		{atLeaderSettings, onMinion, "ch.is-leader", isLeaderJSON, says("false\n")},
		{atLeaderSettings, onMinion, "ops2.is-leader", argv("$TOOLS/is-leader", "--format=json"), says("false\n")},
		{atLeaderSettings, onMinion, "ch.leader-get", argv("leader-get", "--format=json", "-"), says(mustJSON(t, settings(3)) + "\n")},
		{atLeaderSettings, onMinion, "ch.leader-get.token", argv("leader-get", "--format=json", "token"), says(strconv.Quote(pyToken) + "\n")},
		{atLeaderSettings, onMinion, "ch.leader-get.scratch", argv("leader-get", "--format=json", "scratch"), says("null\n")},
		{atLeaderSettings, onMinion, "ch.leader-set.refused", argv("leader-set", "n=99"), refused(errLeaderSetNotLeader)},
		{atLeaderSettings, onMinion, "ch.status-set.app", argv("status-set", "--application", "active", "a minion's claim"), refused(errStatusNotLeader)},
		{atLeaderSettings, onMinion, "ch.status-set.app.failed", argv("juju-log", "-l", "INFO", "status-set failed: active a minion's claim"),
			silent.logged("status-set failed: active a minion's claim", "info", "info")},
		{atLeaderSettings, onMinion, "ops3.status-set.app", argv("status-set", "--application=True", "active", "--", "a minion's claim (ops 3)"),
			refused(errStatusNotLeader)},
		{atLeaderSettings, onMinion, "ops3.status-get.app", argv("status-get", "--include-data", "--format=json", "--application=true"),
			refused(errStatusGetNotLeader)},
		{atLeaderSettings, onMinion, "ch.leader-get.leader", argv("leader-get", "--format=json", "leader"), says(strconv.Quote(L) + "\n")},
		{atLeaderSettings, onMinion, "ops3.relation-get.leader", argv("relation-get", "-r", "0", "-", L, "--format=json"),
			says(mustJSON(t, pyUnitBag(L)) + "\n")},
		{atLeaderSettings, onMinion, "ops3.relation-get.app", argv("relation-get", "-r", "0", "-", "tools-python", "--app", "--format=json"),
			says(mustJSON(t, pyAppBag(L)) + "\n")},
		{atLeaderSettings, onMinion, "ops3.relation-set.app.refused", argv("relation-set", "-r", "0", "--app", "--file", "-"), refused(errRelationSetApp)},
		{atLeaderSettings, onMinion, "ch.relation-set.app.refused.help", argv("relation-set", "--help"), toolWant{out: mentions("--file")}},
		{atLeaderSettings, onMinion, "ch.relation-set.app.refused", argv("relation-set", "--app", "-r", peerRelation, "--file", "$CHARM/.relation-set.yaml"),
			refused(errRelationSetApp)},
		{atLeaderSettings, onMinion, "ops3.is-leader", isLeaderJSON, says("false\n")},
	}
	facts := []factRow[pyRun]{
		pyValueIs(atInstall, onEach, "ch.relation_ids", []any{}, "list"),
		pyValueIs(atInstall, onEach, "ch.relation_get.none", nil, "NoneType"),
		pyValueIs(atLeaderElected, onLeader, "ops3.relation_ids", []any{peerRelation}, "list"),
		pyValueIs(atLeaderElected, onLeader, "ops3.relation_get.app", asLoaded(t, pyAppBag(L)), "dict"),
		pyValueIs(atLeaderSettings, onMinion, "ops3.relation_get.leader", asLoaded(t, pyUnitBag(L)), "dict"),
		{atLeaderSettings, onMinion, "ops3.relation_set.app.refused", func(t *testing.T, _ *agentUnit, r pyRun) {
			if v := r.value(t, "ops3.relation_set.app.refused"); v.RC != 1 || v.Error != errRelationSetApp {
				t.Errorf("ops 3 relation_set(is_app=True) on a minion raised %+v", v)
			}
		}},
		pyValueIs(atInstall, onEach, "ch.is_leader", false, "bool"),
		pyValueIs(atInstall, onEach, "ops3.is_leader", false, "bool"),
		pyValueIs(atInstall, onEach, "ch.status_get", []any{"maintenance", "installing (charmhelpers)"}, "tuple"),
		pyValueIs(atInstall, onEach, "ops2.status_get", map[string]any{"message": "installing (ops 2)", "status": "maintenance", "status-data": map[string]any{}}, "dict"),
		pyValueIs(atInstall, onEach, "ops3.status_get", map[string]any{"message": "installing (ops 3)", "status": "maintenance", "status-data": map[string]any{}}, "dict"),
		{atInstall, onEach, ".unit-state.db after install", func(t *testing.T, u *agentUnit, r pyRun) {
			if !slices.Equal(r.State.Hooks, []string{"install"}) {
				t.Errorf("%s: .unit-state.db holds %q after install", u.unit, r.State.Hooks)
			}
		}},

		pyValueIs(atLeaderElected, onLeader, "ch.is_leader", true, "bool"),
		pyValueIs(atLeaderElected, onLeader, "ops2.is_leader", true, "bool"),
		pyValueIs(atLeaderElected, onLeader, "ops3.is_leader", true, "bool"),
		pyValueIs(atLeaderElected, onLeader, "ch.leader_get.initial", map[string]any{}, "dict"),
		pyValueIs(atLeaderElected, onLeader, "ch.leader_get.scratch", nil, "NoneType"),
		pyValueIs(atLeaderElected, onLeader, "ch.leader_get.n", "1", "str"),
		pyValueIs(atLeaderElected, onLeader, "ch.leader_get", asLoaded(t, settings(1)), "dict"),
		// ops 3's status_get(is_app=True) is what json.loads made of the
		// stdout the call table checks.
		{atLeaderElected, onLeader, "ops3.status_get.app", func(t *testing.T, _ *agentUnit, r pyRun) {
			var doc any
			if err := json.Unmarshal([]byte(r.call(t, "ops3.status-get.app").Stdout), &doc); err != nil {
				t.Fatal(err)
			}
			r.expectValue(t, "ops3.status_get.app", doc, "dict")
		}},

		pyValueIs(atLeaderSettings, onMinion, "ch.is_leader", false, "bool"),
		pyValueIs(atLeaderSettings, onMinion, "ops2.is_leader", false, "bool"),
		pyValueIs(atLeaderSettings, onMinion, "ch.leader_get", asLoaded(t, settings(3)), "dict"),
		pyValueIs(atLeaderSettings, onMinion, "ch.leader_get.token", pyToken, "str"),
		pyValueIs(atLeaderSettings, onMinion, "ch.leader_get.scratch", nil, "NoneType"),
		pyValueIs(atLeaderSettings, onMinion, "ch.status_set.app", false, "bool"),
		{atLeaderSettings, onMinion, "ch.leader_set.refused", func(t *testing.T, _ *agentUnit, r pyRun) {
			if v := r.value(t, "ch.leader_set.refused"); v.RC != 1 || v.Error != errLeaderSetNotLeader {
				t.Errorf("charmhelpers leader_set on a minion raised %+v", v)
			}
		}},
	}
	return table, facts
}

// pyUnitBag is unit's databag once its cluster-relation-created ran: the
// seed of its scope entry, ops 2's and ops 3's writes and charmhelpers'.
func pyUnitBag(unit string) map[string]string {
	return withBag(seedBag(unit), map[string]string{"unit": unit, "seq": "1", "ops": "3", "role": "created"})
}

// pyAppBag is the application databag the leader L writes in
// leader-elected, with ops 3 (JSON) and ops 2 (YAML).
func pyAppBag(L string) map[string]string {
	return map[string]string{"leader": L, "token": "tok-py", "epoch": "1"}
}

// pyRelationTable is the calls of tools-python's relation hooks, in the
// forms of charmhelpers, ops 3 and ops 2, with the facts of those runs; L
// is the leader, M the minion.
func pyRelationTable(t *testing.T, L, M string) ([]toolRow, []factRow[pyRun]) {
	argv := func(a ...string) []string { return a }
	isLeaderJSON := argv("is-leader", "--format=json")
	list := func(units ...string) string { return mustJSON(t, units) + "\n" }
	quoted := func(s string) string { return strconv.Quote(s) + "\n" }
	// perUnit is rows of each of the two units, self and other, in the
	// order of the calls.
	perUnit := func(rows func(on who, self, other string) []toolRow) []toolRow {
		return append(rows(onLeader, L, M), rows(onMinion, M, L)...)
	}
	var table []toolRow
	table = append(table, perUnit(func(on who, self, _ string) []toolRow {
		return []toolRow{
			{atRelCreated, on, "ch.is-leader", isLeaderJSON, says("false\n")},
			{atRelCreated, on, "ch.relation-ids", argv("relation-ids", "--format=json", "cluster"), says(list(peerRelation))},
			{atRelCreated, on, "ops3.relation-ids", argv("relation-ids", "cluster", "--format=json"), says(list(peerRelation))},
			{atRelCreated, on, "ops2.relation-ids", argv("$TOOLS/relation-ids", "cluster", "--format=json"), says(list(peerRelation))},
			{atRelCreated, on, "ops3.relation-list", argv("relation-list", "-r", "0", "--format=json"), says("[]\n")},
			{atRelCreated, on, "ops3.relation-list.app", argv("relation-list", "-r", "0", "--app", "--format=json"), says(quoted("tools-python"))},
			{atRelCreated, on, "ch.relation-list", argv("relation-list", "--format=json"), says("[]\n")},
			{atRelCreated, on, "ops2.relation-set", argv("$TOOLS/relation-set", "-r", "0", "--file", "-"), silent},
			{atRelCreated, on, "ops3.relation-set", argv("relation-set", "-r", "0", "--file", "-"), silent},
			{atRelCreated, on, "ch.relation-set.help", argv("relation-set", "--help"), toolWant{out: mentions("--file")}},
			{atRelCreated, on, "ch.relation-set", argv("relation-set", "--file", "$CHARM/.relation-set.yaml"), silent},
			// Not in the scope yet: the hook's own writes only.
			{atRelCreated, on, "ops3.relation-get.own", argv("relation-get", "-r", "0", "-", self, "--format=json"),
				says(mustJSON(t, map[string]string{"unit": self, "seq": "1", "ops": "3", "role": "created"}) + "\n")},
			{atRelCreated, on, "ch.relation-get.bad", argv("relation-get", "--format=json", "-r", "cluster:9", "-"),
				usage(`ERROR invalid value "cluster:9" for option -r: relation not found` + "\n")},
			{atRelCreated, on, "ops3.relation-list.bad", argv("relation-list", "-r", "9", "--format=json"),
				usage(`ERROR invalid value "9" for option -r: relation not found` + "\n")},
			{atRelCreated, on, "ops3.is-leader", isLeaderJSON, says("false\n")},
		}
	})...)
	table = append(table, perUnit(func(on who, self, other string) []toolRow {
		leader := map[who]string{onLeader: "true\n", onMinion: "false\n"}[on]
		a := toolAddress(self)
		return []toolRow{
			{atRelJoined, on, "ch.is-leader", isLeaderJSON, says(leader)},
			{atRelJoined, on, "ops3.relation-list", argv("relation-list", "-r", "0", "--format=json"), says(list(other))},
			{atRelJoined, on, "ch.relation-list", argv("relation-list", "--format=json"), says(list(other))},
			{atRelJoined, on, "ch.relation-get.addr", argv("relation-get", "--format=json", "private-address"), says(quoted(toolAddress(other)))},
			{atRelJoined, on, "ch.relation-get.unit", argv("relation-get", "--format=json", "-r", peerRelation, "ingress-address", other),
				says(quoted(toolAddress(other)))},
			{atRelJoined, on, "ch.network-get.primary", argv("network-get", "--primary-address", "cluster"), says(a + "\n")},
			{atRelJoined, on, "ch.network-get", argv("network-get", "cluster", "--format", "yaml", "-r", peerRelation), says(networkGetYAML(self))},
			{atRelJoined, on, "ops3.network-get", argv("network-get", "cluster", "-r", "0", "--format=json"), says(networkGetJSON(self))},
			{atRelJoined, on, "ops2.network-get", argv("$TOOLS/network-get", "juju-info", "--format=json"), says(networkGetJSON(self))},
			{atRelJoined, on, "ops3.network-get.bad", argv("network-get", "nope", "--format=json"),
				refused(`ERROR no network config found for binding "nope"` + "\n")},
			{atRelJoined, on, "ch.unit-get", argv("unit-get", "--format=json", "private-address"), says(quoted(a))},
			{atRelJoined, on, "ch.open-port", argv("open-port", "8080/TCP"), silent},
			{atRelJoined, on, "ch.open-port.icmp", argv("open-port", "ICMP"), silent},
			{atRelJoined, on, "ops3.open-port", argv("open-port", "53/udp"), silent},
			{atRelJoined, on, "ops3.close-port", argv("close-port", "8080/tcp"), silent},
			{atRelJoined, on, "ch.open-port.bad", argv("open-port", "70000/TCP"),
				usage("ERROR port range bounds must be between 0 and 65535, got 70000-70000\n")},
			{atRelJoined, on, "ops3.close-port.bad", argv("close-port", "80/sctp"),
				usage(`ERROR invalid protocol "sctp", expected "tcp", "udp", or "icmp"` + "\n")},
			// 8080 opened and closed in the same hook; sorted by protocol.
			{atRelJoined, on, "ops3.opened-ports", argv("opened-ports"), says("icmp\n53/udp\n")},
			{atRelJoined, on, "ch.opened-ports", argv("opened-ports", "--format=json"), says(`["icmp","53/udp"]` + "\n")},
			{atRelJoined, on, "ops2.opened-ports.bad", argv("$TOOLS/opened-ports", "80"), usage(`ERROR unrecognized args: ["80"]` + "\n")},
			{atRelJoined, on, "ops3.is-leader", isLeaderJSON, says(leader)},

			{atRelChanged, on, "ch.is-leader", isLeaderJSON, says(leader)},
			{atRelChanged, on, "ops3.relation-get", argv("relation-get", "-r", "0", "-", other, "--format=json"), says(mustJSON(t, pyUnitBag(other)) + "\n")},
			{atRelChanged, on, "ops2.relation-get", argv("$TOOLS/relation-get", "-r", "0", "-", other, "--format=json"),
				says(mustJSON(t, pyUnitBag(other)) + "\n")},
			{atRelChanged, on, "ch.relation-get", argv("relation-get", "--format=json", "-"), says(mustJSON(t, pyUnitBag(other)) + "\n")},
			{atRelChanged, on, "ops3.is-leader", isLeaderJSON, says(leader)},

			// The application's -changed: relation-get defaults to the
			// application's bag (charmhelpers' relation_get()).
			{atRelChangedApp, on, "ch.is-leader", isLeaderJSON, says(leader)},
			{atRelChangedApp, on, "ops3.relation-get.app", argv("relation-get", "-r", "0", "-", "tools-python", "--app", "--format=json"),
				says(mustJSON(t, pyAppBag(L)) + "\n")},
			{atRelChangedApp, on, "ch.relation-get.app", argv("relation-get", "--format=json", "--app", "-r", peerRelation, "token", "tools-python"),
				says(quoted("tok-py"))},
			{atRelChangedApp, on, "ch.relation-get.default", argv("relation-get", "--format=json", "-"), says(mustJSON(t, pyAppBag(L)) + "\n")},
			{atRelChangedApp, on, "ops3.is-leader", isLeaderJSON, says(leader)},

			// The minion removed: the departed unit is not listed, and the
			// unit going away no longer lists the relation.
			{atRelDeparted, on, "ch.is-leader", isLeaderJSON, says(leader)},
			{atRelDeparted, on, "ops3.relation-list", argv("relation-list", "-r", "0", "--format=json"), says("[]\n")},
			{atRelDeparted, on, "ch.relation-ids", argv("relation-ids", "--format=json", "cluster"),
				says(map[who]string{onLeader: list(peerRelation), onMinion: "[]\n"}[on])},
			{atRelDeparted, on, "ops3.opened-ports", argv("opened-ports"), says("icmp\n53/udp\n")},
			{atRelDeparted, on, "ops3.is-leader", isLeaderJSON, says(leader)},
		}
	})...)
	facts := []factRow[pyRun]{
		pyValueIs(atRelCreated, onEach, "ch.relation_ids", []any{peerRelation}, "list"),
		pyValueIs(atRelCreated, onEach, "ops3.relation_list", []any{}, "list"),
		pyValueIs(atRelCreated, onEach, "ops3.relation_remote_app_name", "tools-python", "str"),
		pyValueIs(atRelCreated, onEach, "ch.relation_get.bad", nil, "NoneType"),
		pyValueIs(atRelCreated, onEach, "ops3.relation_list.bad", "RelationNotFoundError", "str"),
		pyValueIs(atRelJoined, onEach, "ops3.opened_ports", []any{"icmp", "53/udp"}, "list"),
		pyValueIs(atRelJoined, onEach, "ch.opened_ports", []any{"icmp", "53/udp"}, "list"),
		pyValueIs(atRelChangedApp, onEach, "ch.relation_get.app", "tok-py", "str"),
		pyValueIs(atRelChangedApp, onEach, "ch.relation_get.default", asLoaded(t, pyAppBag(L)), "dict"),
	}
	for _, u := range [][2]string{{L, M}, {M, L}} {
		on := map[string]who{L: onLeader, M: onMinion}[u[0]]
		facts = append(facts,
			pyValueIs(atRelJoined, on, "ch.relation_list", []any{u[1]}, "list"),
			pyValueIs(atRelJoined, on, "ch.unit_get", toolAddress(u[0]), "str"),
			pyValueIs(atRelJoined, on, "ch.network_get_primary_address", toolAddress(u[0]), "str"),
			pyValueIs(atRelChanged, on, "ops2.relation_get", asLoaded(t, pyUnitBag(u[1])), "dict"))
	}
	return table, facts
}

// pyConfigTable is the calls of the config-changed run of at, whose config
// is cfg, the leader's counter n once it ran.
func pyConfigTable(t *testing.T, at stage, cfg map[string]any, n int) []toolRow {
	argv := func(a ...string) []string { return a }
	set := maps.Clone(cfg)
	delete(set, "password")
	isLeaderJSON := argv("is-leader", "--format=json")
	return []toolRow{
		{at, onLeader, "ch.is-leader", isLeaderJSON, says("true\n")},
		{at, onMinion, "ch.is-leader", isLeaderJSON, says("false\n")},
		{at, onEach, "ch.config-get", argv("config-get", "--all", "--format=json"), says(mustJSON(t, cfg) + "\n")},
		{at, onEach, "ops3.config-get", argv("config-get", "--format=json"), says(mustJSON(t, set) + "\n")},
		{at, onEach, "ops2.config-get", argv("$TOOLS/config-get", "--format=json"), says(mustJSON(t, set) + "\n")},
		{at, onLeader, "ch.leader-get.n", argv("leader-get", "--format=json", "n"), says(fmt.Sprintf("%q\n", strconv.Itoa(n-1)))},
		{at, onLeader, "ch.leader-set.n", argv("leader-set", fmt.Sprintf("n=%d", n)), silent},
		{at, onEach, "ops3.status-set", argv("status-set", "--application=False", "active", "--", fmt.Sprintf("name=%s workers=%v", cfg["name"], cfg["workers"])), silent},
		{at, onLeader, "ops3.is-leader", isLeaderJSON, says("true\n")},
		{at, onMinion, "ops3.is-leader", isLeaderJSON, says("false\n")},
	}
}

// pyConfigFacts is the facts of the config-changed run of at, whose config
// is cfg: json.loads gives the types charms rely on, and .unit-state.db
// keeps the hooks run before.
func pyConfigFacts(t *testing.T, at stage, cfg map[string]any) []factRow[pyRun] {
	types := map[string]any{"enabled": "bool", "name": "str", "threshold": "float", "workers": "int"}
	chTypes := maps.Clone(types)
	chTypes["password"] = "NoneType" // config-get --all
	facts := []factRow[pyRun]{
		pyValueIs(at, onEach, "ops3.config_get.types", types, "dict"),
		pyValueIs(at, onEach, "ops2.config_get.types", types, "dict"),
		pyValueIs(at, onEach, "ch.config.types", chTypes, "dict"),
		pyValueIs(at, onEach, "ch.config", asLoaded(t, cfg), "dict"),
		{at, onEach, ".unit-state.db keeps install", func(t *testing.T, u *agentUnit, r pyRun) {
			if !slices.Contains(r.State.Hooks, "install") {
				t.Errorf("%s: .unit-state.db lost the install hook: %q", u.unit, r.State.Hooks)
			}
		}},
	}
	if at == atConfigSet {
		// The second config-changed: install, config-changed, start and this one at least.
		facts = append(facts, factRow[pyRun]{at, onEach, ".unit-state.db keeps every hook", func(t *testing.T, u *agentUnit, r pyRun) {
			if len(r.State.Hooks) < 4 || r.State.Hooks[0] != "install" {
				t.Errorf("%s: .unit-state.db holds %q", u.unit, r.State.Hooks)
			}
		}})
	}
	return facts
}

// pyValueIs is the fact that the run recorded label's library result as
// want, of Python type typ.
func pyValueIs(at stage, on who, label string, want any, typ string) factRow[pyRun] {
	return factRow[pyRun]{at, on, label, func(t *testing.T, _ *agentUnit, r pyRun) { r.expectValue(t, label, want, typ) }}
}

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
		Relation         string            `json:"relation"`
		RelationID       string            `json:"relation_id"`
		RemoteUnit       string            `json:"remote_unit"`
		RemoteApp        string            `json:"remote_app"`
		DepartingUnit    string            `json:"departing_unit"`
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

// pyLibs is the library each prefix of a call's label names.
var pyLibs = map[string]string{"ch": "charmhelpers", "ops2": "ops2", "ops3": "ops3"}

// pyCalls is the calls r recorded, in order, each named by its label; it
// asserts that each was made by the library its label names.
func pyCalls(t *testing.T, r pyRun) []toolCall {
	t.Helper()
	var calls []toolCall
	for _, c := range r.Calls {
		if prefix, _, _ := strings.Cut(c.Label, "."); c.Lib != pyLibs[prefix] {
			t.Errorf("%s: %s made by library %q, want %q", r.name, c.Label, c.Lib, pyLibs[prefix])
		}
		calls = append(calls, toolCall{name: c.Label, argv: c.Argv, rc: c.RC, stdout: c.Stdout, stderr: c.Stderr})
	}
	return calls
}

// call returns the recorded call label, failing if there is none.
func (r pyRun) call(t *testing.T, label string) pyCall {
	t.Helper()
	for _, c := range r.Calls {
		if c.Label == label {
			return c
		}
	}
	t.Fatalf("%s: no call %s", r.name, label)
	return pyCall{}
}

// pyCheckEnv asserts what ops checks before it runs anything: JUJU_VERSION,
// no OPERATOR_DISPATCH, the dispatch path, argv[0], the working and charm
// directories, and the tools on PATH.
func pyCheckEnv(t *testing.T, u *agentUnit, r pyRun) {
	t.Helper()
	where := u.unit + " " + r.name
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
}

// pyCheckState asserts the run's .unit-state.db: in the charm directory,
// mode 0600, its list of hooks ending with this one.
func pyCheckState(t *testing.T, u *agentUnit, r pyRun) {
	t.Helper()
	if s := r.State; s.Path != filepath.Join(u.path("charm"), ".unit-state.db") || s.Mode != "0o600" || len(s.Hooks) == 0 || s.Hooks[len(s.Hooks)-1] != r.Hook {
		t.Errorf("%s %s: .unit-state.db: %+v", u.unit, r.name, s)
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
