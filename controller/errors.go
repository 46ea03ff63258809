package controller

import (
	"errors"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
	"github.com/uniter-dev/uniter/lease/raftnode"
)

// errorCodes maps the state machine's and the raft node's errors to the
// API's refusal codes. This table is the one place the two vocabularies
// meet: agents and the CLI match the api sentinels the client rebuilds
// from these codes, and never import lease.
var errorCodes = []struct {
	err  error
	code string
}{
	{lease.ErrClaimDenied, api.CodeClaimDenied},
	{lease.ErrNotHolder, api.CodeNotHolder},
	{lease.ErrStepDownPending, api.CodeStepDownPending},
	{lease.ErrPinned, api.CodePinned},
	{lease.ErrNotPinned, api.CodeNotPinned},
	{lease.ErrStaleTerm, api.CodeStaleTerm},
	{lease.ErrNoLeader, api.CodeNoLeader},
	{lease.ErrNotLeader, api.CodeNotLeader},
	{lease.ErrTimeMismatch, api.CodeTimeMismatch},
	{lease.ErrVersionMismatch, api.CodeVersionMismatch},
	{lease.ErrVersionUnsupported, api.CodeVersionUnsupported},
	{lease.ErrUnknownApplication, api.CodeUnknownApplication},
	{lease.ErrUnknownUnit, api.CodeUnknownUnit},
	{lease.ErrUnitExists, api.CodeUnitExists},
	{lease.ErrUnitDying, api.CodeUnitDying},
	{lease.ErrStaleResolve, api.CodeStaleResolve},
	{lease.ErrStaleConfig, api.CodeStaleConfig},
	{lease.ErrNeedsProtocol, api.CodeNeedsProtocol},
	{lease.ErrUnknownRelation, api.CodeUnknownRelation},
	{lease.ErrRelationExists, api.CodeRelationExists},
	{lease.ErrCannotEnterScope, api.CodeCannotEnterScope},
	{lease.ErrNotInScope, api.CodeNotInScope},
	{lease.ErrUnknownOperation, api.CodeUnknownOperation},
	{lease.ErrUnknownAction, api.CodeUnknownAction},
	{lease.ErrOperationStatus, api.CodeOperationStatus},
	{errInvalidParams, api.CodeInvalidParams},
	{lease.ErrTooLarge, api.CodeLimitExceeded},
	{lease.ErrInvalidCommand, api.CodeInvalidCommand},
	{lease.ErrUnknownCommand, api.CodeUnknownCommand},
	{lease.ErrUnsupportedVersion, api.CodeUnsupportedVersion},
	{lease.ErrSnapshotFormat, api.CodeSnapshotFormat},
	{lease.ErrInvalidConfig, api.CodeInvalidConfig},
	{raftnode.ErrNotRaftLeader, api.CodeNotRaftLeader},
	{raftnode.ErrRetryable, api.CodeRetryable},
	{raftnode.ErrNodeClosed, api.CodeNodeClosed},
}

// errorCode is the API code of the first error of errorCodes that err
// matches, or "" if it matches none.
func errorCode(err error) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}
