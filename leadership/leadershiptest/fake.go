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
}

// ErrDown is returned while the fake is marked unreachable.
var ErrDown = errors.New("leadershiptest: controller unreachable")

// New returns a controller whose global time starts at start, with units
// registered in their applications.
func New(start time.Time, units ...string) *Controller {
	c := &Controller{st: lease.NewState(), changed: make(chan struct{}), calls: map[string]int{}}
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

// Client returns the tracker-facing client. It implements leadership.Client.
func (c *Controller) Client() leadership.Client { return client{c} }

type client struct{ c *Controller }

func view(l *lease.Lease) leadership.Lease {
	if l == nil {
		return leadership.Lease{}
	}
	return leadership.Lease{Holder: l.Holder, Term: l.Term, StepDown: l.StepDownRequested, Pinned: l.Pinned()}
}

func (k client) call(name string, op lease.Op) (leadership.Lease, error) {
	c := k.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[name]++
	if c.down != nil {
		return leadership.Lease{}, c.down
	}
	res := c.apply(op)
	return view(res.Lease), denial(res.Err)
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

func (k client) Claim(_ context.Context, app, unit string, d time.Duration) (leadership.Lease, error) {
	return k.call("claim", lease.Claim{App: app, Unit: unit, Duration: d})
}

func (k client) Extend(_ context.Context, app, unit string, d time.Duration, term uint64) (leadership.Lease, error) {
	return k.call("extend", lease.Extend{App: app, Unit: unit, Duration: d, Term: term})
}

func (k client) Revoke(_ context.Context, app, unit string, term uint64) error {
	_, err := k.call("revoke", lease.Revoke{App: app, Unit: unit, Term: term})
	return err
}

func (k client) WatchLease(ctx context.Context, app string, index uint64, wait time.Duration) (leadership.Lease, uint64, error) {
	c := k.c
	for {
		c.mu.Lock()
		c.calls["watch"]++
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
