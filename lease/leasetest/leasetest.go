// Package leasetest holds test scaffolding for code built on package lease:
// an in-memory raft.SnapshotSink and helpers that turn commands into raft
// log entries.
package leasetest

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/uniter-dev/uniter/lease"
)

// Sink is an in-memory raft.SnapshotSink. Set FailWrite to make writes fail.
type Sink struct {
	// FailWrite, if set, is returned by every Write.
	FailWrite error

	mu        sync.Mutex
	buf       bytes.Buffer
	closed    bool
	cancelled bool
}

var _ raft.SnapshotSink = (*Sink)(nil)

// Write implements io.Writer.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.FailWrite != nil:
		return 0, s.FailWrite
	case s.closed || s.cancelled:
		return 0, errors.New("leasetest: write to a finished sink")
	}
	return s.buf.Write(p)
}

// Close implements raft.SnapshotSink: the snapshot is complete.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// ID implements raft.SnapshotSink.
func (s *Sink) ID() string { return "leasetest-sink" }

// Cancel implements raft.SnapshotSink: the snapshot is abandoned.
func (s *Sink) Cancel() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancelled = true
	return nil
}

// Closed reports whether Close was called.
func (s *Sink) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Cancelled reports whether Cancel was called.
func (s *Sink) Cancelled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled
}

// Bytes returns a copy of what was written.
func (s *Sink) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

// Reader returns what was written, as raft hands it to FSM.Restore.
func (s *Sink) Reader() io.ReadCloser { return io.NopCloser(bytes.NewReader(s.Bytes())) }

// Log returns the raft command log entry at index carrying op.
func Log(t testing.TB, index uint64, op lease.Op) *raft.Log {
	t.Helper()
	data, err := lease.Encode(op)
	if err != nil {
		t.Fatalf("cannot encode %s: %v", op.Type(), err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

// Apply applies op at index through fsm's raft.FSM interface and returns
// its lease.Result.
func Apply(t testing.TB, fsm raft.FSM, index uint64, op lease.Op) lease.Result {
	t.Helper()
	res, ok := fsm.Apply(Log(t, index, op)).(lease.Result)
	if !ok {
		t.Fatalf("apply %s: response is not a lease.Result", op.Type())
	}
	return res
}
