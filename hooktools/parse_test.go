package hooktools_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/hooktools"
)

// loggedAs checks the last juju-log entry in the server's log.
func loggedAs(level, jujuLevel, msg string) func(*testing.T, *testHook, *logBuffer) {
	return func(t *testing.T, _ *testHook, logs *logBuffer) {
		t.Helper()
		var last map[string]any
		for _, e := range logs.entries(t) {
			if _, ok := e["juju_level"]; ok {
				last = e
			}
		}
		want := map[string]any{
			"level": level, "juju_level": jujuLevel, "message": msg,
			"unit": "app/0", "hook": "config-changed",
		}
		if diff := cmp.Diff(want, last); diff != "" {
			t.Errorf("juju-log entry (-want +got):\n%s", diff)
		}
	}
}

func TestJujuLog(t *testing.T) {
	runToolCases(t, []toolCase{
		{name: "plain (bash)", argv: argv("juju-log hello world"), want: ok(""), check: loggedAs("info", "info", "hello world")},
		{name: "charmhelpers -l", argv: []string{"juju-log", "-l", "WARNING", "disk low"}, want: ok(""), check: loggedAs("warn", "warning", "disk low")},
		{name: "ops 3", argv: []string{"juju-log", "--log-level", "DEBUG", "--", "-starts with dash"}, want: ok(""), check: loggedAs("debug", "debug", "-starts with dash")},
		{name: "ops 2", argv: []string{"juju-log", "--log-level", "ERROR", "it broke"}, want: ok(""), check: loggedAs("error", "error", "it broke")},
		{name: "--debug", argv: argv("juju-log --debug details"), want: ok(""), check: loggedAs("debug", "debug", "details")},
		{name: "critical", argv: argv("juju-log -l CRITICAL down"), want: ok(""), check: loggedAs("error", "critical", "down")},
		{name: "trace", argv: argv("juju-log -l TRACE fine"), want: ok(""), check: loggedAs("trace", "trace", "fine")},
		{name: "lower case", argv: argv("juju-log -l warning w"), want: ok(""), check: loggedAs("warn", "warning", "w")},
		{name: "WARN", argv: argv("juju-log -l=WARN w"), want: ok(""), check: loggedAs("warn", "warning", "w")},
		{name: "unknown level is info", argv: argv("juju-log -l LOUD x"), want: ok(""), check: loggedAs("info", "info", "x")},
		{name: "multi-line kept whole", argv: []string{"juju-log", "line one\nline two\n  indented"}, want: ok(""), check: loggedAs("info", "info", "line one\nline two\n  indented")},
		{name: "deprecated --format", argv: argv("juju-log --format=json x"), want: result{Stderr: "--format flag deprecated for command \"juju-log\"\n"}, check: loggedAs("info", "info", "x")},
		{name: "no message", argv: argv("juju-log"), want: usageErr("no message specified")},
		{name: "only level", argv: argv("juju-log -l INFO"), want: usageErr("no message specified")},
	})
}

func TestHelp(t *testing.T) {
	srv := startServer(t, serverOpts{})
	h := srv.register(t, nil)
	for _, tool := range hooktools.ToolNames() {
		for _, flag := range []string{"--help", "-h"} {
			got := h.run(t, nil, tool, flag)
			if got.Code != 0 || got.Stderr != "" || !strings.HasPrefix(got.Stdout, "Usage: "+tool) || !strings.Contains(got.Stdout, "\nSummary:\n") {
				t.Errorf("%s %s = %+v, want usage on stdout, exit 0", tool, flag, got)
			}
		}
	}
	// The usage line and options of one tool, exactly.
	want := "Usage: leader-get [options] [<key>]\n\nSummary:\nprint application leadership settings\n\n" +
		"Options:\n--format (= smart)\n    Specify output format (json|smart|yaml)\n-o, --output (= \"\")\n    Specify an output file\n\nDetails:\n"
	if got := h.run(t, nil, "leader-get", "--help").Stdout; !strings.HasPrefix(got, want) {
		t.Errorf("leader-get --help =\n%s\nwant it to start with\n%s", got, want)
	}
	if calls := h.backend.Calls(); len(calls) != 0 {
		t.Errorf("--help called the backend: %v", calls)
	}
}

func TestFlagErrors(t *testing.T) {
	srv := startServer(t, serverOpts{})
	tests := []struct {
		argv []string
		msg  string
	}{
		{argv("is-leader -x"), "option provided but not defined: -x"},
		{argv("is-leader --bogus"), "option provided but not defined: --bogus"},
		{argv("is-leader --bogus=1"), "option provided but not defined: --bogus"},
		{argv("config-get --al"), "option provided but not defined: --al"},
		{argv("config-get --a"), "option provided but not defined: --a"},
		{argv("status-set -q active"), "option provided but not defined: -q"},
		{argv("status-set active --zzz"), "option provided but not defined: --zzz"},
		{argv("leader-set -f x"), "option provided but not defined: -f"},
		{argv("juju-log --level INFO x"), "option provided but not defined: --level"},
		{argv("application-version-set --v 1"), "option provided but not defined: --v"},
		{argv("is-leader --format"), "option needs an argument: --format"},
		{argv("is-leader --format=xml"), `invalid value "xml" for option --format: unknown format "xml"`},
		{argv("is-leader --format xml"), `invalid value "xml" for option --format: unknown format "xml"`},
		{argv("status-set --application=maybe active"), `invalid value "maybe" for option --application: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{argv("config-get -ax"), "option provided but not defined: -ax"},
		{argv("juju-log -l"), "option needs an argument: -l"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.argv, " "), func(t *testing.T) {
			h := srv.register(t, nil)
			got := h.run(t, nil, tt.argv...)
			prefix := "ERROR " + tt.msg + "\n\nUsage: " + tt.argv[0]
			if got.Code != 2 || got.Stdout != "" || !strings.HasPrefix(got.Stderr, prefix) {
				t.Errorf("got %+v, want exit 2 and stderr starting %q", got, prefix)
			}
			if calls := h.backend.Calls(); len(calls) != 0 {
				t.Errorf("a usage error called the backend: %v", calls)
			}
		})
	}
}

// TestFlagForms covers the spellings of flags and values HOOK-TOOLS §3
// requires, on tools whose output shows the parse.
func TestFlagForms(t *testing.T) {
	runToolCases(t, []toolCase{
		{name: "--flag=value", argv: argv("config-get --format=json port"), want: ok("8080\n")},
		{name: "--flag value", argv: argv("config-get --format json port"), want: ok("8080\n")},
		{name: "flag after positional", argv: argv("config-get port --format json"), want: ok("8080\n")},
		{name: "-- ends flags", argv: argv("leader-get --format=json -- --format"), want: ok("null\n")},
		{name: "lone - is positional", argv: argv("leader-get - --format=json"), want: ok(`{"a":"1","b":"two words"}` + "\n")},
		{name: "-l=value", argv: argv("juju-log -l=ERROR x"), want: ok(""), check: loggedAs("error", "error", "x")},
		{name: "-lvalue", argv: argv("juju-log -lERROR x"), want: ok(""), check: loggedAs("error", "error", "x")},
		{name: "bool =1", argv: argv("config-get --all=1 --format=json"), want: ok(`{"debug":false,"name":"hello","port":8080,"ratio":0.5,"token":null}` + "\n")},
		{name: "bool =F", argv: argv("config-get --all=F --format=json"), want: ok(`{"debug":false,"name":"hello","port":8080,"ratio":0.5}` + "\n")},
		{name: "last value wins", argv: argv("is-leader --format=yaml --format=json"), want: ok("true\n")},
	})
}

func TestOutputFile(t *testing.T) {
	srv := startServer(t, serverOpts{})
	h := srv.register(t, nil)
	dir := t.TempDir()

	abs := filepath.Join(dir, "abs.json")
	if got := h.run(t, nil, "config-get", "--format=json", "-o", abs, "port"); got != ok("") {
		t.Fatalf("config-get -o = %+v", got)
	}
	t.Chdir(dir) // the client sends its working directory
	for _, args := range [][]string{
		{"is-leader", "--output", "rel.txt"},
		{"leader-get", "nope", "--output=missing.txt"},
	} {
		if got := h.run(t, nil, args...); got != ok("") {
			t.Fatalf("%q = %+v", args, got)
		}
	}
	for name, want := range map[string]string{"abs.json": "8080\n", "rel.txt": "True\n", "missing.txt": ""} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(data) != want {
			t.Errorf("%s = %q, %v; want %q", name, data, err, want)
		}
	}
	got := h.run(t, nil, "is-leader", "-o", filepath.Join(dir, "no", "such", "dir"))
	if got.Code != 1 || !strings.HasPrefix(got.Stderr, "ERROR cannot write output: open ") {
		t.Errorf("-o into a missing directory = %+v", got)
	}
}

func TestToolNames(t *testing.T) {
	want := []string{
		"action-fail", "action-get", "action-log", "action-set",
		"application-version-set", "close-port", "config-get", "goal-state", "is-leader", "juju-log",
		"leader-get", "leader-set", "network-get", "open-port", "opened-ports", "relation-get", "relation-ids",
		"relation-list", "relation-set", "status-get", "status-set", "unit-get",
	}
	if diff := cmp.Diff(want, hooktools.ToolNames()); diff != "" {
		t.Errorf("ToolNames (-want +got):\n%s", diff)
	}
	table := hooktools.ToolsTable()
	slices.Sort(table)
	if diff := cmp.Diff(want, table); diff != "" {
		t.Errorf("implemented tools (-want +got):\n%s", diff)
	}
	for _, name := range want {
		if !hooktools.IsTool(name) {
			t.Errorf("IsTool(%q) = false", name)
		}
	}
	for _, name := range []string{"uniter", "", "is-leader.sh", "action-do", "IS-LEADER"} {
		if hooktools.IsTool(name) {
			t.Errorf("IsTool(%q) = true", name)
		}
	}
	names := hooktools.ToolNames()
	names[0] = "changed"
	if hooktools.ToolNames()[0] == "changed" {
		t.Error("ToolNames returned the package's own slice")
	}
}
