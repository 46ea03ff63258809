package hooktools_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/hooktools/hooktoolstest"
)

func notLeader(b *hooktoolstest.Backend) { b.SetLeader(false) }

var isLeaderCall = hooktoolstest.Call{Method: "IsLeader"}

func TestIsLeader(t *testing.T) {
	runToolCases(t, []toolCase{
		{name: "smart", argv: argv("is-leader"), want: ok("True\n"), calls: []hooktoolstest.Call{isLeaderCall}},
		{name: "smart false", argv: argv("is-leader"), setup: notLeader, want: ok("False\n")},
		{name: "json (ops, charmhelpers)", argv: argv("is-leader --format=json"), want: ok("true\n")},
		{name: "json false", argv: argv("is-leader --format=json"), setup: notLeader, want: ok("false\n")},
		{name: "json separate value", argv: argv("is-leader --format json"), want: ok("true\n")},
		{name: "yaml", argv: argv("is-leader --format yaml"), want: ok("true\n")},
		{name: "yaml false", argv: argv("is-leader --format=yaml"), setup: notLeader, want: ok("false\n")},
		{name: "extra arg", argv: argv("is-leader x"), want: usageErr(`unrecognized args: ["x"]`), calls: []hooktoolstest.Call{}},
		{
			name: "backend error", argv: argv("is-leader"),
			setup: func(b *hooktoolstest.Backend) { b.FailWith("IsLeader", errors.New("lease store unreachable")) },
			want:  runErr("leadership status unknown: lease store unreachable"),
		},
	})
}

func TestLeaderGet(t *testing.T) {
	runToolCases(t, []toolCase{
		{name: "all smart", argv: argv("leader-get"), want: ok("a: \"1\"\nb: two words\n")},
		{name: "all dash", argv: argv("leader-get -"), want: ok("a: \"1\"\nb: two words\n")},
		{name: "all json", argv: argv("leader-get --format=json"), want: ok(`{"a":"1","b":"two words"}` + "\n")},
		{name: "all json dash (charmhelpers)", argv: argv("leader-get --format=json -"), want: ok(`{"a":"1","b":"two words"}` + "\n")},
		{name: "all yaml", argv: argv("leader-get --format=yaml"), want: ok("a: \"1\"\nb: two words\n")},
		{name: "key", argv: argv("leader-get b"), want: ok("two words\n")},
		{name: "key json (charmhelpers)", argv: argv("leader-get --format=json a"), want: ok(`"1"` + "\n")},
		{name: "key json flag last", argv: argv("leader-get a --format=json"), want: ok(`"1"` + "\n")},
		{name: "missing key", argv: argv("leader-get nope"), want: ok("")},
		{name: "missing key json", argv: argv("leader-get --format=json nope"), want: ok("null\n")},
		{name: "missing key yaml", argv: argv("leader-get --format=yaml nope"), want: ok("")},
		{name: "key with =", argv: argv("leader-get a=b"), want: usageErr(`invalid key "a=b"`)},
		{name: "two keys", argv: argv("leader-get a b"), want: usageErr(`unrecognized args: ["b"]`)},
		{name: "no backend call", argv: argv("leader-get"), want: ok("a: \"1\"\nb: two words\n"), calls: []hooktoolstest.Call{}},
	})
}

func TestLeaderGetEmpty(t *testing.T) {
	srv := startServer(t, serverOpts{})
	hc := defaultContext(hooktoolstest.NewBackend(true))
	hc.LeaderSettings = nil
	h := srv.register(t, hc)
	for _, tt := range []struct {
		args string
		want string
	}{{"leader-get", "{}\n"}, {"leader-get --format=json", "{}\n"}, {"leader-get x", ""}} {
		if diff := cmp.Diff(ok(tt.want), h.run(t, nil, argv(tt.args)...)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.args, diff)
		}
	}
}

func setCall(changes map[string]string) hooktoolstest.Call {
	return hooktoolstest.Call{Method: "SetLeaderSettings", Args: []any{changes}}
}

// leaderGetShows checks what leader-get --format=json prints afterwards.
func leaderGetShows(want string) func(*testing.T, *testHook, *logBuffer) {
	return func(t *testing.T, h *testHook, _ *logBuffer) {
		t.Helper()
		if diff := cmp.Diff(ok(want+"\n"), h.run(t, nil, "leader-get", "--format=json")); diff != "" {
			t.Errorf("leader-get after (-want +got):\n%s", diff)
		}
	}
}

func TestLeaderSet(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(file, []byte("x: 1.50\ny: yes\na: null\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badFile, []byte("x: [1]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runToolCases(t, []toolCase{
		{
			name: "pairs", argv: argv("leader-set c=3 d=four"), want: ok(""),
			calls: []hooktoolstest.Call{setCall(map[string]string{"c": "3", "d": "four"})},
			check: leaderGetShows(`{"a":"1","b":"two words","c":"3","d":"four"}`),
		},
		{
			name: "delete", argv: argv("leader-set a="), want: ok(""),
			calls: []hooktoolstest.Call{setCall(map[string]string{"a": ""})},
			check: leaderGetShows(`{"b":"two words"}`),
		},
		{name: "value with =", argv: []string{"leader-set", "url=http://h/?a=b"}, want: ok(""), check: leaderGetShows(`{"a":"1","b":"two words","url":"http://h/?a=b"}`)},
		{name: "trimmed like Juju", argv: []string{"leader-set", " k = v "}, want: ok(""), check: leaderGetShows(`{"a":"1","b":"two words","k":"v"}`)},
		{
			name: "file", argv: []string{"leader-set", "--file", file, "y=override"}, want: ok(""),
			calls: []hooktoolstest.Call{setCall(map[string]string{"x": "1.50", "y": "override", "a": ""})},
			check: leaderGetShows(`{"b":"two words","x":"1.50","y":"override"}`),
		},
		{
			name: "file from stdin", argv: argv("leader-set --file -"), stdin: "s: t\n", want: ok(""),
			calls: []hooktoolstest.Call{setCall(map[string]string{"s": "t"})},
		},
		{name: "file=stdin", argv: argv("leader-set --file=-"), stdin: "s: t\n", want: ok(""), calls: []hooktoolstest.Call{setCall(map[string]string{"s": "t"})}},
		{name: "file not scalar", argv: []string{"leader-set", "--file", badFile}, want: runErr("yaml: unmarshal errors:\n  line 1: cannot unmarshal !!seq into string")},
		{name: "file missing", argv: []string{"leader-set", "--file", filepath.Join(dir, "nope")}, want: runErr("cannot read settings file: open " + filepath.Join(dir, "nope") + ": no such file or directory")},
		{name: "no pairs is a fenced no-op", argv: argv("leader-set"), want: ok(""), calls: []hooktoolstest.Call{setCall(map[string]string{})}},
		{name: "not a pair", argv: argv("leader-set x"), want: usageErr(`expected "key=value", got "x"`), calls: []hooktoolstest.Call{}},
		{name: "empty key", argv: argv("leader-set =v"), want: usageErr(`expected "key=value", got "=v"`)},
		{name: "duplicate key", argv: argv("leader-set a=1 a=2"), want: usageErr(`key "a" specified more than once`)},
		{
			name: "not the leader", argv: argv("leader-set a=9"), setup: notLeader,
			want:  runErr("cannot write leadership settings: cannot write settings: not the leader"),
			check: leaderGetShows(`{"a":"1","b":"two words"}`),
		},
		{
			name: "other backend error", argv: argv("leader-set a=9"),
			setup: func(b *hooktoolstest.Backend) { b.FailWith("SetLeaderSettings", errors.New("controller unreachable")) },
			want:  runErr("cannot write leadership settings: controller unreachable"),
		},
	})
}

func TestConfigGet(t *testing.T) {
	const all = "debug: false\nname: hello\nport: 8080\nratio: 0.5\n"
	const allJSON = `{"debug":false,"name":"hello","port":8080,"ratio":0.5}` + "\n"
	runToolCases(t, []toolCase{
		{name: "all smart", argv: argv("config-get"), want: ok(all)},
		{name: "all json (ops)", argv: argv("config-get --format=json"), want: ok(allJSON)},
		{name: "all yaml", argv: argv("config-get --format yaml"), want: ok(all)},
		{name: "--all includes unset", argv: argv("config-get --all"), want: ok(all + "token: null\n")},
		{name: "-a", argv: argv("config-get -a"), want: ok(all + "token: null\n")},
		{name: "--all json (charmhelpers)", argv: argv("config-get --all --format=json"), want: ok(`{"debug":false,"name":"hello","port":8080,"ratio":0.5,"token":null}` + "\n")},
		{name: "--format=json --all", argv: argv("config-get --format=json --all"), want: ok(`{"debug":false,"name":"hello","port":8080,"ratio":0.5,"token":null}` + "\n")},
		{name: "string", argv: argv("config-get name"), want: ok("hello\n")},
		{name: "int", argv: argv("config-get port"), want: ok("8080\n")},
		{name: "float", argv: argv("config-get ratio"), want: ok("0.5\n")},
		{name: "bool smart", argv: argv("config-get debug"), want: ok("False\n")},
		{name: "bool json", argv: argv("config-get --format=json debug"), want: ok("false\n")},
		{name: "key json last (charmhelpers)", argv: argv("config-get name --format=json"), want: ok(`"hello"` + "\n")},
		{name: "int json", argv: argv("config-get --format=json port"), want: ok("8080\n")},
		{name: "unset key", argv: argv("config-get token"), want: ok("")},
		{name: "unset key json", argv: argv("config-get --format=json token"), want: ok("null\n")},
		{name: "unknown key json", argv: argv("config-get --format=json nope"), want: ok("null\n")},
		{name: "--all with key", argv: argv("config-get --all name"), want: usageErr(`cannot use argument --all together with key "name"`)},
		{name: "key then --all", argv: argv("config-get name --all"), want: usageErr(`cannot use argument --all together with key "name"`)},
		{name: "two keys", argv: argv("config-get a b"), want: usageErr(`unrecognized args: ["b"]`)},
	})
}

func statusCall(app bool, status, msg string) hooktoolstest.Call {
	return hooktoolstest.Call{Method: "SetStatus", Args: []any{hooktools.Status{Application: app, Status: status, Message: msg}}}
}

func TestStatusSet(t *testing.T) {
	const invalid = `invalid status %q, expected one of [maintenance blocked waiting active]`
	runToolCases(t, []toolCase{
		{name: "status only", argv: argv("status-set active"), want: ok(""), calls: []hooktoolstest.Call{statusCall(false, "active", "")}},
		{name: "status and message (bash, charmhelpers)", argv: []string{"status-set", "maintenance", "installing packages"}, want: ok(""), calls: []hooktoolstest.Call{statusCall(false, "maintenance", "installing packages")}},
		{name: "ops 3", argv: []string{"status-set", "--application=False", "blocked", "--", "-needs config"}, want: ok(""), calls: []hooktoolstest.Call{statusCall(false, "blocked", "-needs config")}},
		{name: "ops 2", argv: []string{"status-set", "--application=False", "waiting", "for db"}, want: ok(""), calls: []hooktoolstest.Call{statusCall(false, "waiting", "for db")}},
		{name: "application=True leader", argv: []string{"status-set", "--application=True", "active", "--", "ready"}, want: ok(""), calls: []hooktoolstest.Call{isLeaderCall, statusCall(true, "active", "ready")}},
		{name: "--application (charmhelpers)", argv: []string{"status-set", "--application", "active", "all good"}, want: ok(""), calls: []hooktoolstest.Call{isLeaderCall, statusCall(true, "active", "all good")}},
		{name: "flag after positionals", argv: []string{"status-set", "active", "all good", "--application"}, want: ok(""), calls: []hooktoolstest.Call{isLeaderCall, statusCall(true, "active", "all good")}},
		{name: "application non-leader", argv: argv("status-set --application active"), setup: notLeader, want: runErr("this unit is not the leader"), calls: []hooktoolstest.Call{isLeaderCall}},
		{name: "application=true non-leader", argv: argv("status-set --application=true active x"), setup: notLeader, want: runErr("this unit is not the leader")},
		{name: "empty message", argv: []string{"status-set", "active", ""}, want: ok(""), calls: []hooktoolstest.Call{statusCall(false, "active", "")}},
		{name: "error refused", argv: argv("status-set error"), want: usageErr(`invalid status "error", expected one of [maintenance blocked waiting active]`), calls: []hooktoolstest.Call{}},
		{name: "unknown refused", argv: argv("status-set unknown msg"), want: usageErr(fmt.Sprintf(invalid, "unknown"))},
		{name: "no status", argv: argv("status-set"), want: usageErr("invalid args, require <status> [message]")},
		{name: "too many", argv: argv("status-set active a b"), want: usageErr(`unrecognized args: ["b"]`)},
	})
}

func TestStatusGet(t *testing.T) {
	statuses := func(b *hooktoolstest.Backend) {
		b.SetStatuses(
			hooktools.StatusInfo{Status: "active", Message: "ready", Data: map[string]any{"k": "v"}},
			hooktools.StatusInfo{Status: "waiting", Message: "app msg", Units: map[string]hooktools.StatusInfo{
				"app/0": {Status: "active", Message: "ready"},
				"app/1": {Status: "blocked", Message: "no db"},
			}},
		)
	}
	const unitJSON = `{"message":"ready","status":"active","status-data":{"k":"v"}}` + "\n"
	const appJSON = `{"application-status":{"message":"app msg","status":"waiting","status-data":{},"units":{` +
		`"app/0":{"message":"ready","status":"active","status-data":{}},` +
		`"app/1":{"message":"no db","status":"blocked","status-data":{}}}}}` + "\n"
	getCall := func(app bool) []hooktoolstest.Call {
		return []hooktoolstest.Call{{Method: "GetStatus", Args: []any{app}}}
	}
	runToolCases(t, []toolCase{
		{name: "bare", argv: argv("status-get"), setup: statuses, want: ok("active\n"), calls: getCall(false)},
		{name: "ops 3", argv: argv("status-get --include-data --format=json --application=false"), setup: statuses, want: ok(unitJSON), calls: getCall(false)},
		{name: "ops 2", argv: argv("status-get --include-data --application=false --format=json"), setup: statuses, want: ok(unitJSON)},
		{name: "charmhelpers", argv: argv("status-get --format=json --include-data"), setup: statuses, want: ok(unitJSON)},
		{name: "json without --include-data", argv: argv("status-get --format=json"), setup: statuses, want: ok(unitJSON)},
		{name: "include-data smart is yaml", argv: argv("status-get --include-data"), setup: statuses, want: ok("message: ready\nstatus: active\nstatus-data:\n  k: v\n")},
		{name: "application json", argv: argv("status-get --application --format=json"), setup: statuses, want: ok(appJSON), calls: []hooktoolstest.Call{isLeaderCall, {Method: "GetStatus", Args: []any{true}}}},
		{name: "application=True json include-data", argv: argv("status-get --include-data --format=json --application=True"), setup: statuses, want: ok(appJSON)},
		{name: "application smart", argv: argv("status-get --application"), setup: statuses, want: ok("waiting\n")},
		{name: "application non-leader", argv: argv("status-get --application --format=json"), setup: func(b *hooktoolstest.Backend) { notLeader(b) }, want: runErr("finding application status: this unit is not the leader")},
		{name: "empty status", argv: argv("status-get --format=json --include-data"), want: ok(`{"message":"","status":"","status-data":{}}` + "\n")},
		{name: "positional", argv: argv("status-get x"), want: usageErr(`unrecognized args: ["x"]`)},
		{
			name: "backend error", argv: argv("status-get"),
			setup: func(b *hooktoolstest.Backend) { b.FailWith("GetStatus", errors.New("boom")) },
			want:  runErr("finding workload status: boom"),
		},
	})
}

func TestApplicationVersionSet(t *testing.T) {
	versionCall := func(v string) []hooktoolstest.Call {
		return []hooktoolstest.Call{{Method: "SetApplicationVersion", Args: []any{v}}}
	}
	runToolCases(t, []toolCase{
		{name: "version", argv: argv("application-version-set 1.2.3"), want: ok(""), calls: versionCall("1.2.3")},
		{name: "ops 3 --", argv: argv("application-version-set -- -rc1"), want: ok(""), calls: versionCall("-rc1")},
		{name: "missing", argv: argv("application-version-set"), want: usageErr("no version specified"), calls: []hooktoolstest.Call{}},
		{name: "two", argv: argv("application-version-set 1 2"), want: usageErr(`unrecognized args: ["2"]`)},
		{
			name: "backend error", argv: argv("application-version-set 1"),
			setup: func(b *hooktoolstest.Backend) { b.FailWith("SetApplicationVersion", errors.New("boom")) },
			want:  runErr("cannot set application version: boom"),
		},
	})
}
