// Package clocktest provides a fake clock.Clock that only moves when a test
// advances it.
package clocktest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/uniter-dev/uniter/internal/clock"
)

// Clock is a fake clock. Its zero value is not usable; call New.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer
	changed chan struct{} // closed and replaced whenever the set of timers changes
}

var _ clock.Clock = (*Clock)(nil)

// New returns a fake clock reading start.
func New(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives once the clock has advanced by d.
func (c *Clock) After(d time.Duration) <-chan time.Time { return c.NewTimer(d).Chan() }

// NewTimer returns a timer that fires once the clock has advanced by d.
func (c *Clock) NewTimer(d time.Duration) clock.Timer {
	t := &timer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.schedule(t, d)
	return t
}

// Advance moves the clock forward by d and fires every timer now due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.when.After(c.now) {
			t.fire(c.now)
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
	c.notify()
}

// Waiters returns how many timers are pending.
func (c *Clock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Deadlines returns when each pending timer will fire, soonest first.
func (c *Clock) Deadlines() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, 0, len(c.timers))
	for _, t := range c.timers {
		out = append(out, t.when)
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// WaitForWaiters blocks until at least n timers are pending, or ctx ends.
func (c *Clock) WaitForWaiters(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		got, changed := len(c.timers), c.changed
		c.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("cannot see %d clock waiters (have %d): %w", n, got, ctx.Err())
		}
	}
}

// schedule adds t to fire at now+d. Callers hold c.mu.
func (c *Clock) schedule(t *timer, d time.Duration) {
	t.when = c.now.Add(d)
	if d <= 0 {
		t.fire(c.now)
		c.notify()
		return
	}
	c.timers = append(c.timers, t)
	c.notify()
}

// remove drops t from the pending timers, reporting whether it was there.
func (c *Clock) remove(t *timer) bool {
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			c.notify()
			return true
		}
	}
	return false
}

func (c *Clock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type timer struct {
	c    *Clock
	when time.Time
	ch   chan time.Time
}

func (t *timer) fire(now time.Time) {
	select {
	case t.ch <- now:
	default:
	}
}

func (t *timer) Chan() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.c.remove(t)
}

func (t *timer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	active := t.c.remove(t)
	t.c.schedule(t, d)
	return active
}
