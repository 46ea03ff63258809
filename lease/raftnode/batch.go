package raftnode

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/uniter-dev/uniter/lease"
)

// Defaults of Config's batching.
const (
	// DefaultMaxBatch is the most commands one batched log entry carries.
	DefaultMaxBatch = 256
	// DefaultBatchInflight is how many batched entries may be in flight
	// before the queue waits for one to return.
	DefaultBatchInflight = 1
)

// batchingFSM is fsm with raft's BatchingFSM: raft hands it every run of
// committed entries at once, and the lease FSM applies them under one
// lock with one wake-up of its waiters (lease.FSM.ApplyEntries).
type batchingFSM struct{ fsm }

var _ raft.BatchingFSM = batchingFSM{}

// ApplyBatch implements raft.BatchingFSM: one response per log, as Apply
// would give it. Raft sends configuration entries here too (never to
// Apply); they are not commands and get no response.
func (f batchingFSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	entries := make([]lease.Entry, 0, len(logs))
	at := make([]int, 0, len(logs))
	for i, l := range logs {
		switch l.Type {
		case raft.LogCommand:
			entries = append(entries, lease.Entry{Index: l.Index, Data: l.Data})
			at = append(at, i)
		case raft.LogConfiguration:
		default:
			out[i] = f.Apply(l)
		}
	}
	for j, res := range f.FSM.ApplyEntries(entries) {
		out[at[j]] = res
	}
	return out
}

// raftFSM is the FSM raft is given: batching unless Config.NoBatching.
func (n *Node) raftFSM() raft.FSM {
	if n.cfg.NoBatching {
		return fsm{n.fsm}
	}
	return batchingFSM{fsm{n.fsm}}
}

// batchReq is one command waiting in the batcher's queue.
type batchReq struct {
	ctx  context.Context
	op   lease.Op
	data []byte          // op's envelope (lease.Encode)
	done chan batchReply // buffered: the batcher never waits for the caller
}

type batchReply struct {
	res lease.Result
	err error
}

// batcher groups concurrent commands into batched log entries (group
// commit): its goroutine (run) owns the queue. A command that arrives
// while no entry of the batcher's is being applied (fewer than
// BatchInflight) is proposed at once, with whatever else arrived with it,
// so an uncontended write waits for nothing; the commands that arrive
// while one is being applied wait for it to return and then go together
// in the next entry. A queue of MaxBatch goes at once, even while an
// entry is in flight. There is no timer: the batch is as long as the
// previous apply took.
type batcher struct {
	n        *Node
	max      int
	inflight int // entries in flight before the queue waits
	reqs     chan *batchReq
	flushed  chan struct{} // an entry's apply returned
	done     chan struct{} // closed when run has returned
	// entries and commands count the entries proposed and the commands
	// they carried (metrics: commands per entry).
	entries, commands atomic.Uint64
}

func newBatcher(n *Node) *batcher {
	return &batcher{n: n, max: n.cfg.MaxBatch, inflight: n.cfg.BatchInflight, reqs: make(chan *batchReq), flushed: make(chan struct{}),
		done: make(chan struct{})}
}

// run owns the queue until the node closes; then it answers what is
// still queued with ErrNodeClosed.
func (b *batcher) run() {
	defer close(b.done)
	var queue []*batchReq
	inflight := 0
	for {
		select {
		case r := <-b.reqs:
			queue = b.drain(append(queue, r))
			queue, inflight = b.pump(queue, inflight)
		case <-b.flushed:
			inflight--
			queue, inflight = b.pump(queue, inflight)
		case <-b.n.stop:
			for _, r := range queue {
				r.done <- batchReply{err: ErrNodeClosed}
			}
			return
		}
	}
}

// pump proposes the queue while no entry is in flight, and a full batch
// even while one is; it returns the queue left and the entries in flight.
func (b *batcher) pump(queue []*batchReq, inflight int) ([]*batchReq, int) {
	for len(queue) > 0 && (inflight < b.inflight || len(queue) >= b.max) {
		var sent bool
		if queue, sent = b.flush(queue); sent {
			inflight++
		}
	}
	return queue, inflight
}

// drain adds to queue whatever is waiting to be queued, up to max.
func (b *batcher) drain(queue []*batchReq) []*batchReq {
	for len(queue) < b.max {
		select {
		case r := <-b.reqs:
			queue = append(queue, r)
		default:
			return queue
		}
	}
	return queue
}

// flush proposes up to max commands of the head of queue (skipping those
// whose caller gave up) in one entry, answered by a goroutine of its
// own, and returns the rest of the queue and whether it proposed.
func (b *batcher) flush(queue []*batchReq) ([]*batchReq, bool) {
	var take []*batchReq
	for len(queue) > 0 && len(take) < b.max {
		r := queue[0]
		queue = queue[1:]
		if err := r.ctx.Err(); err != nil {
			r.done <- batchReply{err: context.Cause(r.ctx)} // never proposed
			continue
		}
		take = append(take, r)
	}
	if len(take) == 0 {
		return queue, false
	}
	data := take[0].data
	if len(take) > 1 {
		cmds := make([][]byte, len(take))
		for i, r := range take {
			cmds[i] = r.data
		}
		data = lease.EncodeBatch(cmds)
	}
	b.entries.Add(1)
	b.commands.Add(uint64(len(take)))
	go b.propose(take, data)
	return queue, true
}

// propose applies one entry and answers each of its commands.
func (b *batcher) propose(take []*batchReq, data []byte) {
	defer func() {
		select {
		case b.flushed <- struct{}{}:
		case <-b.n.stop:
		}
	}()
	f, err := b.n.call(context.Background(), func(timeout time.Duration) raft.Future { return b.n.raft.Apply(data, timeout) })
	if err != nil {
		for _, r := range take {
			r.done <- batchReply{err: err}
		}
		return
	}
	res, ok := f.(raft.ApplyFuture).Response().(lease.Result)
	if !ok {
		err := fmt.Errorf("unexpected FSM response %T", f.(raft.ApplyFuture).Response())
		for _, r := range take {
			r.done <- batchReply{err: err}
		}
		return
	}
	if len(take) == 1 {
		take[0].done <- batchReply{res: res}
		return
	}
	for i, r := range take {
		switch {
		case res.Err != nil: // refused as a whole
			r.done <- batchReply{res: lease.Result{Index: res.Index, Err: res.Err}}
		case i < len(res.Batch):
			r.done <- batchReply{res: res.Batch[i]}
		default:
			r.done <- batchReply{err: fmt.Errorf("batch of %d commands answered with %d results", len(take), len(res.Batch))}
		}
	}
}

// batched reports whether Apply hands op to the batcher: batching is on,
// op may be batched, and every member can apply a batch.
func (n *Node) batched(op lease.Op) bool {
	return n.batch != nil && lease.Batchable(op) && n.fsm.EffectiveVersion() >= lease.BatchProtocol
}

// applyBatched is apply through the batcher.
func (n *Node) applyBatched(ctx context.Context, op lease.Op) (lease.Result, error) {
	data, err := lease.Encode(op)
	if err != nil {
		return lease.Result{}, err
	}
	r := &batchReq{ctx: ctx, op: op, data: data, done: make(chan batchReply, 1)}
	select {
	case n.batch.reqs <- r:
	case <-ctx.Done():
		return lease.Result{}, fmt.Errorf("cannot apply %s: %w", op.Type(), context.Cause(ctx))
	case <-n.stop:
		return lease.Result{}, fmt.Errorf("cannot apply %s: %w", op.Type(), ErrNodeClosed)
	}
	select {
	case rep := <-r.done:
		if rep.err != nil {
			return lease.Result{}, fmt.Errorf("cannot apply %s: %w", op.Type(), rep.err)
		}
		return rep.res, nil
	case <-ctx.Done():
		return lease.Result{}, fmt.Errorf("cannot apply %s: %w", op.Type(), context.Cause(ctx))
	}
}

// BatchStats returns how many log entries the batcher proposed and how
// many commands they carried (zero with Config.NoBatching).
func (n *Node) BatchStats() (entries, commands uint64) {
	if n.batch == nil {
		return 0, 0
	}
	return n.batch.entries.Load(), n.batch.commands.Load()
}
