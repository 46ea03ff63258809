package raftnode

import (
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"github.com/uniter-dev/uniter/lease"
)

// fsm adapts the pure lease.FSM to raft.FSM: raft hands it log entries
// and snapshots, and it hands the FSM their payloads.
type fsm struct{ *lease.FSM }

var _ raft.FSM = fsm{}

// Apply implements raft.FSM. It returns a lease.Result for every entry; a
// log entry that is not a command gives a Result whose Err says why and
// changes nothing.
func (f fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return lease.Result{Index: l.Index, Err: fmt.Errorf("cannot apply log entry: type %v: %w", l.Type, lease.ErrUnknownCommand)}
	}
	return f.FSM.Apply(l.Index, l.Data)
}

// Snapshot implements raft.FSM: it deep-copies the state (quick), and the
// returned snapshot encodes it in Persist, concurrently with Apply.
func (f fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{state: f.State()}, nil
}

// Restore implements raft.FSM (see lease.FSM.Restore).
func (f fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.FSM.Restore(rc)
}

type fsmSnapshot struct{ state *lease.State }

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := lease.WriteSnapshot(sink, s.state); err != nil {
		sink.Cancel()
		return fmt.Errorf("cannot persist lease snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("cannot persist lease snapshot: %w", err)
	}
	return nil
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}
