package controller

import (
	"context"
	"io"

	"github.com/uniter-dev/uniter/lease/raftnode"

	"github.com/uniter-dev/uniter/lease"
)

// Node is the raft node the API fronts: *raftnode.Node in production. The
// server applies writes through it when it leads the raft cluster (else it
// forwards them to the leader's API address), reads the replicated state
// from its FSM, and changes the cluster's membership through it.
type Node interface {
	// Apply replicates op through raft. A node that is not the leader
	// fails with *raftnode.NotLeaderError.
	Apply(ctx context.Context, op lease.Op) (lease.Result, error)
	// FSM is the node's (possibly lagging) copy of the replicated state.
	FSM() *lease.FSM
	// ID is this node's raft server ID.
	ID() string
	// IsLeader reports whether this node is the raft leader.
	IsLeader() bool
	// LeaderReady reports whether this node leads and its FSM has every
	// entry committed before its term (see raftnode.Node.LeaderReady).
	LeaderReady() bool
	// VerifyLeader confirms with a quorum that this node still leads.
	VerifyLeader(ctx context.Context) error
	// Leader is the raft leader's ID and raft address ("" if unknown).
	Leader() (id, raftAddr string)
	// Stats is a snapshot of the node's raft state, for metrics.
	Stats() raftnode.RaftStats
	// BatchStats counts the log entries the node's batcher proposed and
	// the commands they carried, for metrics.
	BatchStats() (entries, commands uint64)
	// LeaderRenewals counts the lease renewals the node answered from
	// memory as the raft leader, for metrics.
	LeaderRenewals() uint64
	// Ready is nil when the node knows a raft leader and is caught up;
	// else it says why not (GET /v1/ready).
	Ready() error
	// Removed reports whether this node has been removed from the
	// cluster: its latest raft configuration lists servers, but not it.
	Removed() bool
	// DiskFull reports whether the node's data directory ran out of space
	// and has not had room since.
	DiskFull() bool
	// Servers lists the raft configuration with each server's state.
	Servers(ctx context.Context) ([]raftnode.Server, error)
	// AddVoter and RemoveServer change the cluster (leader only);
	// RemoveServer also forgets the node's member record.
	AddVoter(ctx context.Context, id, raftAddr string) error
	RemoveServer(ctx context.Context, id string) error
	// Backup writes the state after a barrier (leader only).
	Backup(ctx context.Context, w io.Writer) error
}

var _ Node = (*raftnode.Node)(nil)
