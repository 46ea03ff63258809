package raftnode

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/lease"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/internal/clock/clocktest"
)

// fakeRaft applies the advancer's commands to a State; failNext makes the
// next applies fail as if raft had lost leadership.
type fakeRaft struct {
	mu       sync.Mutex
	st       *lease.State
	index    uint64
	failNext int
	proposed []lease.AdvanceTime
}

func (f *fakeRaft) global() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.GlobalTime
}

func (f *fakeRaft) apply(_ context.Context, op lease.Op) (lease.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proposed = append(f.proposed, op.(lease.AdvanceTime))
	if f.failNext > 0 {
		f.failNext--
		return lease.Result{}, ErrRetryable
	}
	f.index++
	return f.st.Apply(f.index, op), nil
}

// setGlobal moves the global time as another proposer would.
func (f *fakeRaft) setGlobal(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	if res := f.st.Apply(f.index, lease.AdvanceTime{Old: f.st.GlobalTime, New: t}); res.Err != nil {
		panic(res.Err)
	}
}

func TestAdvancer(t *testing.T) {
	const tick = time.Second
	wall := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktest.New(wall)
	fr := &fakeRaft{st: lease.NewState()}
	fresh := &freshness{}
	adv := &advancer{clock: clk, tick: tick, slack: 3 * tick, now: fr.global, apply: fr.apply, log: zerolog.Nop(), fresh: fresh}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		adv.run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	// wait for the advancer to be between ticks (its timer armed).
	settle := func() {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if err := clk.WaitForWaiters(wctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	tickAndSettle := func(d time.Duration) {
		t.Helper()
		clk.Advance(d)
		settle()
	}
	want := func(what string, g time.Time) {
		t.Helper()
		if got := fr.global(); !got.Equal(g) {
			t.Fatalf("%s: global time %v, want %v", what, got, g)
		}
	}
	// wantStamp checks the reading of the newest applied advance.
	wantStamp := func(what string, reading time.Time) {
		t.Helper()
		if got, _ := fresh.load(); !got.Equal(reading) {
			t.Fatalf("%s: stamp %v, want %v", what, got.Sub(wall), reading.Sub(wall))
		}
	}
	settle()
	want("genesis starts at the wall time", wall)
	wantStamp("genesis", wall)

	tickAndSettle(tick)
	want("one tick later", wall.Add(tick))
	wantStamp("one tick later", wall.Add(tick))

	// Three ticks of failed advances (a stalled raft): the advancer re-anchors
	// and the global time pauses for them instead of catching up later.
	fr.mu.Lock()
	fr.failNext = 3
	fr.mu.Unlock()
	for range 3 {
		tickAndSettle(tick)
	}
	want("during the stall", wall.Add(tick))
	wantStamp("failed advances stamp nothing", wall.Add(tick))
	tickAndSettle(tick)
	want("after the stall, one tick from the last re-anchor", wall.Add(2*tick))
	wantStamp("after the stall", wall.Add(5*tick))

	// A global time found ahead (a late advance of a deposed leader) is
	// never moved back and not advanced until the anchor line passes it.
	ahead := wall.Add(2*tick + 1500*time.Millisecond)
	fr.setGlobal(ahead)
	tickAndSettle(tick)
	want("still ahead", ahead)
	wantStamp("a time ahead is stamped unchanged", wall.Add(6*tick))
	tickAndSettle(tick)
	want("caught up", wall.Add(4*tick))
	wantStamp("caught up", wall.Add(7*tick))

	// Never faster than the clock: over the whole run the global time
	// moved at most as far as the clock did.
	elapsed := clk.Now().Sub(wall)
	if g := fr.global().Sub(wall); g > elapsed {
		t.Errorf("global time moved %v in %v of clock time", g, elapsed)
	}
	fr.mu.Lock()
	defer fr.mu.Unlock()
	for _, p := range fr.proposed {
		if p.Slack != 3*tick {
			t.Errorf("slack %v", p.Slack)
		}
	}
}

// TestAdvancerStampsTheTimeItFinds: an advancer starting on a cluster
// that has a global time first proposes it unchanged, which stamps it at
// the anchor, so that a new raft leader takes claims at once instead of a
// tick later.
func TestAdvancerStampsTheTimeItFinds(t *testing.T) {
	wall := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktest.New(wall.Add(time.Hour))
	fr := &fakeRaft{st: lease.NewState()}
	fr.setGlobal(wall)
	fresh := &freshness{}
	adv := &advancer{clock: clk, tick: time.Second, slack: 3 * time.Second, now: fr.global, apply: fr.apply, log: zerolog.Nop(), fresh: fresh}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		adv.run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := clk.WaitForWaiters(wctx, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := fresh.load(); !got.Equal(clk.Now()) {
		t.Errorf("stamp %v, want the anchor %v", got, clk.Now())
	}
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if want := (lease.AdvanceTime{Old: wall, New: wall, Slack: 3 * time.Second}); len(fr.proposed) != 1 || fr.proposed[0] != want {
		t.Errorf("proposed %+v, want only %+v", fr.proposed, want)
	}
	if !fr.st.GlobalTime.Equal(wall) {
		t.Errorf("global time %v, want %v unchanged", fr.st.GlobalTime, wall)
	}
}

func TestAdvancerStopsAtOnce(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	blocked := make(chan struct{})
	adv := &advancer{
		clock: clk, tick: time.Second, log: zerolog.Nop(),
		now: func() time.Time { return time.Time{} },
		apply: func(ctx context.Context, _ lease.Op) (lease.Result, error) {
			close(blocked)
			<-ctx.Done() // a raft call honouring its context
			return lease.Result{}, context.Cause(ctx)
		},
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		adv.run(ctx)
	}()
	<-blocked
	cancel(errors.New("leadership lost"))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("advancer did not stop")
	}
}
