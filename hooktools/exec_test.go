package hooktools_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/hooktools/toolclient"
)

// nobody is the unprivileged user the peer-credential tests run tools as.
const nobody = 65534

// execTool runs a tool binary with env, as cred's user when cred is set.
func execTool(t testing.TB, path string, env []string, cred *syscall.Credential, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), path, args...)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("cannot run %s: %v", path, err)
	}
	return result{Stdout: out.String(), Stderr: errOut.String(), Code: cmd.ProcessState.ExitCode()}
}

// hookEnv is the environment the agent gives a hook (hooks.Environ),
// reduced to what the tools need.
func hookEnv(h *testHook, toolsDir string) []string {
	return []string{
		hooktools.EnvContextID + "=" + h.id,
		hooktools.EnvSocketAddress + "=" + h.srv.sock,
		hooktools.EnvSocketNetwork + "=unix",
		"PATH=" + toolsDir + ":" + hooks.SystemPath,
	}
}

// installTools makes a tools directory of symlinks to the binary the
// agent would choose for uniterBin: uniter-hooktools beside it.
func installTools(t testing.TB, base string) string {
	t.Helper()
	target, small, why := hooktools.ToolTarget(uniterBin)
	if !small {
		t.Fatalf("ToolTarget(%s) = %s, not the uniter-hooktools beside it: %s", uniterBin, target, why)
	}
	return installToolsTo(t, base, target)
}

// installToolsTo makes a tools directory of symlinks to target.
func installToolsTo(t testing.TB, base, target string) string {
	t.Helper()
	dir := filepath.Join(base, "tools")
	if err := hooktools.InstallSymlinks(dir, target); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestArgv0Dispatch runs the tools as a hook does, through symlinks to
// each binary that acts as them: the small uniter-hooktools the agent
// prefers, and the uniter binary it falls back to.
func TestArgv0Dispatch(t *testing.T) {
	for _, target := range []string{toolsBin, uniterBin} {
		t.Run(filepath.Base(target), func(t *testing.T) {
			srv := startServer(t, serverOpts{})
			h := srv.register(t, nil)
			tools := installToolsTo(t, shortTempDir(t), target)
			env := hookEnv(h, tools)

			if got := execTool(t, filepath.Join(tools, "is-leader"), env, nil); got != ok("True\n") {
				t.Errorf("tools/is-leader = %+v", got)
			}
			// A bash hook, tools found by bare name on PATH (ops 3.x does the same).
			script := `[ "$(is-leader)" = True ] || exit 3
x=$(leader-get a); leader-set a=$((x+1)); leader-get a
is-leader --format=json
config-get --all --format=json
status-set maintenance "doing things" && status-get
juju-log -l WARNING -- "from bash"
application-version-set -- 1.0
`
			want := "2\ntrue\n" + `{"debug":false,"name":"hello","port":8080,"ratio":0.5,"token":null}` + "\nmaintenance\n"
			if got := execTool(t, "/bin/sh", env, nil, "-c", script); got != ok(want) {
				t.Errorf("bash hook (-want +got):\n%s", cmp.Diff(ok(want), got))
			}
			if v := h.backend.Version(); v != "1.0" {
				t.Errorf("application version = %q", v)
			}
			if !strings.Contains(srv.logs.String(), `"message":"from bash"`) {
				t.Error("juju-log from bash is not in the agent log")
			}
		})
	}
	// Not through a tool name, uniter is the CLI and uniter-hooktools
	// refuses with a usage line naming the tools.
	if got := execTool(t, uniterBin, nil, nil, "version"); got.Code != 0 || strings.Contains(got.Stderr, "hook tool") {
		t.Errorf("uniter version = %+v", got)
	}
	got := execTool(t, toolsBin, nil, nil, "is-leader")
	if got.Code != 2 || got.Stdout != "" || !strings.HasPrefix(got.Stderr, "usage: ") ||
		strings.Count(got.Stderr, "\n") != 1 || !strings.Contains(got.Stderr, "is-leader") {
		t.Errorf("uniter-hooktools run directly = %+v; want exit 2 and a one-line usage", got)
	}
}

func TestToolTarget(t *testing.T) {
	// A stand-in for uniter-hooktools that describes itself as told.
	describing := func(line string, mode os.FileMode) func(string) error {
		return func(p string) error {
			return os.WriteFile(p, []byte("#!/bin/sh\necho '"+line+"'\n"), mode)
		}
	}
	this := toolclient.Describe()
	tests := []struct {
		name   string
		setup  func(path string) error // makes (or not) uniter-hooktools at path
		root   bool                    // the case needs root (chown)
		small  bool
		reason string // in why when not small
	}{
		{name: "this release", setup: describing(this, 0o755), small: true},
		{name: "owner-executable only", setup: describing(this, 0o700), small: true},
		{name: "a symlink to this release", setup: func(p string) error {
			real := filepath.Join(filepath.Dir(p), "real")
			return errors.Join(describing(this, 0o755)(real), os.Symlink(real, p))
		}, small: true},
		{name: "absent", setup: func(string) error { return nil }, reason: "not installed"},
		{name: "not executable", setup: describing(this, 0o644), reason: "not executable"},
		{name: "a directory", setup: func(p string) error { return os.Mkdir(p, 0o755) }, reason: "not a regular file"},
		{name: "a dangling symlink", setup: func(p string) error { return os.Symlink("/nonexistent/uniter-hooktools", p) }, reason: "not installed"},
		{name: "writable by others", setup: func(p string) error {
			return errors.Join(describing(this, 0o755)(p), os.Chmod(p, 0o757))
		}, reason: "writable by group or others"},
		{name: "another protocol", setup: describing(strings.Replace(this, "protocol 1", "protocol 2", 1), 0o755), reason: "another release"},
		{name: "fewer tools", setup: describing(strings.Replace(this, ",status-set", "", 1), 0o755), reason: "another release"},
		{name: "fails to run", setup: func(p string) error { return os.WriteFile(p, []byte("#!/bin/sh\nexit 3\n"), 0o755) }, reason: "failed"},
		{name: "owned by another user", root: true, setup: func(p string) error {
			return errors.Join(describing(this, 0o755)(p), os.Chown(p, 65534, 65534))
		}, reason: "owned by uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Getuid() != 0 {
				t.Skip("needs root to give the file to another user")
			}
			dir := t.TempDir()
			exe := filepath.Join(dir, "uniter")
			if err := os.WriteFile(exe, nil, 0o755); err != nil {
				t.Fatal(err)
			}
			helper := filepath.Join(dir, "uniter-hooktools")
			if err := tt.setup(helper); err != nil {
				t.Fatal(err)
			}
			if got := hooktools.ClientPath(exe); got != helper {
				t.Errorf("ClientPath(%s) = %s, want %s", exe, got, helper)
			}
			want := exe
			if tt.small {
				want = helper
			}
			target, small, why := hooktools.ToolTarget(exe)
			if target != want || small != tt.small {
				t.Errorf("ToolTarget = %s, %v (%s); want %s, %v", target, small, why, want, tt.small)
			}
			if !tt.small && !strings.Contains(why, tt.reason) {
				t.Errorf("why = %q, want it to say %q", why, tt.reason)
			}
		})
	}
}

// TestBuiltClientDescribesThisRelease: the real uniter-hooktools answers
// --describe with what the agent wants.
func TestBuiltClientDescribesThisRelease(t *testing.T) {
	out, err := exec.Command(hooktools.ClientPath(uniterBin), toolclient.DescribeFlag).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != toolclient.Describe() {
		t.Errorf("--describe printed %q, want %q", got, toolclient.Describe())
	}
}

func TestInstallSymlinks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tools")
	if err := hooktools.InstallSymlinks(dir, "/usr/bin/uniter"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Lstat(filepath.Join(dir, "is-leader"))
	// Damage it: a missing link, a stale link, a regular file.
	for _, err := range []error{
		os.Remove(filepath.Join(dir, "leader-get")),
		os.Remove(filepath.Join(dir, "config-get")),
		os.Symlink("/old/uniter", filepath.Join(dir, "config-get")),
		os.Remove(filepath.Join(dir, "status-get")),
		os.WriteFile(filepath.Join(dir, "status-get"), []byte("#!/bin/sh\n"), 0o755),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := hooktools.InstallSymlinks(dir, "/usr/bin/uniter"); err != nil {
		t.Fatalf("second install: %v", err)
	}
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err != nil || target != "/usr/bin/uniter" {
			t.Errorf("%s -> %q, %v", e.Name(), target, err)
		}
	}
	if diff := cmp.Diff(hooktools.ToolNames(), names); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	after, _ := os.Lstat(filepath.Join(dir, "is-leader"))
	if !os.SameFile(before, after) {
		t.Error("a correct link was replaced; the install is not idempotent")
	}
	if err := hooktools.InstallSymlinks(dir, "bin/uniter"); err == nil {
		t.Error("a relative target was accepted")
	}
}

// peerSetup is a server whose socket nobody can reach: a 0755 base,
// the tools and a symlink target nobody can execute.
func peerSetup(t *testing.T, opts serverOpts) (*testServer, *testHook, string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run a tool as another user")
	}
	base := shortTempDir(t)
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	opts.dir = base
	srv := startServer(t, opts)
	return srv, srv.register(t, nil), installTools(t, base)
}

// exposeSocket opens the socket's directory and the socket to everyone,
// as a misconfigured machine might.
func exposeSocket(t *testing.T, srv *testServer) {
	t.Helper()
	if err := os.Chmod(filepath.Dir(srv.sock), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(srv.sock, 0o777); err != nil {
		t.Fatal(err)
	}
}

var asNobody = &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}

func TestSocketDirectoryKeepsOtherUsersOut(t *testing.T) {
	srv, h, tools := peerSetup(t, serverOpts{})
	got := execTool(t, filepath.Join(tools, "is-leader"), hookEnv(h, tools), asNobody)
	want := result{Stderr: "ERROR cannot run is-leader: dial unix " + srv.sock + ": connect: permission denied\n", Code: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := len(h.backend.Calls()); n != 0 {
		t.Errorf("backend called %d times", n)
	}
}

func TestPeerCredentialsRefused(t *testing.T) {
	srv, h, tools := peerSetup(t, serverOpts{})
	exposeSocket(t, srv)
	got := execTool(t, filepath.Join(tools, "is-leader"), hookEnv(h, tools), asNobody)
	if diff := cmp.Diff(runErr("permission denied"), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := len(h.backend.Calls()); n != 0 {
		t.Errorf("backend called %d times", n)
	}
	found := slices.ContainsFunc(srv.logs.entries(t), func(e map[string]any) bool {
		return e["peer_uid"] == float64(nobody) && e["level"] == "warn"
	})
	if !found {
		t.Errorf("no warning naming the refused uid in:\n%s", srv.logs)
	}
	// The server's own user is still served.
	if got := execTool(t, filepath.Join(tools, "is-leader"), hookEnv(h, tools), nil); got != ok("True\n") {
		t.Errorf("as root = %+v", got)
	}
}

// TestPeerCredentialsControl is the refusal test with nobody allowed: the
// same call then succeeds, so the refusal above is the uid check's doing.
func TestPeerCredentialsControl(t *testing.T) {
	srv, h, tools := peerSetup(t, serverOpts{uids: []uint32{nobody}})
	exposeSocket(t, srv)
	if got := execTool(t, filepath.Join(tools, "is-leader"), hookEnv(h, tools), asNobody); got != ok("True\n") {
		t.Errorf("as an allowed nobody = %+v", got)
	}
}

// BenchmarkIsLeaderExec measures what a hook pays for `is-leader`: one
// exec of the symlinked uniter-hooktools and one round trip to the server.
// Compare with BenchmarkTrueExec, the cost of any exec.
func BenchmarkIsLeaderExec(b *testing.B) {
	benchIsLeader(b, toolsBin)
}

// BenchmarkIsLeaderExecUniter is BenchmarkIsLeaderExec through the uniter
// binary, what tools cost without uniter-hooktools.
func BenchmarkIsLeaderExecUniter(b *testing.B) {
	benchIsLeader(b, uniterBin)
}

func benchIsLeader(b *testing.B, target string) {
	srv := startServer(b, serverOpts{level: zerolog.WarnLevel})
	h := srv.register(b, nil)
	tools := installToolsTo(b, shortTempDir(b), target)
	benchExec(b, filepath.Join(tools, "is-leader"), hookEnv(h, tools), "True\n")
}

// BenchmarkTrueExec is the baseline for BenchmarkIsLeaderExec.
func BenchmarkTrueExec(b *testing.B) {
	benchExec(b, "/bin/true", nil, "")
}

func benchExec(b *testing.B, path string, env []string, want string) {
	var durs []time.Duration
	for b.Loop() {
		cmd := exec.Command(path)
		cmd.Env = env
		start := time.Now()
		out, err := cmd.Output()
		durs = append(durs, time.Since(start))
		if err != nil || string(out) != want {
			b.Fatalf("%s = %q, %v", path, out, err)
		}
	}
	slices.Sort(durs)
	pct := func(p float64) float64 { return float64(durs[int(float64(len(durs)-1)*p)].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
