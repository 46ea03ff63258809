package remotestate_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/remotestate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeLeadership is a hand-set tracker.
type fakeLeadership struct {
	mu      sync.Mutex
	state   remotestate.LeaderState
	known   bool
	changes chan struct{}
}

func (f *fakeLeadership) Leadership() (remotestate.LeaderState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.known
}

func (f *fakeLeadership) Changes() <-chan struct{} { return f.changes }

func (f *fakeLeadership) set(s remotestate.LeaderState) {
	f.mu.Lock()
	f.state, f.known = s, true
	f.mu.Unlock()
	select {
	case f.changes <- struct{}{}:
	default:
	}
}

// fakeUnits serves views from a channel, one per blocking query.
type fakeUnits struct{ views chan remotestate.UnitView }

func (f *fakeUnits) WatchUnit(ctx context.Context, _ string, index uint64, _ time.Duration) (remotestate.UnitView, uint64, error) {
	select {
	case v := <-f.views:
		return v, index + 1, nil
	case <-ctx.Done():
		return remotestate.UnitView{}, 0, ctx.Err()
	}
}

func start(t *testing.T) (*remotestate.Watcher, *fakeLeadership, *fakeUnits) {
	t.Helper()
	l := &fakeLeadership{changes: make(chan struct{}, 1)}
	u := &fakeUnits{views: make(chan remotestate.UnitView)}
	w, err := remotestate.New(remotestate.Config{Unit: "app/0", Client: u, Leadership: l,
		Clock: clocktest.New(time.Unix(0, 0)), Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.Kill()
		if err := w.Wait(); err != nil {
			t.Error(err)
		}
	})
	return w, l, u
}

// The tests run in synctest bubbles: synctest.Wait returns once every
// goroutine of the watcher is blocked, so "nothing was published" and
// "the change arrived" are facts, not timeouts.

// published reports whether a change signal is pending.
func published(w *remotestate.Watcher) bool {
	select {
	case <-w.Changes():
		return true
	default:
		return false
	}
}

func TestFirstSnapshotWaitsForEverySource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, l, u := start(t)
		u.views <- remotestate.UnitView{Life: remotestate.Alive, ConfigVersion: 3}
		synctest.Wait()
		if published(w) {
			t.Fatal("snapshot published before the tracker reported")
		}
		l.set(remotestate.LeaderState{Leader: true, Term: 4, Gained: 1})
		synctest.Wait()
		if !published(w) {
			t.Fatal("no snapshot once every source reported")
		}
		want := remotestate.Snapshot{Life: remotestate.Alive, Leader: true, Term: 4, Gained: 1, ConfigVersion: 3}
		if got := w.Snapshot(); got != want {
			t.Fatalf("snapshot = %+v, want %+v", got, want)
		}
	})
}

func TestBurstsCoalesceAndProducersNeverBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, l, u := start(t)
		u.views <- remotestate.UnitView{Life: remotestate.Alive}
		// 1,000 leadership changes with nobody reading Changes: none blocks.
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range uint64(1000) {
				l.set(remotestate.LeaderState{Leader: i%2 == 0, Term: i + 1, Gained: i/2 + 1})
			}
		}()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("a producer blocked")
		}
		if s := w.Snapshot(); s.Term != 1000 || s.Leader || s.Gained != 500 {
			t.Fatalf("final snapshot = %+v, want the last change", s)
		}
		// However many changes, at most one wake-up is pending.
		if !published(w) {
			t.Fatal("no change signal pending")
		}
		if published(w) {
			t.Fatal("more than one pending change signal")
		}
	})
}

func TestSnapshotShowsTheHeadOfTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, l, u := start(t)
		l.set(remotestate.LeaderState{})
		pending := []remotestate.Operation{{ID: "3", Kind: "action", Action: "greet", Status: "pending"},
			{ID: "5", Kind: "exec", Status: "pending"}}
		for _, tc := range []struct {
			queue []remotestate.Operation
			want  remotestate.Operation
		}{
			{pending, pending[0]},
			// A running operation comes first: after a crash the agent
			// must deal with it before anything else.
			{append(pending, remotestate.Operation{ID: "7", Kind: "exec", Status: "running"}),
				remotestate.Operation{ID: "7", Kind: "exec", Status: "running"}},
			{nil, remotestate.Operation{}},
		} {
			u.views <- remotestate.UnitView{Life: remotestate.Alive, Operations: tc.queue}
			synctest.Wait()
			if !published(w) {
				t.Fatalf("queue %v: no change published", tc.queue)
			}
			if s := w.Snapshot(); s.NextOperation != tc.want || s.QueuedOperations != len(tc.queue) {
				t.Errorf("queue %v: next %+v of %d, want %+v of %d", tc.queue, s.NextOperation, s.QueuedOperations, tc.want, len(tc.queue))
			}
		}
	})
}

func TestMinionTermComesFromController(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, l, u := start(t)
		l.set(remotestate.LeaderState{Term: 2})
		u.views <- remotestate.UnitView{Life: remotestate.Alive, Term: 5, LeaderSettingsVersion: 7}
		synctest.Wait()
		if s := w.Snapshot(); s.Term != 5 || s.Leader || s.LeaderSettingsVersion != 7 {
			t.Fatalf("snapshot = %+v", s)
		}
	})
}
