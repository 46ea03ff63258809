package tests

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/pki"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// proc is a child process of the real binary.
type proc struct {
	cmd  *exec.Cmd
	wait chan error
}

// startProc runs the built uniter binary with args, output to logPath.
func startProc(t *testing.T, logPath string, env []string, args ...string) *proc {
	t.Helper()
	return startBin(t, uniterBin, logPath, env, args...)
}

// startBin is startProc for a binary other than uniterBin.
func startBin(t *testing.T, bin, logPath string, env []string, args ...string) *proc {
	t.Helper()
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, wait: make(chan error, 1)}
	go func() { p.wait <- cmd.Wait() }()
	return p
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

// stop sends sig and waits for the exit (SIGKILL after 30 s).
func (p *proc) stop(sig syscall.Signal) error {
	if p == nil {
		return nil
	}
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.wait:
		p.wait <- err
		return err
	case <-time.After(30 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		return fmt.Errorf("pid %d did not exit on %v", p.cmd.Process.Pid, sig)
	}
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case err := <-p.wait:
		p.wait <- err
		return true
	default:
		return false
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// cluster is a controller of n `uniter controller` processes.
type cluster struct {
	t          *testing.T
	root       string
	clientFile string
	nodes      []*ctrlNode
	admin      *client.Client
}

type ctrlNode struct {
	dir, api, raft string
	log            string // the process's output; "" is out.log in dir
	p              *proc
}

// startCluster bootstraps node 0 and joins the others.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := newCluster(t, n)
	c.boot()
	return c
}

// newCluster lays out n nodes without starting them; boot starts them.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, root: t.TempDir()}
	if os.Getenv("UNITER_E2E_KEEP") != "" { // keep the files for a post-mortem
		c.root, _ = os.MkdirTemp("", "uniter-e2e-keep-")
		t.Logf("keeping files in %s", c.root)
	}
	for i := range n {
		c.nodes = append(c.nodes, &ctrlNode{dir: filepath.Join(c.root, fmt.Sprintf("node%d", i)), api: freePort(t), raft: freePort(t)})
	}
	return c
}

// boot bootstraps node 0 and joins the others.
func (c *cluster) boot() {
	t, n := c.t, len(c.nodes)
	t.Helper()
	t.Cleanup(c.stopAll)
	c.start(0)
	c.clientFile = filepath.Join(c.nodes[0].dir, "client.yaml")
	testutil.WaitUntil(t, 30*time.Second, "the bootstrap node", func() bool {
		_, err := os.Stat(c.clientFile)
		return err == nil && c.raftLeader() == 0
	})
	for i := 1; i < n; i++ {
		c.start(i)
		testutil.WaitUntil(t, 30*time.Second, "a node to join", func() bool { return len(c.nodesSeen()) == i+1 })
		testutil.WaitUntil(t, 30*time.Second, "a raft leader", func() bool { return c.raftLeader() >= 0 })
	}
}

func (c *cluster) start(i int) {
	nd := c.nodes[i]
	os.MkdirAll(nd.dir, 0o700)
	args := []string{"controller", "--data-dir", nd.dir, "--api-addr", nd.api, "--raft-addr", nd.raft,
		"--node-id", fmt.Sprintf("node-%d", i), "--lost-after", "5s"}
	if i > 0 && !exists(filepath.Join(nd.dir, "raft.db")) {
		args = append(args, "--join", c.nodes[0].api, "--client-config", c.clientFile)
	}
	nd.p = startProc(c.t, nd.logPath(), nil, args...)
}

// logPath is where the node's process writes its output.
func (nd *ctrlNode) logPath() string {
	if nd.log != "" {
		return nd.log
	}
	return filepath.Join(nd.dir, "out.log")
}

func (c *cluster) stopAll() {
	for _, nd := range c.nodes {
		if nd.p != nil && !nd.p.exited() {
			nd.p.stop(syscall.SIGTERM)
		}
	}
}

// addresses returns every node's API address.
func (c *cluster) addresses() []string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, nd.api)
	}
	return out
}

// client returns an admin client over every node.
func (c *cluster) client() *client.Client {
	c.t.Helper()
	if c.admin != nil {
		return c.admin
	}
	f, err := client.ReadFile(c.clientFile)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := f.Config()
	cfg.Addresses = c.addresses()
	cl, err := client.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	c.admin = cl
	return cl
}

// clientAs returns a client over every node with token, trusting the CA
// the admin client config pins.
func (c *cluster) clientAs(token string) *client.Client {
	c.t.Helper()
	f, err := client.ReadFile(c.clientFile)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := f.Config()
	cfg.Addresses, cfg.Token = c.addresses(), token
	cl, err := client.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// pinnedHTTP is an HTTP client trusting the CA that the client config cf
// pins.
func pinnedHTTP(cf string) (*http.Client, error) {
	f, err := client.ReadFile(cf)
	if err != nil {
		return nil, err
	}
	tc, err := pki.Pin{CACert: []byte(f.Controller.CACert), Fingerprint: f.Controller.CAFingerprint}.ClientConfig()
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}, nil
}

// nodesSeen returns the raft state of each node the cluster reports.
func (c *cluster) nodesSeen() map[string]string {
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	nodes, err := cl.Nodes(ctx)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, n := range nodes {
		out[n.ID] = n.RaftState
	}
	return out
}

// raftLeader returns the index of the raft leader node, or -1.
func (c *cluster) raftLeader() int {
	for id, state := range c.nodesSeen() {
		if state == "leader" {
			var i int
			fmt.Sscanf(id, "node-%d", &i)
			return i
		}
	}
	return -1
}

// leader asks the controller who holds app's lease, and in which term.
func (c *cluster) leader(app string) (string, uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.client().Status(ctx)
	if err != nil {
		return "", 0
	}
	a := st.Applications[app]
	if a.Leader == nil {
		return "", a.Term
	}
	return *a.Leader, a.Term
}

// waitElected waits until the journal units' leader has run its
// leader-elected (in the unit's own charm journal) and returns the lease's
// holder and term.
func (c *cluster) waitElected(units []*agentUnit) (string, uint64) {
	c.t.Helper()
	testutil.WaitUntil(c.t, 60*time.Second, "a leader that ran leader-elected", func() bool {
		holder, _ := c.leader("journal")
		if holder == "" {
			return false
		}
		u := unitNamed(c.t, units, holder)
		return count(readJournal(c.t, u.path("charm", "journal.log")), "leader-elected", "end") == 1
	})
	return c.leader("journal")
}

// unitNamed returns the unit called name among units.
func unitNamed(t *testing.T, units []*agentUnit, name string) *agentUnit {
	t.Helper()
	for _, u := range units {
		if u.unit == name {
			return u
		}
	}
	t.Fatalf("no unit %s", name)
	return nil
}

// run runs a client command of the real binary against the cluster.
func (c *cluster) run(args ...string) result {
	c.t.Helper()
	return runUniter(c.t, append(args, "--client-config", c.clientFile)...)
}

// agentUnit is a unit registered with `uniter unit add` and run by a real
// `uniter agent` process.
type agentUnit struct {
	t    *testing.T
	unit string
	dir  string
	p    *proc
}

// addUnit registers unit of testcharms/charmName with the real CLI
// (which gives the agent every member's address) and tunes its
// agent.yaml.
func (c *cluster) addUnit(unit, charmName string, tune func(*agent.Config)) *agentUnit {
	c.t.Helper()
	return c.addUnitFrom(unit, filepath.Join("..", "testcharms", charmName), tune)
}

// addUnitFrom is addUnit for a charm at charmDir.
func (c *cluster) addUnitFrom(unit, charmDir string, tune func(*agent.Config)) *agentUnit {
	c.t.Helper()
	dir := filepath.Join(c.root, "units", strings.ReplaceAll(unit, "/", "-"))
	if r := c.run("unit", "add", unit, "--charm", charmDir, "--agent-dir", dir, "--guarantee", "3s"); r.code != 0 {
		c.t.Fatalf("unit add %s: exit %d: %s", unit, r.code, r.stderr)
	}
	cfg, err := agent.ReadConfig(dir)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg.MachineLock = filepath.Join(dir, "machine-lock") // one machine per unit
	if tune != nil {
		tune(&cfg)
	}
	if err := agent.WriteConfig(dir, cfg); err != nil {
		c.t.Fatal(err)
	}
	u := &agentUnit{t: c.t, unit: unit, dir: dir}
	c.t.Cleanup(func() {
		u.stop(syscall.SIGTERM)
		if c.t.Failed() {
			out, _ := os.ReadFile(u.path("agent.out"))
			c.t.Logf("=== %s agent output (tail):\n%s", unit, tail(string(out), 6000))
		}
	})
	return u
}

func (u *agentUnit) path(elem ...string) string {
	return filepath.Join(append([]string{u.dir}, elem...)...)
}

func (u *agentUnit) start() {
	u.p = startProc(u.t, u.path("agent.out"), nil, "agent", "--agent-dir", u.dir)
}

func (u *agentUnit) stop(sig syscall.Signal) {
	if u.p != nil && !u.p.exited() {
		u.p.stop(sig)
	}
}

// fingerprint is the SHA-256 fingerprint of the cluster CA, as the admin
// client config pins it.
func (c *cluster) fingerprint() string {
	c.t.Helper()
	f, err := client.ReadFile(c.clientFile)
	if err != nil {
		c.t.Fatal(err)
	}
	return f.Controller.CAFingerprint
}
