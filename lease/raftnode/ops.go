package raftnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/uniter-dev/uniter/lease"

	"github.com/hashicorp/raft"
)

// Transport-level errors of Node calls (as opposed to a command's denial,
// which comes back in Result.Err).
var (
	// ErrRetryable: the call may or may not have taken effect (leadership
	// was lost or is being transferred, raft timed out, the cluster has no
	// time yet). Every command is safe to retry (see each command's
	// "Retry:"), through whichever node is then the raft leader.
	ErrRetryable = errors.New("lease: retryable raft error")
	// ErrNotRaftLeader is what *NotLeaderError matches with errors.Is.
	ErrNotRaftLeader = errors.New("lease: not the raft leader")
	// ErrNodeClosed: the node was closed (or raft shut down).
	ErrNodeClosed = errors.New("lease: controller node closed")
)

// NotLeaderError is returned by leader-only calls on a node that is not
// the raft leader. The fields say where the leader is, as far as this
// node knows; all are empty during an election. LeaderAPIAddr comes from
// the FSM's member records (empty if the leader never recorded itself).
type NotLeaderError struct {
	LeaderID, LeaderRaftAddr, LeaderAPIAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "lease: not the raft leader (no leader known)"
	}
	return fmt.Sprintf("lease: not the raft leader (leader is %s at %s, api %q)",
		e.LeaderID, e.LeaderRaftAddr, e.LeaderAPIAddr)
}

// Is makes errors.Is(err, ErrNotRaftLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotRaftLeader }

func (n *Node) notLeader() *NotLeaderError {
	id, addr := n.Leader()
	e := &NotLeaderError{LeaderID: id, LeaderRaftAddr: addr}
	if id != "" {
		e.LeaderAPIAddr = n.fsm.Members()[id].APIAddr
	}
	return e
}

// waitFuture waits for f or ctx, whichever is first. A future always ends
// (raft answers it, times it out, or fails it at shutdown), so the helper
// goroutine never outlives the raft instance.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// errTimeout is the cause of a raft call that ran past ApplyTimeout.
var errTimeout = errors.New("raft call timed out")

// call runs a raft call bounded by ctx and ApplyTimeout (real time, as
// raft's own) and maps raft's errors: see mapErr.
func (n *Node) call(ctx context.Context, start func(timeout time.Duration) raft.Future) (raft.Future, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, n.cfg.ApplyTimeout, errTimeout)
	defer cancel()
	select {
	case <-n.stop:
		return nil, ErrNodeClosed
	default:
	}
	// The timeout raft gets bounds enqueueing; ctx bounds the whole wait.
	f := start(n.cfg.ApplyTimeout)
	return f, n.mapErr(waitFuture(ctx, f))
}

// mapErr turns raft's errors into this package's: ErrNotLeader into a
// *NotLeaderError, lost leadership, transfers and timeouts into
// ErrRetryable, a full disk into ErrRetryable naming the node, shutdown
// into ErrNodeClosed. A caller's cancellation is
// returned as is.
func (n *Node) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrNotVoter):
		return n.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrAbortedByRestore),
		errors.Is(err, errTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", err, ErrRetryable)
	case isFull(err):
		// Not stored, so not applied: this leader steps down and another
		// (with room) takes the retry.
		return fmt.Errorf("controller node %s: %w: %w", n.cfg.ID, err, ErrRetryable)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrNodeClosed
	}
	return err
}

// Apply proposes op on this node, which must be the raft leader, and waits
// (at most ApplyTimeout) for it to be applied. It returns the command's
// Result, whose Err may be a denial; or a transport error: a
// *NotLeaderError (errors.Is ErrNotRaftLeader) on a follower, ErrRetryable
// if the outcome is unknown, ErrNodeClosed, or the ctx's error. Until the
// cluster's first time advance (milliseconds after bootstrap) commands are
// refused with ErrRetryable, so that no lease is ever measured from the
// zero time. A command that needs a newer protocol than the cluster's
// effective version is refused at once, unproposed, with a Result whose
// Err is a *ProtocolError (ErrNeedsProtocol). A claim or extend is held
// while the global time is stale (see awaitFresh): at most a slack, then
// it is refused, unproposed, with ErrRetryable. From protocol 7, unless
// Config.NoLeaderRenew, a holder's extend, or its claim of the lease it
// holds, may then be answered from this leader's memory and written back
// before the next advance of the global time (see renew.go). From
// protocol 6, unless
// Config.NoBatching, the commands lease.Batchable allows are grouped with
// concurrent ones into one log entry (see batch.go); each still gets its
// own Result.
func (n *Node) Apply(ctx context.Context, op lease.Op) (lease.Result, error) {
	if n.raft.State() != raft.Leader {
		return lease.Result{}, fmt.Errorf("cannot apply %s: %w", opType(op), n.notLeader())
	}
	if n.fsm.GlobalTime().IsZero() {
		if _, ok := op.(lease.AdvanceTime); !ok {
			return lease.Result{}, fmt.Errorf("cannot apply %s: cluster time not started yet: %w", opType(op), ErrRetryable)
		}
	}
	if op != nil {
		// Never write a command some member could not apply. The leader's
		// effective version only goes up, so this cannot let one through
		// early; State.Apply refuses it again anyway.
		if err := lease.RefuseNewer(op, n.fsm.EffectiveVersion()); err != nil {
			return lease.Result{Err: err}, nil
		}
	}
	switch op.(type) {
	case lease.Claim, lease.Extend:
		if err := n.awaitFresh(ctx, op); err != nil {
			return lease.Result{}, err
		}
		if res, ok, err := n.renewFromMemory(ctx, op); ok || err != nil {
			return res, err
		}
	}
	if n.batched(op) {
		return n.applyBatched(ctx, op)
	}
	return n.apply(ctx, op)
}

// awaitFresh is the gate of lease/doc.go: it returns once the stamp of the
// newest advance this node's advancer saw applied is at most freshLimit
// old on this node's clock. This check comes after the client started its
// call, and whatever global time the command is then applied at was
// computed at most a slack of real time before the check, or later: that
// is what makes a lease last as long as its claim or extend promised. A
// leader that was paused (GC, SIGSTOP, a stolen VM) finds the stamp old
// until the first advance of its advancer after the pause is applied,
// which wakes the wait; a new leader's advancer stamps the global time it
// found as it starts. The wait is bounded by the slack, in real time like
// every raft call's timeout; then the command is refused with
// ErrRetryable.
func (n *Node) awaitFresh(ctx context.Context, op lease.Op) error {
	limit := n.cfg.freshLimit()
	var (
		stamp   time.Time
		age     time.Duration
		renewed <-chan struct{}
	)
	fresh := func() bool {
		stamp, renewed = n.fresh.load()
		age = n.cfg.Clock.Now().Sub(stamp)
		return !stamp.IsZero() && age <= limit
	}
	if fresh() {
		return nil
	}
	hold, cancel := context.WithTimeout(ctx, n.cfg.slack())
	defer cancel()
	for {
		select {
		case <-renewed:
			if fresh() {
				return nil
			}
		case <-n.stop:
			return fmt.Errorf("cannot apply %s: %w", op.Type(), ErrNodeClosed)
		case <-hold.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("cannot apply %s: %w", op.Type(), context.Cause(ctx))
			}
			what := "no advance of the global time applied yet"
			if !stamp.IsZero() {
				what = fmt.Sprintf("global time last advanced %v ago (limit %v)", age.Round(time.Millisecond), limit)
			}
			return fmt.Errorf("cannot apply %s: %s: %w", op.Type(), what, ErrRetryable)
		}
	}
}

// apply is Apply without the time check, for the leader loop.
func (n *Node) apply(ctx context.Context, op lease.Op) (lease.Result, error) {
	data, err := lease.Encode(op)
	if err != nil {
		return lease.Result{}, err
	}
	f, err := n.call(ctx, func(timeout time.Duration) raft.Future { return n.raft.Apply(data, timeout) })
	if err != nil {
		return lease.Result{}, fmt.Errorf("cannot apply %s: %w", op.Type(), err)
	}
	res, ok := f.(raft.ApplyFuture).Response().(lease.Result)
	if !ok {
		return lease.Result{}, fmt.Errorf("cannot apply %s: unexpected FSM response %T", op.Type(), f.(raft.ApplyFuture).Response())
	}
	return res, nil
}

func opType(op lease.Op) string {
	if op == nil {
		return "command"
	}
	return op.Type()
}

// Barrier waits until every entry committed before it is applied to this
// node's FSM. Leader only.
func (n *Node) Barrier(ctx context.Context) error {
	if _, err := n.call(ctx, n.raft.Barrier); err != nil {
		return fmt.Errorf("cannot run raft barrier: %w", err)
	}
	return nil
}

// Server is one member of the raft configuration.
type Server struct {
	ID       string
	RaftAddr string
	// APIAddr is the HTTP address the server recorded (empty if unknown).
	APIAddr string
	// Suffrage is "voter", "nonvoter" or "staging".
	Suffrage string
	// State is "leader" for the raft leader, "follower" for the others
	// while a leader is known, else "unknown". It says nothing about
	// whether a follower is up: ask that node.
	State string
}

// Servers returns the raft configuration as this node knows it, with the
// API addresses from the FSM.
func (n *Node) Servers(ctx context.Context) ([]Server, error) {
	var cf raft.ConfigurationFuture
	_, err := n.call(ctx, func(time.Duration) raft.Future {
		cf = n.raft.GetConfiguration()
		return cf
	})
	if err != nil {
		return nil, fmt.Errorf("cannot get raft configuration: %w", err)
	}
	leaderID, _ := n.Leader()
	members := n.fsm.Members()
	var out []Server
	for _, s := range cf.Configuration().Servers {
		st := "unknown"
		switch {
		case string(s.ID) == leaderID:
			st = "leader"
		case leaderID != "":
			st = "follower"
		}
		out = append(out, Server{
			ID: string(s.ID), RaftAddr: string(s.Address), APIAddr: members[string(s.ID)].APIAddr,
			Suffrage: suffrage(s.Suffrage), State: st,
		})
	}
	return out, nil
}

func suffrage(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	}
	return "staging"
}

// AddVoter adds (or re-addresses) a voting server. Leader only. Adding a
// voter that is already one at that address is a no-op. Raft commits the
// change only once a majority of the new configuration has it, so the new
// server should be running.
func (n *Node) AddVoter(ctx context.Context, id, raftAddr string) error {
	if id == "" || raftAddr == "" {
		return fmt.Errorf("cannot add voter: need an id and a raft address: %w", lease.ErrInvalidCommand)
	}
	if !n.IsLeader() {
		return fmt.Errorf("cannot add voter %s: %w", id, n.notLeader())
	}
	servers, err := n.Servers(ctx)
	if err != nil {
		return fmt.Errorf("cannot add voter %s: %w", id, err)
	}
	for _, s := range servers {
		if s.ID == id && s.RaftAddr == raftAddr && s.Suffrage == "voter" {
			return nil
		}
	}
	_, err = n.call(ctx, func(timeout time.Duration) raft.Future {
		return n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeout)
	})
	if err != nil {
		return fmt.Errorf("cannot add voter %s: %w", id, err)
	}
	n.log.Info().Str("server_id", id).Str("raft_addr", raftAddr).Msg("added voter")
	n.kickRaiser()
	return nil
}

// RemoveServer removes a server from the raft configuration and forgets
// its member record. Leader only; removing an absent server only forgets
// the record. Removing this node (the leader) makes it step down once the
// change is committed.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return fmt.Errorf("cannot remove server %s: %w", id, n.notLeader())
	}
	// Forget first when removing ourselves: afterwards we cannot apply.
	forget := func() error {
		if res, err := n.apply(ctx, lease.ForgetMember{ID: id}); err != nil || res.Err != nil {
			return fmt.Errorf("cannot remove server %s: %w", id, errors.Join(err, res.Err))
		}
		return nil
	}
	if id == n.cfg.ID {
		if err := forget(); err != nil {
			return err
		}
	}
	_, err := n.call(ctx, func(timeout time.Duration) raft.Future {
		return n.raft.RemoveServer(raft.ServerID(id), 0, timeout)
	})
	if err != nil {
		return fmt.Errorf("cannot remove server %s: %w", id, err)
	}
	n.log.Info().Str("server_id", id).Msg("removed server")
	n.kickRaiser()
	if id == n.cfg.ID {
		return nil
	}
	return forget()
}

// TransferLeadership asks raft to hand leadership to another voter and
// waits for the transfer to finish. Leader only.
func (n *Node) TransferLeadership(ctx context.Context) error {
	if !n.IsLeader() {
		return fmt.Errorf("cannot transfer leadership: %w", n.notLeader())
	}
	if _, err := n.call(ctx, func(time.Duration) raft.Future { return n.raft.LeadershipTransfer() }); err != nil {
		return fmt.Errorf("cannot transfer leadership: %w", err)
	}
	return nil
}

// HandOff transfers raft leadership to another voter before this node
// stops, if it leads and has one: the others then elect at once instead
// of noticing the leader's silence a heartbeat timeout later, so writes
// (agents' lease extends among them) pause for a round trip, not for an
// election. Each other voter is tried in turn (one that is down fails
// within about an election timeout); a transfer still in progress is
// waited for. It reports whether it handed off: nothing to hand off (a
// follower, or the only voter) is false and no error.
func (n *Node) HandOff(ctx context.Context) (bool, error) {
	if !n.IsLeader() {
		return false, nil
	}
	servers, err := n.Servers(ctx)
	if err != nil {
		return false, fmt.Errorf("cannot hand off raft leadership: %w", err)
	}
	var others []Server
	for _, s := range servers {
		if s.ID != n.cfg.ID && s.Suffrage == "voter" {
			others = append(others, s)
		}
	}
	if len(others) == 0 {
		return false, nil
	}
	for _, s := range others {
		for {
			_, err = n.call(ctx, func(time.Duration) raft.Future {
				return n.raft.LeadershipTransferToServer(raft.ServerID(s.ID), raft.ServerAddress(s.RaftAddr))
			})
			if err == nil || !n.IsLeader() {
				return true, nil
			}
			if !errors.Is(err, raft.ErrLeadershipTransferInProgress) {
				break // try the next voter
			}
			select {
			case <-ctx.Done():
				return false, fmt.Errorf("cannot hand off raft leadership: %w", err)
			case <-time.After(20 * time.Millisecond): // raft's time, as every raft call's
			}
		}
	}
	return false, fmt.Errorf("cannot hand off raft leadership: %w", err)
}

// Snapshot makes raft take a snapshot now (into DataDir/snapshots) and
// compact its log. Any node.
func (n *Node) Snapshot(ctx context.Context) error {
	if _, err := n.call(ctx, func(time.Duration) raft.Future { return n.raft.Snapshot() }); err != nil {
		return fmt.Errorf("cannot take raft snapshot: %w", err)
	}
	return nil
}

// Backup writes the current state as a snapshot file (WriteSnapshot's
// format, the same bytes raft keeps in snapshots/*/state.bin). Leader
// only: a barrier first makes sure the copy has every committed command.
func (n *Node) Backup(ctx context.Context, w io.Writer) error {
	if err := n.Barrier(ctx); err != nil {
		return fmt.Errorf("cannot back up: %w", err)
	}
	if err := lease.WriteSnapshot(w, n.fsm.State()); err != nil {
		return fmt.Errorf("cannot back up: %w", err)
	}
	return nil
}

// Restore replaces the whole cluster's state with a backup (see Backup),
// through raft's user restore: the leader installs it and sends it to the
// followers. Leader only. The cluster's membership is kept: raft's
// configuration and the FSM's member records are this cluster's, not the
// backup's. Meant for disaster recovery into a fresh cluster: whatever was
// applied after the backup was taken is lost, and blocking queries may
// wait until the next change of what they watch.
func (n *Node) Restore(ctx context.Context, r io.Reader) error {
	st, err := lease.ReadSnapshot(r)
	if err != nil {
		return fmt.Errorf("cannot restore backup: %w", err)
	}
	if err := n.Barrier(ctx); err != nil {
		return fmt.Errorf("cannot restore backup: %w", err)
	}
	st.Members = n.fsm.Members()
	// The effective version never goes down, and every member must speak
	// the one the restored state runs.
	st.EffectiveVersion = max(st.EffectiveVersion, n.fsm.EffectiveVersion())
	for id, m := range st.Members {
		if st.EffectiveVersion < m.ProtoMin || st.EffectiveVersion > m.ProtoMax {
			return fmt.Errorf("cannot restore backup: %w",
				&lease.RangeError{Node: id, Min: m.ProtoMin, Max: m.ProtoMax, Effective: st.EffectiveVersion})
		}
	}
	var buf bytes.Buffer
	if err := lease.WriteSnapshot(&buf, st); err != nil {
		return fmt.Errorf("cannot restore backup: %w", err)
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: st.Index, Size: int64(buf.Len())}
	done := make(chan error, 1)
	go func() { done <- n.raft.Restore(meta, &buf, n.cfg.ApplyTimeout) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	if err := n.mapErr(err); err != nil {
		return fmt.Errorf("cannot restore backup: %w", err)
	}
	n.log.Info().Uint64("index", st.Index).Msg("restored backup")
	return nil
}
