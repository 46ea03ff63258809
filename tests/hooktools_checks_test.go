package tests

// What both tool charms check (TestToolsBashCharm, TestToolsPythonCharm).
// Each charm's test is two tables: its calls, rows of (hook, tool and argv,
// what the call must give), and its facts, rows of (hook, what, a predicate
// on the run) for what a run records besides its calls. toolsCluster.check
// walks the hooks in the order they run, reads each unit's run, and checks
// it against the rows about it: exactly the calls of the table, each one as
// its row wants, and every fact.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// Exact texts of the contract (HOOK-TOOLS.md §4, §6).
const (
	errLeaderSetNotLeader = "ERROR cannot write leadership settings: cannot write settings: not the leader\n"
	errStatusNotLeader    = "ERROR this unit is not the leader\n"
	errStatusGetNotLeader = "ERROR finding application status: this unit is not the leader\n"
	errRelationSetApp     = "ERROR cannot write relation settings\n"
)

// peerRelation is the tool charms' peer relation (peers: cluster), as the
// relation tools print its id: the controller's first relation, made when
// the application is, and ids start at 0.
const peerRelation = "cluster:0"

// toolsCharm is what differs between the tool charms: how to read what a
// run recorded, the two tables, and the values its hooks write.
type toolsCharm[R any] struct {
	// calls are the calls the run recorded: in the order it made them when
	// ordered, else in the order of their names.
	calls   func(t *testing.T, r R) []toolCall
	ordered bool
	// isLeader is what is-leader said in the run; term is the run's
	// $UNITER_LEADERSHIP_TERM; counter is the leader's counter as
	// leader-settings-changed read it with leader-get; hasConfig tells
	// whether a config-changed run saw set.
	isLeader  func(t *testing.T, r R) bool
	term      func(r R) string
	counter   func(r R) string
	hasConfig func(t *testing.T, r R) bool
	// relEnv is the run's relation environment; sawRemoteData tells
	// whether a -changed run for a remote unit read what the remote
	// unit's -created wrote (committed just after its scope entry, so
	// the first -changed may come before it).
	relEnv        func(r R) relEnv
	sawRemoteData func(r R) bool

	table []toolRow
	facts []factRow[R]

	set             map[string]any    // the config `uniter config set` sets
	settings        map[string]string // the application's leader settings at the end
	secrets         []string          // the leader settings no agent log may hold
	appMessage      string            // the application status message the leader sets
	workloadMessage string            // each unit's status message after config set
	version         string            // the application version install sets last
}

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

// check checks every row of ch's tables and of the shared ones, stage by
// stage in the order the hooks ran, then what the controller shows.
func (tc *toolsCluster[R]) check(t *testing.T, ch toolsCharm[R]) {
	t.Run("through uniter-hooktools", tc.checkToolsLinks)
	facts := append(tc.sharedFacts(ch), ch.facts...)
	stages := tc.stages(ch)
	tc.checkRowsReach(t, stages, ch.table, facts)
	for _, st := range stages {
		if !st.final {
			t.Run(string(st.at), func(t *testing.T) { tc.checkStage(t, ch, facts, st) })
		}
	}
	t.Run("uniter status shows what the hooks set", func(t *testing.T) { tc.checkStatus(t, ch) })
	t.Run("no secret in any agent log", func(t *testing.T) {
		for _, u := range tc.units {
			checkNoSecrets(t, u, ch.secrets...)
		}
	})
	for _, st := range stages {
		if st.final {
			t.Run(string(st.at), func(t *testing.T) { tc.checkStage(t, ch, facts, st) })
		}
	}
}

// toolsStage is how the check reads a stage's runs.
type toolsStage[R any] struct {
	at            stage
	units, never  []*agentUnit // the units that run the hook, and those that must not
	before, after func(t *testing.T)
	run           func(t *testing.T, u *agentUnit) R // u's run of the hook
	// final: the stage ends the cluster as the other checks know it (its
	// before removes a unit), so it runs after them.
	final bool
}

// stages is every stage, in the order the hooks run.
func (tc *toolsCluster[R]) stages(ch toolsCharm[R]) []toolsStage[R] {
	leader, minion := []*agentUnit{tc.leader}, []*agentUnit{tc.minion}
	return []toolsStage[R]{
		{at: atInstall, units: tc.units, run: tc.once(atInstall)},
		{at: atLeaderElected, units: leader, never: minion, run: tc.once(atLeaderElected)},
		{at: atDefaults, units: tc.units, run: tc.once(atDefaults)},
		{at: atConfigSet, units: tc.units, before: tc.configSet(ch.set), run: tc.last(atConfigSet, "the new config", ch.hasConfig)},
		{at: atRelCreated, units: tc.units, run: tc.once(atRelCreated)},
		{at: atRelJoined, units: tc.units, run: tc.first(atRelJoined, "", func(R) bool { return true }),
			after: tc.ranOnce(atRelJoined)}, // one remote unit: one -joined
		{at: atRelChanged, units: tc.units, run: tc.latest(atRelChanged, "the remote unit's data",
			func(r R) bool { return ch.relEnv(r).remoteUnit != "" }, ch.sawRemoteData)},
		{at: atRelChangedApp, units: tc.units, run: tc.first(atRelChangedApp, "the application's data",
			func(r R) bool { return ch.relEnv(r).remoteUnit == "" })},
		{at: atRelDeparted, units: tc.units, before: tc.removeMinion, final: true,
			run: tc.first(atRelDeparted, "", func(R) bool { return true }), after: tc.ranOnce(atRelDeparted)},
		{at: atLeaderSettings, units: minion, never: leader,
			run: tc.last(atLeaderSettings, "the counter at 3", func(_ *testing.T, r R) bool { return ch.counter(r) == "3" }),
			// The minion's leader-set must not have landed.
			after: tc.leaderSettingsAre(ch.settings)},
	}
}

// checkStage checks the run of st on each of its units against the rows
// about it, and that the other units did not run its hook.
func (tc *toolsCluster[R]) checkStage(t *testing.T, ch toolsCharm[R], facts []factRow[R], st toolsStage[R]) {
	if st.before != nil {
		st.before(t)
	}
	for _, u := range st.units {
		tc.checkRun(t, ch, facts, st.at, u, st.run(t, u))
	}
	for _, u := range st.never {
		if runs := tc.runs(t, u, st.at.hook()); len(runs) != 0 {
			t.Errorf("%s ran %s %d times; it must not", u.unit, st.at.hook(), len(runs))
		}
	}
	if st.after != nil {
		st.after(t)
	}
}

// checkToolsLinks asserts that every tool call went through the small
// binary (TestToolsBinary).
func (tc *toolsCluster[R]) checkToolsLinks(t *testing.T) {
	want := filepath.Join(filepath.Dir(uniterBin), "uniter-hooktools")
	for _, u := range tc.units {
		if got, err := os.Readlink(filepath.Join(agent.ToolsDir(u.dir), "is-leader")); got != want {
			t.Errorf("%s: tools/is-leader -> %q, %v; want %q", u.unit, got, err, want)
		}
	}
}

// checkStatus asserts what `uniter status` shows once the hooks ran: the
// leader, the statuses and the version the hooks set.
func (tc *toolsCluster[R]) checkStatus(t *testing.T, ch toolsCharm[R]) {
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
	if L := tc.leader.unit; a.Leader == nil || *a.Leader != L {
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
}

// sharedFacts are the fact rows of both charms: what is-leader says in each
// hook, and the term leader-elected sees.
func (tc *toolsCluster[R]) sharedFacts(ch toolsCharm[R]) []factRow[R] {
	role := func(leader bool) func(t *testing.T, u *agentUnit, r R) {
		return func(t *testing.T, u *agentUnit, r R) {
			if got := ch.isLeader(t, r); got != leader {
				t.Errorf("%s: is-leader %v; the leader is %s", u.unit, got, tc.leader.unit)
			}
		}
	}
	facts := []factRow[R]{
		// Not even the future leader: is-leader is true only once
		// leader-elected runs (DESIGN.md 4.4 (2a)).
		{atInstall, onEach, "role", role(false)},
		{atLeaderElected, onLeader, "role", role(true)},
		{atLeaderElected, onLeader, "UNITER_LEADERSHIP_TERM", func(t *testing.T, _ *agentUnit, r R) {
			if term := cliStatus(tc.c).Applications[tc.name].Term; ch.term(r) != strconv.FormatUint(term, 10) {
				t.Errorf("UNITER_LEADERSHIP_TERM %q in leader-elected, controller term %d", ch.term(r), term)
			}
		}},
		{atDefaults, onLeader, "role", role(true)},
		{atDefaults, onMinion, "role", role(false)},
		{atConfigSet, onLeader, "role", role(true)},
		{atConfigSet, onMinion, "role", role(false)},
		{atLeaderSettings, onMinion, "role", role(false)},
		// Before leader-elected, the future leader is no leader either.
		{atRelCreated, onEach, "role", role(false)},
		{atRelJoined, onLeader, "role", role(true)},
		{atRelJoined, onMinion, "role", role(false)},
		{atRelChanged, onLeader, "role", role(true)},
		{atRelChanged, onMinion, "role", role(false)},
		{atRelChangedApp, onLeader, "role", role(true)},
		{atRelChangedApp, onMinion, "role", role(false)},
		{atRelDeparted, onLeader, "role", role(true)},
		{atRelDeparted, onMinion, "role", role(false)},
	}
	// The relation hooks' environment: the remote unit is the other one in
	// -joined, a unit's -changed and -departed, none in -created and the
	// application's -changed.
	env := func(at stage) func(t *testing.T, u *agentUnit, r R) {
		return func(t *testing.T, u *agentUnit, r R) {
			want := relEnv{relation: "cluster", id: peerRelation, remoteApp: tc.name}
			if at == atRelJoined || at == atRelChanged || at == atRelDeparted {
				want.remoteUnit = tc.other(u).unit
			}
			if at == atRelDeparted {
				// The remote unit that left, or this unit when it is the
				// one going away: the minion either way.
				want.departing = tc.minion.unit
			}
			if got := ch.relEnv(r); got != want {
				t.Errorf("%s: relation environment %+v, want %+v", u.unit, got, want)
			}
		}
	}
	for _, at := range []stage{atRelCreated, atRelJoined, atRelChanged, atRelChangedApp, atRelDeparted} {
		facts = append(facts, factRow[R]{at, onEach, "relation environment", env(at)})
	}
	for _, at := range []stage{atInstall, atLeaderElected, atDefaults, atConfigSet, atLeaderSettings} {
		facts = append(facts, factRow[R]{at, onEach, "no relation environment", func(t *testing.T, u *agentUnit, r R) {
			if got := ch.relEnv(r); got != (relEnv{}) {
				t.Errorf("%s: relation environment %+v outside a relation hook", u.unit, got)
			}
		}})
	}
	return facts
}

// other is the unit of the two that is not u.
func (tc *toolsCluster[R]) other(u *agentUnit) *agentUnit {
	if u == tc.leader {
		return tc.minion
	}
	return tc.leader
}

// checkRun checks u's run r of at's hook against the rows about it: that it
// made exactly the calls of ch's table, each as its row wants (a subtest
// each), and every fact (a subtest each).
func (tc *toolsCluster[R]) checkRun(t *testing.T, ch toolsCharm[R], facts []factRow[R], at stage, u *agentUnit, r R) {
	about := func(a stage, on who) bool { return a == at && tc.isOn(on, u) }
	calls := map[string]toolCall{}
	var got, want []string
	for _, c := range ch.calls(t, r) {
		calls[c.name] = c
		got = append(got, c.name)
	}
	var rows []toolRow
	for _, row := range ch.table {
		if about(row.at, row.on) {
			rows = append(rows, row)
			want = append(want, row.tool)
		}
	}
	if !ch.ordered {
		slices.Sort(got)
		slices.Sort(want)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s %s: the calls are not the table's (%s):\n got %q\nwant %q", u.unit, at.hook(), callsDiff(got, want), got, want)
	}
	for _, row := range rows {
		t.Run(u.unit+"/"+row.tool, func(t *testing.T) {
			c, ok := calls[row.tool]
			if !ok {
				t.Fatalf("%s: not called", row.name(u))
			}
			row.check(t, u, c)
		})
	}
	for _, f := range facts {
		if about(f.at, f.on) {
			t.Run(u.unit+"/"+f.what, func(t *testing.T) { f.check(t, u, r) })
		}
	}
}

// callsDiff says how the names of the calls made, got, differ from the
// table's, want.
func callsDiff(got, want []string) string {
	missing := slices.DeleteFunc(slices.Clone(want), func(n string) bool { return slices.Contains(got, n) })
	extra := slices.DeleteFunc(slices.Clone(got), func(n string) bool { return slices.Contains(want, n) })
	if len(missing) == 0 && len(extra) == 0 {
		return "in another order, or twice"
	}
	return fmt.Sprintf("missing %q, not in the table %q", missing, extra)
}

// isOn tells whether u is one of the units of on.
func (tc *toolsCluster[R]) isOn(on who, u *agentUnit) bool {
	return on == onEach || (on == onLeader) == (u == tc.leader)
}

// checkRowsReach asserts that every row is about some unit's run of its
// stage: a row that none reaches would never be checked.
func (tc *toolsCluster[R]) checkRowsReach(t *testing.T, stages []toolsStage[R], table []toolRow, facts []factRow[R]) {
	t.Helper()
	reaches := func(at stage, on who) bool {
		for _, st := range stages {
			if st.at == at && slices.ContainsFunc(st.units, func(u *agentUnit) bool { return tc.isOn(on, u) }) {
				return true
			}
		}
		return false
	}
	for _, row := range table {
		if !reaches(row.at, row.on) {
			t.Errorf("call row %s %s is about no unit's run", row.at, row.tool)
		}
	}
	for _, f := range facts {
		if !reaches(f.at, f.on) {
			t.Errorf("fact row %s %s is about no unit's run", f.at, f.what)
		}
	}
}

// once reads the only run of at's hook on a unit.
func (tc *toolsCluster[R]) once(at stage) func(t *testing.T, u *agentUnit) R {
	return func(t *testing.T, u *agentUnit) R {
		t.Helper()
		runs := tc.runs(t, u, at.hook())
		if len(runs) != 1 {
			t.Fatalf("%s ran %s %d times", u.unit, at.hook(), len(runs))
		}
		return runs[0]
	}
}

// last waits for the last run of at's hook on a unit to be ok, and reads it.
func (tc *toolsCluster[R]) last(at stage, what string, ok func(t *testing.T, r R) bool) func(t *testing.T, u *agentUnit) R {
	return func(t *testing.T, u *agentUnit) R {
		t.Helper()
		var r R
		testutil.WaitUntil(t, 30*time.Second, u.unit+" to run "+at.hook()+" with "+what, func() bool {
			var found bool
			r, found = lastRun(tc.runs(t, u, at.hook()))
			return found && ok(t, r)
		})
		return r
	}
}

// first waits for a run of at's hook on a unit that is ok, and reads the
// first such run.
func (tc *toolsCluster[R]) first(at stage, what string, ok func(r R) bool) func(t *testing.T, u *agentUnit) R {
	return func(t *testing.T, u *agentUnit) R {
		t.Helper()
		var r R
		testutil.WaitUntil(t, 30*time.Second, u.unit+" to run "+string(at)+" "+what, func() bool {
			for _, run := range tc.runs(t, u, at.hook()) {
				if ok(run) {
					r = run
					return true
				}
			}
			return false
		})
		return r
	}
}

// latest waits for the last of the runs of at's hook on a unit that are
// of (a kind of run) to be ok, and reads it.
func (tc *toolsCluster[R]) latest(at stage, what string, of, ok func(r R) bool) func(t *testing.T, u *agentUnit) R {
	return func(t *testing.T, u *agentUnit) R {
		t.Helper()
		var r R
		testutil.WaitUntil(t, 30*time.Second, u.unit+" to run "+string(at), func() bool {
			var found bool
			r, found = lastRun(slices.DeleteFunc(tc.runs(t, u, at.hook()), func(r R) bool { return !of(r) }))
			return found && ok(r)
		})
		return r
	}
}

// removeMinion removes the minion's unit (`uniter unit remove`, waiting
// for its agent to finish): both units depart from the peer relation.
func (tc *toolsCluster[R]) removeMinion(t *testing.T) {
	if r := tc.c.run("unit", "remove", tc.minion.unit, "--wait", "90s"); r.code != 0 {
		t.Fatalf("unit remove %s: exit %d: %s", tc.minion.unit, r.code, r.stderr)
	}
}

// ranOnce asserts that each unit ran at's hook exactly once.
func (tc *toolsCluster[R]) ranOnce(at stage) func(t *testing.T) {
	return func(t *testing.T) {
		for _, u := range tc.units {
			if n := len(tc.runs(t, u, at.hook())); n != 1 {
				t.Errorf("%s ran %s %d times, want once", u.unit, at.hook(), n)
			}
		}
	}
}

// lastRun returns the last of runs, if any.
func lastRun[R any](runs []R) (R, bool) {
	if len(runs) == 0 {
		var none R
		return none, false
	}
	return runs[len(runs)-1], true
}

// configSet runs `uniter config set` with the non-nil values of set.
func (tc *toolsCluster[R]) configSet(set map[string]any) func(t *testing.T) {
	return func(t *testing.T) {
		args := []string{"config", "set", tc.name}
		for _, k := range slices.Sorted(maps.Keys(set)) {
			if v := set[k]; v != nil {
				args = append(args, fmt.Sprintf("%s=%v", k, v))
			}
		}
		if res := tc.c.run(args...); res.code != 0 {
			t.Fatalf("%q: exit %d: %s", args, res.code, res.stderr)
		}
	}
}

// leaderSettingsAre asserts the application's leader settings at the
// controller.
func (tc *toolsCluster[R]) leaderSettingsAre(settings map[string]string) func(t *testing.T) {
	return func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ls, err := tc.c.client().LeaderSettings(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ls.Values, settings) {
			t.Errorf("controller's leader settings %v, want %v (the minion's leader-set must not have landed)", ls.Values, settings)
		}
	}
}

// appStatusIs is the verdict on the stdout of the leader's status-get
// --application --format=json in leader-elected: the application active
// with appMessage and two units, the leader's own one still in
// maintenance with installMessage.
func appStatusIs(appMessage, leader, installMessage string) func(stdout string) error {
	return func(stdout string) error {
		var doc map[string]any
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
			return err
		}
		var errs []error
		app, _ := doc["application-status"].(map[string]any)
		units, _ := app["units"].(map[string]any)
		_, data := app["status-data"].(map[string]any)
		if app["status"] != "active" || app["message"] != appMessage || !data || len(units) != 2 {
			errs = append(errs, fmt.Errorf("status-get --application --format=json: %v", doc))
		}
		if u := units[leader]; !reflect.DeepEqual(u, map[string]any{"status": "maintenance", "message": installMessage, "status-data": map[string]any{}}) {
			errs = append(errs, fmt.Errorf("status-get --application: the leader's own unit is %v", u))
		}
		return errors.Join(errs...)
	}
}

// goalStateHasUnits is the verdict on goal-state --format=json: exactly
// the units named, each with a status and a since in Juju's layout (ops 3
// indexes both), and no relations (a peer relation is not listed).
func goalStateHasUnits(units ...string) func(stdout string) error {
	return func(stdout string) error {
		var doc struct {
			Units     map[string]map[string]string `json:"units"`
			Relations map[string]any               `json:"relations"`
		}
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
			return err
		}
		if !slices.Equal(slices.Sorted(maps.Keys(doc.Units)), slices.Sorted(slices.Values(units))) || doc.Relations == nil || len(doc.Relations) != 0 {
			return fmt.Errorf("goal-state: %s, want units %q and no relations", stdout, units)
		}
		for name, u := range doc.Units {
			if u["status"] != "active" && u["status"] != "waiting" {
				return fmt.Errorf("goal-state unit %s: status %q", name, u["status"])
			}
			if _, err := time.Parse("2006-01-02 15:04:05Z", u["since"]); err != nil {
				return fmt.Errorf("goal-state unit %s: since %q: %v", name, u["since"], err)
			}
		}
		return nil
	}
}

// seedBag is unit's databag as its scope entry seeds it: its address
// (toolAddress) as private-address and ingress-address, and as a one-host
// egress subnet.
func seedBag(unit string) map[string]string {
	a := toolAddress(unit)
	return map[string]string{"egress-subnets": a + "/32", "ingress-address": a, "private-address": a}
}

// withBag is bag with more keys.
func withBag(bag map[string]string, more map[string]string) map[string]string {
	out := maps.Clone(bag)
	maps.Copy(out, more)
	return out
}

// networkGetYAML and networkGetJSON are network-get BINDING with no
// address flag on unit, whose address no interface has.
func networkGetYAML(unit string) string {
	a := toolAddress(unit)
	return "bind-addresses:\n  - addresses:\n      - cidr: " + a + "/32\n        hostname: \"\"\n        value: " + a +
		"\n    interface-name: \"\"\n    mac-address: \"\"\negress-subnets:\n  - " + a + "/32\ningress-addresses:\n  - " + a + "\n"
}

func networkGetJSON(unit string) string {
	a := toolAddress(unit)
	return `{"bind-addresses":[{"addresses":[{"cidr":"` + a + `/32","hostname":"","value":"` + a + `"}],` +
		`"interface-name":"","mac-address":""}],"egress-subnets":["` + a + `/32"],"ingress-addresses":["` + a + `"]}` + "\n"
}

// usage is a call that exits 2 and prints stderr, and nothing on stdout.
func usage(stderr string) toolWant { return toolWant{rc: 2, stderr: stderr} }

// mentions is the verdict that stdout holds s.
func mentions(s string) func(stdout string) error {
	return func(stdout string) error {
		if !strings.Contains(stdout, s) {
			return fmt.Errorf("does not mention %q", s)
		}
		return nil
	}
}

// goalStateYAMLHasUnits is goalStateHasUnits for goal-state's default
// format, YAML.
func goalStateYAMLHasUnits(units ...string) func(stdout string) error {
	return func(stdout string) error {
		var doc any
		if err := yaml.Unmarshal([]byte(stdout), &doc); err != nil {
			return err
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(stdout, "relations: {}\nunits:\n") {
			return fmt.Errorf("goal-state: not YAML with relations then units: %q", stdout)
		}
		return goalStateHasUnits(units...)(string(b))
	}
}
