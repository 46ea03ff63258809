package tests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/cmd/uniter/cli"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
	"github.com/uniter-dev/uniter/remotestate/remotestatetest"
)

// Environment of a test agent process: this test binary re-executed as an
// agent whose remote state comes from a file instead of the controller.
const (
	envAgentDir = "UNITER_E2E_AGENT_DIR"
	// envCrashAt names a state write after which the agent freezes so the
	// test can SIGKILL it at that exact boundary: "done:HOOK" or
	// "committed:HOOK".
	envCrashAt = "UNITER_E2E_CRASH_AT"
	// remoteFile, in the agent dir, holds the fake remote state; SIGUSR1
	// makes the agent re-read it.
	remoteFile = "remote.yaml"
	// crashMarker is created when the agent reaches envCrashAt.
	crashMarker = "crash-point-reached"
	// envRealController makes the test agent connect to the controller in
	// its agent.yaml, as the real agent does, instead of reading
	// remoteFile (crash points against a real controller).
	envRealController = "UNITER_E2E_REAL_CONTROLLER"
)

// runTestAgent is the main of a test agent process.
func runTestAgent(dir string) int {
	reload := make(chan os.Signal, 1)
	signal.Notify(reload, syscall.SIGUSR1)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	opts := cli.AgentOptions{
		AgentDir: dir,
		Connect: func(ctx context.Context) (agent.Sources, error) {
			remote, err := watchRemoteFile(ctx, filepath.Join(dir, remoteFile), reload)
			return agent.Sources{Remote: remote}, err
		},
		WrapStateWriter: func(w operation.Writer) operation.Writer {
			return &crashWriter{Writer: w, at: os.Getenv(envCrashAt), marker: filepath.Join(dir, crashMarker)}
		},
	}
	if os.Getenv(envRealController) != "" {
		opts.Connect = nil
	}
	err := cli.RunAgent(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR", err)
		return 1
	}
	return 0
}

// watchRemoteFile serves the snapshot in path, re-read on every reload.
func watchRemoteFile(ctx context.Context, path string, reload <-chan os.Signal) (agent.RemoteState, error) {
	snap, err := remotestatetest.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fake := remotestatetest.New(snap)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-reload:
				if snap, err := remotestatetest.ReadFile(path); err == nil {
					fake.Set(snap)
				}
			}
		}
	}()
	return fake, nil
}

// crashWriter freezes the process right after the state write named by at.
type crashWriter struct {
	operation.Writer
	at, marker string
	prev       *operation.Op
}

func (c *crashWriter) Write(st operation.State) error {
	if err := c.Writer.Write(st); err != nil {
		return err
	}
	prev := c.prev
	c.prev = st.Op
	if c.at != "" && matchesCrashPoint(c.at, prev, st) {
		os.WriteFile(c.marker, nil, 0o600)
		select {} // wait for SIGKILL
	}
	return nil
}

// matchesCrashPoint reports whether writing st (after prev) is the boundary
// at names: "done:HOOK" is the write of HOOK's done step, "committed:HOOK"
// the write of its commit.
func matchesCrashPoint(at string, prev *operation.Op, st operation.State) bool {
	step, hook, _ := strings.Cut(at, ":")
	switch step {
	case "done":
		return st.Op != nil && st.Op.Step == operation.Done && string(st.Op.Hook.Kind) == hook
	case "committed":
		return st.Op == nil && prev != nil && prev.Step == operation.Done && string(prev.Hook.Kind) == hook
	}
	return false
}

// unitDir is one unit's agent directory, with the journal charm.
type unitDir struct {
	t    *testing.T
	unit string
	dir  string
	cmd  *exec.Cmd
	wait chan error
}

// newUnit makes an agent dir for unit with a copy of charm, sharing the
// machine lock at lockPath.
func newUnit(t *testing.T, root, unit, charm, lockPath string) *unitDir {
	t.Helper()
	dir := filepath.Join(root, strings.ReplaceAll(unit, "/", "-"))
	cfg := agent.Config{
		Unit: unit, MachineLock: lockPath, ModelName: "e2e", ModelUUID: "00000000-0000-4000-8000-000000000000",
		RetryInitial: agent.Duration(200 * time.Millisecond), RetryMax: agent.Duration(time.Second),
		StopTimeout: agent.Duration(5 * time.Second),
	}
	if err := agent.WriteConfig(dir, cfg); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", filepath.Join("..", "testcharms", charm), filepath.Join(dir, "charm")).CombinedOutput(); err != nil {
		t.Fatalf("cannot copy charm: %v: %s", err, out)
	}
	u := &unitDir{t: t, unit: unit, dir: dir}
	u.setRemote(remotestate.Snapshot{Life: remotestate.Alive, ConfigVersion: 1, LeaderSettingsVersion: 1})
	return u
}

func (u *unitDir) path(elem ...string) string {
	return filepath.Join(append([]string{u.dir}, elem...)...)
}

func (u *unitDir) setRemote(s remotestate.Snapshot) {
	u.t.Helper()
	if err := remotestatetest.WriteFile(u.path(remoteFile), s); err != nil {
		u.t.Fatal(err)
	}
}

// start runs the agent process; env adds variables (e.g. a crash point).
func (u *unitDir) start(env ...string) {
	u.t.Helper()
	self, err := os.Executable()
	if err != nil {
		u.t.Fatal(err)
	}
	out, err := os.OpenFile(u.path("agent.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		u.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), append([]string{envAgentDir + "=" + u.dir}, env...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	u.cmd, u.wait = cmd, make(chan error, 1)
	go func() { u.wait <- cmd.Wait() }()
	u.t.Cleanup(func() { u.kill() })
}

// kill SIGKILLs the agent if it runs and reaps it.
func (u *unitDir) kill() {
	if u.cmd == nil {
		return
	}
	u.cmd.Process.Kill()
	<-u.wait
	u.cmd = nil
}

// journal parses the journal charm's log.
func (u *unitDir) journal() []entry {
	return readJournal(u.t, u.path("charm", "journal.log"))
}

func (u *unitDir) state() operation.State {
	st, _, err := operation.NewStateFile(agent.StatePath(u.dir)).Read()
	if err != nil && !errors.Is(err, operation.ErrNoState) {
		u.t.Fatal(err)
	}
	return st
}

// waitState waits until the unit's state file satisfies cond.
func (u *unitDir) waitState(what string, cond func(operation.State) bool) {
	u.t.Helper()
	testutil.WaitUntil(u.t, 30*time.Second, u.unit+": "+what, func() bool {
		u.checkAlive()
		return cond(u.state())
	})
}

// checkAlive fails the test if the agent process exited.
func (u *unitDir) checkAlive() {
	u.t.Helper()
	if u.cmd == nil {
		return
	}
	select {
	case err := <-u.wait:
		u.wait <- err
		out, _ := os.ReadFile(u.path("agent.out"))
		u.t.Fatalf("agent %s exited (%v):\n%s", u.unit, err, tail(string(out), 3000))
	default:
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// entry is one journal line: `<hook> <unit> <pid> <monotonic-ns> <event>`.
type entry struct {
	Hook, Unit string
	PID        int
	NS         int64
	Event      string
}

// readFields returns the whitespace-separated fields of each line of
// path (nil if it does not exist yet), failing on lines without n fields.
func readFields(t *testing.T, path string, n int) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != n {
			t.Fatalf("bad line in %s: %q", path, line)
		}
		out = append(out, fs)
	}
	return out
}

func readJournal(t *testing.T, path string) []entry {
	t.Helper()
	var out []entry
	for _, fs := range readFields(t, path, 5) {
		pid, err1 := strconv.Atoi(fs[2])
		ns, err2 := strconv.ParseInt(fs[3], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad journal line %q", fs)
		}
		out = append(out, entry{fs[0], fs[1], pid, ns, fs[4]})
	}
	return out
}

// count returns how many entries have hook and event.
func count(es []entry, hook, event string) int {
	n := 0
	for _, e := range es {
		if e.Hook == hook && e.Event == event {
			n++
		}
	}
	return n
}
