package api

import (
	"errors"
	"maps"
	"slices"
)

// Codes of refusals: the "code" of an Error body. The controller maps its
// lease and raft errors to these (controller/errors.go); the typed client
// maps them back to the sentinels below, so that an agent matches an
// answer with errors.Is(err, api.ErrClaimDenied) without importing the
// controller's state machine.
const (
	CodeClaimDenied        = "claim-denied"        // 409: another unit holds the lease
	CodeNotHolder          = "not-holder"          // 409: the unit does not hold that term
	CodeStepDownPending    = "step-down-pending"   // 409: the holder was asked to step down
	CodePinned             = "pinned"              // 409: the lease is pinned
	CodeNotPinned          = "not-pinned"          // 409: the entity holds no pin
	CodeStaleTerm          = "stale-term"          // 409: a step-down named an old term
	CodeNoLeader           = "no-leader"           // 409: the application has no leader
	CodeNotLeader          = "not-leader"          // 409: a leader-only write from a minion
	CodeTimeMismatch       = "time-mismatch"       // 409: internal (advance-time)
	CodeVersionMismatch    = "version-mismatch"    // 409: internal (set-effective-version)
	CodeVersionUnsupported = "version-unsupported" // 409: a member cannot run that protocol
	CodeUnknownApplication = "unknown-application" // 404
	CodeUnknownUnit        = "unknown-unit"        // 404
	CodeUnitExists         = "unit-exists"         // 409: registered with another token
	CodeUnitDying          = "unit-dying"          // 409: a dying unit may not claim
	CodeStaleResolve       = "stale-resolve"       // 409: a conditional resolve lost a race
	CodeStaleConfig        = "stale-config"        // 409: config changed since the version given
	CodeNeedsProtocol      = "needs-protocol"      // 409: the cluster runs an older protocol
	CodeUnknownRelation    = "unknown-relation"    // 404: no such relation
	CodeRelationExists     = "relation-exists"     // 409: a relation already joins those endpoints
	CodeCannotEnterScope   = "cannot-enter-scope"  // 409: the unit or the relation is dying
	CodeNotInScope         = "not-in-scope"        // 409: a unit databag write from outside the scope
	CodeUnknownOperation   = "unknown-operation"   // 404: no such operation (or pruned)
	CodeUnknownAction      = "unknown-action"      // 404: the unit's charm defines no such action
	CodeOperationStatus    = "operation-status"    // 409: the operation's status forbids it (a cancel of a running one)
	CodeInvalidParams      = "invalid-params"      // 400: action params the action's schema refuses
	CodeInvalidCommand     = "invalid-command"     // 400: the command breaks a rule of form
	CodeUnknownCommand     = "unknown-command"     // 400
	CodeUnsupportedVersion = "unsupported-version" // 400: command envelope version
	CodeSnapshotFormat     = "snapshot-format"     // 400: a restore of an unknown snapshot format
	CodeInvalidConfig      = "invalid-config"      // 400: unknown option or bad value
	CodeNotRaftLeader      = "not-raft-leader"     // 503: this node is not the raft leader
	CodeRetryable          = "retryable"           // 503: the outcome is unknown; retry
	CodeNodeClosed         = "node-closed"         // 503: the node is shutting down
)

// Sentinels of the codes above. An error the typed client returns for an
// answer with one of these codes matches its sentinel with errors.Is; its
// Error() is the controller's message.
var (
	ErrClaimDenied        = errors.New("api: claim denied")
	ErrNotHolder          = errors.New("api: not the lease holder")
	ErrStepDownPending    = errors.New("api: step-down pending")
	ErrPinned             = errors.New("api: lease is pinned")
	ErrNotPinned          = errors.New("api: not pinned by that entity")
	ErrStaleTerm          = errors.New("api: stale term")
	ErrNoLeader           = errors.New("api: application has no leader")
	ErrNotLeader          = errors.New("api: not the leader")
	ErrTimeMismatch       = errors.New("api: global time mismatch")
	ErrVersionMismatch    = errors.New("api: effective version mismatch")
	ErrVersionUnsupported = errors.New("api: version not supported by every member")
	ErrUnknownApplication = errors.New("api: unknown application")
	ErrUnknownUnit        = errors.New("api: unknown unit")
	ErrUnitExists         = errors.New("api: unit already registered")
	ErrUnitDying          = errors.New("api: unit is dying")
	ErrStaleResolve       = errors.New("api: stale resolve")
	ErrStaleConfig        = errors.New("api: config changed since the version given")
	ErrNeedsProtocol      = errors.New("api: needs a newer cluster protocol")
	ErrUnknownRelation    = errors.New("api: relation not found")
	ErrRelationExists     = errors.New("api: relation already exists")
	ErrCannotEnterScope   = errors.New("api: cannot enter scope")
	ErrNotInScope         = errors.New("api: unit is not in scope of the relation")
	ErrUnknownOperation   = errors.New("api: operation not found")
	ErrUnknownAction      = errors.New("api: action not defined")
	ErrOperationStatus    = errors.New("api: wrong operation status")
	ErrInvalidParams      = errors.New("api: invalid action params")
	// ErrLimitExceeded matches CodeLimitExceeded (api.go): a change the
	// API's limits, or the state machine's databag limits, refused.
	ErrLimitExceeded      = errors.New("api: over a state limit")
	ErrInvalidCommand     = errors.New("api: invalid command")
	ErrUnknownCommand     = errors.New("api: unknown command type")
	ErrUnsupportedVersion = errors.New("api: unsupported command version")
	ErrSnapshotFormat     = errors.New("api: unsupported snapshot format")
	ErrInvalidConfig      = errors.New("api: invalid config")
	ErrNotRaftLeader      = errors.New("api: not the raft leader")
	ErrRetryable          = errors.New("api: retryable")
	ErrNodeClosed         = errors.New("api: controller node closed")
)

var sentinels = map[string]error{
	CodeClaimDenied:        ErrClaimDenied,
	CodeNotHolder:          ErrNotHolder,
	CodeStepDownPending:    ErrStepDownPending,
	CodePinned:             ErrPinned,
	CodeNotPinned:          ErrNotPinned,
	CodeStaleTerm:          ErrStaleTerm,
	CodeNoLeader:           ErrNoLeader,
	CodeNotLeader:          ErrNotLeader,
	CodeTimeMismatch:       ErrTimeMismatch,
	CodeVersionMismatch:    ErrVersionMismatch,
	CodeVersionUnsupported: ErrVersionUnsupported,
	CodeUnknownApplication: ErrUnknownApplication,
	CodeUnknownUnit:        ErrUnknownUnit,
	CodeUnitExists:         ErrUnitExists,
	CodeUnitDying:          ErrUnitDying,
	CodeStaleResolve:       ErrStaleResolve,
	CodeStaleConfig:        ErrStaleConfig,
	CodeNeedsProtocol:      ErrNeedsProtocol,
	CodeUnknownRelation:    ErrUnknownRelation,
	CodeRelationExists:     ErrRelationExists,
	CodeCannotEnterScope:   ErrCannotEnterScope,
	CodeNotInScope:         ErrNotInScope,
	CodeUnknownOperation:   ErrUnknownOperation,
	CodeUnknownAction:      ErrUnknownAction,
	CodeOperationStatus:    ErrOperationStatus,
	CodeInvalidParams:      ErrInvalidParams,
	CodeLimitExceeded:      ErrLimitExceeded,
	CodeInvalidCommand:     ErrInvalidCommand,
	CodeUnknownCommand:     ErrUnknownCommand,
	CodeUnsupportedVersion: ErrUnsupportedVersion,
	CodeSnapshotFormat:     ErrSnapshotFormat,
	CodeInvalidConfig:      ErrInvalidConfig,
	CodeNotRaftLeader:      ErrNotRaftLeader,
	CodeRetryable:          ErrRetryable,
	CodeNodeClosed:         ErrNodeClosed,
}

// RefusalCodes lists every code that has a sentinel, sorted.
func RefusalCodes() []string { return slices.Sorted(maps.Keys(sentinels)) }

// Sentinel returns the sentinel of a refusal code, or nil for a code that
// has none (unauthorized, bad-request, ...) or that this release does not
// know.
func Sentinel(code string) error { return sentinels[code] }

// CodeError is a refusal rebuilt from an answer: Error() is the
// controller's message and errors.Is matches the sentinel of Code.
type CodeError struct {
	Code    string
	Message string
}

func (e *CodeError) Error() string { return e.Message }

// Is makes errors.Is(e, Sentinel(e.Code)) true.
func (e *CodeError) Is(target error) bool {
	s := sentinels[e.Code]
	return s != nil && s == target
}

// Status kinds of a set-status call: the workload status a charm sets with
// status-set, and the agent status the agent reports itself.
const (
	StatusWorkload = "workload"
	StatusAgent    = "agent"
)

// Lives of a unit, in the life fields of the API's answers.
const (
	LifeAlive = "alive"
	LifeDying = "dying"
)
