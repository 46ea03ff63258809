// Package leasetest holds test scaffolding for code built on package lease:
// applying commands to an FSM as the raft wiring would.
package leasetest

import (
	"testing"

	"github.com/uniter-dev/uniter/lease"
)

// Apply encodes op and applies it to fsm at index, as the raft wiring
// does with a committed log entry, and returns its Result.
func Apply(t testing.TB, fsm *lease.FSM, index uint64, op lease.Op) lease.Result {
	t.Helper()
	data, err := lease.Encode(op)
	if err != nil {
		t.Fatalf("cannot encode %s: %v", op.Type(), err)
	}
	return fsm.Apply(index, data)
}
