package cli_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/cmd/uniter/cli"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/pki"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs `uniter args...` in process, as main does.
func run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(append([]string{"uniter"}, args...), strings.NewReader(""), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// daemon is a `uniter controller` running in process until cleanup.
type daemon struct {
	stdout  *testutil.Buffer
	dataDir string
}

// startDaemon runs `uniter controller --data-dir dir args...` and waits for
// it to serve; at cleanup it is interrupted and must exit cleanly.
func startDaemon(t *testing.T, dir string, args ...string) *daemon {
	t.Helper()
	d := &daemon{stdout: &testutil.Buffer{}, dataDir: dir}
	ctx, cancel := context.WithCancel(context.Background())
	root := cli.NewRoot()
	root.SetArgs(append([]string{"controller", "--data-dir", dir, "--api-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0"}, args...))
	root.SetOut(d.stdout)
	root.SetErr(&testutil.Buffer{})
	var runErr error
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		runErr = root.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		if runErr != nil {
			t.Errorf("uniter controller exited with %v", runErr)
		}
	})
	testutil.WaitUntil(t, 20*time.Second, "the controller to start", func() bool {
		select {
		case <-exited:
			t.Fatalf("uniter controller exited early: %v\n%s", runErr, d.stdout)
		default:
		}
		return strings.Contains(d.stdout.String(), "API on")
	})
	return d
}

func (d *daemon) apiAddr(t *testing.T) string {
	m := regexp.MustCompile(`API on (\S+),`).FindStringSubmatch(d.stdout.String())
	if m == nil {
		t.Fatalf("no API address in %q", d.stdout)
	}
	return m[1]
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

// adminClient reads a client.yaml and waits until the controller takes
// writes (its cluster time has started).
func adminClient(t *testing.T, path string) *client.Client {
	t.Helper()
	f, err := client.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(f.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	testutil.WaitUntil(t, 20*time.Second, "the controller to elect a leader", func() bool {
		st, err := c.Status(t.Context())
		return err == nil && slices.ContainsFunc(st.Controller.Nodes, func(n api.Node) bool { return n.RaftState == "leader" })
	})
	return c
}

var hexToken = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestControllerBootstrap: the first start writes client.yaml (0600) and
// says how to use it; a restart keeps the token.
func TestControllerBootstrap(t *testing.T) {
	t.Setenv("UNITER_HOME", t.TempDir())
	dir := filepath.Join(t.TempDir(), "ctl")
	d := startDaemon(t, dir)
	cfgPath := filepath.Join(dir, "client.yaml")
	out := d.stdout.String()
	for _, want := range []string{"bootstrapped a new controller", "--client-config " + cfgPath, "UNITER_CLIENT_CONFIG=" + cfgPath} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if m := mode(t, cfgPath); m.Perm() != 0o600 {
		t.Errorf("client.yaml mode %v", m)
	}
	f, err := client.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !hexToken.MatchString(f.Token) || len(f.Controller.Addresses) != 1 || f.Controller.Addresses[0] != d.apiAddr(t) {
		t.Errorf("client.yaml %+v", f)
	}
	hash, err := os.ReadFile(filepath.Join(dir, "admin-token.sha256"))
	if err != nil || strings.TrimSpace(string(hash)) != lease.HashToken(f.Token) || mode(t, filepath.Join(dir, "admin-token.sha256")).Perm() != 0o600 {
		t.Errorf("admin token hash %q, %v", hash, err)
	}
	if strings.Contains(out, f.Token) {
		t.Error("the admin token was printed")
	}
	// The client config pins the cluster CA the node made (certificate and
	// fingerprint); the keys are 0600.
	caPEM, err := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseCert(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	if f.Controller.CACert != string(caPEM) || f.Controller.CAFingerprint != pki.Fingerprint(ca) {
		t.Errorf("client.yaml pins %q / %q, want tls/ca.crt and its fingerprint %s", f.Controller.CACert, f.Controller.CAFingerprint, pki.Fingerprint(ca))
	}
	for _, key := range []string{"ca.key", "node.key"} {
		if m := mode(t, filepath.Join(dir, "tls", key)); m.Perm() != 0o600 {
			t.Errorf("tls/%s mode %v, want 0600", key, m)
		}
	}
	if m := mode(t, filepath.Join(dir, "tls")); m.Perm() != 0o700 {
		t.Errorf("tls/ mode %v, want 0700", m)
	}
	st, err := adminClient(t, cfgPath).Status(t.Context())
	if err != nil || len(st.Controller.Nodes) != 1 || st.Controller.Nodes[0].RaftState != "leader" {
		t.Errorf("status %+v, %v", st, err)
	}
}

func TestControllerRestartKeepsToken(t *testing.T) {
	t.Setenv("UNITER_HOME", t.TempDir())
	dir := filepath.Join(t.TempDir(), "ctl")
	cfgPath := filepath.Join(dir, "client.yaml")
	first := func() client.File {
		ctx, cancel := context.WithCancel(context.Background())
		root := cli.NewRoot()
		out := &testutil.Buffer{}
		root.SetArgs([]string{"controller", "--data-dir", dir, "--api-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0"})
		root.SetOut(out)
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		testutil.WaitUntil(t, 20*time.Second, "the controller to start", func() bool { return strings.Contains(out.String(), "API on") })
		f, err := client.ReadFile(cfgPath)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("controller: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		return f
	}()
	d := startDaemon(t, dir)
	if strings.Contains(d.stdout.String(), "bootstrapped") {
		t.Errorf("restart bootstrapped again: %q", d.stdout)
	}
	f, err := client.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if f.Token != first.Token || f.Controller.Addresses[0] != d.apiAddr(t) {
		t.Errorf("after restart client.yaml %+v (first %+v)", f, first)
	}
	adminClient(t, cfgPath)
}

// TestControllerJoinAndRemoveNode: a second node joins through the first
// with the admin client config, and is removed again.
func TestControllerJoinAndRemoveNode(t *testing.T) {
	t.Setenv("UNITER_HOME", t.TempDir())
	d1 := startDaemon(t, filepath.Join(t.TempDir(), "n1"))
	cfgPath := filepath.Join(d1.dataDir, "client.yaml")
	admin := adminClient(t, cfgPath)
	startDaemon(t, filepath.Join(t.TempDir(), "n2"), "--join", d1.apiAddr(t), "--node-id", "n2", "--client-config", cfgPath)
	nodes, err := admin.Nodes(t.Context())
	if err != nil || len(nodes) != 2 {
		t.Fatalf("nodes %+v, %v", nodes, err)
	}
	if r := run(t, "controller", "remove-node", "n2", "--client-config", cfgPath); r.code != 0 || r.stdout != "removed controller node n2\n" {
		t.Errorf("remove-node: %+v", r)
	}
	nodes, err = admin.Nodes(t.Context())
	if err != nil || len(nodes) != 1 || nodes[0].ID == "n2" {
		t.Errorf("nodes after remove %+v, %v", nodes, err)
	}
}

// writeCharm makes a small charm with a config schema, an executable hook,
// a symlinked hook and a nested directory.
func writeCharm(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "charm")
	files := map[string]struct {
		content string
		mode    os.FileMode
	}{
		"metadata.yaml":  {"name: db\nsummary: a test charm\n", 0o644},
		"config.yaml":    {"options:\n  port:\n    type: int\n    default: 80\n  name:\n    type: string\n    description: a name\n", 0o644},
		"hooks/install":  {"#!/bin/sh\necho installed\n", 0o755},
		"lib/data/x.txt": {"x\n", 0o640},
	}
	for name, f := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, f.mode)
	}
	for link, target := range map[string]string{"hooks/start": "install", "link": "lib/data/x.txt"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestUnitAdd registers a unit and prepares its agent directory.
func TestUnitAdd(t *testing.T) {
	t.Setenv("UNITER_HOME", t.TempDir())
	d := startDaemon(t, filepath.Join(t.TempDir(), "ctl"))
	cfgPath := filepath.Join(d.dataDir, "client.yaml")
	admin := adminClient(t, cfgPath)
	charmDir := writeCharm(t)
	agentDir := filepath.Join(t.TempDir(), "db-0")
	t.Setenv(cli.ClientConfigEnv, cfgPath) // resolution through the environment

	r := run(t, "unit", "add", "db/0", "--charm", charmDir, "--agent-dir", agentDir, "--guarantee", "20s")
	if r.code != 0 || !strings.Contains(r.stdout, "registered unit db/0") {
		t.Fatalf("unit add: %+v", r)
	}
	if m := mode(t, filepath.Join(agentDir, "agent.yaml")); m.Perm() != 0o600 {
		t.Errorf("agent.yaml mode %v", m)
	}
	cfg, err := agent.ReadConfig(agentDir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Unit != "db/0" || !hexToken.MatchString(cfg.Controller.Token) || cfg.LeadershipGuarantee != agent.Duration(20*time.Second) ||
		!cmp.Equal(cfg.Controller.Addresses, []string{d.apiAddr(t)}) {
		t.Errorf("agent.yaml %+v", cfg)
	}
	checkCharmCopy(t, charmDir, filepath.Join(agentDir, "charm"))

	// The schema came from config.yaml; the unit's token works.
	ctx := t.Context()
	conf, err := admin.Config(ctx, "db")
	port := "80"
	want := map[string]api.Option{"port": {Type: "int", Default: &port}, "name": {Type: "string", Description: "a name"}}
	if diff := cmp.Diff(want, conf.Schema); err != nil || diff != "" {
		t.Errorf("schema (-want +got):\n%s %v", diff, err)
	}
	unit, err := client.New(cfg.Controller.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer unit.Close()
	if view, _, err := unit.WatchUnit(ctx, "db/0", 0, 0); err != nil || view.Life != "alive" {
		t.Errorf("unit's own view: %+v, %v", view, err)
	}

	// Again: same token, same copy.
	if r := run(t, "unit", "add", "db/0", "--charm", charmDir, "--agent-dir", agentDir); r.code != 0 {
		t.Fatalf("second unit add: %+v", r)
	}
	if again, _ := agent.ReadConfig(agentDir); again.Controller.Token != cfg.Controller.Token {
		t.Error("a repeated unit add changed the token")
	}
	// Another unit into the same directory.
	if r := run(t, "unit", "add", "db/1", "--charm", charmDir, "--agent-dir", agentDir); r.code != 1 || !strings.Contains(r.stderr, "belongs to unit db/0") {
		t.Errorf("unit add into another unit's dir: %+v", r)
	}

	// Removal: dying at once, then deregistered by force.
	if r := run(t, "unit", "remove", "db/0", "--wait", "0"); r.code != 0 || !strings.Contains(r.stdout, "dying") {
		t.Errorf("unit remove: %+v", r)
	}
	if r := run(t, "unit", "remove", "db/0", "--force"); r.code != 0 || r.stdout != "removed unit db/0\n" {
		t.Errorf("unit remove --force: %+v", r)
	}
	if _, err := admin.Config(ctx, "db"); err != nil {
		t.Errorf("application gone with its last unit? %v", err)
	}
	if _, _, err := unit.WatchUnit(ctx, "db/0", 0, 0); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("removed unit's token: %v", err)
	}
}

func checkCharmCopy(t *testing.T, src, dst string) {
	t.Helper()
	for name, want := range map[string]os.FileMode{
		"metadata.yaml": 0o644, "hooks/install": 0o755, "lib/data/x.txt": 0o640,
	} {
		if m := mode(t, filepath.Join(dst, name)); m.Perm() != want || !m.IsRegular() {
			t.Errorf("%s: mode %v, want %v", name, m, want)
		}
		a, _ := os.ReadFile(filepath.Join(src, name))
		b, _ := os.ReadFile(filepath.Join(dst, name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs", name)
		}
	}
	for link, want := range map[string]string{"hooks/start": "install", "link": "lib/data/x.txt"} {
		if got, err := os.Readlink(filepath.Join(dst, link)); err != nil || got != want {
			t.Errorf("%s: link to %q (%v), want %q", link, got, err, want)
		}
	}
}

// TestClientErrors: a wrong token and an unreachable controller give one
// line and exit 1; bad calls give usage and exit 2.
func TestClientErrors(t *testing.T) {
	t.Setenv("UNITER_HOME", t.TempDir())
	t.Setenv(cli.ClientConfigEnv, "")
	d := startDaemon(t, filepath.Join(t.TempDir(), "ctl"))
	good := filepath.Join(d.dataDir, "client.yaml")
	adminClient(t, good)
	gf, err := client.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	pinned := func(addr string) client.FileController {
		return client.FileController{Addresses: []string{addr}, CACert: gf.Controller.CACert}
	}
	wrong := filepath.Join(t.TempDir(), "wrong.yaml")
	if err := client.WriteFile(wrong, client.File{Controller: pinned(d.apiAddr(t)), Token: "wrong"}); err != nil {
		t.Fatal(err)
	}
	noCA := filepath.Join(t.TempDir(), "noca.yaml")
	if err := client.WriteFile(noCA, client.File{Controller: client.FileController{Addresses: []string{d.apiAddr(t)}}, Token: gf.Token}); err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("another CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	otherCA := filepath.Join(t.TempDir(), "otherca.yaml")
	if err := client.WriteFile(otherCA, client.File{Controller: client.FileController{Addresses: []string{d.apiAddr(t)},
		CACert: string(other.CertPEM())}, Token: gf.Token}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	deadCfg := filepath.Join(t.TempDir(), "dead.yaml")
	if err := client.WriteFile(deadCfg, client.File{Controller: pinned(dead), Token: "x"}); err != nil {
		t.Fatal(err)
	}
	charmDir := writeCharm(t)
	agentDir := filepath.Join(t.TempDir(), "a")

	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // exact, or a prefix if it ends in "..."
	}{
		{"wrong token", []string{"unit", "add", "db/0", "--charm", charmDir, "--agent-dir", agentDir, "--client-config", wrong}, 1, "ERROR unauthorized\n"},
		{"unreachable", []string{"unit", "remove", "db/0", "--client-config", deadCfg}, 1, "ERROR cannot reach controller at " + dead + ": connection refused\n"},
		{"unknown unit", []string{"unit", "remove", "db/7", "--client-config", good}, 1, "ERROR lease: unknown unit\n"},
		{"no CA pinned", []string{"unit", "remove", "db/7", "--client-config", noCA}, 1, "ERROR cannot create controller client: no controller CA pinned ..."},
		{"another CA pinned", []string{"unit", "remove", "db/7", "--client-config", otherCA}, 1,
			"ERROR cannot reach controller at " + d.apiAddr(t) + ": tls: failed to verify certificate: x509: ..."},
		{"no client config", []string{"controller", "remove-node", "x"}, 1, "ERROR cannot find a controller: no ..."},
		{"missing client config", []string{"unit", "remove", "db/0", "--client-config", "/nonexistent.yaml"}, 1, "ERROR cannot read client config: ..."},
		{"no unit", []string{"unit", "add", "--charm", charmDir, "--agent-dir", agentDir}, 2, "ERROR ..."},
		{"bad unit", []string{"unit", "add", "db-0", "--charm", charmDir, "--agent-dir", agentDir}, 2, "ERROR bad unit name \"db-0\": want APP/N\n..."},
		{"no charm", []string{"unit", "add", "db/0", "--agent-dir", agentDir}, 2, "ERROR --charm is required\n..."},
		{"no agent dir", []string{"unit", "add", "db/0", "--charm", charmDir}, 2, "ERROR --agent-dir is required\n..."},
		{"agent dir in charm", []string{"unit", "add", "db/0", "--charm", charmDir, "--agent-dir", filepath.Join(charmDir, "x")}, 2, "ERROR --agent-dir must not be inside the charm directory\n..."},
		{"bad guarantee", []string{"unit", "add", "db/0", "--charm", charmDir, "--agent-dir", agentDir, "--guarantee", "soon"}, 2, "ERROR ..."},
		{"unit without subcommand", []string{"unit"}, 2, "ERROR missing subcommand: add or remove\n..."},
		{"unit extra", []string{"unit", "frob"}, 2, "ERROR ..."},
		{"controller extra", []string{"controller", "extra"}, 2, "ERROR ..."},
		{"controller bad flag", []string{"controller", "--bogus"}, 2, "ERROR unknown flag: --bogus\n..."},
		{"remove-node no id", []string{"controller", "remove-node"}, 2, "ERROR ..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (%+v)", r.code, tt.code, r)
			}
			if prefix, ok := strings.CutSuffix(tt.stderr, "..."); ok {
				if !strings.HasPrefix(r.stderr, prefix) {
					t.Errorf("stderr %q, want prefix %q", r.stderr, prefix)
				}
			} else if r.stderr != tt.stderr {
				t.Errorf("stderr %q, want %q", r.stderr, tt.stderr)
			}
			if tt.code == 2 && !strings.Contains(r.stderr, "Usage:") {
				t.Errorf("usage error without usage: %q", r.stderr)
			}
		})
	}
}
