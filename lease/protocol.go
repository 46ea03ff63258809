package lease

// The controller protocol versions this package implements. A node
// announces the range it speaks (NodeConfig.ProtoMin, ProtoMax, within
// these bounds); the cluster runs the effective version (State.
// EffectiveVersion), which the raft leader raises to the highest version
// every member speaks and which never goes down. See docs/upgrades.md.
//
// Protocol 1 is the command set and snapshot format 1 as they were before
// versioning. Protocol 2 adds the conditional form of set-config
// (SetConfig.IfVersion); its snapshot format is still 1 (it adds no state).
// Protocol 3 adds the step-down hand-over (HandOverProtocol): the same
// commands, but a lease given up after a step-down is kept from its old
// holder for a while (Lease.SteppedDown); its snapshot format 2 carries
// that state.
// Protocol 4 adds relations (relationsProtocol): the endpoints of
// register-unit, add-relation, remove-relation, enter-scope, leave-scope,
// set-relation-data and commit-relation-data; operations
// (operationsProtocol): the actions of register-unit and the operation
// commands; and snapshot format 3, which holds both.
// Protocol 5 adds the units' opened ports (portsProtocol): set-unit-ports,
// and snapshot format 4, which holds them.
// Protocol 6 adds batched log entries (BatchProtocol): one entry carrying
// several commands (Batch); its snapshot format is still 4 (it adds no
// state).
// Protocol 7 adds renewals answered by the raft leader
// (LeaderRenewProtocol): renew and grace-leases; its snapshot format is
// still 4 (it adds no state).
const (
	MinProtocol = 1
	MaxProtocol = 7
)

// HandOverProtocol is the protocol from which a lease released after a
// step-down (revoked by its holder, or run out) is not given back to that
// holder for one lease duration while another alive unit of the
// application could claim it. Below it, claim, revoke and advance-time
// apply exactly as in protocol 1, so that nodes of an older release in the
// cluster stay in step.
const HandOverProtocol = 3

// gated is implemented by the commands, or forms of a command, that need a
// protocol newer than 1: the leader never proposes them, and State.Apply
// refuses them, while the effective version is older.
type gated interface {
	needs() (protocol uint64, feature string)
}

// RequiredProtocol returns the protocol version op needs and the name of
// the feature that needs it.
func RequiredProtocol(op Op) (uint64, string) {
	if g, ok := op.(gated); ok {
		return g.needs()
	}
	return MinProtocol, op.Type()
}

// RefuseNewer is the refusal of op under effective version v, or nil.
func RefuseNewer(op Op, v uint64) error {
	if need, feature := RequiredProtocol(op); need > v {
		return &ProtocolError{Feature: feature, Need: need, Have: v}
	}
	return nil
}

// snapshotFormats maps an effective version to the snapshot format written
// under it: a format is written only once every member reads it. Protocol
// 2 changed no state, so it still writes format 1; protocol 3 writes
// format 2, which adds the leases' hand-over fields; protocol 4 writes
// format 3 (format 2 plus relations); protocol 5 writes format 4 (format 3
// plus the units' opened ports), and so do protocols 6 and 7.
var snapshotFormats = []int{1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 4, 7: 4}

// snapshotFormatFor is the snapshot format written at effective version v.
func snapshotFormatFor(v uint64) int {
	if v >= uint64(len(snapshotFormats)) {
		return snapshotFormats[len(snapshotFormats)-1]
	}
	return snapshotFormats[max(v, 1)]
}

// RaiseTarget is the effective version the raft leader should set, given
// the current one, the member records and the raft voters: the smallest
// ProtoMax over every member, if that is above the current version, every
// voter has a record and every member speaks it. ok is false when there
// is nothing to do (including when a voter has not announced yet).
func RaiseTarget(current uint64, members map[string]Member, voters []string) (target uint64, ok bool) {
	if len(members) == 0 {
		return current, false
	}
	for _, id := range voters {
		if _, recorded := members[id]; !recorded {
			return current, false
		}
	}
	target = ^uint64(0)
	for _, m := range members {
		target = min(target, m.ProtoMax)
	}
	if target <= current {
		return current, false
	}
	for _, m := range members {
		if m.ProtoMin > target {
			return current, false
		}
	}
	return target, true
}
