package agent_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
	"github.com/uniter-dev/uniter/remotestate/remotestatetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run is one hook run seen by scriptedRunner, at fake-clock time At.
type run struct {
	Kind hooks.Kind
	At   time.Time
}

// scriptedRunner fails the hooks in fail and reports every run.
type scriptedRunner struct {
	clock *clocktest.Clock
	runs  chan run
	mu    sync.Mutex
	fail  map[hooks.Kind]bool
}

func (s *scriptedRunner) Run(_ context.Context, p hooks.Params) error {
	s.mu.Lock()
	failing := s.fail[p.Kind]
	s.mu.Unlock()
	s.runs <- run{p.Kind, s.clock.Now()}
	if failing {
		return &hooks.ExitError{Kind: p.Kind, Code: 1}
	}
	return nil
}

func (s *scriptedRunner) setFail(k hooks.Kind, v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[k] = v
}

type nopLocker struct{}

func (nopLocker) Acquire(context.Context, string) (func(), error) { return func() {}, nil }

type nopContexts struct{}

func (nopContexts) NewContext(_ context.Context, info operation.HookInfo) (hooks.Params, func(), error) {
	return hooks.Params{Kind: info.Kind}, func() {}, nil
}

type harness struct {
	t      *testing.T
	clock  *clocktest.Clock
	runner *scriptedRunner
	remote *remotestatetest.Fake
	x      *operation.Executor
	done   chan error
	cancel context.CancelFunc
}

// The loop tests run in synctest bubbles, with the harness made inside
// them: synctest.Wait returns once the loop and its hooks are all blocked,
// on the fake clock or the remote state. What the loop does without the
// clock moving it has then done, and what it has not done it will not:
// "no hook ran" and "the loop is idle" are facts, not timeouts. No test
// here runs a hook process (the runners are in-process fakes); the tests
// that do (run_test.go, and the end-to-end tests) cannot run in a bubble.

// startLoop starts a loop on a fresh harness. t must be a bubble's.
func startLoop(t *testing.T) *harness {
	t.Helper()
	return startLoopWith(t, nil)
}

// startLoopWith is startLoop with tune applied to the loop's config.
func startLoopWith(t *testing.T, tune func(h *harness, cfg *agent.LoopConfig)) *harness {
	t.Helper()
	h := &harness{t: t, clock: clocktest.New(time.Unix(1_000_000, 0))}
	h.runner = &scriptedRunner{clock: h.clock, runs: make(chan run, 100), fail: map[hooks.Kind]bool{}}
	h.remote = remotestatetest.New(remotestate.Snapshot{Life: remotestate.Alive, ConfigVersion: 1})
	log := zerolog.New(zerolog.NewTestWriter(t))
	sf := operation.NewStateFile(filepath.Join(t.TempDir(), "uniter.yaml"))
	x, err := operation.NewExecutor(operation.ExecutorConfig{Writer: sf, Locker: nopLocker{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h.x = x
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel, h.done = cancel, make(chan error, 1)
	cfg := agent.LoopConfig{
		Executor: x, Remote: h.remote, Clock: h.clock, Logger: log,
		NewHook: func(info operation.HookInfo) operation.Operation {
			return operation.NewRunHook(info, operation.HookDeps{Runner: h.runner, Contexts: nopContexts{}, Clock: h.clock, Logger: log})
		},
	}
	if tune != nil {
		tune(h, &cfg)
	}
	go func() { h.done <- agent.Loop(ctx, cfg) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	for {
		select {
		case err := <-h.done:
			if err != nil {
				h.t.Errorf("loop ended with %v", err)
			}
			return
		case <-h.runner.runs: // a loop gone wrong must not block on a full channel
		}
	}
}

// expect lets the loop settle and checks that the next hook it ran, in
// order, is of kind.
func (h *harness) expect(kind hooks.Kind) run {
	h.t.Helper()
	synctest.Wait()
	select {
	case r := <-h.runner.runs:
		if r.Kind != kind {
			h.t.Fatalf("ran %s, want %s", r.Kind, kind)
		}
		return r
	default:
		h.t.Fatalf("no %s hook ran", kind)
	}
	return run{}
}

// idle lets the loop settle and checks that it is blocked on exactly
// timers timers (update-status, and the retry timer when in error state)
// with no hook in flight.
func (h *harness) idle(timers int) {
	h.t.Helper()
	synctest.Wait()
	if !h.isIdle(timers) {
		h.t.Fatalf("loop settled, not idle on %d timers: %d timers (%v), state %+v", timers, h.clock.Waiters(), h.clock.Deadlines(), h.x.State())
	}
}

func (h *harness) isIdle(timers int) bool {
	st := h.x.State()
	return h.clock.Waiters() == timers && (st.Op == nil || st.Error != nil) && (timers == 2) == (st.Error != nil)
}

// settle is idle for a loop that must run nothing more before it blocks:
// a hook run meanwhile (the fake clock has not moved) fails the test.
func (h *harness) settle(timers int, since time.Time) {
	h.t.Helper()
	synctest.Wait()
	if len(h.runner.runs) > 0 {
		r := <-h.runner.runs
		h.t.Fatalf("%s ran again at +%v without the clock moving (%d more runs queued): no backoff",
			r.Kind, r.At.Sub(since), len(h.runner.runs))
	}
	if !h.isIdle(timers) {
		h.t.Fatalf("loop settled, not idle on %d timers: %d timers (%v), state %+v", timers, h.clock.Waiters(), h.clock.Deadlines(), h.x.State())
	}
}

func TestErrorStateRetriesOnBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startLoop(t)
		h.runner.setFail(hooks.ConfigChanged, true)
		h.expect(hooks.Install)
		failedAt := h.expect(hooks.ConfigChanged).At
		for _, delay := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second} {
			h.idle(2)
			if st := h.x.State(); st.Error == nil || st.Error.Hook != hooks.ConfigChanged {
				t.Fatalf("not in error state after a failed hook: %+v", st)
			}
			if want := failedAt.Add(delay); !slices.Contains(h.clock.Deadlines(), want) {
				t.Fatalf("retry timers %v, want one at failure + %v (%v)", h.clock.Deadlines(), delay, want)
			}
			h.clock.Advance(delay)
			r := h.expect(hooks.ConfigChanged)
			if got := r.At.Sub(failedAt); got != delay {
				t.Fatalf("retried after %v, want %v", got, delay)
			}
			failedAt = r.At
		}
		h.runner.setFail(hooks.ConfigChanged, false)
		h.idle(2)
		h.clock.Advance(80 * time.Second)
		h.expect(hooks.ConfigChanged)
		h.expect(hooks.Start)
		h.idle(1)
	})
}

func TestResolvedRetriesAtOnceAndNoRetryMovesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startLoop(t)
		h.runner.setFail(hooks.ConfigChanged, true)
		h.expect(hooks.Install)
		h.expect(hooks.ConfigChanged)
		h.idle(2)

		// resolved: retried at once, with no clock movement.
		h.runner.setFail(hooks.ConfigChanged, false)
		before := h.clock.Now()
		h.remote.Update(func(s *remotestate.Snapshot) { s.ResolvedID = 1 })
		if r := h.expect(hooks.ConfigChanged); !r.At.Equal(before) {
			t.Fatalf("resolved retry waited for the clock: ran at %v, asked at %v", r.At, before)
		}
		h.expect(hooks.Start)
		h.idle(1)
		if st := h.x.State(); st.Error != nil || st.ResolvedSeen != 1 || st.ConfigVersion != 1 {
			t.Fatalf("state after resolved = %+v", st)
		}

		// resolved --no-retry: committed as if it succeeded, not run again.
		h.runner.setFail(hooks.ConfigChanged, true)
		h.remote.Update(func(s *remotestate.Snapshot) { s.ConfigVersion = 2 })
		h.expect(hooks.ConfigChanged)
		h.idle(2)
		h.remote.Update(func(s *remotestate.Snapshot) { s.ResolvedID, s.ResolvedNoRetry = 2, true })
		h.idle(1)
		if st := h.x.State(); st.Error != nil || st.ConfigVersion != 2 || st.ResolvedSeen != 2 {
			t.Fatalf("state after resolved --no-retry = %+v", st)
		}
		select {
		case r := <-h.runner.runs:
			t.Fatalf("--no-retry ran %s", r.Kind)
		default:
		}
	})
}

func TestUpdateStatusRunsOnItsInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startLoop(t)
		h.expect(hooks.Install)
		h.expect(hooks.ConfigChanged)
		h.expect(hooks.Start)
		started := h.clock.Now()
		for i := 1; i <= 3; i++ {
			h.idle(1)
			h.clock.Advance(5 * time.Minute)
			if r := h.expect(hooks.UpdateStatus); r.At.Sub(started) != time.Duration(i)*5*time.Minute {
				t.Fatalf("update-status %d at +%v", i, r.At.Sub(started))
			}
		}
	})
}

// blockingRunner holds every hook until release is closed or its context ends.
type blockingRunner struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingRunner) Run(ctx context.Context, p hooks.Params) error {
	if p.Kind != hooks.Install {
		return nil
	}
	close(b.started)
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func TestStopLetsRunningHookFinishOrKillsItAtDeadline(t *testing.T) {
	for _, tc := range []struct {
		name      string
		finish    func(clk *clocktest.Clock, r *blockingRunner)
		installed bool
		step      operation.Step
	}{
		{name: "hook finishes in time", installed: true,
			finish: func(_ *clocktest.Clock, r *blockingRunner) { close(r.release) }},
		{name: "hook killed at deadline", installed: false, step: operation.Pending,
			finish: func(clk *clocktest.Clock, _ *blockingRunner) { clk.Advance(30 * time.Second) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := clocktest.New(time.Unix(0, 0))
				r := &blockingRunner{started: make(chan struct{}), release: make(chan struct{})}
				log := zerolog.New(zerolog.NewTestWriter(t))
				sf := operation.NewStateFile(filepath.Join(t.TempDir(), "uniter.yaml"))
				x, err := operation.NewExecutor(operation.ExecutorConfig{Writer: sf, Locker: nopLocker{}, Logger: log})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() {
					done <- agent.Loop(ctx, agent.LoopConfig{
						Executor: x, Remote: remotestatetest.New(remotestate.Snapshot{Life: remotestate.Alive, ConfigVersion: 1}),
						Clock: clk, Logger: log, StopTimeout: 30 * time.Second,
						NewHook: func(info operation.HookInfo) operation.Operation {
							return operation.NewRunHook(info, operation.HookDeps{Runner: r, Contexts: nopContexts{}, Clock: clk, Logger: log})
						},
					})
				}()
				<-r.started
				cancel()
				// The stop deadline timer is armed; the hook keeps running.
				synctest.Wait()
				if n := clk.Waiters(); n < 2 {
					t.Fatalf("%d clock timers once stopping, want update-status and the stop deadline", n)
				}
				select {
				case err := <-done:
					t.Fatalf("loop returned (%v) while its hook was still running", err)
				default:
				}
				tc.finish(clk, r)
				synctest.Wait()
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("loop stopped with %v", err)
					}
				default:
					t.Fatal("loop did not stop")
				}
				st, _, err := sf.Read()
				if err != nil {
					t.Fatal(err)
				}
				if st.Installed != tc.installed || (st.Op == nil) != (tc.step == "") || (st.Op != nil && st.Op.Step != tc.step) {
					t.Fatalf("state after stop = %+v, want installed=%v step=%q", st, tc.installed, tc.step)
				}
			})
		})
	}
}

// lateRemote is a remote state whose first snapshot is not ready yet.
type lateRemote struct {
	*remotestatetest.Fake
	changes chan struct{}
}

func (l *lateRemote) Changes() <-chan struct{} { return l.changes }

func TestNothingRunsBeforeTheFirstSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clocktest.New(time.Unix(0, 0))
		r := &scriptedRunner{clock: clk, runs: make(chan run, 10), fail: map[hooks.Kind]bool{}}
		log := zerolog.New(zerolog.NewTestWriter(t))
		sf := operation.NewStateFile(filepath.Join(t.TempDir(), "uniter.yaml"))
		// A started leader, restarting: a zero snapshot would depose it.
		leader := operation.State{Installed: true, Started: true, Leader: true, LeaderTerm: 3, ConfigVersion: 1}
		x, err := operation.NewExecutor(operation.ExecutorConfig{State: leader, Writer: sf, Locker: nopLocker{}, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		fake := remotestatetest.New(remotestate.Snapshot{})
		<-fake.Changes() // not ready: the test signals readiness itself
		remote := &lateRemote{Fake: fake, changes: make(chan struct{}, 1)}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- agent.Loop(ctx, agent.LoopConfig{Executor: x, Remote: remote, Clock: clk, Logger: log,
				NewHook: func(info operation.HookInfo) operation.Operation {
					return operation.NewRunHook(info, operation.HookDeps{Runner: r, Contexts: nopContexts{}, Clock: clk, Logger: log})
				}})
		}()
		synctest.Wait()
		if n := clk.Waiters(); n < 1 { // the update-status timer: the loop is up
			t.Fatalf("%d clock timers, want update-status: the loop is not up", n)
		}
		select {
		case got := <-r.runs:
			t.Fatalf("ran %s before the first snapshot", got.Kind)
		default:
		}
		fake.Set(remotestate.Snapshot{Life: remotestate.Alive, Leader: true, Term: 3, ConfigVersion: 1})
		remote.changes <- struct{}{}
		synctest.Wait() // the loop has decided on the first snapshot
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-r.runs:
			t.Fatalf("ran %s for a leader whose lease is held", got.Kind)
		default:
		}
		if !x.State().Leader {
			t.Fatal("leader deposed on restart")
		}
	})
}

func TestDeposedInErrorStateKeepsTheRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startLoop(t)
		h.remote.Update(func(s *remotestate.Snapshot) { s.Leader, s.Term = true, 1 })
		h.runner.setFail(hooks.ConfigChanged, true)
		h.expect(hooks.Install)
		h.expect(hooks.LeaderElected)
		failedAt := h.expect(hooks.ConfigChanged).At
		h.idle(2)
		h.remote.Update(func(s *remotestate.Snapshot) { s.Leader = false })
		h.expect(hooks.LeaderDeposed)
		h.idle(2) // still in error state, with its retry timer armed
		h.runner.setFail(hooks.ConfigChanged, false)
		h.clock.Advance(5 * time.Second)
		if r := h.expect(hooks.ConfigChanged); r.At.Sub(failedAt) != 5*time.Second {
			t.Fatalf("retried at +%v, want +5s", r.At.Sub(failedAt))
		}
		h.expect(hooks.Start)
	})
}

// fakeLeadership is the tracker as the loop sees it: it holds term while
// held is set; Resign releases it and clears the snapshot's leadership, as
// the tracker's published state would.
type fakeLeadership struct {
	remote   *remotestatetest.Fake
	mu       sync.Mutex
	held     uint64 // 0: not holding
	released []uint64
}

func (f *fakeLeadership) Resign(_ context.Context, term uint64) error {
	f.mu.Lock()
	held := f.held == term
	if held {
		f.held = 0
		f.released = append(f.released, term)
	}
	f.mu.Unlock()
	if held {
		f.remote.Update(func(s *remotestate.Snapshot) { s.Leader, s.StepDown = false, false })
	}
	return nil
}

func (f *fakeLeadership) Holds(_ context.Context, term uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held == term
}

// releases lists the terms whose lease Resign released.
func (f *fakeLeadership) releases() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.released)
}

// statusLog keeps the last agent status the loop reported.
type statusLog struct {
	mu              sync.Mutex
	status, message string
}

func (s *statusLog) set(status, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.message = status, message
}

func (s *statusLog) last() (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status, s.message
}

// startLeader starts a loop whose unit leads in term 1 and has settled.
func startLeader(t *testing.T) (*harness, *fakeLeadership, *statusLog) {
	t.Helper()
	var lead *fakeLeadership
	status := &statusLog{}
	h := startLoopWith(t, func(h *harness, cfg *agent.LoopConfig) {
		lead = &fakeLeadership{remote: h.remote, held: 1}
		cfg.Leadership = lead
		cfg.Status = status.set
	})
	h.remote.Update(func(s *remotestate.Snapshot) { s.Leader, s.Term = true, 1 })
	h.expect(hooks.Install)
	h.expect(hooks.LeaderElected)
	h.expect(hooks.ConfigChanged)
	h.expect(hooks.Start)
	h.idle(1)
	return h, lead, status
}

// TestFailingDeposedRetriesOnBackoffAndHandsOver: a step-down whose
// leader-deposed fails releases the lease at once (the successor need not
// wait for it to expire), and leader-deposed is retried on the error-state
// backoff, never back to back, until it succeeds; nothing else runs
// meanwhile.
func TestFailingDeposedRetriesOnBackoffAndHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, lead, status := startLeader(t)
		h.runner.setFail(hooks.LeaderDeposed, true)
		h.remote.Update(func(s *remotestate.Snapshot) { s.StepDown = true })
		failedAt := h.expect(hooks.LeaderDeposed).At
		start := failedAt
		for _, delay := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second} {
			h.settle(2, start)
			if got := lead.releases(); !slices.Equal(got, []uint64{1}) {
				t.Fatalf("leases released %v after a failed leader-deposed, want term 1's", got)
			}
			if st := h.x.State(); st.Error == nil || st.Error.Hook != hooks.LeaderDeposed || !st.Leader {
				t.Fatalf("state after a failed leader-deposed = %+v, want in error on it, leadership still committed", st)
			}
			if got, msg := status.last(); got != agent.StatusError || msg != `hook failed: "leader-deposed"` {
				t.Fatalf("agent status %q %q while leader-deposed waits for its retry", got, msg)
			}
			if want := failedAt.Add(delay); !slices.Contains(h.clock.Deadlines(), want) {
				t.Fatalf("retry timers %v, want one at failure + %v (%v)", h.clock.Deadlines(), delay, want)
			}
			h.clock.Advance(delay - time.Millisecond)
			h.settle(2, start) // not a moment early
			h.clock.Advance(time.Millisecond)
			r := h.expect(hooks.LeaderDeposed)
			if got := r.At.Sub(failedAt); got != delay {
				t.Fatalf("leader-deposed retried after %v, want %v", got, delay)
			}
			failedAt = r.At
		}
		h.runner.setFail(hooks.LeaderDeposed, false)
		h.settle(2, start)
		h.clock.Advance(40 * time.Second)
		h.expect(hooks.LeaderDeposed)
		h.idle(1)
		if st := h.x.State(); st.Error != nil || st.Leader {
			t.Fatalf("state after leader-deposed succeeded = %+v", st)
		}
		if got := lead.releases(); !slices.Equal(got, []uint64{1}) {
			t.Fatalf("leases released %v, want term 1's", got)
		}
	})
}

// TestFailingDeposedAfterLossBacksOff: leadership lost (not stepped
// down), leader-deposed failing: the same backoff, and a regained
// leadership's leader-elected waits for leader-deposed to succeed.
func TestFailingDeposedAfterLossBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, lead, _ := startLeader(t)
		h.runner.setFail(hooks.LeaderDeposed, true)
		lead.mu.Lock()
		lead.held = 2
		lead.mu.Unlock()
		h.remote.Update(func(s *remotestate.Snapshot) { s.Term = 2 }) // lost and regained
		failedAt := h.expect(hooks.LeaderDeposed).At
		h.settle(2, failedAt)
		h.clock.Advance(5 * time.Second)
		if r := h.expect(hooks.LeaderDeposed); r.At.Sub(failedAt) != 5*time.Second {
			t.Fatalf("retried after %v, want 5s", r.At.Sub(failedAt))
		}
		h.runner.setFail(hooks.LeaderDeposed, false)
		h.settle(2, failedAt)
		h.clock.Advance(10 * time.Second)
		h.expect(hooks.LeaderDeposed)
		h.expect(hooks.LeaderElected)
		h.idle(1)
		if st := h.x.State(); !st.Leader || st.LeaderTerm != 2 || st.Error != nil {
			t.Fatalf("state = %+v, want leader of term 2", st)
		}
		if got := lead.releases(); len(got) != 0 {
			t.Fatalf("leases released %v: the regained term must be kept", got)
		}
	})
}

// TestStepDownOfLeaderInErrorReleasesTheLease: a unit whose leader-elected
// failed holds the lease without a committed leadership. Asked to step
// down, it releases the lease at once (the clock does not move, no hook
// runs) instead of sitting on it until it expires, and stays in error
// state for its own retry.
func TestStepDownOfLeaderInErrorReleasesTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var lead *fakeLeadership
		h := startLoopWith(t, func(h *harness, cfg *agent.LoopConfig) {
			lead = &fakeLeadership{remote: h.remote, held: 1}
			cfg.Leadership = lead
		})
		h.runner.setFail(hooks.LeaderElected, true)
		h.remote.Update(func(s *remotestate.Snapshot) { s.Leader, s.Term = true, 1 })
		h.expect(hooks.Install)
		failedAt := h.expect(hooks.LeaderElected).At
		h.settle(2, failedAt)
		h.remote.Update(func(s *remotestate.Snapshot) { s.StepDown = true })
		synctest.Wait() // released now, or not before the clock moves
		if got := lead.releases(); !slices.Equal(got, []uint64{1}) {
			t.Fatalf("leases released %v, want term 1's", got)
		}
		h.settle(2, failedAt)
		if st := h.x.State(); st.Error == nil || st.Error.Hook != hooks.LeaderElected || st.Leader {
			t.Fatalf("state after the release = %+v, want still in error on leader-elected, not leader", st)
		}
		if !h.clock.Now().Equal(failedAt) {
			t.Fatal("the fake clock moved")
		}
	})
}
