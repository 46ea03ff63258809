// Package leadership is the unit agent's leadership tracker and the
// is-leader decision. The tracker claims the application lease for its unit,
// renews it well before it runs out, and knows at every moment until when
// the lease is guaranteed to the unit, on the agent's monotonic clock, by
// the call-start rule: a claim or extend that started at t0 and succeeded
// guarantees the lease until t0 + its duration. A minion waits on a blocking
// query and claims the moment the lease is vacant.
package leadership

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/internal/clock"
)

// Lease is what the tracker needs to know of the application lease.
type Lease struct {
	Holder   string
	Term     uint64
	StepDown bool
	Pinned   bool
}

// Client is the tracker's view of the controller's lease API. Denials are
// errors matching ErrClaimDenied, ErrNotHolder, ErrStepDownPending or
// ErrUnitDying (the adapter maps the controller's refusals to these), with
// the lease as it stands; any other error means nothing may be inferred.
//
// Claim, Extend and WatchLease also return the controller's modify index
// of their answer: the raft index at which the lease was written (a
// successful claim or extend), read (a denial) or last changed (a watch).
// Indexes order the answers: the tracker ignores a watch answer older than
// its own last claim or extend. 0 means the controller sent none (an older
// controller's denial); the tracker then trusts no watch answer against
// the lease it holds without asking the controller again.
type Client interface {
	Claim(ctx context.Context, app, unit string, d time.Duration) (Lease, uint64, error)
	Extend(ctx context.Context, app, unit string, d time.Duration, term uint64) (Lease, uint64, error)
	Revoke(ctx context.Context, app, unit string, term uint64) error
	// WatchLease blocks until the lease's index passes index, or wait.
	WatchLease(ctx context.Context, app string, index uint64, wait time.Duration) (Lease, uint64, error)
}

// Denials a Client reports. Each means the controller refused the call and
// changed nothing.
var (
	// ErrClaimDenied: another unit holds the lease.
	ErrClaimDenied = errors.New("leadership: claim denied")
	// ErrNotHolder: the unit does not hold the lease for that term.
	ErrNotHolder = errors.New("leadership: not the lease holder")
	// ErrStepDownPending: the holder was asked to step down, so it may no
	// longer extend (and nobody else may claim yet).
	ErrStepDownPending = errors.New("leadership: step-down pending")
	// ErrUnitDying: a dying unit may not claim a vacant lease.
	ErrUnitDying = errors.New("leadership: unit is dying")
)

// ErrFatal wraps a controller answer that makes tracking impossible (the
// unit is unknown or its token refused): the agent must stop.
var ErrFatal = errors.New("leadership: cannot track leadership")

// Config configures a Tracker.
type Config struct {
	App, Unit string
	Client    Client
	Clock     clock.Clock
	Logger    zerolog.Logger
	// Guarantee is G: a true is-leader holds for at least this long.
	Guarantee time.Duration
	// Margin is added to G to make the claim duration (default 500ms). It
	// must exceed the latency of one extend. A
	// crashed leader's successor can claim ClaimDuration plus the
	// controller's expiry slack after the leader's last renewal.
	Margin time.Duration
	// RetryInterval spaces retries after controller errors (default 250ms).
	RetryInterval time.Duration
	// WatchWait is the blocking query's wait (default 30s).
	WatchWait time.Duration
	// Fatal reports whether a controller error makes tracking impossible.
	Fatal func(error) bool
	// Observer, if set, is told each time the unit gains or loses the
	// lease.
	Observer Observer
}

// Observer is told of leadership changes, on the tracker's goroutine: its
// methods must return at once.
type Observer interface {
	LeadershipGained()
	LeadershipLost(reason LossReason)
}

// LossReason says why the tracker stopped holding the lease.
type LossReason string

// Loss reasons.
const (
	// LostTaken: the controller shows another holder or a later term.
	LostTaken LossReason = "taken"
	// LostExpired: the guarantee ran out before a renewal succeeded.
	LostExpired LossReason = "expired"
	// LostRefused: the controller refused an extend (not the holder).
	LostRefused LossReason = "refused"
	// LostReleased: the unit gave the lease up (after leader-deposed).
	LostReleased LossReason = "released"
)

// lossText is each reason as the tracker logs it.
var lossText = map[LossReason]string{
	LostTaken:   "lease held by another unit or term",
	LostExpired: "guarantee expired",
	LostRefused: "extend refused",
}

type nopObserver struct{}

func (nopObserver) LeadershipGained()         {}
func (nopObserver) LeadershipLost(LossReason) {}

// ClaimDuration is the lease duration the tracker claims: G + Margin.
func (c Config) ClaimDuration() time.Duration { return c.Guarantee + c.Margin }

func (c *Config) validate() error {
	if c.App == "" || c.Unit == "" || c.Client == nil || c.Clock == nil || c.Guarantee <= 0 {
		return errors.New("cannot start leadership tracker: app, unit, client, clock and a positive guarantee are required")
	}
	if c.Margin <= 0 {
		c.Margin = 500 * time.Millisecond
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 250 * time.Millisecond
	}
	if c.WatchWait <= 0 {
		c.WatchWait = 30 * time.Second
	}
	if c.Fatal == nil {
		c.Fatal = func(error) bool { return false }
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	return nil
}

// State is the tracker's published view.
type State struct {
	// Known is false until the tracker has heard from the controller once.
	Known bool
	// Leader: this unit holds the lease for Term.
	Leader bool
	// Term is the lease's current term, held by this unit or another.
	Term uint64
	// StepDown: the operator asked this leader to step down.
	StepDown bool
	// Gained counts the terms this tracker has gained since it started.
	Gained uint64
}

// Tracker tracks one unit's leadership. One goroutine owns its state; a
// second runs the blocking watch. Kill and Wait stop them.
type Tracker struct {
	cfg     Config
	log     zerolog.Logger
	checks  chan checkReq
	resigns chan resignReq
	renews  chan chan error
	holds   chan checkReq
	watched chan watchResult // latest value only
	changes chan struct{}    // coalescing
	pub     chan State       // latest published state, size 1
	// guaranteed is the lease the tracker holds, as of its last event:
	// Guarantee reads it without a round trip through the loop.
	guaranteed atomic.Pointer[Guaranteed]
	ctx        context.Context
	cancel     context.CancelCauseFunc
	done       chan struct{}
	err        error
}

type checkReq struct {
	term  uint64
	reply chan bool
}

type resignReq struct {
	term  uint64
	reply chan error
}

type watchResult struct {
	lease Lease
	index uint64 // the answer's modify index
	// reset: the index went back since the previous answer (a restored
	// controller, or a node that lags): earlier indexes compare with
	// nothing any more.
	reset bool
	err   error
}

// New starts a tracker.
func New(cfg Config) (*Tracker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	t := &Tracker{
		cfg: cfg, log: cfg.Logger.With().Str("app", cfg.App).Logger(),
		checks: make(chan checkReq), resigns: make(chan resignReq), renews: make(chan chan error), holds: make(chan checkReq),
		watched: make(chan watchResult, 1), changes: make(chan struct{}, 1), pub: make(chan State, 1),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	t.pub <- State{}
	t.guaranteed.Store(&Guaranteed{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		t.watch(ctx)
	}()
	go func() {
		defer close(t.done)
		t.err = t.loop(ctx)
		cancel(t.err)
		<-watchDone
	}()
	return t, nil
}

// Kill asks the tracker to stop. It keeps the lease: a restarted agent
// finds it still held and carries on.
func (t *Tracker) Kill() { t.cancel(nil) }

// Wait waits for the tracker to stop and returns why it failed, if it did.
func (t *Tracker) Wait() error {
	<-t.done
	return t.err
}

// Done is closed when the tracker has stopped.
func (t *Tracker) Done() <-chan struct{} { return t.done }

// State returns the latest published state.
func (t *Tracker) State() State {
	s := <-t.pub
	t.pub <- s
	return s
}

// Guaranteed is the lease the tracker holds, as Guarantee reports it.
type Guaranteed struct {
	// Held: the tracker holds the lease (a step-down may be pending).
	Held bool
	// Until is when the guarantee ends, on the agent's clock (zero when
	// not Held).
	Until time.Time
}

// Guarantee returns the lease the tracker holds as of its last event,
// without waiting for the tracker's goroutine (metrics read it at every
// scrape). Until may already have passed: the tracker notices on its
// timer; Holds asks it fresh.
func (t *Tracker) Guarantee() Guaranteed { return *t.guaranteed.Load() }

// Changes receives a value after the state changes; bursts coalesce.
func (t *Tracker) Changes() <-chan struct{} { return t.changes }

// Check is the lease half of the is-leader decision: it reports whether
// this unit holds term, no step-down is pending, and the lease is
// guaranteed for at least G from now. If the guarantee is shorter, it
// extends synchronously first; if it cannot, the answer is false.
func (t *Tracker) Check(ctx context.Context, term uint64) (bool, error) {
	req := checkReq{term: term, reply: make(chan bool, 1)}
	select {
	case t.checks <- req:
	case <-ctx.Done():
		return false, context.Cause(ctx)
	case <-t.done:
		return false, fmt.Errorf("cannot check leadership: %w", t.stopped())
	}
	select {
	case ok := <-req.reply:
		return ok, nil
	case <-ctx.Done():
		return false, context.Cause(ctx)
	case <-t.done:
		return false, fmt.Errorf("cannot check leadership: %w", t.stopped())
	}
}

// Holds reports whether the tracker still holds term with some of its
// guarantee left, by the agent's clock, now. Unlike the published State it
// cannot be stale: an agent that was frozen past its lease learns here that
// it lost it, before its tracker's own timer has fired.
func (t *Tracker) Holds(ctx context.Context, term uint64) bool {
	req := checkReq{term: term, reply: make(chan bool, 1)}
	select {
	case t.holds <- req:
	case <-ctx.Done():
		return false
	case <-t.done:
		return false
	}
	select {
	case ok := <-req.reply:
		return ok
	case <-ctx.Done():
		return false
	case <-t.done:
		return false
	}
}

// Renew extends a held lease now, so that it lasts a whole claim duration
// from this moment. An agent stopping gracefully calls it last: a restart
// then has the longest window in which nothing changes.
func (t *Tracker) Renew(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case t.renews <- reply:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.done:
		return fmt.Errorf("cannot renew lease: %w", t.stopped())
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.done:
		return fmt.Errorf("cannot renew lease: %w", t.stopped())
	}
}

// Resign releases the lease for term after leader-deposed has run (a
// step-down or a unit removal). Releasing a lease no longer held is not an
// error.
func (t *Tracker) Resign(ctx context.Context, term uint64) error {
	req := resignReq{term: term, reply: make(chan error, 1)}
	select {
	case t.resigns <- req:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.done:
		return fmt.Errorf("cannot resign leadership: %w", t.stopped())
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.done:
		return fmt.Errorf("cannot resign leadership: %w", t.stopped())
	}
}

func (t *Tracker) stopped() error {
	if err := context.Cause(t.ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return errors.New("leadership tracker stopped")
}

// maxWatchRetry caps the backoff of a failing blocking query.
const maxWatchRetry = 5 * time.Second

// watch runs the blocking query and hands the latest lease to the loop.
func (t *Tracker) watch(ctx context.Context) {
	var index uint64
	delay := t.cfg.RetryInterval
	for ctx.Err() == nil {
		l, next, err := t.cfg.Client.WatchLease(ctx, t.cfg.App, index, t.cfg.WatchWait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			t.offerWatch(watchResult{err: err})
			select {
			case <-t.cfg.Clock.After(delay):
			case <-ctx.Done():
			}
			// Back off, so a busy controller is not hammered by every
			// agent at once; the guarantee does not depend on the watch.
			delay = min(2*delay, maxWatchRetry)
			continue
		}
		delay = t.cfg.RetryInterval
		r := watchResult{lease: l, index: next}
		if next < index {
			next = 0 // the controller's index went back (restored): start over
			r.reset = true
		}
		index = next
		t.offerWatch(r)
	}
}

// offerWatch replaces any unread watch result with r: never blocks. A
// reset of the result it replaces carries over.
func (t *Tracker) offerWatch(r watchResult) {
	for {
		select {
		case t.watched <- r:
			return
		default:
		}
		select {
		case old := <-t.watched:
			r.reset = r.reset || old.reset
		default:
		}
	}
}

// Denial marks err, a refusal from the controller, as the denial as (one
// of ErrClaimDenied, ErrNotHolder, ErrStepDownPending, ErrUnitDying): its
// Error() is err's, and errors.Is matches as and whatever err matches.
// Adapters that implement Client use it to translate the controller's
// refusals into the tracker's words.
func Denial(as, err error) error { return &denial{as: as, err: err} }

type denial struct{ as, err error }

func (d *denial) Error() string        { return d.err.Error() }
func (d *denial) Unwrap() error        { return d.err }
func (d *denial) Is(target error) bool { return target == d.as }
