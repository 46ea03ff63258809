package raftnode

import (
	"context"
	"errors"

	"github.com/uniter-dev/uniter/lease"
)

// watchLeadership runs for the node's life. It follows raft leadership
// through raft.LeaderCh, which raft fills without ever blocking (a size-1
// channel holding the latest value), and runs the leader loop exactly
// while this node leads: gaining leadership (again) starts a fresh loop,
// losing it cancels the loop and waits for it, which is quick because
// every raft call in it is bounded and honours its context.
func (n *Node) watchLeadership() {
	defer close(n.done)
	var stopLoop func()
	defer func() {
		if stopLoop != nil {
			stopLoop()
		}
	}()
	for {
		select {
		case <-n.stop:
			return
		case leader := <-n.raft.LeaderCh():
			if stopLoop != nil {
				stopLoop()
				stopLoop = nil
				n.log.Info().Msg("raft leadership lost")
			}
			if leader {
				n.log.Info().Msg("raft leadership gained")
				stopLoop = n.startLeaderLoop()
			}
		}
	}
}

// startLeaderLoop runs leaderLoop in a goroutine and returns the function
// that stops it and waits for it to return.
func (n *Node) startLeaderLoop() func() {
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.leaderLoop(ctx)
	}()
	return func() {
		n.leaderReady.Store(false)
		cancel(errors.New("raft leadership lost"))
		<-done
		n.leaderReady.Store(false)
	}
}

// leaderLoop is the leader-only work: a barrier (so the FSM has every
// entry of earlier terms, above all the latest global time), this node's
// member record, then the time advancer and the version raiser until ctx
// ends.
func (n *Node) leaderLoop(ctx context.Context) {
	if !n.retry(ctx, "raft barrier", func() error { return n.Barrier(ctx) }) {
		return
	}
	n.leaderReady.Store(true)
	rec := lease.RecordMember{
		ID: n.cfg.ID, ProtoMin: n.cfg.ProtoMin, ProtoMax: n.cfg.ProtoMax,
		APIAddr: n.cfg.APIAddr, RaftAddr: n.RaftAddr(),
	}
	want := lease.Member{ProtoMin: rec.ProtoMin, ProtoMax: rec.ProtoMax, APIAddr: rec.APIAddr, RaftAddr: rec.RaftAddr}
	if n.fsm.Members()[n.cfg.ID] != want {
		ok := n.retry(ctx, "record member", func() error {
			res, err := n.apply(ctx, rec)
			return errors.Join(err, res.Err)
		})
		if !ok {
			return
		}
	}
	n.renew.reset(n.fsm.GlobalTime())
	defer n.renew.reset(n.fsm.GlobalTime())
	adv := &advancer{
		clock:  n.cfg.Clock,
		tick:   n.cfg.Tick,
		slack:  n.cfg.slack(),
		now:    n.fsm.GlobalTime,
		apply:  n.advanceApply,
		start:  n.grace,
		before: n.writeBack,
		log:    n.log,
		fresh:  &n.fresh,
	}
	raiser := make(chan struct{})
	go func() {
		defer close(raiser)
		n.raiseVersion(ctx)
	}()
	adv.run(ctx)
	<-raiser
}

// retry runs fn until it succeeds (true) or ctx ends (false), a tick
// apart.
func (n *Node) retry(ctx context.Context, what string, fn func() error) bool {
	for {
		err := fn()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		n.log.Warn().Err(err).Str("step", what).Msg("leader loop step failed; retrying")
		t := n.cfg.Clock.NewTimer(n.cfg.Tick)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.Chan():
		}
	}
}

// advanceApply is how the advancer proposes: n.apply bounded by
// AdvanceTimeout.
func (n *Node) advanceApply(ctx context.Context, op lease.Op) (lease.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.AdvanceTimeout)
	defer cancel()
	return n.apply(ctx, op)
}
