// Package leadershiptest provides an in-process lease controller for tests
// of the leadership tracker: the real lease state machine, with its global
// time driven by the test instead of a raft leader's time advancer.
package leadershiptest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/uniter-dev/uniter/leadership"
	"github.com/uniter-dev/uniter/lease"
)

// Controller is the fake. Its zero value is not usable; call New.
type Controller struct {
	mu      sync.Mutex
	st      *lease.State
	index   uint64
	changed chan struct{}
	down    error // non-nil: every call fails with it
	calls   map[string]int
	gates   map[string]chan struct{} // held calls wait for the channel to close
}

// ErrDown is returned while the fake is marked unreachable.
var ErrDown = errors.New("leadershiptest: controller unreachable")

// New returns a controller whose global time starts at start, with units
// registered in their applications.
func New(start time.Time, units ...string) *Controller {
	c := &Controller{st: lease.NewState(), changed: make(chan struct{}), calls: map[string]int{}, gates: map[string]chan struct{}{}}
	c.apply(lease.AdvanceTime{Old: time.Time{}, New: start.UTC(), Slack: 0})
	for _, u := range units {
		c.apply(lease.RegisterUnit{Name: u, TokenHash: lease.HashToken(u)})
	}
	return c
}

func (c *Controller) apply(op lease.Op) lease.Result {
	c.index++
	res := c.st.Apply(c.index, op)
	close(c.changed)
	c.changed = make(chan struct{})
	return res
}

// Apply applies an arbitrary command (a step-down request, a pin, …).
func (c *Controller) Apply(op lease.Op) lease.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.apply(op)
}

// Advance moves the global time forward by d, expiring leases as the real
// time advancer would, with slack.
func (c *Controller) Advance(d, slack time.Duration) lease.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.apply(lease.AdvanceTime{Old: c.st.GlobalTime, New: c.st.GlobalTime.Add(d), Slack: slack})
}

// Lease returns the lease of app.
func (c *Controller) Lease(app string) lease.Lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.st.Applications[app]; ok {
		return a.Lease.Clone()
	}
	return lease.Lease{}
}

// SetDown makes every call fail with err (nil: reachable again).
func (c *Controller) SetDown(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = err
	close(c.changed)
	c.changed = make(chan struct{})
}

// Calls returns how many times the named call was made.
func (c *Controller) Calls(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[name]
}

// Hold makes every later call named name ("claim", "extend", "revoke" or
// "watch") wait, once counted and before it reads or changes anything,
// until release is called or the call's context ends. With it a test
// fixes the order in which a call and a change interleave: a claim held
// while the application changes, say, or a watch held after the answer it
// already gave.
func (c *Controller) Hold(name string) (release func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gate := make(chan struct{})
	c.gates[name] = gate
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.gates[name] == gate {
				delete(c.gates, name)
			}
			close(gate)
		})
	}
}

// wait counts a call named name and waits while it is held.
func (c *Controller) wait(ctx context.Context, name string) error {
	c.mu.Lock()
	c.calls[name]++
	gate := c.gates[name]
	c.mu.Unlock()
	if gate == nil {
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Client returns the tracker-facing client. It implements leadership.Client.
func (c *Controller) Client() leadership.Client { return client{c} }

type client struct{ c *Controller }

func view(l *lease.Lease) leadership.Lease {
	if l == nil {
		return leadership.Lease{}
	}
	return leadership.Lease{Holder: l.Holder, Term: l.Term, StepDown: l.StepDownRequested, Pinned: l.Pinned()}
}

// call applies op and answers like the controller: the lease after it (or
// as it stands, on a denial) and the index it was applied at.
func (k client) call(ctx context.Context, name string, op lease.Op) (leadership.Lease, uint64, error) {
	c := k.c
	if err := c.wait(ctx, name); err != nil {
		return leadership.Lease{}, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down != nil {
		return leadership.Lease{}, 0, c.down
	}
	res := c.apply(op)
	return view(res.Lease), res.Index, denial(res.Err)
}

// denials maps the state machine's refusals to the tracker's, as the
// agent's adapter maps the API's.
var denials = []struct{ from, to error }{
	{lease.ErrClaimDenied, leadership.ErrClaimDenied},
	{lease.ErrNotHolder, leadership.ErrNotHolder},
	{lease.ErrStepDownPending, leadership.ErrStepDownPending},
	{lease.ErrUnitDying, leadership.ErrUnitDying},
}

func denial(err error) error {
	for _, d := range denials {
		if errors.Is(err, d.from) {
			return leadership.Denial(d.to, err)
		}
	}
	return err
}

func (k client) Claim(ctx context.Context, app, unit string, d time.Duration) (leadership.Lease, uint64, error) {
	return k.call(ctx, "claim", lease.Claim{App: app, Unit: unit, Duration: d})
}

func (k client) Extend(ctx context.Context, app, unit string, d time.Duration, term uint64) (leadership.Lease, uint64, error) {
	return k.call(ctx, "extend", lease.Extend{App: app, Unit: unit, Duration: d, Term: term})
}

func (k client) Revoke(ctx context.Context, app, unit string, term uint64) error {
	_, _, err := k.call(ctx, "revoke", lease.Revoke{App: app, Unit: unit, Term: term})
	return err
}

func (k client) WatchLease(ctx context.Context, app string, index uint64, wait time.Duration) (leadership.Lease, uint64, error) {
	c := k.c
	if err := c.wait(ctx, "watch"); err != nil {
		return leadership.Lease{}, 0, err
	}
	for first := true; ; first = false {
		c.mu.Lock()
		if !first {
			c.calls["watch"]++ // one call per wake; wait counted the first
		}
		down, changed := c.down, c.changed
		idx := c.st.ApplicationIndex(app)
		var l leadership.Lease
		if a, ok := c.st.Applications[app]; ok {
			l = view(&a.Lease)
		}
		c.mu.Unlock()
		if down != nil {
			return leadership.Lease{}, 0, down
		}
		if idx > index {
			return l, idx, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return leadership.Lease{}, 0, ctx.Err()
		}
	}
}
