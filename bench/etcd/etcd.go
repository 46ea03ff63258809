// Package etcd runs etcd for benchmark B9, the side-by-side comparison:
// Debian's etcd-server on loopback (one node or three, data on disk), a
// small client of its JSON gateway (lease grant and keep-alive, election
// campaign) written with net/http so the module needs no etcd client, and
// the election candidate process whose crash B9 times.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
)

// Ensure makes sure etcd and etcdctl are installed, installing Debian's
// etcd-server and etcd-client with apt-get if either is missing.
func Ensure(ctx context.Context) error {
	if installed() {
		return nil
	}
	install := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", "etcd-server", "etcd-client")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install etcd-server etcd-client: %w: %s", err, lastLine(out))
		}
		return nil
	}
	if err := install(); err != nil {
		update := exec.CommandContext(ctx, "apt-get", "update")
		if out, uerr := update.CombinedOutput(); uerr != nil {
			return fmt.Errorf("cannot install etcd: %w; apt-get update: %v: %s", err, uerr, lastLine(out))
		}
		if err := install(); err != nil {
			return fmt.Errorf("cannot install etcd: %w", err)
		}
	}
	if !installed() {
		return errors.New("cannot install etcd: etcd or etcdctl still missing after apt-get install")
	}
	return nil
}

func installed() bool {
	_, err1 := exec.LookPath("etcd")
	_, err2 := exec.LookPath("etcdctl")
	return err1 == nil && err2 == nil
}

// Version is `etcd --version`'s first line.
func Version(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "etcd", "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// Cluster is an etcd cluster of processes on loopback.
type Cluster struct {
	procs []*deploy.Process
	// Endpoints are the client URLs, "http://127.0.0.1:port".
	Endpoints []string
}

// Start starts an n-node etcd cluster in env.Dir and waits until every
// member reports healthy.
func Start(ctx context.Context, env deploy.Env, n int) (_ *Cluster, err error) {
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, fmt.Errorf("cannot start etcd: %w", err)
	}
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
		p, err := deploy.Start(env, "etcd "+name, filepath.Join(env.Dir, name+".out"), etcdBin,
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
