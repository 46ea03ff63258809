package lease

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"time"
)

// CommandVersion is the only envelope version this FSM applies.
const CommandVersion = 1

// Command is the envelope every raft log entry carries, encoded as JSON:
// {"version":1,"type":"claim","payload":{...}}. An unknown version or type
// is applied as an error result (ErrUnsupportedVersion, ErrUnknownCommand),
// never a panic, and changes nothing.
type Command struct {
	Version int             `json:"version"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// Op is one typed command. Only this package's command types implement it.
type Op interface {
	// Type is the command's wire name in the envelope.
	Type() string
	apply(s *State, index uint64) Result
}

// Claim takes a vacant lease for Unit (incrementing the term), or extends
// it if Unit already holds it. Another holder: ErrClaimDenied; a dying unit
// (see RequestUnitRemoval) that does not hold the lease: ErrUnitDying. From
// protocol 3, ErrClaimDenied too while the vacant lease is being handed
// over from Unit after its step-down (Lease.SteppedDown) and another alive
// unit could take it. The result's Lease reports the outcome (holder,
// term, expiry), also on denial. Retry: safe; a replay by the holder is an
// extend.
type Claim struct {
	App      string        `json:"app"`
	Unit     string        `json:"unit"`
	Duration time.Duration `json:"duration"` // nanoseconds, 0 < d <= MaxDuration
}

// Extend renews the holder's lease: expiry = max(expiry, now+Duration).
// Not the holder (or Term given and not current): ErrNotHolder; step-down
// requested: ErrStepDownPending. Retry: safe (never shortens).
type Extend struct {
	App      string        `json:"app"`
	Unit     string        `json:"unit"`
	Duration time.Duration `json:"duration"`
	Term     uint64        `json:"term,omitempty"` // 0: any term
}

// Revoke releases the holder's lease at once. Not the holder (or Term given
// and not current): ErrNotHolder; pinned: ErrPinned. From protocol 3, a
// lease revoked after a step-down request is handed over (see Claim).
// Retry: a replay after success fails cleanly with ErrNotHolder; give Term
// so that it can never release a later term.
type Revoke struct {
	App  string `json:"app"`
	Unit string `json:"unit"`
	Term uint64 `json:"term,omitempty"`
}

// RequestStepDown asks the holder to step down: it may not extend any more
// and should run leader-deposed, then Revoke. Vacant: ErrNoLeader; pinned:
// ErrPinned; Term given and not current: ErrStaleTerm. From protocol 3,
// once the lease is released (revoked, or run out), it is handed over: the
// unit that stepped down may not claim it for one lease duration while
// another alive unit could, so that the leadership moves even if the old
// holder's agent claims first. Retry: idempotent; give Term so a replay
// cannot hit the next leader.
type RequestStepDown struct {
	App  string `json:"app"`
	Term uint64 `json:"term,omitempty"`
}

// PinLease adds (or updates the reason/until of) Entity's pin. Vacant:
// ErrNoLeader; step-down pending: ErrStepDownPending. Until, if set, must
// be after the global time. Retry: idempotent (Since is kept).
type PinLease struct {
	App    string     `json:"app"`
	Entity string     `json:"entity"`
	Reason string     `json:"reason"`
	Until  *time.Time `json:"until,omitempty"`
}

// UnpinLease removes Entity's pin; removing the last one sets expiry to
// max(expiry, now + the lease's duration). No such pin: ErrNotPinned.
// Retry: a replay after success fails cleanly with ErrNotPinned.
type UnpinLease struct {
	App    string `json:"app"`
	Entity string `json:"entity"`
}

// AdvanceTime moves the global time from Old to New (compare-and-set;
// Old != global time: ErrTimeMismatch), ends hand-overs whose
// HandOverUntil <= New, drops pins whose Until <= New, then expires every
// unpinned lease with expiry + Slack < New. Slack is carried
// in the command so Apply stays deterministic. Retry: a replay fails
// cleanly with ErrTimeMismatch.
type AdvanceTime struct {
	Old   time.Time     `json:"old"`
	New   time.Time     `json:"new"`
	Slack time.Duration `json:"slack"`
}

// SetLeaderSettings applies Changes to the leader settings ("" deletes a
// key, as `leader-set k=`) if Unit holds the lease and Term is current,
// else ErrNotLeader. The version is bumped only if a value changed.
// Retry: idempotent.
type SetLeaderSettings struct {
	App     string            `json:"app"`
	Unit    string            `json:"unit"`
	Term    uint64            `json:"term"`
	Changes map[string]string `json:"changes"`
}

// SetConfig applies Changes to the application's config ("" deletes a
// key). Unknown application: ErrUnknownApplication. If the application has
// a ConfigSchema, every key must be an option of it and every non-empty
// value must parse as the option's type, else the whole command is refused
// with an error wrapping ErrInvalidConfig (`unknown option "x"`, `option
// "x" expects int, got "abc"`); deleting ("") a key that is set is allowed
// even if the schema no longer has it. The version is bumped only if a
// value changed. Retry: idempotent.
//
// IfVersion (protocol 2) makes it a compare-and-set: applied only while
// the config's version is *IfVersion, else ErrStaleConfig (the result's
// Version is the version as it stands), so that read-modify-write cycles
// of two operators cannot lose an update. Retry: a replay after a success
// that changed a value fails cleanly with ErrStaleConfig. Without
// IfVersion the command encodes exactly as in protocol 1.
type SetConfig struct {
	App       string            `json:"app"`
	Changes   map[string]string `json:"changes"`
	IfVersion *uint64           `json:"if_version,omitempty"`
}

// Status kinds for SetUnitStatus.
const (
	StatusWorkload = "workload"
	StatusAgent    = "agent"
)

// SetUnitStatus sets the unit's workload or agent status, stamped with the
// global time (Since changes only if status or message did), and marks the
// unit seen. Workload: active blocked maintenance waiting unknown error
// terminated; agent: allocating idle executing error lost. Retry: idempotent.
type SetUnitStatus struct {
	Unit    string `json:"unit"`
	Kind    string `json:"kind"` // StatusWorkload or StatusAgent
	Status  string `json:"status"`
	Message string `json:"message"`
}

// SetApplicationVersion sets the unit's application version (as Juju's
// application-version-set) and marks the unit seen. Retry: idempotent.
type SetApplicationVersion struct {
	Unit    string `json:"unit"`
	Version string `json:"version"`
}

// RegisterUnit registers Name ("app/N", creating the application if new)
// with the hex SHA-256 of its token (see HashToken). Registered with the
// same hash: no-op success (except for the schema and endpoints); with
// another: ErrUnitExists. A non-nil ConfigSchema (even empty: a charm
// without options) replaces the application's schema on success, so the
// first registration of an application sets it and a later one with the
// upgraded charm's schema replaces it; nil leaves it alone. Values already
// set are kept even if the new schema would refuse them.
//
// Endpoints (protocol 4) work the same way for the charm's relation
// endpoints, with two more rules: new endpoints that would break one of
// the application's relations (an endpoint it uses gone, or of another
// role or interface) are refused with ErrInvalidCommand, as Juju's
// upgrade-charm refuses them; and every peers endpoint that has no
// relation yet gets its peer relation, so the first unit registered
// creates them. Actions (protocol 4) work like the schema, for the
// charm's actions.yaml (names by Juju's rule, each schema a JSON object,
// else ErrInvalidCommand). Without Endpoints and Actions the command
// encodes exactly as in protocol 1. Retry: idempotent.
type RegisterUnit struct {
	Name      string `json:"name"`
	TokenHash string `json:"token_hash"`
	// ConfigSchema is the charm's config.yaml options. Not omitempty: an
	// empty schema is not the same as none.
	ConfigSchema map[string]Option `json:"config_schema"`
	// Endpoints are the charm's relation endpoints by name. omitzero: nil
	// (leave them alone) is left out, an empty map (a charm without
	// endpoints) is not.
	Endpoints map[string]Endpoint `json:"endpoints,omitzero"`
	// Actions (protocol 4) are the charm's actions by name, like the
	// schema: non-nil replaces the application's. omitzero as Endpoints.
	Actions map[string]ActionSpec `json:"actions,omitzero"`
}

// RequestUnitRemoval marks a unit dying: it may no longer claim a vacant
// lease (ErrUnitDying) but may still extend or revoke the lease it holds,
// so that it can run its teardown hooks (and leader-deposed) before it is
// deregistered. Unknown unit: ErrUnknownUnit. Retry: idempotent.
type RequestUnitRemoval struct {
	Name string `json:"name"`
}

// Resolve records an operator's `resolved` for a unit in an error state:
// it bumps the unit's ResolvedID and sets ResolvedNoRetry (true: skip the
// failed hook; false: retry it). The agent acts once per new ResolvedID.
// The result's Version is the ResolvedID after the command (or as it
// stands, on ErrStaleResolve). Unknown unit: ErrUnknownUnit.
//
// Retry: NOT idempotent by design (two resolves are two requests), unless
// After is set: then it is a compare-and-set that applies only while the
// unit's ResolvedID is After (else ErrStaleResolve), so a replay after
// success fails cleanly. After == 0 means "unconditional", so the very
// first resolve of a unit (ResolvedID 0) cannot be made conditional;
// repeating it at worst asks the agent to resolve an error that is gone,
// which it ignores.
type Resolve struct {
	Unit    string `json:"unit"`
	NoRetry bool   `json:"no_retry"`
	After   uint64 `json:"after,omitempty"`
}

// SetApplicationStatus sets the application's status (a workload status:
// active blocked maintenance waiting unknown error terminated), stamped
// with the global time (Since changes only if status or message did). It
// is fenced like SetLeaderSettings: applied only if Unit holds the lease
// and Term is the current term, else ErrNotLeader. Retry: idempotent.
type SetApplicationStatus struct {
	App     string `json:"app"`
	Unit    string `json:"unit"`
	Term    uint64 `json:"term"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// DeregisterUnit removes a unit and releases its lease if it holds it
// (ErrPinned if that lease is pinned: unpin first). It leaves every
// relation scope the unit is in (see LeaveScope: a dying relation whose
// last unit it was is removed). The application and its term are kept.
// Unknown unit: ErrUnknownUnit. Retry: a replay after success fails
// cleanly with ErrUnknownUnit.
type DeregisterUnit struct {
	Name string `json:"name"`
}

// RecordMember upserts a controller node's supported protocol range
// (1 <= ProtoMin <= ProtoMax) and addresses: RaftAddr is its raft
// transport address, APIAddr its HTTP API address (so that any node can
// map the raft leader to the address writes are forwarded to). A range
// that does not include the effective version is refused with a
// *RangeError (ErrVersionUnsupported): such a node cannot be a member.
// Retry: idempotent.
type RecordMember struct {
	ID       string `json:"id"`
	ProtoMin uint64 `json:"proto_min"`
	ProtoMax uint64 `json:"proto_max"`
	APIAddr  string `json:"api_addr,omitempty"`
	RaftAddr string `json:"raft_addr,omitempty"`
}

// ForgetMember removes a controller node's record; absent is a no-op.
// Retry: idempotent.
type ForgetMember struct {
	ID string `json:"id"`
}

// SetEffectiveVersion moves the effective version from Old to New
// (compare-and-set: ErrVersionMismatch); it never goes down (New < Old is
// invalid). New must lie in every recorded member's range
// (ErrVersionUnsupported). Only the raft leader proposes it (see
// docs/upgrades.md). Retry: a replay fails cleanly with
// ErrVersionMismatch (unless Old == New).
type SetEffectiveVersion struct {
	Old uint64 `json:"old"`
	New uint64 `json:"new"`
}

// AddRelation (protocol 4) relates two applications' endpoints: a
// requires endpoint to a provides endpoint of the same interface. An
// EndpointRef without an endpoint name lets the state machine pick: the
// one pair of the two applications' endpoints that relates, else the
// refusal says there is none or lists the candidates. Refused, changing
// nothing: an unknown application (ErrUnknownApplication); an unknown
// endpoint, roles that do not pair, interfaces that differ, a peers
// endpoint, an application related to itself (ErrInvalidCommand); two
// endpoints a relation already joins, alive or dying (ErrRelationExists).
// The new relation gets the next id and an empty application databag per
// side; the result's Relation is a copy of it. Retry: a replay after
// success fails cleanly with ErrRelationExists.
type AddRelation struct {
	A EndpointRef `json:"a"`
	B EndpointRef `json:"b"`
}

// RemoveRelation (protocol 4) marks a relation dying: no unit may enter
// its scope any more, and the units in scope run -departed and -broken and
// leave it; the last to leave removes it. A relation with no unit in scope
// is removed at once. A peer relation cannot be removed (it lasts as long
// as its application): ErrInvalidCommand. Unknown: ErrUnknownRelation.
// Retry: idempotent while the relation is dying; a replay after it is gone
// fails cleanly with ErrUnknownRelation.
type RemoveRelation struct {
	Relation int `json:"relation"`
}

// EnterScope (protocol 4) puts Unit in the relation's scope, with a unit
// databag holding Data (Juju's agent seeds it with the unit's addresses;
// empty values are left out): from then on the other units see it joined.
// Unit must be a unit of one of the relation's applications
// (ErrInvalidCommand). A dying relation or unit: ErrCannotEnterScope;
// unknown: ErrUnknownRelation, ErrUnknownUnit; Data over a limit:
// ErrTooLarge. The result's Version is the unit databag's. Retry:
// idempotent (a unit already in scope keeps its databag; Data is then
// ignored).
type EnterScope struct {
	Relation int               `json:"relation"`
	Unit     string            `json:"unit"`
	Data     map[string]string `json:"data,omitempty"`
}

// LeaveScope (protocol 4) takes Unit out of the relation's scope and
// drops its unit databag; if the relation is dying and that was the last
// unit, the relation is removed. A unit not in scope: no-op success.
// Unknown relation: ErrUnknownRelation. Retry: idempotent until the
// relation is gone, then it fails cleanly with ErrUnknownRelation.
type LeaveScope struct {
	Relation int    `json:"relation"`
	Unit     string `json:"unit"`
}

// SetRelationData (protocol 4) applies Changes (nil or "" deletes a key)
// to one databag of the relation: Unit's own unit databag, which needs
// Unit in scope (ErrNotInScope), or with App the application databag of
// Unit's application, which is fenced like SetLeaderSettings: applied only
// if Unit holds the lease and Term is the current term, else ErrNotLeader,
// so a deposed leader's write is refused even if its agent has not
// noticed (Term is ignored for unit data). Writes to a dying relation are
// allowed (the -departed and -broken hooks may write). An empty key is
// invalid; a key, value or resulting databag over a limit is refused with
// ErrTooLarge (see MaxDatabagValueBytes). The databag's version moves to
// the command's index only if a value changed; the result's Version is
// the databag's version after. Retry: idempotent.
type SetRelationData struct {
	Relation int                `json:"relation"`
	Unit     string             `json:"unit"`
	App      bool               `json:"app,omitempty"`
	Term     uint64             `json:"term,omitempty"`
	Changes  map[string]*string `json:"changes"`
}

// RelationChanges is one relation's part of a CommitRelationData: the
// changes (nil or "" deletes a key) to the committing unit's own databag
// and to its application's databag. A nil or empty map writes nothing.
type RelationChanges struct {
	Relation int                `json:"relation"`
	Unit     map[string]*string `json:"unit,omitempty"`
	App      map[string]*string `json:"app,omitempty"`
}

// CommitRelationData (protocol 4) applies every relation write of one hook
// of Unit in one log entry: all of them or, if any is refused, none, so no
// reader ever sees a hook's writes half applied (ops charms write their
// relation data through the hook and commit it at its end). Each entry is
// checked exactly as SetRelationData checks a write: unit changes need
// Unit in scope (ErrNotInScope); application changes are fenced by Term
// (Unit must hold the lease in Term, else ErrNotLeader); keys, values and
// the resulting databags keep the limits (ErrTooLarge); an unknown
// relation (ErrUnknownRelation) or one of another application
// (ErrInvalidCommand) refuses the whole commit. A relation listed twice
// is invalid (merge its changes into one entry). The refusal names the
// relation of the first entry refused. Each databag a value changed in
// gets the command's index as its version. No entries: a no-op for a
// registered unit. Retry: idempotent.
type CommitRelationData struct {
	Unit      string            `json:"unit"`
	Term      uint64            `json:"term,omitempty"`
	Relations []RelationChanges `json:"relations"`
}

// relationsProtocol is the protocol of the relation commands.
const relationsProtocol = 4

// Type implements Op.
func (Claim) Type() string { return "claim" }

// Type implements Op.
func (Extend) Type() string { return "extend" }

// Type implements Op.
func (Revoke) Type() string { return "revoke" }

// Type implements Op.
func (RequestStepDown) Type() string { return "request-step-down" }

// Type implements Op.
func (PinLease) Type() string { return "pin" }

// Type implements Op.
func (UnpinLease) Type() string { return "unpin" }

// Type implements Op.
func (AdvanceTime) Type() string { return "advance-time" }

// Type implements Op.
func (SetLeaderSettings) Type() string { return "set-leader-settings" }

// Type implements Op.
func (SetConfig) Type() string { return "set-config" }

// needs implements gated: the conditional form is protocol 2.
func (c SetConfig) needs() (uint64, string) {
	if c.IfVersion != nil {
		return 2, "conditional config set (if_version)"
	}
	return MinProtocol, c.Type()
}

// Type implements Op.
func (SetUnitStatus) Type() string { return "set-unit-status" }

// Type implements Op.
func (SetApplicationVersion) Type() string { return "set-application-version" }

// Type implements Op.
func (RegisterUnit) Type() string { return "register-unit" }

// needs implements gated: endpoints and actions are protocol 4.
func (c RegisterUnit) needs() (uint64, string) {
	if c.Endpoints != nil {
		return relationsProtocol, "relation endpoints (register-unit endpoints)"
	}
	if c.Actions != nil {
		return operationsProtocol, "actions (register-unit actions)"
	}
	return MinProtocol, c.Type()
}

// Type implements Op.
func (AddRelation) Type() string { return "add-relation" }

// Type implements Op.
func (RemoveRelation) Type() string { return "remove-relation" }

// Type implements Op.
func (EnterScope) Type() string { return "enter-scope" }

// Type implements Op.
func (LeaveScope) Type() string { return "leave-scope" }

// Type implements Op.
func (SetRelationData) Type() string { return "set-relation-data" }

// Type implements Op.
func (CommitRelationData) Type() string { return "commit-relation-data" }

// needs implements gated: the relation commands are protocol 4.
func (c AddRelation) needs() (uint64, string) {
	return relationsProtocol, "relations (" + c.Type() + ")"
}
func (c RemoveRelation) needs() (uint64, string) {
	return relationsProtocol, "relations (" + c.Type() + ")"
}
func (c EnterScope) needs() (uint64, string) {
	return relationsProtocol, "relations (" + c.Type() + ")"
}
func (c LeaveScope) needs() (uint64, string) {
	return relationsProtocol, "relations (" + c.Type() + ")"
}
func (c SetRelationData) needs() (uint64, string) {
	return relationsProtocol, "relations (" + c.Type() + ")"
}
func (c CommitRelationData) needs() (uint64, string) {
	return relationsProtocol, "relations (" + c.Type() + ")"
}

// Type implements Op.
func (DeregisterUnit) Type() string { return "deregister-unit" }

// Type implements Op.
func (RequestUnitRemoval) Type() string { return "request-unit-removal" }

// Type implements Op.
func (Resolve) Type() string { return "resolve" }

// Type implements Op.
func (SetApplicationStatus) Type() string { return "set-application-status" }

// Type implements Op.
func (RecordMember) Type() string { return "record-member" }

// Type implements Op.
func (ForgetMember) Type() string { return "forget-member" }

// Type implements Op.
func (SetEffectiveVersion) Type() string { return "set-effective-version" }

var decoders = map[string]func(json.RawMessage) (Op, error){}

func init() {
	for _, d := range []struct {
		op     Op
		decode func(json.RawMessage) (Op, error)
	}{
		{Claim{}, decodeAs[Claim]},
		{Extend{}, decodeAs[Extend]},
		{Revoke{}, decodeAs[Revoke]},
		{RequestStepDown{}, decodeAs[RequestStepDown]},
		{PinLease{}, decodeAs[PinLease]},
		{UnpinLease{}, decodeAs[UnpinLease]},
		{AdvanceTime{}, decodeAs[AdvanceTime]},
		{SetLeaderSettings{}, decodeAs[SetLeaderSettings]},
		{SetConfig{}, decodeAs[SetConfig]},
		{SetUnitStatus{}, decodeAs[SetUnitStatus]},
		{SetApplicationVersion{}, decodeAs[SetApplicationVersion]},
		{RegisterUnit{}, decodeAs[RegisterUnit]},
		{DeregisterUnit{}, decodeAs[DeregisterUnit]},
		{RequestUnitRemoval{}, decodeAs[RequestUnitRemoval]},
		{Resolve{}, decodeAs[Resolve]},
		{SetApplicationStatus{}, decodeAs[SetApplicationStatus]},
		{RecordMember{}, decodeAs[RecordMember]},
		{ForgetMember{}, decodeAs[ForgetMember]},
		{SetEffectiveVersion{}, decodeAs[SetEffectiveVersion]},
		{AddRelation{}, decodeAs[AddRelation]},
		{RemoveRelation{}, decodeAs[RemoveRelation]},
		{EnterScope{}, decodeAs[EnterScope]},
		{LeaveScope{}, decodeAs[LeaveScope]},
		{SetRelationData{}, decodeAs[SetRelationData]},
		{CommitRelationData{}, decodeAs[CommitRelationData]},
		{Batch{}, decodeBatch},                 // batch.go
		{Renew{}, decodeAs[Renew]},             // renew.go
		{GraceLeases{}, decodeAs[GraceLeases]}, // renew.go
	} {
		decoders[d.op.Type()] = d.decode
	}
	maps.Copy(decoders, operationDecoders) // operations.go
	maps.Copy(decoders, portDecoders)      // ports.go
}

// Encode returns the JSON envelope of op at CommandVersion, ready to be the
// data of a raft log entry.
func Encode(op Op) ([]byte, error) {
	if op == nil {
		return nil, fmt.Errorf("cannot encode command: nil: %w", ErrInvalidCommand)
	}
	payload, err := json.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("cannot encode %s command: %w", op.Type(), err)
	}
	// The envelope around the payload, as json.Marshal of Command writes
	// it (the types are plain lower-case words), without marshalling the
	// payload a second time: every write encodes one.
	typ := op.Type()
	data := make([]byte, 0, len(envelopeHead)+len(typ)+len(envelopeMid)+len(payload)+1)
	data = append(data, envelopeHead...)
	data = append(data, typ...)
	data = append(data, envelopeMid...)
	data = append(data, payload...)
	return append(data, '}'), nil
}

// The envelope of Encode around the type and the payload.
var (
	envelopeHead = fmt.Sprintf(`{"version":%d,"type":"`, CommandVersion)
	envelopeMid  = `","payload":`
)

// Decode parses an envelope made by Encode. Unknown fields, an unknown
// version or type, and trailing data are errors (wrapping
// ErrInvalidCommand, ErrUnsupportedVersion or ErrUnknownCommand).
func Decode(data []byte) (Op, error) {
	var c Command
	if err := strictUnmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("cannot decode command: %w: %w", err, ErrInvalidCommand)
	}
	return decodeCommand(c)
}

// decodeCommand decodes the payload of an envelope.
func decodeCommand(c Command) (Op, error) {
	if c.Version != CommandVersion {
		return nil, fmt.Errorf("cannot decode command: version %d (want %d): %w",
			c.Version, CommandVersion, ErrUnsupportedVersion)
	}
	decode, ok := decoders[c.Type]
	if !ok {
		return nil, fmt.Errorf("cannot decode command: type %q: %w", c.Type, ErrUnknownCommand)
	}
	return decode(c.Payload)
}

func decodeAs[T Op](raw json.RawMessage) (Op, error) {
	var op T
	if err := strictUnmarshal(raw, &op); err != nil {
		return nil, fmt.Errorf("cannot decode %s command: %w: %w", op.Type(), err, ErrInvalidCommand)
	}
	return op, nil
}

// strictUnmarshal decodes exactly one JSON value with no unknown fields.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after JSON value")
	}
	return nil
}
