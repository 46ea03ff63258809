package raftnode

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/uniter-dev/uniter/internal/clock"
)

// ErrNotReady is what Ready's errors match: this node should not be sent
// traffic now (a load balancer's or systemd's readiness check).
var ErrNotReady = errors.New("raftnode: not ready")

// maxLag is how far behind the commit index a ready node's FSM may be.
const maxLag = 64

// Ready reports whether this node is fit to serve: it is a member of the
// cluster, knows a raft leader, and is caught up. The leader is caught up
// once its barrier has applied every earlier entry (LeaderReady); a
// follower when it heard from the leader within two heartbeat timeouts
// and its FSM has applied all but a few committed entries. The error says
// which of these fails.
func (n *Node) Ready() error {
	if n.Removed() {
		return fmt.Errorf("%w: removed from the cluster", ErrNotReady)
	}
	if n.DiskFull() {
		return fmt.Errorf("%w: no space left on device under %s", ErrNotReady, n.cfg.DataDir)
	}
	switch n.raft.State() {
	case raft.Leader:
		if !n.LeaderReady() {
			return fmt.Errorf("%w: raft leader still catching up on earlier terms", ErrNotReady)
		}
		return nil
	case raft.Follower:
	default:
		return fmt.Errorf("%w: no raft leader (this node is %s)", ErrNotReady, n.RaftState())
	}
	if id, _ := n.Leader(); id == "" {
		return fmt.Errorf("%w: no raft leader known", ErrNotReady)
	}
	// LastContact is raft's own (real) time, whatever the node's Clock is.
	if since := clock.Real.Now().Sub(n.raft.LastContact()); since > 2*n.cfg.HeartbeatTimeout {
		return fmt.Errorf("%w: no contact with the raft leader for %v", ErrNotReady, since.Round(time.Millisecond))
	}
	commit := parseUint(n.raft.Stats()["commit_index"])
	if applied := n.raft.AppliedIndex(); commit > applied+maxLag {
		return fmt.Errorf("%w: applied index %d is behind the commit index %d", ErrNotReady, applied, commit)
	}
	return nil
}
