package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/uniter-dev/uniter/controller/client"
)

// Node is one `uniter controller` process.
type Node struct {
	*Process
	ID, APIAddr, RaftAddr, DataDir string
}

// Cluster is a controller of one or more nodes on loopback, each a
// `uniter controller` process with its raft log (BoltDB) on disk.
type Cluster struct {
	env   Env
	Nodes []*Node
	// FilePath is the admin client.yaml the first node wrote.
	FilePath string
	File     client.File
	// Admin is an admin client over every node's address.
	Admin *client.Client
}

// startTimeout bounds a node's start (bootstrap or join).
const startTimeout = 30 * time.Second

// StartCluster starts an n-node controller: the first node bootstraps,
// the others join it, each with extra flags. It returns once every node
// is a voter and one of them leads.
func StartCluster(ctx context.Context, env Env, n int, extra ...string) (_ *Cluster, err error) {
	c := &Cluster{env: env}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for i := range n {
		node, err := c.startNode(i+1, extra)
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, node)
		if i == 0 {
			if err := c.waitBootstrap(ctx, node); err != nil {
				return nil, err
			}
		}
		if err := c.waitMembers(ctx, i+1); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) startNode(i int, extra []string) (*Node, error) {
	api, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	raft, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	node := &Node{ID: fmt.Sprintf("node-%d", i), APIAddr: api, RaftAddr: raft,
		DataDir: filepath.Join(c.env.Dir, fmt.Sprintf("controller-%d", i))}
	args := []string{"controller", "--data-dir", node.DataDir, "--api-addr", api, "--raft-addr", raft, "--node-id", node.ID}
	if i > 1 {
		args = append(args, "--join", c.Nodes[0].APIAddr, "--client-config", c.FilePath)
	}
	args = append(args, extra...)
	node.Process, err = Start(c.env, node.ID, filepath.Join(c.env.Dir, node.ID+".out"), c.env.Bin, args...)
	if err != nil {
		return nil, err
	}
	return node, nil
}

// waitBootstrap waits for the first node's admin client.yaml and makes
// the admin client.
func (c *Cluster) waitBootstrap(ctx context.Context, node *Node) error {
	path := filepath.Join(node.DataDir, "client.yaml")
	err := Poll(ctx, "bootstrap the controller", startTimeout, 20*time.Millisecond, func() (bool, error) {
		if !node.Alive() {
			return false, fmt.Errorf("%s: %w (see %s.out)", node.ID, errExited, node.ID)
		}
		_, err := os.Stat(path)
		return err == nil, nil
	})
	if err != nil {
		return err
	}
	if c.File, err = client.ReadFile(path); err != nil {
		return err
	}
	c.FilePath = path
	c.Admin, err = client.New(c.File.Config())
	return err
}

// waitMembers waits until the cluster lists n voters, one of them leader,
// and remakes the admin client over every node.
func (c *Cluster) waitMembers(ctx context.Context, n int) error {
	err := Poll(ctx, fmt.Sprintf("form a %d-node controller", n), startTimeout, 20*time.Millisecond, func() (bool, error) {
		for _, node := range c.Nodes {
			if !node.Alive() {
				return false, fmt.Errorf("%s: %w (see %s.out)", node.ID, errExited, node.ID)
			}
		}
		nodes, err := c.Admin.Nodes(ctx)
		if err != nil {
			return false, err
		}
		leaders, voters := 0, 0
		for _, nd := range nodes {
			if nd.RaftState == "leader" {
				leaders++
			}
			if nd.Suffrage == "" || nd.Suffrage == "voter" {
				voters++
			}
		}
		return leaders == 1 && voters == n && len(nodes) == n, nil
	})
	if err != nil {
		return err
	}
	c.Admin.Close()
	cfg := c.File.Config()
	cfg.Addresses = c.Addresses()
	c.Admin, err = client.New(cfg)
	return err
}

// Addresses are the API addresses of every node.
func (c *Cluster) Addresses() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.APIAddr)
	}
	return out
}

// PIDs are the node processes' ids.
func (c *Cluster) PIDs() []int {
	var out []int
	for _, n := range c.Nodes {
		out = append(out, n.PID())
	}
	return out
}

// Leader returns the node that is the raft leader now.
func (c *Cluster) Leader(ctx context.Context) (*Node, error) {
	nodes, err := c.Admin.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot find the raft leader: %w", err)
	}
	for _, nd := range nodes {
		if nd.RaftState != "leader" {
			continue
		}
		for _, n := range c.Nodes {
			if n.ID == nd.ID {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("cannot find the raft leader among %d nodes", len(nodes))
}

// Close stops every node.
func (c *Cluster) Close() {
	if c.Admin != nil {
		c.Admin.Close()
	}
	for _, n := range c.Nodes {
		n.Stop(15 * time.Second)
	}
}
