// Package raftnode runs the lease state machine (package lease) under
// hashicorp/raft: a BoltDB log, file snapshots and a TCP transport. Node
// applies commands on the raft leader with a timeout (claims and extends
// held while the global time is stale: the gate of lease/doc.go), changes
// membership, takes backups and restores them, and, while the node leads,
// runs the leader loop: a Barrier, this node's member record, then the
// time advancer (advancer.go), which is the only proposer of advance-time,
// and the version raiser (upgrade.go), which raises the effective protocol
// version when every member speaks a newer one, woken by the FSM's change
// notification. Raft leadership is followed through LeaderCh, which never
// blocks raft, and every raft call is bounded by a timeout and by the
// loop's context (see docs/controller.md). lease/doc.go proves the lease
// guarantee the advancer, the gate and the FSM give together.
package raftnode
