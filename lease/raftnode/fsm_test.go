package raftnode

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
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
		return 0, errors.New("sink: write to a finished sink")
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

// Reader returns what was written, as raft hands it to Restore.
func (s *Sink) Reader() io.ReadCloser { return io.NopCloser(bytes.NewReader(s.Bytes())) }

// fsmBase is the global time the FSM tests start at.
var fsmBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func logOf(t *testing.T, index uint64, op lease.Op) *raft.Log {
	t.Helper()
	data, err := lease.Encode(op)
	if err != nil {
		t.Fatalf("cannot encode %s: %v", op.Type(), err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

func TestApplyRefusesNonCommandLogs(t *testing.T) {
	f := fsm{lease.NewFSM()}
	res, ok := f.Apply(&raft.Log{Index: 1, Type: raft.LogNoop}).(lease.Result)
	if !ok || !errors.Is(res.Err, lease.ErrUnknownCommand) || f.Index() != 0 {
		t.Errorf("result %+v, index %d", res, f.Index())
	}
	res, ok = f.Apply(logOf(t, 2, lease.AdvanceTime{New: fsmBase})).(lease.Result)
	if !ok || res.Err != nil || f.Index() != 2 {
		t.Errorf("command: result %+v, index %d", res, f.Index())
	}
}

func TestSnapshotIsNotAffectedByLaterApplies(t *testing.T) {
	f := fsm{lease.NewFSM()}
	ops := []lease.Op{
		lease.AdvanceTime{New: fsmBase},
		lease.RegisterUnit{Name: "db/0", TokenHash: lease.HashToken("t")},
		lease.Claim{App: "db", Unit: "db/0", Duration: 10 * time.Second},
	}
	for i, op := range ops {
		if res := f.Apply(logOf(t, uint64(i+1), op)).(lease.Result); res.Err != nil {
			t.Fatalf("%s: %v", op.Type(), res.Err)
		}
	}
	want := f.State()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	f.Apply(logOf(t, 4, lease.PinLease{App: "db", Entity: "op", Reason: "r"}))
	f.Apply(logOf(t, 5, lease.SetLeaderSettings{App: "db", Unit: "db/0", Term: 1, Changes: map[string]string{"a": "b"}}))
	sink := &Sink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	if !sink.Closed() || sink.Cancelled() {
		t.Fatalf("sink closed %v cancelled %v", sink.Closed(), sink.Cancelled())
	}
	got, err := lease.ReadSnapshot(bytes.NewReader(sink.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(lease.State{})); diff != "" {
		t.Errorf("snapshot saw later applies:\n%s", diff)
	}
	restored := fsm{lease.NewFSM()}
	if err := restored.Restore(sink.Reader()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, restored.State(), cmpopts.IgnoreUnexported(lease.State{})); diff != "" {
		t.Errorf("restored state differs:\n%s", diff)
	}
}

func TestPersistCancelsOnWriteError(t *testing.T) {
	snap, err := fsm{lease.NewFSM()}.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &Sink{FailWrite: errors.New("disk full")}
	if err := snap.Persist(sink); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("persist: %v", err)
	}
	if !sink.Cancelled() || sink.Closed() {
		t.Errorf("sink cancelled %v closed %v", sink.Cancelled(), sink.Closed())
	}
}
