package raftnode

import (
	"strconv"
	"time"
)

// RaftStats is what the controller's metrics read of this node's raft.
type RaftStats struct {
	// State is "leader", "follower", "candidate" or "shutdown".
	State string
	// Term is raft's current term (not a lease term).
	Term uint64
	// CommitIndex and AppliedIndex are raft's commit index and the last
	// index the FSM applied.
	CommitIndex, AppliedIndex uint64
	// LastContact is when a follower last heard from the leader (zero on
	// the leader and before any contact).
	LastContact time.Time
}

// Stats returns a snapshot of the node's raft state for metrics.
func (n *Node) Stats() RaftStats {
	st := n.raft.Stats()
	return RaftStats{
		State:        n.RaftState(),
		Term:         parseUint(st["term"]),
		CommitIndex:  parseUint(st["commit_index"]),
		AppliedIndex: n.raft.AppliedIndex(),
		LastContact:  n.raft.LastContact(),
	}
}

func parseUint(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}
