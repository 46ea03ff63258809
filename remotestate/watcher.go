package remotestate

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/internal/clock"
)

// Leadership is the tracker as the watcher sees it.
type Leadership interface {
	// Leadership returns the tracker's latest state; ok is false until it
	// has heard from the controller.
	Leadership() (l LeaderState, ok bool)
	// Changes receives after the state changes (coalesced).
	Changes() <-chan struct{}
}

// LeaderState is the tracker's part of a snapshot.
type LeaderState struct {
	Leader   bool
	Term     uint64
	StepDown bool
	Gained   uint64
}

// UnitView is the controller's part of a snapshot.
type UnitView struct {
	Life                  Life
	ResolvedID            uint64
	ResolvedNoRetry       bool
	ConfigVersion         uint64
	LeaderSettingsVersion uint64
	// Term is the application's lease term as the controller has it.
	Term uint64
	// Operations are the unit's pending and running operations, oldest
	// first.
	Operations []Operation
	// Relations are the relations of the unit's application.
	Relations []Relation
}

// UnitClient is the blocking query of a unit's remote view.
type UnitClient interface {
	WatchUnit(ctx context.Context, unit string, index uint64, wait time.Duration) (UnitView, uint64, error)
}

// Config configures a Watcher.
type Config struct {
	Unit       string
	Client     UnitClient
	Leadership Leadership
	Clock      clock.Clock
	Logger     zerolog.Logger
	// Wait is the blocking query's wait (default 30s); RetryInterval
	// spaces retries after errors (default 500ms).
	Wait, RetryInterval time.Duration
	// Fatal reports whether a controller error must stop the agent.
	Fatal func(error) bool
}

// Watcher merges the tracker and the controller's unit view into
// Snapshots. One goroutine owns the merged state; a second runs the
// blocking query. Producers never block: changes coalesce.
type Watcher struct {
	cfg     Config
	mu      sync.Mutex
	snap    Snapshot
	ready   bool
	changes chan struct{}
	views   chan viewResult // latest value only
	cancel  context.CancelCauseFunc
	done    chan struct{}
	err     error
}

type viewResult struct {
	view UnitView
	err  error
}

// ErrStopped is returned by Wait after Kill.
var ErrStopped = errors.New("remotestate: watcher stopped")

// New starts a watcher.
func New(cfg Config) (*Watcher, error) {
	if cfg.Unit == "" || cfg.Client == nil || cfg.Leadership == nil || cfg.Clock == nil {
		return nil, errors.New("cannot start remote state watcher: unit, client, leadership and clock are required")
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 500 * time.Millisecond
	}
	if cfg.Fatal == nil {
		cfg.Fatal = func(error) bool { return false }
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	w := &Watcher{cfg: cfg, changes: make(chan struct{}, 1), views: make(chan viewResult, 1), cancel: cancel, done: make(chan struct{})}
	queryDone := make(chan struct{})
	go func() {
		defer close(queryDone)
		w.query(ctx)
	}()
	go func() {
		defer close(w.done)
		w.err = w.loop(ctx)
		cancel(w.err)
		<-queryDone
	}()
	return w, nil
}

// Kill stops the watcher.
func (w *Watcher) Kill() { w.cancel(nil) }

// Wait waits for the watcher to stop and returns why it failed, if it did.
func (w *Watcher) Wait() error {
	<-w.done
	return w.err
}

// Done is closed when the watcher has stopped.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Snapshot returns a copy of the latest snapshot.
func (w *Watcher) Snapshot() Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap
}

// Changes receives once the first snapshot is complete, and after every
// change since; bursts coalesce.
func (w *Watcher) Changes() <-chan struct{} { return w.changes }

func (w *Watcher) loop(ctx context.Context) error {
	var (
		view            UnitView
		haveView        bool
		leader          LeaderState
		haveLeader      bool
		leadershipEvent = w.cfg.Leadership.Changes()
	)
	leader, haveLeader = w.cfg.Leadership.Leadership()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-w.views:
			if r.err != nil {
				return r.err
			}
			view, haveView = r.view, true
		case <-leadershipEvent:
			leader, haveLeader = w.cfg.Leadership.Leadership()
		}
		if haveView && haveLeader {
			w.publish(merge(view, leader))
		}
	}
}

func merge(v UnitView, l LeaderState) Snapshot {
	s := Snapshot{
		Life: v.Life, Leader: l.Leader, Term: max(l.Term, v.Term), StepDown: l.StepDown, Gained: l.Gained,
		LeaderSettingsVersion: v.LeaderSettingsVersion, ConfigVersion: v.ConfigVersion,
		ResolvedID: v.ResolvedID, ResolvedNoRetry: v.ResolvedNoRetry,
	}
	if l.Leader {
		s.Term = l.Term
	}
	if s.Life == "" {
		s.Life = Alive
	}
	s.NextOperation, s.QueuedOperations = nextOperation(v.Operations), len(v.Operations)
	s.Relations = NewRelations(v.Relations...)
	return s
}

// nextOperation is the head of a queue: the first running operation, else
// the first (oldest) pending one.
func nextOperation(queue []Operation) Operation {
	for _, o := range queue {
		if o.Status == "running" {
			return o
		}
	}
	if len(queue) > 0 {
		return queue[0]
	}
	return Operation{}
}

func (w *Watcher) publish(s Snapshot) {
	w.mu.Lock()
	changed := !w.ready || w.snap != s
	w.snap, w.ready = s, true
	w.mu.Unlock()
	if !changed {
		return
	}
	select {
	case w.changes <- struct{}{}:
	default:
	}
}

// query runs the unit's blocking query, handing the latest view to loop.
// A fatal error is handed over too, and ends the query.
func (w *Watcher) query(ctx context.Context) {
	var index uint64
	delay := w.cfg.RetryInterval
	for ctx.Err() == nil {
		v, next, err := w.cfg.Client.WatchUnit(ctx, w.cfg.Unit, index, w.cfg.Wait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if w.cfg.Fatal(err) {
				w.offer(viewResult{err: err})
				return
			}
			w.cfg.Logger.Debug().Err(err).Msg("cannot watch unit")
			select {
			case <-w.cfg.Clock.After(delay):
			case <-ctx.Done():
			}
			delay = min(2*delay, 5*time.Second) // back off from a busy controller
			continue
		}
		delay = w.cfg.RetryInterval
		if next < index {
			next = 0
		}
		index = next
		w.offer(viewResult{view: v})
	}
}

func (w *Watcher) offer(r viewResult) {
	for {
		select {
		case w.views <- r:
			return
		default:
		}
		select {
		case <-w.views:
		default:
		}
	}
}
