// Package machinelock is the lock every unit agent on a machine shares, so
// that only one hook runs on the machine at a time. It is an flock(2) on a
// file; every hold is appended to machine-lock.log beside it, which is
// rotated to machine-lock.log.1 when it reaches MaxLogBytes.
package machinelock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uniter-dev/uniter/internal/clock"
)

// Config configures a Lock.
type Config struct {
	// Path is the lock file; the log is machine-lock.log in its directory.
	Path string
	// Unit is who holds the lock, as recorded in the log.
	Unit  string
	Clock clock.Clock
	// MaxLogBytes is the size at which machine-lock.log is renamed to
	// machine-lock.log.1 (replacing it) and started afresh, so the log
	// keeps at most about twice this. 0 means DefaultMaxLogBytes.
	MaxLogBytes int64
	// Observer, if set, is told how long each Acquire waited (when it
	// gets the lock) and how long the lock was held (at release).
	Observer Observer
}

// Observer is told of the lock's waits and holds. Its methods must return
// at once.
type Observer interface {
	LockWaited(d time.Duration)
	LockHeld(d time.Duration)
}

// DefaultMaxLogBytes bounds machine-lock.log: about 10,000 holds.
const DefaultMaxLogBytes = 1 << 20

// Lock is the machine lock as seen by one agent. Each Acquire opens the file
// anew, so two holders in one process exclude each other as well.
type Lock struct {
	cfg     Config
	logPath string
}

// New returns the lock described by cfg, creating its directory.
func New(cfg Config) (*Lock, error) {
	if cfg.Path == "" || cfg.Unit == "" || cfg.Clock == nil {
		return nil, errors.New("cannot create machine lock: path, unit and clock are required")
	}
	if cfg.MaxLogBytes <= 0 {
		cfg.MaxLogBytes = DefaultMaxLogBytes
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create machine lock: %w", err)
	}
	return &Lock{cfg: cfg, logPath: filepath.Join(filepath.Dir(cfg.Path), "machine-lock.log")}, nil
}

// LogPath returns the path of the hold log.
func (l *Lock) LogPath() string { return l.logPath }

// Acquire blocks until the lock is held or ctx ends. The release function
// unlocks it and appends the hold to the log.
func (l *Lock) Acquire(ctx context.Context, op string) (func(), error) {
	start := l.cfg.Clock.Now()
	f, err := os.OpenFile(l.cfg.Path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot acquire machine lock: %w", err)
	}
	if err := flock(ctx, f); err != nil {
		return nil, fmt.Errorf("cannot acquire machine lock: %w", err)
	}
	acquired := l.cfg.Clock.Now()
	if l.cfg.Observer != nil {
		l.cfg.Observer.LockWaited(acquired.Sub(start))
	}
	return func() {
		held := l.cfg.Clock.Now().Sub(acquired)
		// Log while still holding the lock, so log lines are in hold order.
		l.appendLog(op, acquired.Sub(start), held)
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
		if l.cfg.Observer != nil {
			l.cfg.Observer.LockHeld(held)
		}
	}, nil
}

// flock takes an exclusive lock on f, closing f if ctx ends first. A
// blocked flock(2) cannot be interrupted, so the wait runs in a goroutine
// that gives the lock straight back if nobody wants it any more.
func flock(ctx context.Context, f *os.File) error {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		return nil
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return err
	}
	got := make(chan error) // unbuffered: a lock nobody takes is handed back
	abandon := make(chan struct{})
	go func() {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		select {
		case got <- err:
		case <-abandon:
			f.Close() // closing the file releases the lock
		}
	}()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
		}
		return err
	case <-ctx.Done():
		close(abandon)
		return context.Cause(ctx)
	}
}

func (l *Lock) appendLog(op string, waited, held time.Duration) {
	line := fmt.Sprintf("%s unit=%s op=%q waited=%s held=%s\n",
		l.cfg.Clock.Now().UTC().Format(time.RFC3339Nano), l.cfg.Unit, op, waited, held)
	// The caller holds the machine lock, so no other agent appends or
	// rotates meanwhile.
	if fi, err := os.Stat(l.logPath); err == nil && fi.Size()+int64(len(line)) > l.cfg.MaxLogBytes {
		os.Rename(l.logPath, l.logPath+".1")
	}
	f, err := os.OpenFile(l.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return // the log is advisory; never fail a hook over it
	}
	defer f.Close()
	f.WriteString(line)
}
