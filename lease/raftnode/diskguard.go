package raftnode

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/internal/clock"
)

// Disk-full handling (docs/controller.md, "A full disk"). Raft writes its
// log and its stable keys (current term, last vote) to raft.db and its
// snapshots under snapshots/. On a full disk hashicorp/raft does two
// things of its own: a leader whose log write fails steps down, and a node
// whose write of its current term fails panics. Left alone, a node on a
// full disk therefore flaps: it steps down, stands for election, wins with
// a write small enough to fit in bbolt's free pages, fails the next larger
// one, and finally crashes into a restart loop. The guard turns that into
// one clean state: from the first "no space left on device" until the
// filesystem has room again, log writes fail at once (a leader steps down
// and stays down) and a stable-store write waits for room instead of
// failing, so the node does not stand for election and does not panic. A
// follower keeps following: heartbeats need no disk.

// diskRoom is the free space, in bytes, a full filesystem must have again
// before the node writes to it: enough for the entries and bbolt pages a
// resumed leader writes at once, so that it does not fill up again at the
// next write.
const diskRoom = 4 << 20

// diskRecheck is how often a waiting write checks for room again.
const diskRecheck = time.Second

// diskLogEvery is how often a full disk is logged at error, at most.
const diskLogEvery = time.Minute

// diskGuard watches raft's writes for ENOSPC. It is shared by the log,
// stable and snapshot store wrappers of one node.
type diskGuard struct {
	dir   string // the data directory: what statfs checks, what the log names
	clock clock.Clock
	log   zerolog.Logger
	stop  <-chan struct{} // closed when the node closes: waiting writes give up
	// free reports the bytes available to the node under dir.
	free func(dir string) (uint64, error)

	// full is read without mu on every write (the common case: not
	// full); mu guards its changes and the logging state.
	full     atomic.Bool
	mu       sync.Mutex
	lastLog  time.Time
	suppress int // full-disk errors not logged since lastLog
}

func newDiskGuard(dir string, clk clock.Clock, log zerolog.Logger, stop <-chan struct{}) *diskGuard {
	return &diskGuard{dir: dir, clock: clk, log: log, stop: stop, free: statfsFree}
}

// statfsFree is the space an unprivileged writer may use under dir.
func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// isFull reports whether err says the disk is full (or the quota spent).
func isFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Full reports whether the guard has seen the disk full and not yet seen
// room again.
func (g *diskGuard) Full() bool { return g.full.Load() }

// observe notes a write's error; a full disk is logged at most once per
// diskLogEvery, with the number of failures in between.
func (g *diskGuard) observe(what string, err error) {
	if err == nil || !isFull(err) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.full.Store(true)
	now := g.clock.Now()
	if !g.lastLog.IsZero() && now.Sub(g.lastLog) < diskLogEvery {
		g.suppress++
		return
	}
	g.log.Error().Err(err).Str("path", g.dir).Str("write", what).Int("failures_since_last_log", g.suppress).
		Msg("no space left on device: this node stops leading and writing until the disk has room again")
	g.lastLog, g.suppress = now, 0
}

// roomAgain checks, while full, whether the disk has room again; it
// clears the full state (and says so) if it has.
func (g *diskGuard) roomAgain() bool {
	if !g.full.Load() {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.full.Load() {
		return true
	}
	free, err := g.free(g.dir)
	if err != nil || free < diskRoom {
		return false
	}
	g.full.Store(false)
	g.lastLog, g.suppress = time.Time{}, 0
	g.log.Info().Str("path", g.dir).Uint64("free_bytes", free).Msg("disk has room again: this node writes again")
	return true
}

// refuse is the error of a write refused while the disk is full.
func (g *diskGuard) refuse() error {
	return &diskFullError{dir: g.dir}
}

// diskFullError is a write refused because the disk under dir is full.
type diskFullError struct{ dir string }

func (e *diskFullError) Error() string {
	return "no space left on device under " + e.dir + " (write refused until it has room again)"
}

// Is makes errors.Is(err, syscall.ENOSPC) true.
func (e *diskFullError) Is(target error) bool { return target == syscall.ENOSPC }

// write runs a log or snapshot write: refused at once while the disk is
// full, observed otherwise.
func (g *diskGuard) write(what string, fn func() error) error {
	if !g.roomAgain() {
		err := g.refuse()
		g.observe(what, err)
		return err
	}
	err := fn()
	g.observe(what, err)
	return err
}

// waitWrite runs a stable-store write, waiting while the disk is full.
// It gives up when the node closes, with the disk's error, unless
// mustWait: raft panics if it cannot save its current term, so that write
// waits even then (Close gives up on raft's shutdown after closeTimeout
// and says so; the process exits without a panic).
func (g *diskGuard) waitWrite(what string, mustWait bool, fn func() error) error {
	stop := g.stop
	if mustWait {
		stop = nil
	}
	for {
		var err error
		if g.roomAgain() {
			if err = fn(); err == nil || !isFull(err) {
				return err
			}
		} else {
			err = g.refuse()
		}
		g.observe(what, err)
		select {
		case <-stop:
			return err
		case <-g.clock.After(diskRecheck):
		}
	}
}

// guardedLogStore is raft's log store behind the guard.
type guardedLogStore struct {
	raft.LogStore
	g *diskGuard
}

// StoreLog implements raft.LogStore.
func (s guardedLogStore) StoreLog(l *raft.Log) error {
	return s.g.write("raft log", func() error { return s.LogStore.StoreLog(l) })
}

// StoreLogs implements raft.LogStore.
func (s guardedLogStore) StoreLogs(ls []*raft.Log) error {
	return s.g.write("raft log", func() error { return s.LogStore.StoreLogs(ls) })
}

// DeleteRange implements raft.LogStore (compaction frees space; it is
// never refused).
func (s guardedLogStore) DeleteRange(lo, hi uint64) error {
	err := s.LogStore.DeleteRange(lo, hi)
	s.g.observe("raft log compaction", err)
	return err
}

// guardedStableStore is raft's stable store behind the guard.
type guardedStableStore struct {
	raft.StableStore
	g *diskGuard
}

// currentTermKey is the stable key raft panics over if it cannot be set.
const currentTermKey = "CurrentTerm"

// Set implements raft.StableStore.
func (s guardedStableStore) Set(key, val []byte) error {
	return s.g.waitWrite("raft stable store", string(key) == currentTermKey, func() error { return s.StableStore.Set(key, val) })
}

// SetUint64 implements raft.StableStore.
func (s guardedStableStore) SetUint64(key []byte, val uint64) error {
	return s.g.waitWrite("raft stable store", string(key) == currentTermKey, func() error { return s.StableStore.SetUint64(key, val) })
}

// guardedSnapshots is raft's snapshot store behind the guard: a snapshot
// is not started while the disk is full, and its write errors are seen.
type guardedSnapshots struct {
	raft.SnapshotStore
	g *diskGuard
}

// Create implements raft.SnapshotStore.
func (s guardedSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	var sink raft.SnapshotSink
	err := s.g.write("raft snapshot", func() error {
		var err error
		sink, err = s.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
		return err
	})
	if err != nil {
		return nil, err
	}
	return guardedSink{SnapshotSink: sink, g: s.g}, nil
}

// guardedSink reports a snapshot's write errors to the guard.
type guardedSink struct {
	raft.SnapshotSink
	g *diskGuard
}

// Write implements io.Writer.
func (s guardedSink) Write(p []byte) (int, error) {
	n, err := s.SnapshotSink.Write(p)
	s.g.observe("raft snapshot", err)
	return n, err
}

// Close implements io.Closer.
func (s guardedSink) Close() error {
	err := s.SnapshotSink.Close()
	s.g.observe("raft snapshot", err)
	return err
}

var _ io.WriteCloser = guardedSink{}
