package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/internal/version"
	"github.com/uniter-dev/uniter/operation"
)

// buildV1 builds the uniter binary as a protocol-1 release: the same code
// with its protocol range narrowed to 1..1 at link time, as an older
// release would have it.
func buildV1(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "uniter-v1")
	pkg := "github.com/uniter-dev/uniter/internal/version"
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin,
		"-ldflags", "-X "+pkg+".Version=1.0.0-test -X "+pkg+".ProtocolMax=1", "../cmd/uniter")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cannot build the protocol-1 uniter: %v\n%s", err, out)
	}
	return bin
}

// runBin runs bin with args to the end (at most a minute).
func runBin(t *testing.T, bin string, args ...string) result {
	t.Helper()
	return runBinEnv(t, bin, nil, args...)
}

// runBinEnv is runBin with env added to the test's environment.
func runBinEnv(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// startWith starts controller node i of c with binary bin (startProc's
// twin for a binary other than uniterBin).
func (c *cluster) startWith(i int, bin string) {
	nd := c.nodes[i]
	os.MkdirAll(nd.dir, 0o700)
	out, err := os.OpenFile(filepath.Join(nd.dir, "out.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, c.nodeArgs(i)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	nd.p = &proc{cmd: cmd, wait: make(chan error, 1)}
	go func() { nd.p.wait <- cmd.Wait() }()
}

// nodeArgs are the `uniter controller` arguments of node i (as c.start).
func (c *cluster) nodeArgs(i int) []string {
	nd := c.nodes[i]
	args := []string{"controller", "--data-dir", nd.dir, "--api-addr", nd.api, "--raft-addr", nd.raft,
		"--node-id", fmt.Sprintf("node-%d", i), "--lost-after", "5s"}
	if i > 0 && !exists(filepath.Join(nd.dir, "raft.db")) {
		args = append(args, "--join", c.nodes[0].api, "--client-config", c.clientFile)
	}
	return args
}

// startClusterWith is startCluster with every node running bin.
func startClusterWith(t *testing.T, n int, bin string) *cluster {
	t.Helper()
	c := &cluster{t: t, root: t.TempDir()}
	for i := range n {
		c.nodes = append(c.nodes, &ctrlNode{dir: filepath.Join(c.root, fmt.Sprintf("node%d", i)), api: freePort(t), raft: freePort(t)})
	}
	t.Cleanup(c.stopAll)
	c.clientFile = filepath.Join(c.nodes[0].dir, "client.yaml")
	c.startWith(0, bin)
	testutil.WaitUntil(t, 30*time.Second, "the bootstrap node", func() bool {
		_, err := os.Stat(c.clientFile)
		return err == nil && c.raftLeader() == 0
	})
	for i := 1; i < n; i++ {
		c.startWith(i, bin)
		testutil.WaitUntil(t, 30*time.Second, "a node to join", func() bool { return len(c.nodesSeen()) == i+1 })
	}
	testutil.WaitUntil(t, 30*time.Second, "a raft leader", func() bool { return c.raftLeader() >= 0 })
	return c
}

// view is the cluster as one node's state has it, right now.
func (c *cluster) view() (api.NodesResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, _, err := c.client().Cluster(ctx, 0, 0)
	return v, err
}

// protoMax is node id's announced ProtoMax in v (0 if none).
func protoMax(v api.NodesResponse, id string) uint64 {
	for _, n := range v.Nodes {
		if n.ID == id {
			return n.ProtoMax
		}
	}
	return 0
}

// TestUpgradeControllerRolling upgrades a 3-node controller of protocol-1
// binaries to this release's (protocol 1..version.ProtocolMax) one node at a time, while two real
// agents run, one of them the leader: the lease is never lost (same
// holder, same term, no leader-deposed), the API answers writes and reads
// while each node is down, the protocol-2 feature is refused until the
// last node runs the new binary and available as soon as that node's
// announcement is applied. Then a protocol-1 node can neither join the
// cluster nor start on an upgraded node's data.
func TestUpgradeControllerRolling(t *testing.T) {
	// The binary speaks 1..version.ProtocolMax, which may be below what the
	// state machine implements (lease.MaxProtocol).
	_, binMax, err := version.Protocol()
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := buildV1(t), uniterBin
	if r := runBin(t, v1, "version"); r.code != 0 || !strings.Contains(r.stdout, "uniter 1.0.0-test") ||
		!strings.Contains(r.stdout, "controller protocol: 1..1") {
		t.Fatalf("v1 version: %d %q", r.code, r.stdout)
	}
	if r := runBin(t, v2, "version"); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("controller protocol: 1..%d", binMax)) {
		t.Fatalf("v2 version: %d %q", r.code, r.stdout)
	}
	c := startClusterWith(t, 3, v1)
	f := &leaderFixture{t: t, c: c, journal: filepath.Join(c.root, "journal.log")}
	for i := range 2 {
		u := c.addUnit(fmt.Sprintf("journal/%d", i), "journal", func(cfg *agent.Config) {
			cfg.UpdateStatusInterval = agent.Duration(time.Second)
		})
		if err := os.WriteFile(u.path("charm", "journal.path"), []byte(f.journal+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		u.start()
		f.units = append(f.units, u)
	}
	leader := f.waitLeader("", 0, 0)
	_, term := f.leader()
	t.Logf("%s leads in term %d", leader, term)
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	casRefused := func(when string) {
		t.Helper()
		cfg, err := cl.Config(ctx, "journal")
		if err != nil {
			t.Fatalf("%s: read config: %v", when, err)
		}
		err = cl.SetConfigIf(ctx, "journal", map[string]string{"message": "cas"}, cfg.Version)
		want := "needs cluster protocol 2; the cluster runs 1 (upgrade every controller node)"
		if !errors.Is(err, api.ErrNeedsProtocol) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: the protocol-2 feature: %v", when, err)
		}
	}
	leaseKept := func(when string) {
		t.Helper()
		if who, tm := f.leader(); who != leader || tm != term {
			t.Fatalf("%s: lease held by %q in term %d, want %s in term %d", when, who, tm, leader, term)
		}
	}
	casRefused("all nodes at 1..1")

	var announced time.Time
	for i := range c.nodes {
		id := fmt.Sprintf("node-%d", i)
		if err := c.nodes[i].p.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("stop %s: %v", id, err)
		}
		// The other two serve writes and reads meanwhile.
		if err := cl.SetConfig(ctx, "journal", map[string]string{"message": "step " + id}); err != nil {
			t.Fatalf("write while %s is down: %v", id, err)
		}
		if _, err := cl.Status(ctx); err != nil {
			t.Fatalf("read while %s is down: %v", id, err)
		}
		if i < len(c.nodes)-1 {
			casRefused(id + " down")
		}
		c.startWith(i, v2)
		testutil.WaitUntil(t, 30*time.Second, fmt.Sprintf("%s to announce 1..%d", id, binMax), func() bool {
			v, err := c.view()
			return err == nil && protoMax(v, id) == binMax
		})
		announced = time.Now()
		leaseKept(id + " upgraded")
		if i < len(c.nodes)-1 {
			casRefused(id + " upgraded")
		}
	}
	// The announcement of the last node raises the version in the next
	// entry: it shows within milliseconds, far below any polling period.
	testutil.WaitUntil(t, 10*time.Second, fmt.Sprintf("effective version %d", binMax), func() bool {
		v, err := c.view()
		return err == nil && v.EffectiveVersion == binMax
	})
	raised := time.Since(announced)
	t.Logf("effective version %d seen %v after the last announcement was", binMax, raised)
	if raised > time.Second {
		t.Errorf("the version rose %v after the last announcement", raised)
	}
	cfg, err := cl.Config(ctx, "journal")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SetConfigIf(ctx, "journal", map[string]string{"message": "cas"}, cfg.Version); err != nil {
		t.Fatalf("the protocol-2 feature after the upgrade: %v", err)
	}
	if err := cl.SetConfigIf(ctx, "journal", map[string]string{"message": "stale"}, cfg.Version); !errors.Is(err, api.ErrStaleConfig) {
		t.Fatalf("a stale conditional set: %v", err)
	}
	leaseKept("after the upgrade")
	for _, e := range f.entries() {
		if e.Hook == "leader-deposed" || (e.Hook == "leader-elected" && e.Unit != leader) {
			t.Fatalf("leadership moved during the upgrade: %+v", e)
		}
	}

	// A fresh protocol-1 node cannot join: refused before it is added.
	dir := filepath.Join(c.root, "old-node")
	r := runBin(t, v1, "controller", "--data-dir", dir, "--api-addr", freePort(t), "--raft-addr", freePort(t),
		"--node-id", "node-old", "--join", c.nodes[0].api, "--client-config", c.clientFile)
	if want := fmt.Sprintf("node node-old speaks controller protocol 1..1 but the cluster runs %d: upgrade uniter on node node-old", binMax); r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("join of a protocol-1 node: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if seen := c.nodesSeen(); len(seen) != 3 {
		t.Fatalf("the cluster has %d nodes after the refused join: %v", len(seen), seen)
	}

	// A protocol-1 binary cannot start on an upgraded node's data, and
	// leaves it as it was; the protocol-2 binary then starts on it.
	nd := c.nodes[2]
	if err := nd.p.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	before := snapshotFiles(t, nd.dir, "node.json", "raft.db")
	r = runBin(t, v1, c.nodeArgs(2)...)
	if want := fmt.Sprintf("this node speaks controller protocol 1..1 but the cluster runs %d: upgrade uniter on this node", binMax); r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("protocol-1 binary on protocol-2 data: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if after := snapshotFiles(t, nd.dir, "node.json", "raft.db"); after != before {
		t.Fatal("the refused start changed the data directory")
	}
	c.startWith(2, v2)
	testutil.WaitUntil(t, 30*time.Second, "node-2 back", func() bool { return c.nodesSeen()["node-2"] != "" })
	leaseKept("at the end")
}

// snapshotFiles is the content of the named files of dir, for comparison.
func snapshotFiles(t *testing.T, dir string, names ...string) string {
	t.Helper()
	var b strings.Builder
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %x\n", n, len(data), data)
	}
	return b.String()
}

// stateV1InstallDone is a state file the uniter before schema 2 left when
// it stopped right after install succeeded, before committing it.
const stateV1InstallDone = `version: 1
op:
    kind: run-hook
    step: done
    hook:
        kind: install
installed: false
started: false
leader: false
leader-term: 0
config-version: 0
leader-settings-version: 0
`

// TestUpgradeAgentStateFile: an agent directory of the previous release
// (agent.yaml and state/uniter.yaml at version 1, install done but not
// committed) is migrated when the new agent starts: both old files are
// kept as .v1.bak, and the agent carries on from the same step, committing
// install without running it again. A state file from a newer release is
// then refused by the real binary, untouched.
func TestUpgradeAgentStateFile(t *testing.T) {
	root := t.TempDir()
	u := newUnit(t, root, "journal/0", "journal", filepath.Join(root, "machine-lock"))
	agentV1 := "version: 1\nunit: journal/0\ncontroller:\n    addresses:\n        - 127.0.0.1:1\n    token: journal-0-token-0123456789\n" +
		"machine-lock: " + filepath.Join(root, "machine-lock") + "\nretry-initial: 200ms\nretry-max: 1s\nstop-timeout: 5s\n"
	statePath := agent.StatePath(u.dir)
	for path, content := range map[string]string{u.path("agent.yaml"): agentV1, statePath: stateV1InstallDone} {
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(u.path(agent.TokenFile))
	u.start()
	// Read nothing through StateFile until the agent itself migrated.
	testutil.WaitUntil(t, 30*time.Second, "the agent to migrate its files", func() bool {
		u.checkAlive()
		data, _ := os.ReadFile(statePath)
		return strings.HasPrefix(string(data), fmt.Sprintf("version: %d\n", operation.CurrentVersion))
	})
	u.waitState("installed and started", started)
	j := u.journal()
	if n := count(j, "install", "start"); n != 0 {
		t.Errorf("install ran %d times: the migrated done step must only be committed\n%v", n, j)
	}
	for _, hook := range []string{"config-changed", "start"} {
		if count(j, hook, "end") != 1 {
			t.Errorf("%s ran %d times, want once\n%v", hook, count(j, hook, "end"), j)
		}
	}
	for path, old := range map[string]string{statePath: stateV1InstallDone, u.path("agent.yaml"): agentV1} {
		if kept, err := os.ReadFile(path + ".v1.bak"); err != nil || string(kept) != old {
			t.Errorf("%s.v1.bak = %q, %v; want the old file", path, kept, err)
		}
	}
	if data, _ := os.ReadFile(u.path("agent.yaml")); !strings.HasPrefix(string(data), "version: 2\n") || strings.Contains(string(data), "token") {
		t.Errorf("agent.yaml after migration:\n%s", data)
	}
	if tok, _ := os.ReadFile(u.path(agent.TokenFile)); string(tok) != "journal-0-token-0123456789\n" {
		t.Errorf("token file %q", tok)
	}
	u.kill()

	future := fmt.Sprintf("version: %d\nwritten-by: 9.0.0\ninstalled: true\nlifecycle: started\n", operation.CurrentVersion+1)
	if err := os.WriteFile(statePath, []byte(future), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runUniter(t, "agent", "--agent-dir", u.dir)
	if r.code != 1 || !strings.Contains(r.stderr, statePath) || !strings.Contains(r.stderr, "written by uniter 9.0.0") ||
		!strings.Contains(r.stderr, "upgrade uniter") {
		t.Fatalf("agent on a future state file: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(statePath); string(got) != future {
		t.Fatalf("the future state file changed to %q", got)
	}
	if _, err := os.Stat(fmt.Sprintf("%s.v%d.bak", statePath, operation.CurrentVersion+1)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a backup of the future file was made: %v", err)
	}
	if st, _, err := operation.NewStateFile(statePath).Read(); !errors.Is(err, operation.ErrFutureVersion) {
		t.Fatalf("Read of the future file = %+v, %v", st, err)
	}
}
