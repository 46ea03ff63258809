// Package lease is the controller's replicated state: application
// leadership leases, leader settings, config, unit registrations and
// statuses, relations (protocol 4: applications' endpoints, relations,
// their scopes and databags), operations (protocol 4: the actions and
// execs queued for units, with their results), the global time and the
// controller members (DESIGN.md §3.1).
//
// State is a pure, deterministic state machine: State.Apply(index, op)
// depends only on the state, the command and the raft log index, never on
// a clock, map order or the host. Commands travel in a versioned JSON
// envelope (Command, Encode, Decode); a command that is refused or malformed
// comes back as Result.Err and changes nothing. FSM wraps a State with
// snapshots ({"format":3,"state":{...}}, in the format of the effective
// protocol version), deep-copying reads and blocking-query waits on
// per-application, per-unit, per-relation and per-operation modify
// indexes.
//
// The commands: claim, extend, revoke, request-step-down, pin, unpin and
// advance-time (leases, apply.go); renew and grace-leases (protocol 7,
// renew.go); set-leader-settings, set-config,
// set-unit-status, set-application-version, register-unit,
// deregister-unit, request-unit-removal, resolve and
// set-application-status (units.go); record-member, forget-member and
// set-effective-version (the cluster); add-relation, remove-relation,
// enter-scope, leave-scope, set-relation-data and commit-relation-data
// (one hook's writes to every relation, all or none) (relations.go,
// protocol 4). A relation's application databag is written only by the leader,
// fenced by term like the leader settings; its unit databags, one per
// unit in scope, only by their units; every databag is bounded
// (MaxDatabagValueBytes, ...) and versioned by log index. A change to a
// relation wakes the blocking queries of every unit in its scope, and of
// its applications if the relation came, went or changed its life or
// scope. enqueue-operation, start-operation, log-operation,
// finish-operation, abort-operation and cancel-operation (operations.go,
// protocol 4) keep each unit's queue of actions and execs: ids "1", "2",
// ..., pending until the unit's agent starts one, then completed, failed
// or aborted by that agent, or cancelled while pending by the operator;
// results and logs are bounded (MaxOperationResultsBytes, ...) and the
// oldest finished operations are dropped past MaxRetainedOperations. A
// change to a unit's queue moves the unit's modify index, so its agent's
// blocking query sees new work. set-unit-ports (ports.go, protocol 5)
// records what one hook did with open-port and close-port: each unit's
// opened port ranges, per endpoint or for all of them, at most
// MaxUnitPortRanges.
//
// This package imports no raft: package lease/raftnode runs the FSM under
// hashicorp/raft and holds the time advancer, the gate on claims and
// extends and the version raiser, and the proof below is about the FSM
// with the advancer and the gate.
//
// # Time and the lease guarantee
//
// Leases are measured in global time, which only advance-time moves. The
// raft leader's time advancer computes every global time it proposes from
// its local monotonic clock: anchored at (P, N), the reading P at which it
// found global time N (a newly elected advancer anchors at its start, at
// the global time it found), it proposes N + (P' - P) at reading P', or
// the global time unchanged if that is ahead. The stamp of an applied
// advance-time is the reading it was computed from (for one that left the
// global time unchanged, the reading it confirmed it at: a new advancer
// first confirms the time it found, at its anchor). Below, a reading
// stands for the real time it was taken at. Two assumptions:
//
//	A1. Global time never runs faster than real time: if advance-times
//	    stamped (P, N) and then (P', N') are applied in that order,
//	    N' - N <= P' - P. One advancer's clock never runs fast; a later
//	    leader's advancer anchors after its barrier has applied every
//	    earlier advance, so the bound carries over by induction on the
//	    log. (A failover stalls the global time, which only lengthens
//	    leases.)
//	A2. A leader's clock that reads an interval as at most slack - tick
//	    was measuring one of at most slack: over a slack it loses less
//	    than a tick.
//
// The gate: the raft leader proposes a claim or extend only once it has
// read its clock at c, after the client started the call at t0, and found
// the stamp (P_L, N_L) of the newest advance-time its advancer saw applied
// at most slack - tick old (raftnode's Node.Apply; otherwise it holds the
// command until its advancer's next advance is applied, or refuses it
// with ErrRetryable). By A2, c - P_L <= slack in real time, so
//
//	t0 <= c <= P_L + slack.
//
// The command enters the log after that advance-time was applied, so it is
// applied after it, at a global time N_j >= N_L (the global time never
// moves back), however long the leader is paused between the check and
// the log, and whichever node commits it.
//
// A claim or extend so applied with duration d sets expiry >= N_j + d >=
// N_L + d. An advance-time stamped (P_k, N_k) releases it only if
// expiry + slack < N_k, so N_k > N_L + d + slack; it is applied after the
// command, hence after (P_L, N_L), so by A1 it is proposed (hence applied)
// at real time
//
//	P_k >= P_L + (N_k - N_L) > P_L + d + slack >= t0 + d.
//
// So a successful claim or extend started at t0 keeps the lease until at
// least t0 + d, whatever the interleaving: the client contract of
// DESIGN.md §3.1. Expiry never moves earlier while the lease is held
// (extend and unpin take the later of old and new), so every guarantee
// given to the holder survives later, shorter calls. (A Restore replaces
// the whole state; like everything else it discards, it is outside this
// argument.)
//
// The gate is what makes t0 <= P_L + slack hold when the leader is paused
// (GC, SIGSTOP, a stolen VM) for longer than a slack but less than an
// election timeout: it keeps its raft leadership and its anchor, and a
// command that reaches the log on resume, ahead of the advancer's next
// proposal, would be applied at the pre-pause global time, after which the
// next advance jumps by the whole pause. On a leader that is not paused
// the stamp is never older than a tick plus the apply latency of one
// advance, so with the default AdvanceTimeout (slack - tick = two ticks)
// the gate holds nothing unless an advance takes longer than a tick to
// apply. The property test (FuzzInterleavings) checks the
// guarantee against a model of real time with pauses and the gate.
//
// # Renewals answered by the leader
//
// From protocol 7 (LeaderRenewProtocol) the raft leader L may answer a
// holder's extend, or its claim of the lease it holds, with duration
// d <= LeaderRenewMax, from its applied state, before anything is in the
// log (raftnode's renew.go), as etcd's lessor answers a keep-alive. It
// does so only once all of these hold:
//
//	R1. the gate above passed at c, with stamp (P_L, N_L):
//	    t0 <= c <= P_L + slack;
//	R2. a raft VerifyLeader round that started after the call arrived
//	    came back: a majority of voters answered L in its term after t0;
//	R3. under the lock of L's renewals table, the lease's applied expiry
//	    E satisfies E + slack >= H, the horizon: the latest global time
//	    L's advancer has proposed, or taken the table to propose. The
//	    renewal (unit, term, d) then joins the table.
//
// L's advancer takes the whole table (moving H to the time it is about
// to propose) and applies it as one renew command before it proposes
// that advance; if the renew fails it puts the renewals back and proposes
// nothing. So, for a renewal answered by L, either:
//
//   - L writes it back. Every advance proposed before the write-back is
//     at most H, so by R3 none releases the lease (its expiry only grows
//     while it is held; a revoke or a change of holder is another call,
//     and ordering it after this one is what the log shows). The renew is
//     applied after the advance that made the stamp of R1, so at a global
//     time >= N_L, and sets expiry >= N_L + d; it ignores a step-down
//     request, which is ordered after the answered renewal. From there
//     the argument above applies unchanged: the lease lasts until at
//     least t0 + d.
//   - L never writes it back (it lost leadership, crashed or handed off).
//     Then a later leader L' moves the global time, and, by R2, L' was
//     elected after t0: its election needed a vote from a voter of R2's
//     majority, which answered L after t0 and refuses L's term once it
//     has voted. the advancer of L' anchors at (P', N') after its barrier, so
//     P' > t0, and applies grace-leases before its first advance: every
//     held lease expires no earlier than N' + LeaderRenewMax >= N' + d.
//     An advance releases it only at N_k > N' + d + slack, so by A1 at
//     real time P_k > P' + d + slack > t0 + d.
//
// Either way the renewal keeps its promise. A renewal that fails R1 to
// R3, and every other lease command, goes to the log as before. Below
// protocol 7 no leader answers from memory, so a new leader that finds
// the effective version below 7 after its barrier gives no grace (the
// version only rises). The price is liveness, not safety: after a
// failover, a lease whose holder is gone lasts up to LeaderRenewMax +
// slack longer.
package lease
