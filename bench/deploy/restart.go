package deploy

import (
	"fmt"
	"path/filepath"
	"syscall"
)

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("cannot signal %s: %w", p.Name, err)
	}
	return nil
}

// RestartNode starts node's `uniter controller` process again on its data
// directory and addresses (it rejoins the cluster from its raft log), with
// extra flags, once the old process has exited.
func (c *Cluster) RestartNode(node *Node, extra ...string) error {
	if node.Alive() {
		return fmt.Errorf("cannot restart %s: it is still running", node.ID)
	}
	args := append([]string{"controller", "--data-dir", node.DataDir, "--api-addr", node.APIAddr,
		"--raft-addr", node.RaftAddr, "--node-id", node.ID}, extra...)
	p, err := Start(c.env, node.ID, filepath.Join(c.env.Dir, node.ID+".out"), c.env.Bin, args...)
	if err != nil {
		return err
	}
	node.Process = p
	return nil
}
