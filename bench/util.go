package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"
)

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// randomPhase is a uniformly random wait in [0, period): trials that
// start at a random point of a periodic process (a lease's renewal cycle)
// sample all of it.
func randomPhase(period time.Duration) time.Duration {
	return time.Duration(rand.Int64N(int64(period)))
}

// fileLimit is the RLIMIT_NOFILE the harness asks for (its children
// inherit it): B6 holds one connection per watching minion, 30,000 in all,
// split over fleet processes when the hard limit is lower.
const fileLimit = 200_000

// minFileLimit is what a B6 watcher fleet needs: one descriptor per
// watcher and some to spare.
const minFileLimit = watchersPerProcess + 2000

// raiseFileLimit raises RLIMIT_NOFILE to fileLimit, or as far as allowed.
func raiseFileLimit() error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("cannot read the file limit: %w", err)
	}
	if l.Cur >= fileLimit {
		return nil
	}
	want := syscall.Rlimit{Cur: fileLimit, Max: max(l.Max, fileLimit)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return nil
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("cannot raise the file limit: %w", err)
	}
	if l.Cur < minFileLimit {
		return fmt.Errorf("file limit is %d; B6's watcher fleets need %d each", l.Cur, minFileLimit)
	}
	return nil
}

// ms converts a nanosecond difference of CLOCK_MONOTONIC to milliseconds.
func ms(ns int64) float64 { return float64(ns) / 1e6 }
