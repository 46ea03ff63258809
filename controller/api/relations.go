package api

import (
	"fmt"
	"strconv"
	"strings"
)

// Relation roles of an endpoint, as Juju names them: a charm's provides
// endpoints are providers, its requires endpoints requirers, its peers
// endpoints peers.
const (
	RoleProvider = "provider"
	RoleRequirer = "requirer"
	RolePeer     = "peer"
)

// The limits of a relation databag. The controller's state machine
// enforces them (413 limit-exceeded, naming the limit; docs/controller.md,
// "Relations" gives the reasons); the client checks the key and value
// limits before sending, with the same text.
const (
	MaxDatabagKeyBytes   = 256
	MaxDatabagValueBytes = 256 << 10
	MaxDatabagBytes      = 512 << 10
	MaxDatabagKeys       = 256
)

// Endpoint is one relation endpoint of a charm (a key of metadata.yaml's
// provides, requires or peers), as registration carries it.
type Endpoint struct {
	// Role is RoleProvider, RoleRequirer or RolePeer.
	Role string `json:"role"`
	// Interface is the protocol the endpoint speaks.
	Interface string `json:"interface"`
}

// RelationEndpoint is one side of a relation: an application's endpoint.
type RelationEndpoint struct {
	App       string `json:"app"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	Interface string `json:"interface"`
}

// String is "app:name", as Juju writes an endpoint.
func (e RelationEndpoint) String() string { return e.App + ":" + e.Name }

// Databag is one application's or one unit's settings in a relation.
// Version is the raft index of the last change of a value (it only grows).
type Databag struct {
	Values  map[string]string `json:"values"`
	Version uint64            `json:"version"`
}

// Relation is a relation as the API shows it (GET /v1/relations/{id}, and
// the lists, which leave AppData and UnitData out).
type Relation struct {
	// ID is cluster-unique and never reused; tools show it as
	// "endpoint:ID" (FormatRelationID).
	ID int `json:"id"`
	// Key is Juju's relation key: "web:db db:server" (requirer first), or
	// "db:cluster" for a peer relation.
	Key string `json:"key"`
	// Endpoints are the requirer's then the provider's, or the one
	// endpoint of a peer relation.
	Endpoints []RelationEndpoint `json:"endpoints"`
	// Interface is the interface both endpoints speak.
	Interface string `json:"interface"`
	// Peer is true for a peer relation.
	Peer bool `json:"peer"`
	// Life is LifeAlive, or LifeDying after remove-relation until the
	// last unit leaves its scope.
	Life string `json:"life"`
	// Scope lists the units in scope, sorted.
	Scope []string `json:"scope"`
	// AppData holds the application databags the caller may read, by
	// application; UnitData the unit databags, by unit (see
	// GET /v1/relations/{id} in controller/doc.go for who reads what).
	AppData  map[string]Databag `json:"app_data,omitempty"`
	UnitData map[string]Databag `json:"unit_data,omitempty"`
	// ModifyIndex is the raft index of the last change of the relation's
	// life, scope or data.
	ModifyIndex uint64 `json:"modify_index"`
}

// Endpoint returns app's side of r, and whether app is in r.
func (r Relation) Endpoint(app string) (RelationEndpoint, bool) {
	for _, e := range r.Endpoints {
		if e.App == app {
			return e, true
		}
	}
	return RelationEndpoint{}, false
}

// Remote returns the side across from app's: the other application's
// endpoint, or app's own in a peer relation. ok is false if app is not in r.
func (r Relation) Remote(app string) (RelationEndpoint, bool) {
	if _, ok := r.Endpoint(app); !ok {
		return RelationEndpoint{}, false
	}
	for _, e := range r.Endpoints {
		if e.App != app {
			return e, true
		}
	}
	return r.Endpoints[0], true
}

// RelationsResponse answers GET /v1/relations and
// GET /v1/applications/{app}/relations: relations sorted by id, without
// their data.
type RelationsResponse struct {
	Relations []Relation `json:"relations"`
}

// AddRelationRequest is the body of POST /v1/relations: two endpoints,
// each "app" or "app:endpoint" (as `uniter relate` takes them); a bare
// application lets the controller pick the one endpoint pair that
// relates.
type AddRelationRequest struct {
	Endpoints []string `json:"endpoints"`
}

// RelationResponse answers POST /v1/relations (the new relation) and
// GET /v1/relations/{id}.
type RelationResponse struct {
	Relation Relation `json:"relation"`
}

// ScopeRequest is the body of POST /v1/relations/{id}/enter-scope and
// leave-scope. Data (enter-scope only) seeds the unit's databag.
type ScopeRequest struct {
	Unit string            `json:"unit"`
	Data map[string]string `json:"data,omitempty"`
}

// RelationDataChanges is the body of PATCH /v1/relations/{id}/unit-data
// and app-data: changes to Unit's databag, or (app-data) to its
// application's, "" deleting a key. Term fences app-data like leader
// settings; unit-data ignores it.
type RelationDataChanges struct {
	Unit    string            `json:"unit"`
	Term    uint64            `json:"term,omitempty"`
	Changes map[string]string `json:"changes"`
}

// VersionResult answers a databag write: the raft index it was applied at
// and the databag's version after it (unchanged if no value changed).
type VersionResult struct {
	Index   uint64 `json:"index"`
	Version uint64 `json:"version"`
}

// RelationCommit is one relation's part of a relation-data commit: the
// changes ("" deletes a key) to the unit's own databag and to its
// application's. Relation is "N" or "endpoint:N".
type RelationCommit struct {
	Relation string            `json:"relation"`
	Unit     map[string]string `json:"unit,omitempty"`
	App      map[string]string `json:"app,omitempty"`
}

// CommitRequest is the body of POST /v1/units/{app}/{n}/relation-data:
// every relation write of one hook, applied together or not at all. Term
// fences the application databag writes.
type CommitRequest struct {
	Term      uint64           `json:"term,omitempty"`
	Relations []RelationCommit `json:"relations"`
}

// UnitRelation is one relation of the unit's application in the unit's
// watch view (UnitView.Relations): what its agent needs to tell which
// relation hooks to run.
type UnitRelation struct {
	ID int `json:"id"`
	// Endpoint, Role and Interface are this unit's side of the relation.
	Endpoint  string `json:"endpoint"`
	Role      string `json:"role"`
	Interface string `json:"interface"`
	// RemoteApp is the application on the other side (this unit's own
	// for a peer relation).
	RemoteApp string `json:"remote_app"`
	Peer      bool   `json:"peer"`
	Life      string `json:"life"`
	// InScope says whether this unit has entered the relation's scope;
	// UnitVersion is its unit databag's version then (0 if not).
	InScope     bool   `json:"in_scope"`
	UnitVersion uint64 `json:"unit_version,omitempty"`
	// Members maps each remote unit in scope (the other units of the
	// application, for a peer relation) to its unit databag's version.
	Members map[string]uint64 `json:"members"`
	// RemoteAppVersion is the version of the remote application's
	// databag (for a peer relation, the application's own).
	RemoteAppVersion uint64 `json:"remote_app_version"`
	// ModifyIndex is the relation's modify index.
	ModifyIndex uint64 `json:"modify_index"`
}

// FormatRelationID is the "endpoint:N" form of a relation id.
func FormatRelationID(endpoint string, id int) string { return endpoint + ":" + strconv.Itoa(id) }

// ParseRelationID parses a relation id as the API and the hook tools take
// it: "N" or "endpoint:N". It returns the endpoint ("" for the bare form),
// for the caller to check against the relation's, and the id. Anything
// else (a sign, a leading zero, more than nine digits, a bad endpoint
// name) is an error matching ErrInvalidCommand whose text begins `invalid
// relation id`. The controller's state machine applies the same rule.
func ParseRelationID(s string) (endpoint string, id int, err error) {
	num := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		endpoint, num = s[:i], s[i+1:]
		if !ValidEndpointName(endpoint) {
			return "", 0, fmt.Errorf("invalid relation id %q: %w", s, ErrInvalidCommand)
		}
	}
	if num == "" || len(num) > 9 || (num[0] == '0' && len(num) > 1) || strings.Trim(num, "0123456789") != "" {
		return "", 0, fmt.Errorf("invalid relation id %q: %w", s, ErrInvalidCommand)
	}
	id, _ = strconv.Atoi(num)
	return endpoint, id, nil
}

// ValidEndpointName reports whether name is a valid endpoint or interface
// name by Juju's rule: lower-case letters and digits starting with a
// letter, in words joined by single hyphens or underscores.
func ValidEndpointName(name string) bool { return endpointNameRE.MatchString(name) }

// ParseEndpointRef checks "app" or "app:endpoint" (the arguments of
// `uniter relate`) and splits it; endpoint is "" for a bare application.
// A malformed one gives an error matching ErrInvalidCommand.
func ParseEndpointRef(s string) (app, endpoint string, err error) {
	app, endpoint, hasEP := strings.Cut(s, ":")
	if !appNameRE.MatchString(app) || (hasEP && !ValidEndpointName(endpoint)) {
		return "", "", fmt.Errorf("invalid endpoint %q (want APP or APP:ENDPOINT): %w", s, ErrInvalidCommand)
	}
	return app, endpoint, nil
}
