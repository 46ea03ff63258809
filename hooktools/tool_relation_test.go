package hooktools_test

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/hooktools/hooktoolstest"
)

// relationHook is app/0 running db-relation-changed for mysql/0 in db:3,
// with a peer relation cluster:1 and a dying db:7.
type relationHook struct {
	*testHook
	rels *hooktoolstest.Relations
}

func relationContext(t *testing.T, leader bool, hookRel *hooktools.HookRelation, opts ...func(*hooktools.HookContext)) relationHook {
	t.Helper()
	srv := startServer(t, serverOpts{})
	rels := &hooktoolstest.Relations{}
	rels.Set(3, "mysql/0", false, map[string]string{"host": "10.0.0.5", "port": "3306"})
	rels.Set(3, "mysql/1", false, map[string]string{"host": "10.0.0.6"})
	rels.Set(3, "mysql", true, map[string]string{"database": "wp"})
	rels.Set(3, "app/0", false, map[string]string{"mine": "yes"})
	rels.Set(3, "app", true, map[string]string{"secret": "s"})
	rels.Set(1, "app", true, map[string]string{"leader-data": "x"})
	rels.Set(1, "app/1", false, map[string]string{"peer": "1"})
	hc := defaultContext(hooktoolstest.NewBackend(leader))
	hc.Hook = "db-relation-changed"
	since := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	hc.Relations = []hooktools.Relation{
		{ID: 3, Endpoint: "db", Key: "app:db mysql:server", RemoteApp: "mysql", Members: []string{"mysql/1", "mysql/0"}},
		{ID: 1, Endpoint: "cluster", Key: "app:cluster", Peer: true, RemoteApp: "app", Members: []string{"app/2", "app/1"}},
		{ID: 7, Endpoint: "db", Key: "app:db other:server", RemoteApp: "other", Dying: true},
	}
	hc.RelationBackend = rels
	hc.HookRelation = hookRel
	for _, o := range opts {
		o(hc)
	}
	rels.SetGoal(hooktools.GoalState{
		Units: map[string]hooktools.GoalStatus{"app/0": {Status: "active", Since: since}, "app/1": {Status: "waiting", Since: since}},
		Relations: map[string]map[string]hooktools.GoalStatus{
			"db": {"mysql": {Status: "joined", Since: since}, "mysql/0": {Status: "active", Since: since}},
		},
	})
	return relationHook{testHook: srv.register(t, hc), rels: rels}
}

var dbChanged = &hooktools.HookRelation{ID: 3, RemoteUnit: "mysql/0", RemoteApp: "mysql"}

type relCase struct {
	name    string
	leader  bool
	hookRel *hooktools.HookRelation // nil: a non-relation hook
	stdin   string
	argv    []string
	want    result
}

func runRelCases(t *testing.T, cases []relCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			h := relationContext(t, tt.leader, tt.hookRel)
			var stdin io.Reader
			if tt.stdin != "" {
				stdin = strings.NewReader(tt.stdin)
			}
			if diff := cmp.Diff(tt.want, h.run(t, stdin, tt.argv...)); diff != "" {
				t.Errorf("%q (-want +got):\n%s", tt.argv, diff)
			}
		})
	}
}

func runErrOnly(msg string) result { return result{Stderr: "ERROR " + msg + "\n", Code: 1} }

func TestRelationIDs(t *testing.T) {
	runRelCases(t, []relCase{
		{name: "hook's endpoint", hookRel: dbChanged, argv: argv("relation-ids"), want: ok("db:3\n")},
		{name: "named, json (ops)", argv: argv("relation-ids cluster --format=json"), want: ok(`["cluster:1"]` + "\n")},
		{name: "dying left out", argv: argv("relation-ids db"), want: ok("db:3\n")},
		{name: "unknown name", argv: argv("relation-ids nope"), want: ok("")},
		{name: "unknown name json", argv: argv("relation-ids nope --format=json"), want: ok("[]\n")},
		{name: "no name outside a relation hook", argv: argv("relation-ids"), want: usageErr("no endpoint name specified")},
		{name: "two names", argv: argv("relation-ids a b"), want: usageErr(`unrecognized args: ["b"]`)},
	})
}

func TestRelationList(t *testing.T) {
	runRelCases(t, []relCase{
		{name: "hook's relation, sorted", hookRel: dbChanged, argv: argv("relation-list"), want: ok("mysql/0\nmysql/1\n")},
		{name: "by id json (ops)", argv: argv("relation-list -r 1 --format=json"), want: ok(`["app/1","app/2"]` + "\n")},
		{name: "endpoint:id", argv: argv("relation-list -r cluster:1"), want: ok("app/1\napp/2\n")},
		{name: "app", argv: argv("relation-list -r db:3 --app"), want: ok("mysql\n")},
		{name: "no members json (ops iterates it)", argv: argv("relation-list -r 7 --format=json"), want: ok("[]\n")},
		{name: "no members", argv: argv("relation-list -r 7"), want: ok("")},
		{name: "unknown id", argv: argv("relation-list -r 9"), want: usageErr(`invalid value "9" for option -r: relation not found`)},
		{name: "endpoint disagrees", argv: argv("relation-list -r db:1"), want: usageErr(`invalid value "db:1" for option -r: relation not found`)},
		{name: "not a number", argv: argv("relation-list -r db:x"), want: usageErr(`invalid value "db:x" for option -r: invalid relation id`)},
		{name: "no relation", argv: argv("relation-list"), want: usageErr("no relation id specified")},
	})
}

func TestRelationGet(t *testing.T) {
	runRelCases(t, []relCase{
		{name: "remote unit's key", hookRel: dbChanged, argv: argv("relation-get host"), want: ok("10.0.0.5\n")},
		{name: "whole bag json (ops)", hookRel: dbChanged, argv: argv("relation-get -r db:3 - mysql/1 --format=json"), want: ok(`{"host":"10.0.0.6"}` + "\n")},
		{name: "remote app bag", argv: argv("relation-get -r 3 --app - mysql --format=json"), want: ok(`{"database":"wp"}` + "\n")},
		{name: "missing key", hookRel: dbChanged, argv: argv("relation-get nope"), want: ok("")},
		{name: "missing key json", hookRel: dbChanged, argv: argv("relation-get nope --format=json"), want: ok("null\n")},
		{name: "own unit", argv: argv("relation-get -r 3 - app/0"), want: ok("mine: \"yes\"\n")},
		{name: "own app bag, leader", leader: true, argv: argv("relation-get -r 3 --app secret app"), want: ok("s\n")},
		{name: "own app bag, not leader", argv: argv("relation-get -r 3 --app secret app"), want: runErrOnly("permission denied")},
		{name: "peer app bag, not leader", argv: argv("relation-get -r 1 --app - app --format=json"), want: ok(`{"leader-data":"x"}` + "\n")},
		{name: "unit on neither side", argv: argv("relation-get -r 3 - other/0"), want: runErrOnly("permission denied")},
		{name: "no settings yet", argv: argv("relation-get -r 1 - app/2"),
			want: runErrOnly(`cannot read settings for unit "app/2" in relation "app:cluster": unit "app/2": settings not found`)},
		{name: "app name without --app", argv: argv("relation-get -r 3 - mysql"), want: usageErr(`expected unit name, got application name "mysql"`)},
		{name: "bad unit name", argv: argv("relation-get -r 3 - My/x"), want: usageErr(`invalid unit name "My/x"`)},
		{name: "no unit outside a relation hook", argv: argv("relation-get -r 3"), want: usageErr("no unit or application specified")},
		{name: "app-level hook defaults to the app", hookRel: &hooktools.HookRelation{ID: 3, RemoteApp: "mysql"},
			argv: argv("relation-get database"), want: ok("wp\n")},
	})
}

func TestRelationSetIsBufferedAndReadBack(t *testing.T) {
	h := relationContext(t, false, dbChanged)
	if got := h.run(t, nil, argv("relation-set mine= k=v")...); got != ok("") {
		t.Fatalf("relation-set: %+v", got)
	}
	if got := h.run(t, strings.NewReader("{\"f\": \" spaced \"}"), argv("relation-set -r db:3 --file - --format=json")...); got.Code != 0 ||
		!strings.Contains(got.Stderr, "deprecated") {
		t.Fatalf("relation-set --file - --format: %+v", got)
	}
	// The hook sees its own writes; nothing has reached the controller.
	if got := h.run(t, nil, argv("relation-get -r 3 - app/0 --format=json")...); got != ok(`{"f":"spaced","k":"v"}`+"\n") {
		t.Fatalf("own bag after relation-set: %+v", got)
	}
	pending, found := h.srv.Pending(h.id)
	if !found {
		t.Fatal("no pending writes for a live context")
	}
	want := hooktools.Pending{Relations: map[int]hooktools.RelationChanges{3: {Unit: map[string]string{"mine": "", "k": "v", "f": "spaced"}}}}
	if diff := cmp.Diff(want, pending); diff != "" {
		t.Errorf("pending (-want +got):\n%s", diff)
	}
	if got := h.run(t, nil, argv("relation-set --app x=1")...); got != runErrOnly("cannot write relation settings") {
		t.Errorf("relation-set --app by a non-leader: %+v", got)
	}
	for _, tt := range []struct{ args, want string }{
		{"relation-set x", `expected "key=value", got "x"`},
		{"relation-set a=1 a=2", `key "a" specified more than once`},
	} {
		if got := h.run(t, nil, argv(tt.args)...); got != usageErr(tt.want) {
			t.Errorf("%s: %+v", tt.args, got)
		}
	}
	if help := h.run(t, nil, "relation-set", "--help"); !strings.Contains(help.Stdout, "--file") {
		t.Errorf("relation-set --help does not mention --file (charmhelpers looks for it):\n%s", help.Stdout)
	}
	h.done()
	if _, found := h.srv.Pending(h.id); found {
		t.Error("pending writes outlive the hook's context")
	}
}

func TestRelationSetAppByLeader(t *testing.T) {
	h := relationContext(t, true, dbChanged)
	if got := h.run(t, nil, argv("relation-set --app -r 3 secret= new=1")...); got != ok("") {
		t.Fatalf("relation-set --app: %+v", got)
	}
	if got := h.run(t, nil, argv("relation-get -r 3 --app - app --format=json")...); got != ok(`{"new":"1"}`+"\n") {
		t.Errorf("own app bag after the write: %+v", got)
	}
	pending, _ := h.srv.Pending(h.id)
	if diff := cmp.Diff(map[string]string{"secret": "", "new": "1"}, pending.Relations[3].App); diff != "" {
		t.Errorf("pending app writes (-want +got):\n%s", diff)
	}
}

func TestRelationReadsAreCachedPerHook(t *testing.T) {
	h := relationContext(t, false, dbChanged)
	for range 3 {
		if got := h.run(t, nil, argv("relation-get host")...); got != ok("10.0.0.5\n") {
			t.Fatalf("relation-get: %+v", got)
		}
	}
	if n := h.rels.Reads(); n != 1 {
		t.Errorf("%d backend reads for one bag in one hook, want 1", n)
	}
}

func TestGoalState(t *testing.T) {
	runRelCases(t, []relCase{
		{name: "yaml by default", argv: argv("goal-state"), want: ok(`relations:
  db:
    mysql:
      since: 2026-12-03 10:00:00Z
      status: joined
    mysql/0:
      since: 2026-12-03 10:00:00Z
      status: active
units:
  app/0:
    since: 2026-12-03 10:00:00Z
    status: active
  app/1:
    since: 2026-12-03 10:00:00Z
    status: waiting
`)},
		{name: "json (ops)", argv: argv("goal-state --format=json"), want: ok(`{"relations":{"db":{"mysql":{"since":"2026-12-03 10:00:00Z","status":"joined"},` +
			`"mysql/0":{"since":"2026-12-03 10:00:00Z","status":"active"}}},"units":{"app/0":{"since":"2026-12-03 10:00:00Z","status":"active"},` +
			`"app/1":{"since":"2026-12-03 10:00:00Z","status":"waiting"}}}` + "\n")},
	})
}

// TestRelationSetLimits (issue 12, must show 7): relation-set itself
// refuses a key or value over the databag limits the agent passes (the
// controller's), exit 1, with the limit named, and buffers nothing of the
// refused call, not even its other keys; a value at the limit is taken.
// A settings file that is not a map of strings is refused likewise.
func TestRelationSetLimits(t *testing.T) {
	const keyLimit, valueLimit = 256, 256 << 10 // controller/api's
	limits := func(hc *hooktools.HookContext) {
		hc.DatabagLimits = hooktools.DatabagLimits{KeyBytes: keyLimit, ValueBytes: valueLimit}
	}
	big := strings.Repeat("a", 2<<20)    // through a file: over every bound but the databag's
	over := strings.Repeat("o", 300<<10) // on argv, under its 1 MiB bound
	longKey := strings.Repeat("k", keyLimit+1)
	for _, tt := range []struct {
		name    string
		leader  bool
		stdin   string
		file    string // the content of big.yaml in the hook's directory
		argv    []string
		want    result
		pending map[int]hooktools.RelationChanges
	}{
		{name: "2 MiB value from a file on stdin", stdin: "big: " + big + "\nsmall: x\n", argv: argv("relation-set --file -"),
			want: runErr(`cannot set relation settings: value of "big" is 2097152 bytes; the limit is 262144`)},
		{name: "2 MiB value from a file, k=v too", argv: []string{"relation-set", "--file", "big.yaml", "a=1"}, file: "big: " + big + "\n",
			want: runErr(`cannot set relation settings: value of "big" is 2097152 bytes; the limit is 262144`)},
		{name: "value over the limit as k=v", argv: []string{"relation-set", "a=1", "big=" + over},
			want: runErr(`cannot set relation settings: value of "big" is 307200 bytes; the limit is 262144`)},
		{name: "app bag, leader", leader: true, argv: []string{"relation-set", "--app", "-r", "db:3", "big=" + over},
			want: runErr(`cannot set relation settings: value of "big" is 307200 bytes; the limit is 262144`)},
		{name: "key over the limit", argv: []string{"relation-set", longKey + "=v"},
			want: runErr(`cannot set relation settings: key "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"... is 257 bytes; the limit is 256`)},
		{name: "the first bad key, sorted", argv: []string{"relation-set", "z=" + over, "b=" + over},
			want: runErr(`cannot set relation settings: value of "b" is 307200 bytes; the limit is 262144`)},
		// A bad file is refused with YAML's own text, as Juju prints it.
		{name: "a list where a value goes", stdin: "a: x\nb: [1, 2]\n", argv: argv("relation-set --file -"),
			want: runErr("yaml: unmarshal errors:\n  line 2: cannot unmarshal !!seq into string")},
		{name: "not YAML", stdin: "a: [1\n", argv: argv("relation-set --file -"),
			want: runErr("yaml: line 1: did not find expected ',' or ']'")},
		{name: "a value at the limit", argv: []string{"relation-set", "v=" + strings.Repeat("v", valueLimit)}, want: ok(""),
			pending: map[int]hooktools.RelationChanges{3: {Unit: map[string]string{"v": strings.Repeat("v", valueLimit)}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := relationContext(t, tt.leader, dbChanged, limits)
			argv := tt.argv
			if tt.file != "" {
				path := filepath.Join(t.TempDir(), "big.yaml")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
				argv = slices.Clone(argv)
				argv[slices.Index(argv, "big.yaml")] = path
			}
			var stdin io.Reader
			if tt.stdin != "" {
				stdin = strings.NewReader(tt.stdin)
			}
			if diff := cmp.Diff(tt.want, h.run(t, stdin, argv...)); diff != "" {
				t.Errorf("%.60q (-want +got):\n%s", argv, diff)
			}
			pending, _ := h.srv.Pending(h.id)
			want := hooktools.Pending{Relations: map[int]hooktools.RelationChanges{}}
			if tt.pending != nil {
				want.Relations = tt.pending
			}
			if diff := cmp.Diff(want, pending); diff != "" {
				t.Errorf("pending (-want +got):\n%.400s", diff)
			}
		})
	}
}
