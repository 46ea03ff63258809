package agent_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// fakeOps is an agent.Operations whose operations end with result; it
// records what it started, ran, finished and aborted, by operation id.
type fakeOps struct {
	mu                              sync.Mutex
	result                          operation.OperationResult
	startErrs                       []error // the next starts fail with these
	started, ran, finished, aborted []string
}

func (f *fakeOps) New(op remotestate.Operation, _ operation.HookInfo) operation.Operation {
	kind := operation.RunAction
	if op.Kind == "exec" {
		kind = operation.RunExec
	}
	return operation.NewRunOperation(kind, operation.OperationInfo{ID: op.ID, Action: op.Action}, &fakeOpWork{f: f, id: op.ID}, zerolog.Nop())
}

func (f *fakeOps) Abort(_ context.Context, op remotestate.Operation, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aborted = append(f.aborted, op.ID)
	return nil
}

func (f *fakeOps) calls() [4][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return [4][]string{slices.Clone(f.started), slices.Clone(f.ran), slices.Clone(f.finished), slices.Clone(f.aborted)}
}

type fakeOpWork struct {
	f  *fakeOps
	id string
}

func (w *fakeOpWork) Start(context.Context) error {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.started = append(w.f.started, w.id)
	if len(w.f.startErrs) > 0 {
		err := w.f.startErrs[0]
		w.f.startErrs = w.f.startErrs[1:]
		return err
	}
	return nil
}

func (w *fakeOpWork) Run(context.Context) (operation.OperationResult, error) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.ran = append(w.f.ran, w.id)
	return w.f.result, nil
}

func (w *fakeOpWork) Finish(context.Context, operation.OperationResult) error {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.finished = append(w.f.finished, w.id)
	return nil
}

func queue(ops ...remotestate.Operation) func(*remotestate.Snapshot) {
	return func(s *remotestate.Snapshot) {
		s.QueuedOperations = len(ops)
		s.NextOperation = remotestate.Operation{}
		if len(ops) > 0 {
			s.NextOperation = ops[0]
		}
	}
}

func TestOperationsRunInErrorStateAndKeepTheRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ops := &fakeOps{result: operation.OperationResult{Status: operation.StatusFailed, Message: "no"}}
		h := startLoopWith(t, func(_ *harness, cfg *agent.LoopConfig) { cfg.Operations = ops })
		h.runner.setFail(hooks.ConfigChanged, true)
		h.expect(hooks.Install)
		failedAt := h.expect(hooks.ConfigChanged).At
		h.idle(2)
		before := h.x.State().Error

		greet := remotestate.Operation{ID: "1", Kind: "action", Action: "greet", Status: "pending"}
		h.remote.Update(queue(greet))
		synctest.Wait()
		// The snapshot still shows it queued (the watch is behind): the
		// loop does not run it again.
		h.idle(2)
		want := [4][]string{{"1"}, {"1"}, {"1"}, nil}
		if d := cmp.Diff(want, ops.calls()); d != "" {
			t.Fatalf("operation calls (-want +got):\n%s", d)
		}
		if st := h.x.State(); st.Error == nil || *st.Error != *before || st.Op != nil {
			t.Fatalf("a failed action changed the error state: %+v, was %+v", st, before)
		}
		if !slices.Contains(h.clock.Deadlines(), failedAt.Add(5*time.Second)) {
			t.Fatalf("retry timer moved: %v, want one at %v", h.clock.Deadlines(), failedAt.Add(5*time.Second))
		}

		// The next one runs too; the retry then comes on its schedule.
		exec := remotestate.Operation{ID: "2", Kind: "exec", Status: "pending"}
		h.remote.Update(queue(exec))
		h.idle(2)
		if got := ops.calls()[2]; !slices.Equal(got, []string{"1", "2"}) {
			t.Fatalf("finished %v, want 1 and 2", got)
		}
		h.runner.setFail(hooks.ConfigChanged, false)
		h.clock.Advance(5 * time.Second)
		if r := h.expect(hooks.ConfigChanged); r.At.Sub(failedAt) != 5*time.Second {
			t.Fatalf("retry ran %v after the failure, want 5s", r.At.Sub(failedAt))
		}
		h.expect(hooks.Start)
		h.idle(1)
	})
}

func TestInterruptedOperationsAreAbortedNotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ops := &fakeOps{result: operation.OperationResult{Status: operation.StatusCompleted}}
		h := startLoopWith(t, func(h *harness, cfg *agent.LoopConfig) {
			cfg.Operations = ops
			// The agent crashed while running operation 5.
			st := operation.State{Installed: true, Started: true, ConfigVersion: 1,
				Op: &operation.Op{Kind: operation.RunAction, Step: operation.Pending, Operation: &operation.OperationInfo{ID: "5", Action: "greet"}}}
			if err := h.x.SetState(st); err != nil {
				t.Fatal(err)
			}
			h.remote.Update(queue(remotestate.Operation{ID: "5", Kind: "action", Action: "greet", Status: "running"}))
		})
		h.idle(1)
		if d := cmp.Diff([4][]string{nil, nil, nil, {"5"}}, ops.calls()); d != "" {
			t.Fatalf("operation calls (-want +got):\n%s", d)
		}
		if st := h.x.State(); st.Op != nil {
			t.Fatalf("aborted operation still in the state: %+v", st.Op)
		}

		// One the controller has running that the state file lacks (a
		// crash between the start and its record) is aborted as well.
		h.remote.Update(queue(remotestate.Operation{ID: "6", Kind: "exec", Status: "running"}))
		h.idle(1)
		if d := cmp.Diff([4][]string{nil, nil, nil, {"5", "6"}}, ops.calls()); d != "" {
			t.Fatalf("operation calls (-want +got):\n%s", d)
		}
	})
}

func TestDoneOperationIsReportedNotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ops := &fakeOps{}
		h := startLoopWith(t, func(h *harness, cfg *agent.LoopConfig) {
			cfg.Operations = ops
			st := operation.State{Installed: true, Started: true, ConfigVersion: 1,
				Op: &operation.Op{Kind: operation.RunExec, Step: operation.Done, Operation: &operation.OperationInfo{ID: "9",
					Result: &operation.OperationResult{Status: operation.StatusCompleted, Results: `{"return-code":0}`}}}}
			if err := h.x.SetState(st); err != nil {
				t.Fatal(err)
			}
			h.remote.Update(queue(remotestate.Operation{ID: "9", Kind: "exec", Status: "running"}))
		})
		h.idle(1)
		if d := cmp.Diff([4][]string{nil, nil, {"9"}, nil}, ops.calls()); d != "" {
			t.Fatalf("operation calls (-want +got):\n%s", d)
		}
	})
}

func TestOperationNotStartedIsTriedAgainAfterTheRetryDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ops := &fakeOps{result: operation.OperationResult{Status: operation.StatusCompleted},
			startErrs: []error{errors.New("controller unreachable")}}
		h := startLoopWith(t, func(_ *harness, cfg *agent.LoopConfig) { cfg.Operations = ops })
		h.expect(hooks.Install)
		h.expect(hooks.ConfigChanged)
		h.expect(hooks.Start)
		h.idle(1)
		h.remote.Update(queue(remotestate.Operation{ID: "3", Kind: "action", Action: "greet", Status: "pending"}))
		synctest.Wait()
		// Held back: the loop waits on update-status and the retry delay,
		// without hammering the controller.
		if got := ops.calls(); !slices.Equal(got[0], []string{"3"}) || got[1] != nil || h.clock.Waiters() != 2 {
			t.Fatalf("after a failed start: calls %v, %d timers", got, h.clock.Waiters())
		}
		h.clock.Advance(5 * time.Second)
		h.idle(1)
		if d := cmp.Diff([4][]string{{"3", "3"}, {"3"}, {"3"}, nil}, ops.calls()); d != "" {
			t.Fatalf("operation calls (-want +got):\n%s", d)
		}
	})
}
