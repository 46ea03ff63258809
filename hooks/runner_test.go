package hooks_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock/clocktest"
)

func TestNewRunnerValidates(t *testing.T) {
	clk := clocktest.New(time.Time{})
	tests := []struct {
		name string
		cfg  hooks.Config
		want string
	}{
		{"no clock", hooks.Config{}, "cannot create hook runner: clock is nil"},
		{"negative timeout", hooks.Config{Clock: clk, Timeout: -1}, "cannot create hook runner: negative timeout -1ns"},
		{"negative drain", hooks.Config{Clock: clk, PipeDrain: -1}, "cannot create hook runner: negative pipe drain -1ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := hooks.NewRunner(tt.cfg)
			if err == nil || err.Error() != tt.want || r != nil {
				t.Fatalf("NewRunner() = %v, %v; want nil, %q", r, err, tt.want)
			}
		})
	}
	if _, err := hooks.NewRunner(hooks.Config{Clock: clk}); err != nil {
		t.Fatalf("NewRunner with only a clock: %v", err)
	}
}

func TestRunRejectsBadParams(t *testing.T) {
	r, _ := newRunner(t, hooks.Config{}, nil)
	p := params(hooks.Install, "relative/charm")
	err := r.Run(context.Background(), p)
	want := `cannot run hook "install": charm directory "relative/charm" is not absolute`
	if err == nil || err.Error() != want {
		t.Fatalf("Run() = %v, want %s", err, want)
	}
}

// charmFile is one file of a charm built by a test; an empty link makes a
// symlink, mode 0 a directory.
type charmFile struct {
	rel, content, link string
	mode               os.FileMode
}

const (
	dispatchScript = "#!/bin/bash\necho \"dispatch $JUJU_DISPATCH_PATH\" > \"$CHARM_DIR/ran\"\n"
	legacyScript   = "#!/bin/bash\necho \"legacy $JUJU_DISPATCH_PATH\" > \"$CHARM_DIR/ran\"\n"
)

func buildCharm(t *testing.T, files []charmFile) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		path := filepath.Join(dir, f.rel)
		switch {
		case f.link != "":
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(f.link, path); err != nil {
				t.Fatal(err)
			}
		case f.mode == 0:
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			writeFile(t, dir, f.rel, f.content, f.mode)
		}
	}
	return dir
}

func TestRunChoosesHandler(t *testing.T) {
	tests := []struct {
		name    string
		kind    hooks.Kind
		files   []charmFile
		wantRan string
		wantErr error
		errText string // a substring of the error
	}{{
		name:    "dispatch preferred over hooks/<kind>",
		files:   []charmFile{{rel: "dispatch", content: dispatchScript, mode: 0o755}, {rel: "hooks/install", content: legacyScript, mode: 0o755}},
		wantRan: "dispatch hooks/install\n",
	}, {
		name:    "dispatch serves every kind",
		kind:    hooks.LeaderSettingsChanged,
		files:   []charmFile{{rel: "dispatch", content: dispatchScript, mode: 0o700}},
		wantRan: "dispatch hooks/leader-settings-changed\n",
	}, {
		name:    "hooks/<kind> without dispatch",
		files:   []charmFile{{rel: "hooks/install", content: legacyScript, mode: 0o755}},
		wantRan: "legacy hooks/install\n",
	}, {
		name:    "non-executable dispatch falls back to hooks/<kind>",
		files:   []charmFile{{rel: "dispatch", content: dispatchScript, mode: 0o644}, {rel: "hooks/install", content: legacyScript, mode: 0o755}},
		wantRan: "legacy hooks/install\n",
	}, {
		name:    "non-executable dispatch alone",
		files:   []charmFile{{rel: "dispatch", content: dispatchScript, mode: 0o644}},
		wantErr: hooks.ErrNotExecutable,
		errText: `cannot run hook "install": hooks: handler not executable: /CHARM/dispatch (mode -rw-r--r--)`,
	}, {
		name:    "non-executable hooks/<kind>",
		files:   []charmFile{{rel: "hooks/install", content: legacyScript, mode: 0o644}},
		wantErr: hooks.ErrNotExecutable,
		errText: `cannot run hook "install": hooks: handler not executable: /CHARM/hooks/install (mode -rw-r--r--)`,
	}, {
		name:    "hooks/<kind> is a directory",
		files:   []charmFile{{rel: "hooks/install"}},
		wantErr: hooks.ErrNotExecutable,
		errText: "/CHARM/hooks/install is not a regular file",
	}, {
		name:    "dangling symlink",
		files:   []charmFile{{rel: "hooks/install", link: "nowhere"}},
		wantErr: hooks.ErrNotExecutable,
		errText: "/CHARM/hooks/install is a dangling symlink",
	}, {
		name:    "executable without #! line",
		files:   []charmFile{{rel: "hooks/install", content: "echo hi\n", mode: 0o755}},
		wantErr: hooks.ErrNotExecutable,
		errText: "exec format error",
	}, {
		name:    "no handler at all",
		files:   []charmFile{{rel: "hooks/start", content: legacyScript, mode: 0o755}},
		wantErr: hooks.ErrMissing,
		errText: `cannot run hook "install": hooks: hook missing`,
	}, {
		name:    "empty charm",
		wantErr: hooks.ErrMissing,
	}, {
		name:    "hooks is a file",
		files:   []charmFile{{rel: "hooks", content: "x", mode: 0o644}},
		wantErr: hooks.ErrMissing,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := buildCharm(t, tt.files)
			kind := tt.kind
			if kind == "" {
				kind = hooks.Install
			}
			r, _ := newRunner(t, hooks.Config{}, nil)
			err := r.Run(context.Background(), params(kind, dir))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Run() = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), strings.ReplaceAll(tt.errText, "/CHARM", dir)) {
				t.Errorf("Run() = %q, want it to contain %q", err, tt.errText)
			}
			if got := readFile(t, dir, "ran"); got != tt.wantRan {
				t.Errorf("ran = %q, want %q", got, tt.wantRan)
			}
		})
	}
}

func TestRunByPathKeepsSymlinkedArgv0(t *testing.T) {
	// charmhelpers-style: hooks/install -> ../lib/handler, which picks its
	// behaviour from basename "$0".
	dir := buildCharm(t, []charmFile{
		{rel: "lib/handler", mode: 0o755, content: "#!/bin/bash\n" +
			"printf '%s\\n' \"$0\" > \"$CHARM_DIR/argv0\"\n" +
			"pwd -P > \"$CHARM_DIR/cwd\"\n"},
		{rel: "hooks/install", link: "../lib/handler"},
	})
	r, _ := newRunner(t, hooks.Config{}, nil)
	if err := r.Run(context.Background(), params(hooks.Install, dir)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := readFile(t, dir, "argv0"), filepath.Join(dir, "hooks", "install")+"\n"; got != want {
		t.Errorf("argv[0] = %q, want %q", got, want)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, dir, "cwd"); got != realDir+"\n" {
		t.Errorf("working directory = %q, want %q", got, realDir)
	}
}

// hookEnv runs a hook that dumps its environment with env(1) and returns
// it, without the PWD that the shell itself exports.
func hookEnv(t *testing.T, r *hooks.Runner, p hooks.Params) []string {
	t.Helper()
	writeFile(t, p.CharmDir, "hooks/"+string(p.Kind), "#!/bin/sh\nexec env > \"$CHARM_DIR/env.out\"\n", 0o755)
	if err := r.Run(context.Background(), p); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var env []string
	for _, kv := range strings.Split(strings.TrimSpace(readFile(t, p.CharmDir, "env.out")), "\n") {
		if !strings.HasPrefix(kv, "PWD=") {
			env = append(env, kv)
		}
	}
	slices.Sort(env)
	return env
}

func TestRunEnvironmentIsFresh(t *testing.T) {
	r, _ := newRunner(t, hooks.Config{PassEnv: lookupIn(agentEnv)}, nil)
	p := params(hooks.ConfigChanged, t.TempDir())
	got := hookEnv(t, r, p)
	if diff := cmp.Diff(hooks.Environ(p, lookupIn(agentEnv)), got); diff != "" {
		t.Errorf("hook environment (-want +got):\n%s", diff)
	}
	for _, kv := range got {
		if strings.HasPrefix(kv, "OPERATOR_DISPATCH=") || strings.HasPrefix(kv, "HOME=") {
			t.Errorf("hook inherited %s", kv)
		}
	}
}

func TestRunPassEnvDefaultsToAgentEnvironment(t *testing.T) {
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("UNITER_TEST_SECRET", "s3cret")
	clk := clocktest.New(time.Time{})
	r, err := hooks.NewRunner(hooks.Config{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	got := hookEnv(t, r, params(hooks.Install, t.TempDir()))
	if !slices.Contains(got, "LANG=C.UTF-8") {
		t.Errorf("LANG not passed from the agent: %q", got)
	}
	for _, kv := range got {
		if strings.Contains(kv, "s3cret") {
			t.Errorf("hook inherited %s", kv)
		}
	}
}

func TestRunExitStatus(t *testing.T) {
	tests := []struct {
		name string
		body string
		want hooks.ExitError
		text string
	}{
		{"exit 3", "exit 3\n", hooks.ExitError{Kind: hooks.Start, Code: 3}, `hook "start" exited with code 3`},
		{"killed by a signal", "kill -TERM $$\n", hooks.ExitError{Kind: hooks.Start, Code: 143, Signal: syscall.SIGTERM},
			`hook "start" was killed by signal 15 (terminated)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeHook(t, dir, "hooks/start", tt.body)
			r, _ := newRunner(t, hooks.Config{}, nil)
			err := r.Run(context.Background(), params(hooks.Start, dir))
			var exitErr *hooks.ExitError
			if !errors.As(err, &exitErr) {
				t.Fatalf("Run() = %v, want an *ExitError", err)
			}
			if *exitErr != tt.want || err.Error() != tt.text {
				t.Errorf("Run() = %#v (%q), want %#v (%q)", *exitErr, err, tt.want, tt.text)
			}
		})
	}
}

func TestRunLogsOutputLines(t *testing.T) {
	dir := t.TempDir()
	writeHook(t, dir, "hooks/install", "echo out1\necho err1 >&2\nprintf 'crlf\\r\\n'\necho\necho err2 >&2\nprintf 'tail'\n")
	logs := &logBuffer{}
	r, _ := newRunner(t, hooks.Config{}, logs)
	if err := r.Run(context.Background(), params(hooks.Install, dir)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	type rec struct{ Level, Unit, Hook, Stream, Line string }
	var got []rec
	for _, m := range logs.records(t, "hook output") {
		got = append(got, rec{m["level"].(string), m["unit"].(string), m["hook"].(string), m["stream"].(string), m["line"].(string)})
	}
	want := []rec{
		{"debug", "app/0", "install", "stdout", "crlf"},
		{"debug", "app/0", "install", "stdout", "out1"},
		{"debug", "app/0", "install", "stdout", "tail"},
		{"warn", "app/0", "install", "stderr", "err1"},
		{"warn", "app/0", "install", "stderr", "err2"},
	}
	sortRecs := func(a, b rec) int { return strings.Compare(a.Level+a.Line, b.Level+b.Line) }
	slices.SortFunc(got, sortRecs)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("output records (-want +got):\n%s", diff)
	}
	if strings.Contains(logs.String(), params(hooks.Install, dir).ContextID) {
		t.Error("the log holds the context id")
	}
}

func TestRunCapsLongLines(t *testing.T) {
	const size = 3_000_000
	dir := t.TempDir()
	writeHook(t, dir, "hooks/install", "head -c 3000000 /dev/zero | tr '\\0' x\necho\necho after\n")
	logs := &logBuffer{}
	r, _ := newRunner(t, hooks.Config{}, logs)
	if err := r.Run(context.Background(), params(hooks.Install, dir)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	recs := logs.records(t, "hook output")
	total, truncated := 0, 0
	for i, m := range recs[:len(recs)-1] {
		line := m["line"].(string)
		if len(line) > hooks.MaxLineBytes || strings.Trim(line, "x") != "" {
			t.Fatalf("record %d: %d bytes, want at most %d x's", i, len(line), hooks.MaxLineBytes)
		}
		if m["truncated"] == true {
			truncated++
		}
		total += len(line)
	}
	if total != size || truncated != size/hooks.MaxLineBytes {
		t.Errorf("logged %d bytes in %d truncated records, want %d in %d", total, truncated, size, size/hooks.MaxLineBytes)
	}
	if last := recs[len(recs)-1]; last["line"] != "after" || last["truncated"] != nil {
		t.Errorf("last record = %v, want line after, not truncated", last)
	}
}

// pidsHook starts a background sleep, records its own pid and the
// child's in $CHARM_DIR/pids, then sleeps in the foreground.
const pidsHook = "sleep 1000 &\n" +
	"echo \"$$ $!\" > \"$CHARM_DIR/pids.tmp\" && mv \"$CHARM_DIR/pids.tmp\" \"$CHARM_DIR/pids\"\n" +
	"sleep 1000\n"

func TestRunTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	writeHook(t, dir, "hooks/install", pidsHook)
	r, clk := newRunner(t, hooks.Config{}, nil) // default timeout: 1h
	errc := runAsync(t, context.Background(), r, params(hooks.Install, dir))
	pids := readPids(t, dir, "pids")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := clk.WaitForWaiters(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour - time.Second)
	if clk.Waiters() != 1 {
		t.Fatal("the timeout fired before 1h")
	}
	clk.Advance(time.Second)
	err := waitErr(t, errc)
	if !errors.Is(err, hooks.ErrTimeout) || err.Error() != `cannot run hook "install": timed out after 1h0m0s` {
		t.Fatalf("Run() = %v, want the timeout", err)
	}
	waitGone(t, pids...)
}

func TestRunCancelKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	writeHook(t, dir, "hooks/install", pidsHook)
	r, _ := newRunner(t, hooks.Config{}, nil)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	errc := runAsync(t, ctx, r, params(hooks.Install, dir))
	pids := readPids(t, dir, "pids")
	stopping := errors.New("agent stopping")
	cancel(stopping)
	err := waitErr(t, errc)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, stopping) || errors.Is(err, hooks.ErrTimeout) {
		t.Fatalf("Run() = %v, want it to wrap context.Canceled and the cause", err)
	}
	if want := `cannot run hook "install": context canceled: agent stopping`; err.Error() != want {
		t.Errorf("Run() = %q, want %q", err, want)
	}
	waitGone(t, pids...)
}

func TestRunCancelledBeforeStart(t *testing.T) {
	dir := t.TempDir()
	writeHook(t, dir, "hooks/install", "touch \"$CHARM_DIR/ran\"\n")
	r, _ := newRunner(t, hooks.Config{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx, params(hooks.Install, dir)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run() = %v, want context.Canceled", err)
	}
	if readFile(t, dir, "ran") != "" {
		t.Error("the hook ran although ctx was already done")
	}
}

func TestRunDoesNotWaitForBackgroundChild(t *testing.T) {
	dir := t.TempDir()
	// The child inherits stdout and stderr and keeps them open.
	writeHook(t, dir, "hooks/start", "echo before\nsleep 1000 &\n"+
		"echo $! > \"$CHARM_DIR/child.tmp\" && mv \"$CHARM_DIR/child.tmp\" \"$CHARM_DIR/child\"\nexit 0\n")
	logs := &logBuffer{}
	r, _ := newRunner(t, hooks.Config{PipeDrain: 100 * time.Millisecond}, logs)
	errc := runAsync(t, context.Background(), r, params(hooks.Start, dir))
	child := readPids(t, dir, "child")[0]
	// Runs before runAsync's cleanup: were the drain ignored, killing the
	// child would be what lets Run return.
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if err := waitErr(t, errc); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if processGone(child) {
		t.Error("the hook's background child was killed; daemons must be left running")
	}
	if recs := logs.records(t, "hook output"); len(recs) != 1 || recs[0]["line"] != "before" {
		t.Errorf("output records = %v, want the line before", recs)
	}
}
