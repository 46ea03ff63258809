// Package worker runs a group of long-lived goroutines that live and stop
// together. The first worker to fail stops the others with its error as
// the cause of their contexts; they stop one at a time, the last started
// first, so a worker may rely on every worker started before it until it
// has returned itself.
package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrStopped is the cause the workers of a group see once Stop was called.
var ErrStopped = errors.New("worker: group stopped")

// Group is a group of workers. Make one with NewGroup.
type Group struct {
	base       context.Context // the parent, without its cancellation
	stopParent func() bool     // unregisters the parent's AfterFunc
	parentDone chan struct{}   // closed once the parent's AfterFunc has run
	waitOnce   sync.Once
	wg         sync.WaitGroup

	mu      sync.Mutex
	workers []*entry // in start order
	cause   error    // why the group stops; nil while it runs
	err     error    // the first failure, named after its worker
}

// entry is one worker's bookkeeping, guarded by Group.mu.
type entry struct {
	name      string
	cancel    context.CancelCauseFunc
	running   bool
	cancelled bool
}

// NewGroup returns an empty group. When ctx ends, the group stops with
// ctx's cause; that is not a failure.
func NewGroup(ctx context.Context) *Group {
	g := &Group{base: context.WithoutCancel(ctx), parentDone: make(chan struct{})}
	g.stopParent = context.AfterFunc(ctx, func() {
		defer close(g.parentDone)
		g.stop(context.Cause(ctx))
	})
	return g
}

// Go starts fn in its own goroutine, as the worker called name. fn must
// return once ctx ends, with nil unless it failed; returning nil earlier
// ends just this worker, and an error (other than ctx's own cause) is a
// failure that stops the group. A worker started once the group is
// stopping gets a context that has already ended. Call Go before Wait, or
// from a worker.
func (g *Group) Go(name string, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancelCause(g.base)
	w := &entry{name: name, cancel: cancel, running: true}
	g.mu.Lock()
	g.workers = append(g.workers, w)
	g.wg.Add(1)
	if g.cause != nil {
		g.stopNext()
	}
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		err := fn(ctx)
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Cause(ctx)) {
			err = nil // it was stopped, and says so
		}
		g.exited(w, err)
	}()
}

// Stop asks the group to stop (with ErrStopped as the cause) and returns
// at once; Wait waits for it.
func (g *Group) Stop() { g.stop(ErrStopped) }

// Wait waits until every worker has returned, and returns the first
// failure as "cannot run NAME: ERR" (nil if none failed). It may be called
// more than once.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.waitOnce.Do(func() {
		if !g.stopParent() {
			<-g.parentDone
		}
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

func (g *Group) stop(cause error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cause == nil {
		g.cause = cause
		g.stopNext()
	}
}

// exited records that w returned err, and stops the next worker if the
// group is stopping.
func (g *Group) exited(w *entry, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w.running = false
	w.cancel(nil) // releases the context; a stopped one keeps its cause
	if err != nil {
		err = fmt.Errorf("cannot run %s: %w", w.name, err)
		if g.err == nil {
			g.err = err
		}
		if g.cause == nil {
			g.cause = err
		}
	}
	if g.cause != nil {
		g.stopNext()
	}
}

// stopNext cancels the last started worker still running, unless it is
// stopping already: workers stop one at a time, in reverse start order.
func (g *Group) stopNext() {
	for i := len(g.workers) - 1; i >= 0; i-- {
		w := g.workers[i]
		if !w.running {
			continue
		}
		if !w.cancelled {
			w.cancelled = true
			w.cancel(g.cause)
		}
		return
	}
}
