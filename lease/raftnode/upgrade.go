package raftnode

import (
	"context"
	"maps"

	"github.com/uniter-dev/uniter/lease"
)

// checkRange refuses an effective version v (0: unknown) outside the
// node's protocol range.
func (c *Config) checkRange(v uint64) error {
	if v == 0 || (c.ProtoMin <= v && v <= c.ProtoMax) {
		return nil
	}
	return &lease.RangeError{Min: c.ProtoMin, Max: c.ProtoMax, Effective: v}
}

// Failed is closed when the node cannot go on: its cluster now runs a
// protocol version newer than the node speaks (Err says so). The owner
// should then close the node; the node refuses to open that data
// directory again with the same binary.
func (n *Node) Failed() <-chan struct{} { return n.failed }

// Err is why Failed was closed, or nil.
func (n *Node) Err() error {
	select {
	case <-n.failed:
		return n.failErr
	default:
		return nil
	}
}

// ProtocolRange returns the protocol versions this node speaks.
func (n *Node) ProtocolRange() (min, max uint64) { return n.cfg.ProtoMin, n.cfg.ProtoMax }

// watchVersion runs until the node closes or fails. On every change of the
// FSM it records a newer effective version in node.json, and fails the
// node if the version is past what the node speaks (an older binary
// started on a directory whose cluster moved on while it was down, and
// caught up).
func (n *Node) watchVersion() {
	defer close(n.versionDone)
	for {
		ch := n.fsm.Watch()
		if v := n.fsm.EffectiveVersion(); n.fsm.Index() > 0 && v > n.seenVersion {
			// Recorded first, so that the next start with this binary
			// refuses the directory before it opens raft.
			n.seenVersion = v
			if err := n.writeIdentity(); err != nil {
				n.log.Warn().Err(err).Msg("cannot record the effective version")
			}
			if v > n.cfg.ProtoMax {
				n.failErr = &lease.RangeError{Min: n.cfg.ProtoMin, Max: n.cfg.ProtoMax, Effective: v}
				n.log.Error().Err(n.failErr).Msg("cannot run in this cluster")
				close(n.failed)
				return
			}
		}
		select {
		case <-n.stop:
			return
		case <-ch:
		}
	}
}

// raiseVersion is the leader's version raiser: it runs beside the time
// advancer, after the barrier and this node's member record, and
// re-evaluates the effective version whenever the member records or the
// version change (the FSM's change notification: no timer), or the
// raft configuration changed through this node (kick). So the version
// rises in the log entry right after the last member's announcement.
func (n *Node) raiseVersion(ctx context.Context) {
	var (
		evaluated   bool
		lastVersion uint64
		lastMembers map[string]lease.Member
	)
	for {
		ch := n.fsm.Watch()
		v, members := n.fsm.EffectiveVersion(), n.fsm.Members()
		if !evaluated || v != lastVersion || !maps.Equal(members, lastMembers) {
			evaluated = n.raiseOnce(ctx, v, members)
			lastVersion, lastMembers = v, members
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-n.kick:
			evaluated = false
		}
	}
}

// raiseOnce proposes SetEffectiveVersion if every voter has announced a
// range and they all speak a version above v. It reports false if it
// could not decide (a raft call failed): the next change retries.
func (n *Node) raiseOnce(ctx context.Context, v uint64, members map[string]lease.Member) bool {
	servers, err := n.Servers(ctx)
	if err != nil {
		n.log.Warn().Err(err).Msg("cannot evaluate the effective version")
		return false
	}
	var voters []string
	for _, s := range servers {
		if s.Suffrage == "voter" {
			voters = append(voters, s.ID)
		}
	}
	target, ok := lease.RaiseTarget(v, members, voters)
	if !ok {
		return true
	}
	res, err := n.apply(ctx, lease.SetEffectiveVersion{Old: v, New: target})
	switch {
	case err != nil:
		n.log.Warn().Err(err).Msg("cannot raise the effective version")
		return false
	case res.Err != nil:
		// The state moved under us; its change wakes the raiser again.
		n.log.Info().Err(res.Err).Msg("effective version not raised")
		return true
	}
	n.log.Info().Uint64("from", v).Uint64("to", target).Uint64("index", res.Index).
		Msg("raised the effective cluster version")
	return true
}

// kickRaiser wakes the version raiser (if this node leads).
func (n *Node) kickRaiser() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}
