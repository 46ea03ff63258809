// Package lease is the controller's replicated state: application
// leadership leases, leader settings, config, unit registrations and
// statuses, the global time and the controller members (DESIGN.md §3.1).
//
// State is a pure, deterministic state machine: State.Apply(index, op)
// depends only on the state, the command and the raft log index, never on
// a clock, map order or the host. Commands travel in a versioned JSON
// envelope (Command, Encode, Decode); a command that is refused or malformed
// comes back as Result.Err and changes nothing. FSM wraps a State with
// snapshots ({"format":1,"state":{...}}), deep-copying reads and
// blocking-query waits on per-application and per-unit modify indexes.
//
// This package imports no raft: package lease/raftnode runs the FSM under
// hashicorp/raft and holds the time advancer and the version raiser, and
// the proof below is about the pair.
//
// # Time and the lease guarantee
//
// Leases are measured in global time, which only advance-time moves. The
// raft leader's time advancer anchors at (P, N): the real (monotonic) time
// P at which it proposed global time N (a newly elected advancer anchors at
// its start, at the global time it found). Two assumptions:
//
//	A1. Global time never runs faster than real time: every advance from an
//	    anchor (P, N) to (P', N') has N' - N <= P' - P. (A failover stalls
//	    the global time, which only lengthens leases.)
//	A2. A claim or extend applied while the global time is N was started by
//	    its client at t0 <= P + slack: the advancer proposes at least once
//	    per slack (a "tick"), so the last tick trails real time by less.
//
// A claim or extend applied at global time N_j (anchor P_j) with duration d
// sets expiry >= N_j + d. An advance-time to N_k releases it only if
// expiry + slack < N_k, so N_k > N_j + d + slack, and it is proposed (hence
// applied) at real time P_k >= P_j + (N_k - N_j) > P_j + d + slack >= t0 + d
// by A1 and A2. So a successful claim or extend started at t0 keeps the
// lease until at least t0 + d, whatever the interleaving: the client
// contract of DESIGN.md §3.1. Expiry never moves earlier while the lease is
// held (extend and unpin take the later of old and new), so every guarantee
// given to the holder survives later, shorter calls. The property test
// (FuzzInterleavings) checks exactly this against a model of real time.
package lease
