package hooktools_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/hooktools/hooktoolstest"
)

const actionParams = `{"name":"x","count":3,"ratio":0.5,"big":12345678901234,"nested":{"a":{"b":"deep"},"list":[1,"two"]},"flag":true}`

// actionCase is one tool call in a fresh action context; check, if set,
// looks at the results afterwards.
type actionCase struct {
	name   string
	argv   []string
	params string // JSON; actionParams when empty
	logErr error
	want   result
	check  func(t *testing.T, a *hooktools.Action, log *hooktoolstest.ActionLog)
}

func runActionCases(t *testing.T, cases []actionCase) {
	t.Helper()
	srv := startServer(t, serverOpts{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			params := tc.params
			if params == "" {
				params = actionParams
			}
			log := &hooktoolstest.ActionLog{Err: tc.logErr}
			a, err := hooktools.NewAction("greet", "12", json.RawMessage(params), log)
			if err != nil {
				t.Fatal(err)
			}
			hc := defaultContext(hooktoolstest.NewBackend(true))
			hc.Action = a
			h := srv.register(t, hc)
			if d := cmp.Diff(tc.want, h.run(t, nil, tc.argv...)); d != "" {
				t.Errorf("%q (-want +got):\n%s", tc.argv, d)
			}
			if tc.check != nil {
				tc.check(t, a, log)
			}
		})
	}
}

// results checks the recorded action-set values and failure.
func results(want hooktools.ActionResults) func(*testing.T, *hooktools.Action, *hooktoolstest.ActionLog) {
	return func(t *testing.T, a *hooktools.Action, _ *hooktoolstest.ActionLog) {
		t.Helper()
		if d := cmp.Diff(want, a.Results()); d != "" {
			t.Errorf("results (-want +got):\n%s", d)
		}
	}
}

func TestActionGet(t *testing.T) {
	runActionCases(t, []actionCase{
		{name: "key", argv: argv("action-get name"), want: ok("x\n")},
		{name: "integer", argv: argv("action-get count"), want: ok("3\n")},
		{name: "float", argv: argv("action-get ratio"), want: ok("0.5\n")},
		{name: "big integer exact", argv: argv("action-get big --format=json"), want: ok("12345678901234\n")},
		{name: "bool", argv: argv("action-get flag"), want: ok("True\n")},
		{name: "dotted path", argv: argv("action-get nested.a.b"), want: ok("deep\n")},
		{name: "map as yaml", argv: argv("action-get nested.a"), want: ok("b: deep\n")},
		{name: "missing", argv: argv("action-get nope"), want: ok("")},
		{name: "missing json", argv: argv("action-get nope --format=json"), want: ok("null\n")},
		{name: "path through a string", argv: argv("action-get name.x"), want: ok("")},
		{name: "all json", argv: argv("action-get --format=json"),
			want: ok(`{"big":12345678901234,"count":3,"flag":true,"name":"x","nested":{"a":{"b":"deep"},"list":[1,"two"]},"ratio":0.5}` + "\n")},
		{name: "no params", argv: argv("action-get"), params: "{}", want: ok("{}\n")},
		{name: "no params json", argv: argv("action-get --format=json"), params: "null", want: ok("{}\n")},
		{name: "two keys", argv: argv("action-get a b"), want: usageErr(`unrecognized args: ["b"]`)},
	})
}

func TestActionSet(t *testing.T) {
	runActionCases(t, []actionCase{
		{name: "nested and later wins", argv: argv("action-set outfile.size=10G foo.bar=2 foo.baz.val=3 foo.bar.zab=4 foo.baz=1 greeting=hello"),
			want: ok(""), check: results(hooktools.ActionResults{Values: map[string]any{
				"outfile":  map[string]any{"size": "10G"},
				"foo":      map[string]any{"bar": map[string]any{"zab": "4"}, "baz": "1"},
				"greeting": "hello",
			}})},
		{name: "value keeps equals and may be empty", argv: []string{"action-set", "url=a=b", "e=", "s=two words"}, want: ok(""),
			check: results(hooktools.ActionResults{Values: map[string]any{"url": "a=b", "e": "", "s": "two words"}})},
		{name: "no equals", argv: argv("action-set ok=1 result"), want: usageErr(`argument "result" must be of the form key...=value`),
			check: results(hooktools.ActionResults{Values: map[string]any{}})},
		{name: "upper case", argv: argv("action-set result-Value=5"),
			want: usageErr(`key "result-Value" must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods`)},
		{name: "empty part", argv: argv("action-set foo..bar=1"),
			want: usageErr(`key "" must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods`)},
		{name: "trailing hyphen", argv: argv("action-set foo-=1"),
			want: usageErr(`key "foo-" must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods`)},
		{name: "underscore", argv: argv("action-set a_b=1"),
			want: usageErr(`key "a_b" must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods`)},
		{name: "reserved stdout", argv: argv("action-set stdout=foo"), want: usageErr(`cannot set reserved action key "stdout"`)},
		{name: "reserved nested", argv: argv("action-set a.stderr=1"), want: usageErr(`cannot set reserved action key "stderr"`)},
		{name: "reserved encoding", argv: argv("action-set stdout-encoding=x"), want: usageErr(`cannot set reserved action key "stdout-encoding"`)},
		{name: "digits and hyphens", argv: argv("action-set 500=1 5-o-0.a1=2"), want: ok(""),
			check: results(hooktools.ActionResults{Values: map[string]any{"500": "1", "5-o-0": map[string]any{"a1": "2"}}})},
	})
}

func TestActionLogAndFail(t *testing.T) {
	runActionCases(t, []actionCase{
		{name: "log joins words", argv: argv("action-log half way there"), want: ok(""),
			check: func(t *testing.T, _ *hooktools.Action, log *hooktoolstest.ActionLog) {
				if d := cmp.Diff([]string{"half way there"}, log.Messages()); d != "" {
					t.Errorf("messages (-want +got):\n%s", d)
				}
			}},
		{name: "log nothing", argv: argv("action-log"), want: usageErr("no message specified")},
		{name: "log refused", argv: argv("action-log hi"), logErr: errors.New("operation has 100 messages; the limit is 100"),
			want: runErr("cannot log action message: operation has 100 messages; the limit is 100")},
		{name: "fail with message", argv: []string{"action-fail", "no way"}, want: ok(""),
			check: results(hooktools.ActionResults{Values: map[string]any{}, Failed: true, Message: "no way"})},
		{name: "fail default", argv: argv("action-fail"), want: ok(""),
			check: results(hooktools.ActionResults{Values: map[string]any{}, Failed: true,
				Message: "action failed without reason given, check action for errors"})},
		{name: "fail two args", argv: argv("action-fail a b"), want: usageErr(`unrecognized args: ["b"]`),
			check: results(hooktools.ActionResults{Values: map[string]any{}})},
	})
}

func TestActionToolsOutsideAnAction(t *testing.T) {
	runToolCases(t, []toolCase{
		{name: "action-get", argv: argv("action-get"), want: runErr("not running an action")},
		{name: "action-get key", argv: argv("action-get name --format=json"), want: runErr("not running an action")},
		{name: "action-set", argv: argv("action-set a=1"), want: runErr("not running an action")},
		{name: "action-set bad key first", argv: argv("action-set A=1"),
			want: usageErr(`key "A" must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods`)},
		{name: "action-log", argv: argv("action-log hi"), want: runErr("not running an action")},
		{name: "action-fail", argv: argv("action-fail"), want: runErr("not running an action")},
	})
}

func TestNewActionRefusesParamsNotAnObject(t *testing.T) {
	for _, raw := range []string{`[1]`, `"x"`, `{`} {
		if _, err := hooktools.NewAction("greet", "1", json.RawMessage(raw), nil); err == nil {
			t.Errorf("NewAction(%s) accepted", raw)
		}
	}
}
