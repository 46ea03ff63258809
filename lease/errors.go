package lease

import (
	"errors"
	"fmt"
	"strings"
)

// Denials. A command that is refused returns one of these sentinels in
// Result.Err and changes nothing: the lease and unit commands return the
// sentinel itself, the relation commands wrap it with detail ("cannot add
// relation db web: relation 3 (web:db db:server) already exists: lease:
// relation already exists"). Match them with errors.Is.
var (
	// ErrClaimDenied: another unit holds the lease.
	ErrClaimDenied = errors.New("lease: claim denied")
	// ErrNotHolder: the unit does not hold the lease (or not the term named
	// in the command).
	ErrNotHolder = errors.New("lease: not the lease holder")
	// ErrStepDownPending: a step-down was requested, so the holder may no
	// longer extend and the lease may not be pinned.
	ErrStepDownPending = errors.New("lease: step-down pending")
	// ErrPinned: the lease is pinned, so it may not be revoked, stepped down
	// or released by deregistering its holder.
	ErrPinned = errors.New("lease: lease is pinned")
	// ErrNotPinned: the entity holds no pin on the lease.
	ErrNotPinned = errors.New("lease: not pinned by that entity")
	// ErrStaleTerm: a step-down named a term that is no longer current.
	ErrStaleTerm = errors.New("lease: stale term")
	// ErrNoLeader: the operation needs a leader and the lease is vacant. The
	// text is the one operators see from `uniter leadership pin`.
	ErrNoLeader = errors.New("application has no leader")
	// ErrNotLeader: a leader-settings write from a unit that does not hold
	// the lease for the given term. The text is exactly Juju's; the hook tool
	// wraps it into "cannot write leadership settings: cannot write settings:
	// not the leader".
	ErrNotLeader = errors.New("not the leader")
	// ErrTimeMismatch: advance-time's old value is not the global time.
	ErrTimeMismatch = errors.New("lease: global time mismatch")
	// ErrVersionMismatch: set-effective-version's old value is not the
	// effective version.
	ErrVersionMismatch = errors.New("lease: effective version mismatch")
	// ErrVersionUnsupported: a recorded member does not support the
	// requested effective version.
	ErrVersionUnsupported = errors.New("lease: version not supported by every member")
	// ErrUnknownApplication: no such application.
	ErrUnknownApplication = errors.New("lease: unknown application")
	// ErrUnknownUnit: no such registered unit.
	ErrUnknownUnit = errors.New("lease: unknown unit")
	// ErrUnitExists: the unit is registered with a different token.
	ErrUnitExists = errors.New("lease: unit already registered")
	// ErrUnitDying: a dying unit (RequestUnitRemoval) may not claim a
	// vacant lease.
	ErrUnitDying = errors.New("lease: unit is dying")
	// ErrStaleResolve: a conditional resolve's After is not the unit's
	// ResolvedID (another resolve, or this one, was applied first).
	ErrStaleResolve = errors.New("lease: stale resolve")
	// ErrStaleConfig: a conditional set-config's IfVersion is not the
	// config's version (another change was applied first).
	ErrStaleConfig = errors.New("lease: config changed since the version given")
	// ErrUnknownRelation: no such relation (never made, or removed).
	ErrUnknownRelation = errors.New("lease: relation not found")
	// ErrRelationExists: add-relation of two endpoints a relation already
	// joins (alive or dying).
	ErrRelationExists = errors.New("lease: relation already exists")
	// ErrCannotEnterScope: a unit may not enter the scope of a dying
	// relation, and a dying unit may not enter any scope.
	ErrCannotEnterScope = errors.New("lease: cannot enter scope")
	// ErrNotInScope: a unit databag write from a unit that is not in the
	// relation's scope.
	ErrNotInScope = errors.New("lease: unit is not in scope of the relation")
	// ErrNeedsProtocol: the command needs a newer effective cluster version
	// than the cluster runs (a *ProtocolError says which).
	ErrNeedsProtocol = errors.New("lease: needs a newer cluster protocol")
)

// ProtocolError is the refusal of a command that needs cluster protocol
// Need while the cluster's effective version is Have. It matches
// ErrNeedsProtocol.
type ProtocolError struct {
	Feature    string
	Need, Have uint64
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("%s needs cluster protocol %d; the cluster runs %d (upgrade every controller node)",
		e.Feature, e.Need, e.Have)
}

// Is makes errors.Is(err, ErrNeedsProtocol) true.
func (e *ProtocolError) Is(target error) bool { return target == ErrNeedsProtocol }

// RangeError says that a node's protocol range does not include the
// cluster's effective version: the node cannot run in that cluster. It
// matches ErrVersionUnsupported.
type RangeError struct {
	// Node is the node's ID ("" for "this node").
	Node      string
	Min, Max  uint64
	Effective uint64
}

func (e *RangeError) Error() string {
	who, fix := "this node", "upgrade uniter on this node"
	if e.Node != "" {
		who, fix = "node "+e.Node, "upgrade uniter on node "+e.Node
	}
	if e.Min > e.Effective {
		fix = "first upgrade the other controller nodes to a release that speaks protocol " +
			fmt.Sprint(e.Min) + ", or run an older uniter on " + strings.TrimPrefix(who, "node ")
	}
	return fmt.Sprintf("%s speaks controller protocol %d..%d but the cluster runs %d: %s",
		who, e.Min, e.Max, e.Effective, fix)
}

// Is makes errors.Is(err, ErrVersionUnsupported) true.
func (e *RangeError) Is(target error) bool { return target == ErrVersionUnsupported }

// Malformed input. These are returned wrapped with detail
// ("cannot decode claim command: ...: lease: invalid command").
var (
	// ErrInvalidCommand: the payload does not decode or breaks a rule of
	// form (empty name, duration out of range, new time before old, ...).
	ErrInvalidCommand = errors.New("lease: invalid command")
	// ErrUnknownCommand: the envelope names a command type this FSM does
	// not know.
	ErrUnknownCommand = errors.New("lease: unknown command type")
	// ErrUnsupportedVersion: the envelope's version is not CommandVersion.
	ErrUnsupportedVersion = errors.New("lease: unsupported command version")
	// ErrSnapshotFormat: a snapshot's format is missing, unknown or newer
	// than this binary understands.
	ErrSnapshotFormat = errors.New("lease: unsupported snapshot format")
	// ErrTooLarge: the command would take a relation databag past one of
	// its limits (MaxDatabagValueBytes, ...). The wrapping error names the
	// limit: `cannot set relation data of relation 3: value of "k" is
	// 2097152 bytes; the limit is 262144: lease: over a state limit`.
	ErrTooLarge = errors.New("lease: over a state limit")
	// ErrInvalidConfig: a set-config names an option the application's
	// schema lacks, or a value that does not parse as the option's type.
	// The wrapping error says which: `cannot set config: unknown option
	// "x": lease: invalid config`.
	ErrInvalidConfig = errors.New("lease: invalid config")
)
