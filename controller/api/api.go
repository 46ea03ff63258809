// Package api holds the wire types of the controller's HTTP API (/v1):
// request and response bodies as JSON, the error body, and the headers of
// blocking queries. Both the server (package controller) and the typed
// client (package controller/client) use them, so the two cannot drift.
//
// Durations travel as Go duration strings ("30s"); times as RFC 3339 in
// UTC; every error is one line of JSON: {"error":"...","code":"..."}.
package api

import (
	"encoding/json"
	"fmt"
	"time"
)

// Headers and limits of the API.
const (
	// HeaderIndex carries the modify index of a blocking query's resource;
	// pass it back as ?index= to wait for the next change.
	HeaderIndex = "X-Uniter-Index"
	// HeaderForwarded marks a write a follower forwarded to the raft
	// leader (its value is the follower's node ID). A forwarded write is
	// never forwarded again: a node that is not the leader answers 503.
	HeaderForwarded = "X-Uniter-Forwarded"
	// HeaderLeader, on every answer to a write, is the API address
	// (HOST:PORT) of the raft leader as the answering node knows it. A
	// client that has that address among its own may send its next
	// writes there and save the follower's forwarding hop.
	HeaderLeader = "X-Uniter-Leader"
	// HeaderMembers, on every answer to an authenticated request, lists
	// the API addresses (HOST:PORT, sorted, comma-separated) of the
	// controller's members as the answering node's state records them. An
	// agent follows it so that losing any one node, or removing it, never
	// leaves the agent without a controller (Juju's api-addresses).
	HeaderMembers = "X-Uniter-Members"
	// MaxBodyBytes bounds every request body; larger bodies get 413.
	MaxBodyBytes = 1 << 20
)

// Error codes of answers that are not refusals by the state machine (those
// are in errors.go).
const (
	CodeUnauthorized     = "unauthorized"       // 401: missing or unknown token
	CodeForbidden        = "forbidden"          // 403: the token may not do this
	CodeBadRequest       = "bad-request"        // 400: malformed body, query or name
	CodeNotFound         = "not-found"          // 404: no such endpoint
	CodeMethodNotAllowed = "method-not-allowed" // 405
	CodeTooLarge         = "too-large"          // 413: body over MaxBodyBytes
	CodeLimitExceeded    = "limit-exceeded"     // 413: the change would pass a state limit (docs/controller.md, "Limits")
	CodeUnavailable      = "unavailable"        // 503: no raft leader, or a retryable raft failure
	CodeBusy             = "busy"               // 503: too many blocking queries on this node
	CodeInternal         = "internal"           // 500
)

// Error is the body of every non-2xx answer. Lease is set on lease denials
// (409) so a denied claimer sees who holds the lease.
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
	Lease *Lease `json:"lease,omitempty"`
	// Leader is the raft leader's API address when known, on 503 answers
	// from a node that could not forward a write.
	Leader string `json:"leader,omitempty"`
}

// Lease is an application's leadership lease as the API shows it.
// Holder is "" when the lease is vacant; Term is kept across vacancy.
type Lease struct {
	Holder   string
	Term     uint64
	Start    time.Time
	Expiry   time.Time
	Duration time.Duration
	Pins     []Pin
	StepDown bool
}

// Pin is one operator's pin on a lease. Until is nil for a pin that stays
// until removed.
type Pin struct {
	Entity string     `json:"entity"`
	Reason string     `json:"reason"`
	Since  time.Time  `json:"since"`
	Until  *time.Time `json:"until"`
}

type wireLease struct {
	Holder   string    `json:"holder"`
	Term     uint64    `json:"term"`
	Start    time.Time `json:"start"`
	Duration string    `json:"duration"`
	Expiry   time.Time `json:"expiry"`
	Pins     []Pin     `json:"pins"`
	StepDown bool      `json:"step_down"`
}

// MarshalJSON writes {holder, term, start, duration:"30s", expiry, pins,
// step_down}; pins is [] rather than null.
func (l Lease) MarshalJSON() ([]byte, error) { return l.AppendJSON(nil) }

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Lease) UnmarshalJSON(data []byte) error {
	var w wireLease
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	d, err := ParseDuration(w.Duration, true)
	if err != nil {
		return fmt.Errorf("lease duration: %w", err)
	}
	*l = Lease{Holder: w.Holder, Term: w.Term, Start: w.Start, Expiry: w.Expiry,
		Duration: d, Pins: w.Pins, StepDown: w.StepDown}
	return nil
}

// ParseDuration parses a Go duration string; "" is 0 when optional. A
// negative duration is an error.
func ParseDuration(s string, optional bool) (time.Duration, error) {
	if s == "" && optional {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// ClaimRequest is the body of POST /v1/leases/{app}/claim.
type ClaimRequest struct {
	Unit     string `json:"unit"`
	Duration string `json:"duration"`
}

// ExtendRequest is the body of POST /v1/leases/{app}/extend. Term 0 means
// any term.
type ExtendRequest struct {
	Unit     string `json:"unit"`
	Duration string `json:"duration"`
	Term     uint64 `json:"term,omitempty"`
}

// RevokeRequest is the body of POST /v1/leases/{app}/revoke.
type RevokeRequest struct {
	Unit string `json:"unit"`
	Term uint64 `json:"term,omitempty"`
}

// StepDownRequest is the (optional) body of POST /v1/leases/{app}/step-down.
// Term, if set, must be the current term.
type StepDownRequest struct {
	Term uint64 `json:"term,omitempty"`
}

// PinRequest is the body of POST /v1/leases/{app}/pin. For, if set, makes
// the pin expire by itself after that long (in global time).
type PinRequest struct {
	Entity string `json:"entity"`
	Reason string `json:"reason"`
	For    string `json:"for,omitempty"`
}

// UnpinRequest is the body of POST /v1/leases/{app}/unpin.
type UnpinRequest struct {
	Entity string `json:"entity"`
}

// LeaseResponse answers the lease endpoints. The server writes it with
// AppendJSON (leasejson.go): a new field goes there too.
type LeaseResponse struct {
	Lease Lease `json:"lease"`
}

// UnitView is the remote state of one unit, as its agent watches it
// (GET /v1/units/{app}/{n}/watch).
type UnitView struct {
	Life                  string `json:"life"`
	ResolvedID            uint64 `json:"resolved_id"`
	ResolvedNoRetry       bool   `json:"resolved_no_retry"`
	ConfigVersion         uint64 `json:"config_version"`
	LeaderSettingsVersion uint64 `json:"leader_settings_version"`
	Lease                 Lease  `json:"lease"`
	// Operations are the unit's pending and running operations, oldest
	// first ([] when none; absent from a controller before actions): a
	// new one moves the watch's index.
	Operations []QueuedOperation `json:"operations"`
	// Relations are the relations of the unit's application, by id
	// (controller protocol 4; absent when there are none): a new or
	// removed relation, a change of life or scope, and a change of data
	// in a relation whose scope the unit is in all move the watch's index.
	Relations []UnitRelation `json:"relations,omitempty"`
}

// Option is one option of an application's config schema (a charm's
// config.yaml). Default is the default as a string, nil when none.
type Option struct {
	Type        string  `json:"type"`
	Default     *string `json:"default,omitempty"`
	Description string  `json:"description,omitempty"`
}

// Config is an application's config (GET /v1/applications/{app}/config):
// the values set (defaults are not filled in), their version and the schema.
type Config struct {
	Values  map[string]string `json:"values"`
	Version uint64            `json:"version"`
	Schema  map[string]Option `json:"schema"`
}

// Settings is an application's leader settings.
type Settings struct {
	Values  map[string]string `json:"values"`
	Version uint64            `json:"version"`
}

// ConfigChanges is the body of PATCH /v1/applications/{app}/config; a ""
// value deletes the key. IfVersion (controller protocol 2) makes it a
// compare-and-set on the config version: 409 stale-config if the config
// changed since; 409 needs-protocol while the cluster runs protocol 1.
type ConfigChanges struct {
	Changes   map[string]string `json:"changes"`
	IfVersion *uint64           `json:"if_version,omitempty"`
}

// LeaderSettingsChanges is the body of PATCH
// /v1/applications/{app}/leader-settings: applied only if Unit holds the
// lease for Term.
type LeaderSettingsChanges struct {
	Unit    string            `json:"unit"`
	Term    uint64            `json:"term"`
	Changes map[string]string `json:"changes"`
}

// UnitStatusRequest is the body of POST /v1/units/{app}/{n}/status. Kind
// is "workload" or "agent".
type UnitStatusRequest struct {
	Kind    string `json:"kind"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// ApplicationStatusRequest is the body of POST
// /v1/applications/{app}/status, fenced like leader settings.
type ApplicationStatusRequest struct {
	Unit    string `json:"unit"`
	Term    uint64 `json:"term"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// ApplicationVersionRequest is the body of POST
// /v1/units/{app}/{n}/application-version.
type ApplicationVersionRequest struct {
	Version string `json:"version"`
}

// RegisterUnitRequest is the body of POST /v1/units. The controller keeps
// only the token's SHA-256. ConfigSchema null (or absent) leaves the
// application's schema alone; {} is a charm without options (every config
// key is then refused), so it is not omitempty. Actions, the charm's
// actions.yaml, work the same way (absent: left alone; {}: none); a
// cluster below controller protocol 4 registers the unit without them.
// Endpoints are the charm's relation endpoints by name, likewise: absent
// leaves them alone, {} is a charm without any. Endpoints need controller
// protocol 4 (409 needs-protocol below it, except {}, which is then left
// out); every peers endpoint gets its peer relation with the first unit
// registered.
type RegisterUnitRequest struct {
	Unit         string                `json:"unit"`
	Token        string                `json:"token"`
	ConfigSchema map[string]Option     `json:"config_schema"`
	Actions      map[string]ActionSpec `json:"actions,omitzero"`
	Endpoints    map[string]Endpoint   `json:"endpoints,omitzero"`
}

// ResolvedRequest is the body of POST /v1/units/{app}/{n}/resolved.
// After, if set, makes it a compare-and-set on the unit's resolved ID
// (409 stale-resolve if another resolve came first).
type ResolvedRequest struct {
	NoRetry bool   `json:"no_retry"`
	After   uint64 `json:"after,omitempty"`
}

// JoinRequest is the body of POST /v1/cluster/join. ProtoMin and
// ProtoMax are the controller protocol versions the joining node speaks;
// absent (a node from before protocol versioning) means 1..1. The leader
// refuses a node whose range does not include the cluster's effective
// version (409 version-unsupported), before adding it.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	ProtoMin uint64 `json:"proto_min,omitempty"`
	ProtoMax uint64 `json:"proto_max,omitempty"`
}

// CertificateRequest is the body of POST /v1/cluster/certificates: a
// joining node's certificate signing request (PEM), whose common name is
// the node's ID and whose SANs are its advertised hosts (admin only).
type CertificateRequest struct {
	ID  string `json:"id"`
	CSR string `json:"csr"`
}

// CertificateResponse answers a CertificateRequest: the node's
// certificate and the cluster CA's certificate and key (all PEM), so that
// every node can issue certificates (a later join, rotate-certs).
type CertificateResponse struct {
	Certificate string `json:"certificate"`
	CACert      string `json:"ca_cert"`
	CAKey       string `json:"ca_key"`
}

// NodeCertificate describes the certificate a node presents: the answer
// of POST /v1/node/certificate/rotate, which makes the node answering it
// (never forwarded) issue itself a new one.
type NodeCertificate struct {
	ID       string    `json:"id"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	Hosts    []string  `json:"hosts"`
}

// AnnounceRequest is the body of POST /v1/cluster/announce: a member
// node's protocol range and addresses, which it sends on every start
// (authenticated with the node credential, see NodeToken).
type AnnounceRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	ProtoMin uint64 `json:"proto_min"`
	ProtoMax uint64 `json:"proto_max"`
}

// Node is one controller node. Status shows id, address and raft_state;
// GET /v1/cluster/nodes shows all fields: proto_min and proto_max are the
// protocol range the node announced (absent if it has not).
type Node struct {
	ID        string `json:"id"`
	Address   string `json:"address"`
	RaftAddr  string `json:"raft_address,omitempty"`
	RaftState string `json:"raft_state"`
	Suffrage  string `json:"suffrage,omitempty"`
	ProtoMin  uint64 `json:"proto_min,omitempty"`
	ProtoMax  uint64 `json:"proto_max,omitempty"`
}

// NodesResponse answers GET /v1/cluster/nodes. EffectiveVersion is the
// controller protocol version the cluster runs, as the answering node's
// state has it.
type NodesResponse struct {
	Nodes            []Node `json:"nodes"`
	EffectiveVersion uint64 `json:"effective_version"`
}

// WriteResult answers a write that returns nothing else: the raft log index
// it was applied at.
type WriteResult struct {
	Index uint64 `json:"index"`
}
