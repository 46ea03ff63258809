package worker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/internal/worker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// behaviour is what one test worker does.
type behaviour int

const (
	untilStopped behaviour = iota // returns nil once its context ends
	failsAtOnce                   // returns errBoom at once
	endsAtOnce                    // returns nil at once
	returnsCause                  // returns its context's cause once it ends
	failsOnStop                   // returns errClose once its context ends
)

var (
	errBoom   = errors.New("boom")
	errClose  = errors.New("cannot close")
	errParent = errors.New("parent gone")
)

// outcome is what run saw.
type outcome struct {
	err    error            // Wait's
	order  []string         // the workers that waited to be stopped, as they returned
	causes map[string]error // each worker's context's cause when it returned
}

// run starts one worker per behaviour, named w0, w1..., and ends the group
// as stop says: "" waits for the workers alone, "parent" cancels the
// parent with errParent, "Stop" calls Stop.
func run(t *testing.T, workers []behaviour, stop string) outcome {
	parent, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	g := worker.NewGroup(parent)
	var mu sync.Mutex
	out := outcome{causes: map[string]error{}}
	started := make(chan struct{}) // so that nobody fails before all have started
	for i, b := range workers {
		name := "w" + string(rune('0'+i))
		g.Go(name, func(ctx context.Context) error {
			defer func() {
				mu.Lock()
				defer mu.Unlock()
				out.causes[name] = context.Cause(ctx)
			}()
			<-started
			switch b {
			case failsAtOnce:
				return errBoom
			case endsAtOnce:
				return nil
			}
			<-ctx.Done()
			mu.Lock()
			out.order = append(out.order, name)
			mu.Unlock()
			switch b {
			case returnsCause:
				return context.Cause(ctx)
			case failsOnStop:
				return errClose
			}
			return nil
		})
	}
	close(started)
	switch stop {
	case "parent":
		cancel(errParent)
	case "Stop":
		g.Stop()
	}
	out.err = g.Wait()
	if again := g.Wait(); again != out.err {
		t.Errorf("second Wait = %v, first %v", again, out.err)
	}
	return out
}

func TestGroup(t *testing.T) {
	for _, tc := range []struct {
		name    string
		workers []behaviour
		stop    string
		wantErr string // "" for nil
		wantIs  error
		// wantOrder is the order in which the workers that waited for
		// their context returned (the others return in any order).
		wantOrder []string
		// wantCause is the cause every worker that was stopped saw; nil
		// when it is Wait's error.
		wantCause error
	}{
		{name: "workers that end by themselves stop nobody", workers: []behaviour{endsAtOnce, endsAtOnce},
			wantOrder: nil},
		{name: "the first failure stops the others, last started first", workers: []behaviour{untilStopped, failsAtOnce, untilStopped},
			wantErr: "cannot run w1: boom", wantIs: errBoom, wantOrder: []string{"w2", "w0"}},
		{name: "a worker that ended stays ended", workers: []behaviour{untilStopped, endsAtOnce, failsAtOnce},
			wantErr: "cannot run w2: boom", wantIs: errBoom, wantOrder: []string{"w0"}},
		{name: "the parent's end stops the group without a failure", workers: []behaviour{untilStopped, untilStopped, untilStopped},
			stop: "parent", wantOrder: []string{"w2", "w1", "w0"}, wantCause: errParent},
		{name: "Stop stops the group without a failure", workers: []behaviour{untilStopped, untilStopped},
			stop: "Stop", wantOrder: []string{"w1", "w0"}, wantCause: worker.ErrStopped},
		{name: "returning the cause once stopped is no failure", workers: []behaviour{returnsCause, returnsCause},
			stop: "Stop", wantOrder: []string{"w1", "w0"}, wantCause: worker.ErrStopped},
		{name: "a failure while stopping is reported", workers: []behaviour{untilStopped, failsOnStop, untilStopped},
			stop: "parent", wantErr: "cannot run w1: cannot close", wantIs: errClose,
			wantOrder: []string{"w2", "w1", "w0"}, wantCause: errParent},
		{name: "only the first failure is reported", workers: []behaviour{failsOnStop, failsAtOnce},
			wantErr: "cannot run w1: boom", wantIs: errBoom, wantOrder: []string{"w0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				out := run(t, tc.workers, tc.stop)
				err, causes := out.err, out.causes
				if tc.wantErr == "" && err != nil {
					t.Fatalf("Wait = %v, want nil", err)
				}
				if tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr || !errors.Is(err, tc.wantIs)) {
					t.Fatalf("Wait = %v, want %q matching %v", err, tc.wantErr, tc.wantIs)
				}
				if diff := cmp.Diff(tc.wantOrder, out.order); diff != "" {
					t.Errorf("return order (-want +got):\n%s", diff)
				}
				wantCause := tc.wantCause
				if wantCause == nil {
					wantCause = err
				}
				for i, b := range tc.workers {
					name := "w" + string(rune('0'+i))
					if b == failsAtOnce || b == endsAtOnce {
						continue // it may return before or after the others stop
					}
					if causes[name] != wantCause {
						t.Errorf("%s saw cause %v, want %v", name, causes[name], wantCause)
					}
				}
			})
		})
	}
}

// TestGroupStopsOneAtATime: a worker is not cancelled until every worker
// started after it has returned, however long that takes.
func TestGroupStopsOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := worker.NewGroup(context.Background())
		var first context.Context
		g.Go("first", func(ctx context.Context) error {
			first = ctx
			<-ctx.Done()
			return nil
		})
		release := make(chan struct{})
		g.Go("second", func(ctx context.Context) error {
			<-ctx.Done()
			<-release // a hook finishing, say
			return nil
		})
		g.Go("third", func(context.Context) error { return errBoom })
		synctest.Wait()
		if first.Err() != nil {
			t.Error("the first worker was cancelled while the second was still stopping")
		}
		close(release)
		if err := g.Wait(); !errors.Is(err, errBoom) {
			t.Fatalf("Wait = %v", err)
		}
		if cause := context.Cause(first); !errors.Is(cause, errBoom) {
			t.Errorf("the first worker saw cause %v, want the failure", cause)
		}
	})
}

// TestGroupLateWorker: a worker started once the group is stopping (by a
// worker that failed while the others were being started) runs with an
// ended context, so it can release what it owns, and Wait waits for it.
func TestGroupLateWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := worker.NewGroup(context.Background())
		g.Go("fails", func(context.Context) error { return errBoom })
		synctest.Wait()
		released := false
		g.Go("late", func(ctx context.Context) error {
			<-ctx.Done()
			released = true
			return nil
		})
		if err := g.Wait(); !errors.Is(err, errBoom) {
			t.Fatalf("Wait = %v", err)
		}
		if !released {
			t.Fatal("Wait returned before the late worker did")
		}
	})
}

// TestGroupParentAlreadyEnded: a group made from an ended context starts
// every worker stopped.
func TestGroupParentAlreadyEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(errParent)
		g := worker.NewGroup(ctx)
		var cause error
		g.Go("w", func(ctx context.Context) error {
			<-ctx.Done()
			cause = context.Cause(ctx)
			return nil
		})
		if err := g.Wait(); err != nil {
			t.Fatalf("Wait = %v", err)
		}
		if cause != errParent {
			t.Errorf("cause %v, want %v", cause, errParent)
		}
	})
}

// TestGroupEmpty: Wait on a group without workers returns at once.
func TestGroupEmpty(t *testing.T) {
	if err := worker.NewGroup(context.Background()).Wait(); err != nil {
		t.Fatal(err)
	}
}
