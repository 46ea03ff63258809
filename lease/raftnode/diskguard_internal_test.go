package raftnode

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// fakeDisk is a filesystem whose writes fail with ENOSPC while it has
// less than diskRoom free.
type fakeDisk struct {
	free   atomic.Uint64
	writes atomic.Int64 // attempted
}

func (d *fakeDisk) write() error {
	d.writes.Add(1)
	if d.free.Load() < diskRoom {
		return fmt.Errorf("write raft.db: %w", syscall.ENOSPC)
	}
	return nil
}

func newTestGuard(t *testing.T, disk *fakeDisk) (*diskGuard, *clocktest.Clock, *testutil.Buffer, chan struct{}) {
	t.Helper()
	clk := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	logs := &testutil.Buffer{}
	stop := make(chan struct{})
	g := newDiskGuard("/data/node-1", clk, zerolog.New(logs), stop)
	g.free = func(string) (uint64, error) { return disk.free.Load(), nil }
	return g, clk, logs, stop
}

// TestDiskGuardRefusesLogWritesUntilRoom: after the first ENOSPC the log
// store refuses writes without touching the disk (a leader steps down and
// stays down), logs at error at most once a minute, and writes again once
// the disk has room.
func TestDiskGuardRefusesLogWritesUntilRoom(t *testing.T) {
	disk := &fakeDisk{}
	disk.free.Store(diskRoom)
	g, clk, logs, _ := newTestGuard(t, disk)

	if err := g.write("raft log", disk.write); err != nil || g.Full() {
		t.Fatalf("a write with room: %v, full %v", err, g.Full())
	}
	disk.free.Store(100)
	err := g.write("raft log", disk.write)
	if !errors.Is(err, syscall.ENOSPC) || !g.Full() {
		t.Fatalf("the write that fills the disk: %v, full %v", err, g.Full())
	}
	tried := disk.writes.Load()
	for range 5 {
		if err := g.write("raft log", disk.write); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("a write while full: %v", err)
		}
	}
	if disk.writes.Load() != tried {
		t.Fatalf("writes while full reached the disk: %d, want %d", disk.writes.Load(), tried)
	}
	const line = `"message":"no space left on device`
	if n := strings.Count(logs.String(), line); n != 1 {
		t.Fatalf("%d error lines within a minute, want 1:\n%s", n, logs)
	}
	for _, want := range []string{`"level":"error"`, `"path":"/data/node-1"`} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("the error line lacks %s:\n%s", want, logs)
		}
	}
	clk.Advance(diskLogEvery)
	g.write("raft log", disk.write)
	if n := strings.Count(logs.String(), line); n != 2 {
		t.Fatalf("%d error lines after a minute, want 2:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), `"failures_since_last_log":5`) {
		t.Fatalf("the second line does not count the failures in between:\n%s", logs)
	}

	disk.free.Store(diskRoom)
	if err := g.write("raft log", disk.write); err != nil || g.Full() {
		t.Fatalf("a write once there is room: %v, full %v", err, g.Full())
	}
	if !strings.Contains(logs.String(), "disk has room again") {
		t.Fatalf("recovery not logged:\n%s", logs)
	}
}

// TestDiskGuardStableWritesWait: a stable-store write waits for room
// instead of failing (raft panics if its term cannot be saved); a write
// other than the current term gives up when the node closes, the current
// term's never does.
func TestDiskGuardStableWritesWait(t *testing.T) {
	for _, tc := range []struct {
		key       string
		giveUpErr bool
	}{
		{key: "LastVoteTerm", giveUpErr: true},
		{key: currentTermKey},
	} {
		t.Run(tc.key, func(t *testing.T) {
			disk := &fakeDisk{}
			g, clk, _, stop := newTestGuard(t, disk)
			done := make(chan error, 1)
			go func() {
				done <- guardedStableStore{g: g, StableStore: fakeStable{disk}}.SetUint64([]byte(tc.key), 7)
			}()
			// It retries once per diskRecheck while full.
			for range 3 {
				if err := clk.WaitForWaiters(t.Context(), 1); err != nil {
					t.Fatal(err)
				}
				clk.Advance(diskRecheck)
			}
			select {
			case err := <-done:
				t.Fatalf("the write returned while the disk was full: %v", err)
			default:
			}
			close(stop)
			if tc.giveUpErr {
				if err := <-done; !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("a write given up at close: %v", err)
				}
				return
			}
			// The current term still waits; room lets it through.
			if err := clk.WaitForWaiters(t.Context(), 1); err != nil {
				t.Fatal(err)
			}
			disk.free.Store(diskRoom)
			clk.Advance(diskRecheck)
			if err := <-done; err != nil {
				t.Fatalf("the current term's write once there is room: %v", err)
			}
		})
	}
}

// fakeStable is a stable store on a fakeDisk; only its writes are used.
type fakeStable struct{ d *fakeDisk }

func (f fakeStable) Set(key, val []byte) error              { return f.d.write() }
func (f fakeStable) Get(key []byte) ([]byte, error)         { return nil, nil }
func (f fakeStable) SetUint64(key []byte, val uint64) error { return f.d.write() }
func (f fakeStable) GetUint64(key []byte) (uint64, error)   { return 0, nil }
