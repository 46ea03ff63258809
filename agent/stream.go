package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/leadership"
	"github.com/uniter-dev/uniter/remotestate"
)

// unitSource is the controller's unit watch (client.Client).
type unitSource interface {
	WatchUnitStream(ctx context.Context, unit string, index uint64, wait time.Duration) (client.UnitWatch, error)
}

// maxStreamRetry caps the backoff of a failing unit watch.
const maxStreamRetry = 5 * time.Second

// errNoAnswer is what a reader of the stream gets when its wait ends
// before the controller has answered once.
var errNoAnswer = errors.New("no answer from the controller's unit watch yet")

// unitStream is the agent's one blocking query on the controller: the
// unit's watch (GET /v1/units/{app}/{n}/watch), which carries the unit's
// record, its application's config and leader-settings versions and
// lease, its relations and its operation queue, and whose index moves
// when any of them changes. One goroutine (run) holds the query; the
// remote state watcher and the leadership tracker each read the stream
// as a blocking query of their own (reader.next), answered from its
// latest answer on the agent's side, so that the agent parks one query on
// the controller instead of one per reader.
type unitStream struct {
	src   unitSource
	unit  string
	clock clock.Clock
	log   zerolog.Logger
	// wait is the controller query's wait; retry the first delay after an
	// error.
	wait, retry time.Duration
	fatal       func(error) bool

	mu      sync.Mutex
	latest  streamAnswer  // the latest answer or error
	good    streamAnswer  // the latest answer that was not an error
	changed chan struct{} // closed and replaced at each answer
}

// streamAnswer is one answer of the unit watch, or its error. seq counts
// them (0: none yet).
type streamAnswer struct {
	seq   uint64
	watch client.UnitWatch
	err   error
	// fatal: err ends the stream (every later read returns it).
	fatal bool
}

// newUnitStream is the unit's stream; run starts it.
func newUnitStream(src unitSource, unit string, clk clock.Clock, log zerolog.Logger, fatal func(error) bool) *unitStream {
	return &unitStream{src: src, unit: unit, clock: clk, log: log, wait: 30 * time.Second, retry: 500 * time.Millisecond,
		fatal: fatal, changed: make(chan struct{})}
}

// run holds the blocking query until ctx ends or the controller answers
// with a fatal error, which every reader then gets.
func (s *unitStream) run(ctx context.Context) {
	var index uint64
	delay := s.retry
	for ctx.Err() == nil {
		w, err := s.src.WatchUnitStream(ctx, s.unit, index, s.wait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			fatal := s.fatal(err)
			s.publish(streamAnswer{err: err, fatal: fatal})
			if fatal {
				return
			}
			s.log.Debug().Err(err).Msg("cannot watch unit")
			select {
			case <-s.clock.After(delay):
			case <-ctx.Done():
			}
			delay = min(2*delay, maxStreamRetry) // back off from a busy controller
			continue
		}
		delay = s.retry
		next := w.Index
		if next < index {
			next = 0 // the controller's index went back (restored): start over
		}
		index = next
		s.publish(streamAnswer{watch: w})
	}
}

// publish makes a the latest answer and wakes every reader.
func (s *unitStream) publish(a streamAnswer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a.seq = s.latest.seq + 1
	s.latest = a
	if a.err == nil {
		s.good = a
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// legacy reports whether the latest answer came from a controller that
// does not send the application's lease in the unit watch.
func (s *unitStream) legacy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.good.seq != 0 && !s.good.watch.LeaseSent
}

// reader is one reader's place in the stream: the answers it has had.
type reader struct {
	s    *unitStream
	seen uint64
}

// reader is a new reader of the stream, which has had no answer yet.
func (s *unitStream) reader() *reader { return &reader{s: s} }

// next is a blocking query on the stream: it returns the first answer
// this reader has not had whose index is not index (any answer, for
// index 0), or an error the controller answered with; after wait, the
// latest answer as it stands. An index that went back (a restored
// controller) is returned like any other: the reader sees it go back.
func (r *reader) next(ctx context.Context, index uint64, wait time.Duration) (client.UnitWatch, error) {
	timer := r.s.clock.NewTimer(wait)
	defer timer.Stop()
	for {
		r.s.mu.Lock()
		a, good, changed := r.s.latest, r.s.good, r.s.changed
		r.s.mu.Unlock()
		if a.fatal {
			return client.UnitWatch{}, a.err
		}
		if a.seq > r.seen {
			r.seen = a.seq
			if a.err != nil {
				return client.UnitWatch{}, a.err
			}
			if index == 0 || a.watch.Index != index {
				return a.watch, nil
			}
		}
		select {
		case <-changed:
		case <-timer.Chan():
			if good.seq == 0 {
				return client.UnitWatch{}, errNoAnswer
			}
			return good.watch, nil
		case <-ctx.Done():
			return client.UnitWatch{}, context.Cause(ctx)
		}
	}
}

// streamUnitClient is the remote state watcher's unit watch, read from
// the stream.
type streamUnitClient struct{ r *reader }

// WatchUnit implements remotestate.UnitClient.
func (a streamUnitClient) WatchUnit(ctx context.Context, _ string, index uint64, wait time.Duration) (remotestate.UnitView, uint64, error) {
	w, err := a.r.next(ctx, index, wait)
	if err != nil {
		return remotestate.UnitView{}, 0, err
	}
	return toUnitView(w.View), w.Index, nil
}

// streamLeaseClient is the tracker's lease client: claims, extends and
// revokes are the controller's own calls, the lease's watch is read from
// the stream. Against a controller node that does not send the lease in
// the unit watch it watches the lease itself, as agents did before.
type streamLeaseClient struct {
	leaseClient
	r *reader
}

// WatchLease implements leadership.Client's watch.
func (a streamLeaseClient) WatchLease(ctx context.Context, app string, index uint64, wait time.Duration) (leadership.Lease, uint64, error) {
	if a.r.s.legacy() {
		return a.leaseClient.WatchLease(ctx, app, index, wait)
	}
	w, err := a.r.next(ctx, index, wait)
	if err != nil {
		return leadership.Lease{}, 0, denial(err)
	}
	if !w.LeaseSent {
		// The node that answered sends no lease: read it at once, and
		// watch it directly while the stream's answers lack it.
		return a.leaseClient.WatchLease(ctx, app, 0, 0)
	}
	return toLease(w.View.Lease), w.Index, nil
}
