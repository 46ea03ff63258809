// Package etcd runs etcd for benchmark B9, the side-by-side comparison,
// as etcd's users run it: the server and the load are binaries of the
// separate Go module bench/etcdv3 (etcd's own server main from
// go.etcd.io/etcd/server/v3, and a load generator and election candidate
// on etcd's Go client, go.etcd.io/etcd/client/v3 over gRPC), built by
// Build with `go build` in that module, so uniter's module carries no
// etcd and no gRPC. This package starts clusters of that server on
// loopback (one node or three, data on disk, fsync on as etcd's default
// is), runs the load process and reads its trials back, and holds a
// small net/http client of etcd's JSON gateway (the health check, and a
// diagnostic of what the gateway costs).
package etcd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
)

// ModuleDir is the etcd module's directory, relative to uniter's root.
const ModuleDir = "bench/etcdv3"

// Binaries are the etcd module's commands, built by Build.
type Binaries struct {
	// Server is etcd (the server).
	Server string
	// Load is etcdload: the clientv3 load and the election candidate.
	Load string
}

// Build builds the etcd module's server and load binaries into dir, with
// `go -C ROOT/bench/etcdv3 build` (CGO_ENABLED=0). The go command fetches
// the module's dependencies if they are not downloaded yet.
func Build(ctx context.Context, root, dir string) (Binaries, error) {
	// A directory as -o: each command is built into it under its own name.
	cmd := exec.CommandContext(ctx, "go", "-C", filepath.Join(root, ModuleDir), "build",
		"-o", dir+string(filepath.Separator), "./cmd/etcd", "./cmd/etcdload")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("cannot build etcd (%s): %w\n%s", ModuleDir, err, out)
	}
	return Binaries{Server: filepath.Join(dir, "etcd"), Load: filepath.Join(dir, "etcdload")}, nil
}

// Version is `etcd --version`'s first line ("etcd Version: 3.7.3").
func Version(ctx context.Context, server string) string {
	out, err := exec.CommandContext(ctx, server, "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// Cluster is an etcd cluster of processes on loopback.
type Cluster struct {
	procs []*deploy.Process
	// Endpoints are the client URLs, "http://127.0.0.1:port".
	Endpoints []string
}

// Start starts an n-node etcd cluster of server in env.Dir and waits until
// every member reports healthy.
func Start(ctx context.Context, env deploy.Env, server string, n int) (_ *Cluster, err error) {
	c := &Cluster{}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	peers := make([]string, n)
	var initial []string
	for i := range n {
		p, err := deploy.FreeAddr()
		if err != nil {
			return nil, err
		}
		cl, err := deploy.FreeAddr()
		if err != nil {
			return nil, err
		}
		peers[i] = "http://" + p
		c.Endpoints = append(c.Endpoints, "http://"+cl)
		initial = append(initial, fmt.Sprintf("e%d=%s", i+1, peers[i]))
	}
	for i := range n {
		name := fmt.Sprintf("e%d", i+1)
		p, err := deploy.Start(env, "etcd "+name, filepath.Join(env.Dir, name+".out"), server,
			"--name", name, "--data-dir", filepath.Join(env.Dir, name),
			"--listen-client-urls", c.Endpoints[i], "--advertise-client-urls", c.Endpoints[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", filepath.Base(env.Dir), "--logger", "zap", "--log-level", "warn")
		if err != nil {
			return nil, err
		}
		c.procs = append(c.procs, p)
	}
	for _, ep := range c.Endpoints {
		cl := NewClient(ep)
		err := deploy.Poll(ctx, "start etcd at "+ep, 30*time.Second, 50*time.Millisecond, func() (bool, error) {
			err := cl.Health(ctx)
			return err == nil, err
		})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// PIDs are the member processes' ids.
func (c *Cluster) PIDs() []int {
	var out []int
	for _, p := range c.procs {
		out = append(out, p.PID())
	}
	return out
}

// Close stops every member.
func (c *Cluster) Close() {
	for _, p := range c.procs {
		p.Stop(10 * time.Second)
	}
}
