package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/cmd/uniter/cli"
	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/lease/raftnode"
)

// TestActionCommandsUsage: mistakes in how the commands are called exit 2
// before anything reaches a controller (there is none here).
func TestActionCommandsUsage(t *testing.T) {
	t.Setenv("UNITER_HOME", t.TempDir())
	cfg := []string{"--client-config", filepath.Join(t.TempDir(), "none.yaml")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "db/0"}, "want UNIT|APP/leader ACTION"},
		{[]string{"run", "db", "greet"}, `bad unit "db": want APP/N or APP/leader`},
		{[]string{"run", "db/x", "greet"}, `bad unit "db/x"`},
		{[]string{"run", "db/0", "greet", "name"}, `argument "name" must be of the form key...=value`},
		{[]string{"run", "db/0", "greet", "Name=x"}, `key "Name" must start and end with lowercase alphanumeric`},
		{[]string{"run", "db/0", "greet", "--wait", "0s"}, "--wait must be positive"},
		{[]string{"run", "db/0", "greet", "--background", "--wait", "1m"}, "--background and --wait cannot be used together"},
		{[]string{"run", "db/0", "greet", "--format", "xml"}, `unknown --format "xml"`},
		{[]string{"run", "db/0", "greet", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"actions"}, "want APP"},
		{[]string{"actions", "db", "--format", "xml"}, `unknown --format "xml"`},
		{[]string{"show-operation"}, "want ID"},
		{[]string{"show-operation", "1", "--wait", "-1s"}, "--wait must not be negative"},
		{[]string{"operations", "--status", "waiting"}, `unknown status "waiting"`},
		{[]string{"operations", "extra"}, `unknown command "extra"`},
		{[]string{"cancel"}, "want ID..., got no arguments"},
		{[]string{"exec", "--app", "db"}, "no command given (put it after --)"},
		{[]string{"exec", "--", "ls"}, "give --unit or --app"},
		{[]string{"exec", "--unit", "db", "--", "ls"}, `bad unit "db"`},
		{[]string{"exec", "--app", "DB", "--", "ls"}, `bad application name "DB"`},
		{[]string{"exec", "--app", "db", "--timeout", "0s", "--", "ls"}, "--timeout must be positive"},
	} {
		r := run(t, append(tc.args, cfg...)...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, "ERROR "+tc.want) {
			t.Errorf("uniter %s: exit %d, stderr %q; want 2 and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	// A params file that cannot be read is not a usage mistake: exit 1.
	r := run(t, append([]string{"run", "db/0", "greet", "--params", filepath.Join(t.TempDir(), "nope.yaml")}, cfg...)...)
	if r.code != cli.ExitError || !strings.Contains(r.stderr, "ERROR cannot read params file") {
		t.Errorf("missing params file: exit %d, %q", r.code, r.stderr)
	}
}

const cliActionsYAML = `
greet:
  description: |
    Say hello.
    At length.
  params:
    name: {type: string}
  required: [name]
  additionalProperties: false
fail:
  description: Always fails.
`

// world is a protocol-4 controller in process with db/0 (the leader) and
// db/1 added by `uniter unit add` from a charm with cliActionsYAML, its
// admin client.yaml, and each unit's client with the token unit add made.
type world struct {
	clientFile string
	admin      *client.Client
	units      map[string]*client.Client
}

func newWorld(t *testing.T) *world {
	t.Helper()
	t.Setenv("UNITER_HOME", t.TempDir())
	c, err := controller.Start(t.Context(), controller.NodeConfig{
		DataDir: t.TempDir(), APIAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", ProtoMin: 1, ProtoMax: 4,
		Clock: clock.Real, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Tune: func(c *raftnode.Config) { c.Tick = 100 * time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close controller: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if v, err := c.Node().FSM().WaitEffectiveVersion(ctx, 4); err != nil || v != 4 {
		t.Fatalf("effective version %d, %v", v, err)
	}
	path, _ := c.ClientFile()
	w := &world{clientFile: path, admin: adminClient(t, path), units: map[string]*client.Client{}}
	charmDir := t.TempDir()
	for name, body := range map[string]string{"metadata.yaml": "name: db\n", "actions.yaml": cliActionsYAML} {
		if err := os.WriteFile(filepath.Join(charmDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, unit := range []string{"db/0", "db/1"} {
		dir := filepath.Join(t.TempDir(), "agent")
		if r := w.run(t, "unit", "add", unit, "--charm", charmDir, "--agent-dir", dir); r.code != 0 {
			t.Fatalf("unit add %s: %d %s", unit, r.code, r.stderr)
		}
		cfg, err := agent.ReadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		ucfg := cfg.Controller.ClientConfig()
		ucfg.Timeout = 5 * time.Second
		uc, err := client.New(ucfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(uc.Close)
		w.units[unit] = uc
	}
	if _, err := w.units["db/0"].Claim(ctx, "db", "db/0", time.Hour); err != nil {
		t.Fatal(err)
	}
	return w
}

// run runs uniter with the world's client config (before any "--").
func (w *world) run(t *testing.T, args ...string) result {
	t.Helper()
	at := slices.Index(args, "--")
	if at < 0 {
		at = len(args)
	}
	return run(t, slices.Concat(args[:at], []string{"--client-config", w.clientFile}, args[at:])...)
}

// agentFunc plays a unit's agent for one operation it started: it may
// log, and returns how the operation ends.
type agentFunc func(op api.Operation, log func(string)) (status, message string, results map[string]any)

// fakeAgents runs, until the test ends, an agent loop per unit that
// watches the unit's queue and runs every operation with do, as the real
// agent will: start, log, finish.
func (w *world) fakeAgents(t *testing.T, do agentFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	for unit, c := range w.units {
		wg.Go(func() {
			var index uint64
			for ctx.Err() == nil {
				view, next, err := c.WatchUnit(ctx, unit, index, 10*time.Second)
				if err != nil {
					continue // the controller closing at cleanup, or ctx
				}
				index = next
				for _, q := range view.Operations {
					op, err := c.StartOperation(ctx, q.ID)
					if err != nil {
						t.Errorf("%s starting %s: %v", unit, q.ID, err)
						continue
					}
					seq := 0
					status, msg, results := do(op, func(m string) {
						if err := c.LogOperation(ctx, op.ID, seq, m); err != nil {
							t.Errorf("%s logging to %s: %v", unit, op.ID, err)
						}
						seq++
					})
					if _, err := c.FinishOperation(ctx, op.ID, status, msg, results); err != nil {
						t.Errorf("%s finishing %s: %v", unit, op.ID, err)
					}
				}
			}
		})
	}
}

// charmLike answers as the test charm would: greet says hello to its
// name param, fail fails, and an exec of is-leader prints whether the unit
// is db/0.
func charmLike(op api.Operation, log func(string)) (string, string, map[string]any) {
	if op.Kind == api.OperationExec {
		out := "False\n"
		if op.Unit == "db/0" {
			out = "True\n"
		}
		if op.Command != "is-leader" {
			return api.OperationFailed, "exit status 1", map[string]any{"return-code": 1, "stdout": "", "stderr": "no such command\n"}
		}
		return api.OperationCompleted, "", map[string]any{"return-code": 0, "stdout": out, "stderr": ""}
	}
	var p map[string]any
	json.Unmarshal(op.Params, &p)
	switch op.Action {
	case "greet":
		log("looking up " + p["name"].(string))
		return api.OperationCompleted, "", map[string]any{"greeting": "hello " + p["name"].(string), "detail": map[string]any{"n": 2}}
	default:
		return api.OperationFailed, "no", nil
	}
}

func TestRunAction(t *testing.T) {
	w := newWorld(t)
	w.fakeAgents(t, charmLike)

	r := w.run(t, "run", "db/leader", "greet", "name=x", "--wait", "30s")
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	var results map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &results); err != nil || results["greeting"] != "hello x" ||
		results["detail"].(map[string]any)["n"] != 2 {
		t.Errorf("results printed %q (%v)", r.stdout, err)
	}
	if !strings.Contains(r.stderr, "Running operation 1 on db/0 (the leader of db).") || !strings.Contains(r.stderr, "Z looking up x") {
		t.Errorf("stderr %q: want the unit picked and the timestamped log line", r.stderr)
	}
	if r := w.run(t, "run", "db/1", "greet", "name=x", "--format", "json"); r.code != 0 || !strings.Contains(r.stdout, `"greeting": "hello x"`) {
		t.Errorf("--format json: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// A failed action exits 1 with its message.
	r = w.run(t, "run", "db/1", "fail")
	if r.code != cli.ExitError || !strings.Contains(r.stderr, "ERROR operation 3 failed on db/1: no") {
		t.Errorf("failing action: exit %d, %q", r.code, r.stderr)
	}

	// show-operation has everything.
	r = w.run(t, "show-operation", "1")
	var shown map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &shown); err != nil || r.code != 0 {
		t.Fatalf("show-operation: %d %q %v", r.code, r.stdout, err)
	}
	if shown["status"] != "completed" || shown["unit"] != "db/0" || shown["action"] != "greet" ||
		shown["params"].(map[string]any)["name"] != "x" || shown["results"].(map[string]any)["greeting"] != "hello x" ||
		!strings.HasSuffix(shown["log"].([]any)[0].(string), "Z looking up x") || shown["timing"].(map[string]any)["completed"] == nil {
		t.Errorf("show-operation printed %s", r.stdout)
	}
	// operations lists them.
	r = w.run(t, "operations", "--status", "completed,failed")
	if r.code != 0 || !strings.Contains(r.stdout, "ID  Status") || strings.Count(r.stdout, "\n") != 4 ||
		!strings.Contains(r.stdout, "failed     db/1  fail") {
		t.Errorf("operations: %d\n%s", r.code, r.stdout)
	}
	// actions lists the charm's, first line of each description.
	r = w.run(t, "actions", "db")
	if r.code != 0 || r.stdout != "Action  Description\nfail    Always fails.\ngreet   Say hello.\n" {
		t.Errorf("actions: %d %q", r.code, r.stdout)
	}
	r = w.run(t, "actions", "db", "--schema")
	var schemas map[string]map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &schemas); err != nil || schemas["greet"]["additionalProperties"] != false || schemas["greet"]["title"] != "greet" {
		t.Errorf("actions --schema: %q (%v)", r.stdout, err)
	}
}

// TestRunRefusedParams: params the schema refuses exit 1 with the
// schema's message, and nothing is queued.
func TestRunRefusedParams(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"db/0", "greet"}, `cannot run greet on db/0: cannot run action "greet": validation failed: (root) : "name" property is missing and required, given {}`},
		{[]string{"db/0", "greet", "name=x", "colour=red"}, `additional property "colour" is not allowed`},
		{[]string{"db/0", "greet", "name=3"}, `(root).name : invalid type. Expected: string, given: integer`},
		{[]string{"db/0", "backup"}, `action "backup" not defined on application "db" (its actions: fail, greet)`},
		{[]string{"db/7", "greet", "name=x"}, `unknown unit`},
	} {
		r := w.run(t, append([]string{"run"}, tc.args...)...)
		if r.code != cli.ExitError || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("run %v: exit %d, %q; want 1 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	// --string-args makes the 3 a string, which the schema takes.
	if r := w.run(t, "run", "db/0", "greet", "name=3", "--string-args", "--background"); r.code != 0 || !strings.Contains(r.stdout, "Scheduled operation 1 on db/0.") {
		t.Errorf("--string-args --background: %d %q %q", r.code, r.stdout, r.stderr)
	}
	ops, err := w.admin.Operations(t.Context(), client.OperationFilter{})
	if err != nil || len(ops) != 1 {
		t.Errorf("operations after the refusals: %+v (%v); want only the one accepted", ops, err)
	}
}

// TestRunWithoutAgent: with no agent to start it, run gives up after
// --wait with a clear message and leaves the action queued; cancel drops
// it, and refuses what is not pending.
func TestRunWithoutAgent(t *testing.T) {
	w := newWorld(t)
	r := w.run(t, "run", "db/1", "greet", "name=x", "--wait", "1s")
	if r.code != cli.ExitError || !strings.Contains(r.stderr, "ERROR operation 1 is still pending on db/1 after 1s: the unit's agent has not started it") ||
		!strings.Contains(r.stderr, "'uniter cancel 1' drops it") {
		t.Errorf("run with nobody to run it: exit %d, %q", r.code, r.stderr)
	}
	if r := w.run(t, "show-operation", "1", "--wait", "100ms"); r.code != cli.ExitError || !strings.Contains(r.stdout, "status: pending") ||
		!strings.Contains(r.stderr, "still pending") {
		t.Errorf("show-operation --wait of a pending operation: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := w.run(t, "cancel", "1"); r.code != 0 || r.stdout != "cancelled operation 1\n" {
		t.Errorf("cancel: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if _, err := w.units["db/1"].StartOperation(t.Context(), "1"); err == nil {
		t.Error("a cancelled operation could be started")
	}
	// Running: cannot be cancelled.
	op, _, err := w.admin.EnqueueExec(t.Context(), "db/0", "sleep 100", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.units["db/0"].StartOperation(t.Context(), op.ID); err != nil {
		t.Fatal(err)
	}
	r = w.run(t, "cancel", op.ID, "99")
	if r.code != cli.ExitError || !strings.Contains(r.stderr, "cannot cancel operation 2: cannot cancel operation 2: it is running; only a pending operation can be cancelled") ||
		!strings.Contains(r.stderr, "cannot cancel operation 99") {
		t.Errorf("cancel of a running and an unknown operation: %d %q", r.code, r.stderr)
	}
}

func TestExec(t *testing.T) {
	w := newWorld(t)
	w.fakeAgents(t, charmLike)
	r := w.run(t, "exec", "--app", "db", "--timeout", "30s", "--", "is-leader")
	if r.code != 0 {
		t.Fatalf("exec: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var out map[string]map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("exec printed %q: %v", r.stdout, err)
	}
	if len(out) != 2 || out["db/0"]["stdout"] != "True\n" || out["db/1"]["stdout"] != "False\n" ||
		out["db/0"]["exit-code"] != 0 || out["db/1"]["status"] != "completed" || out["db/1"]["stderr"] != "" {
		t.Errorf("exec output %s", r.stdout)
	}
	// One unit, by the leader; a failing command exits 1 and says where.
	r = w.run(t, "exec", "--unit", "db/leader", "--", "no-such", "command")
	if r.code != cli.ExitError || !strings.Contains(r.stdout, "exit-code: 1") || !strings.Contains(r.stdout, "no such command") ||
		!strings.Contains(r.stderr, "the command did not succeed on 1 of 1 units: db/0") {
		t.Errorf("failing exec: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if op, err := w.admin.Operation(t.Context(), "3"); err != nil || op.Command != "no-such command" {
		t.Errorf("the exec's command line: %+v, %v", op, err)
	}
	if r := w.run(t, "exec", "--app", "web", "--", "ls"); r.code != cli.ExitError || !strings.Contains(r.stderr, `application "web" has no units`) {
		t.Errorf("exec on an unknown application: %d %q", r.code, r.stderr)
	}
}
