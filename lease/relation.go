package lease

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Endpoint roles, as Juju names them: a charm's provides endpoints are
// providers, its requires endpoints requirers, its peers endpoints peers.
// A provider relates only to a requirer of the same interface; a peers
// endpoint has exactly one relation, among the units of its application.
const (
	RoleProvider = "provider"
	RoleRequirer = "requirer"
	RolePeer     = "peer"
)

// Relation life values (the same words as unit life).
const (
	RelationAlive = LifeAlive
	RelationDying = LifeDying
)

// The limits on relation databags. Unlike the API's limits on config and
// leader settings, the state machine enforces these itself (they are part
// of protocol 4), so no log entry can make a databag exceed them, and a
// change to one changes what a command means: change them only with a new
// protocol version, gating the new bound on it. A refusal wraps
// ErrTooLarge and names the limit; nothing is applied. docs/controller.md
// ("Relations") gives the reasons for each value.
const (
	// MaxDatabagKeyBytes bounds a databag key.
	MaxDatabagKeyBytes = 256
	// MaxDatabagValueBytes bounds one databag value: room for what charms
	// put in one key in practice (a TLS certificate list, a compressed
	// Grafana dashboard set, a Prometheus rule file), not for bulk data.
	MaxDatabagValueBytes = 256 << 10
	// MaxDatabagBytes bounds a databag's keys and values, summed.
	MaxDatabagBytes = 512 << 10
	// MaxDatabagKeys bounds the number of keys of a databag.
	MaxDatabagKeys = 256
)

// Endpoint is one relation endpoint of an application's charm (a key of
// metadata.yaml's provides, requires or peers).
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

// String is the endpoint as Juju writes it: "app:name".
func (e RelationEndpoint) String() string { return e.App + ":" + e.Name }

// Databag is one application's or one unit's settings in a relation.
type Databag struct {
	// Values never holds an empty value: writing "" deletes the key, as
	// Juju's relation-set k= does.
	Values map[string]string `json:"values"`
	// Version is the log index of the command that created the databag
	// or last changed a value of it: it only grows, also across a unit
	// leaving and re-entering scope, so an agent that recorded the version
	// it last ran -relation-changed for can tell whether it changed since.
	Version uint64 `json:"version"`
}

// Clone returns a deep copy.
func (b Databag) Clone() Databag {
	out := b
	out.Values = maps.Clone(b.Values)
	if out.Values == nil {
		out.Values = map[string]string{}
	}
	return out
}

// size is the bytes of the databag's keys and values, summed.
func (b Databag) size() int {
	n := 0
	for k, v := range b.Values {
		n += len(k) + len(v)
	}
	return n
}

// Relation is a relation between two applications' endpoints, or a peer
// relation among the units of one application.
type Relation struct {
	// ID is cluster-unique and never reused (State.NextRelationID).
	ID int `json:"id"`
	// Endpoints are the requirer's then the provider's (the order of
	// Juju's relation key), or the one endpoint of a peer relation.
	Endpoints []RelationEndpoint `json:"endpoints"`
	// Life is RelationAlive, or RelationDying after remove-relation, until
	// the last unit leaves its scope and the relation is gone.
	Life string `json:"life"`
	// AppData holds the application databag of each application of the
	// relation (one for a peer relation), written only by its leader.
	AppData map[string]Databag `json:"app_data"`
	// UnitData holds the unit databag of each unit in scope, written only
	// by that unit: a unit is in scope exactly while it has one. It is
	// made when the unit's agent enters scope and dropped when it leaves.
	UnitData map[string]Databag `json:"unit_data"`
	// ModifyIndex is the log index of the last command that changed the
	// relation's life, membership or data.
	ModifyIndex uint64 `json:"modify_index"`
}

// Key is the relation as Juju's status shows it: "web:db db:server", or
// "db:cluster" for a peer relation.
func (r *Relation) Key() string {
	names := make([]string, len(r.Endpoints))
	for i, e := range r.Endpoints {
		names[i] = e.String()
	}
	return strings.Join(names, " ")
}

// Peer reports whether r is a peer relation.
func (r *Relation) Peer() bool { return len(r.Endpoints) == 1 }

// Endpoint returns app's side of r, and whether app is in r.
func (r *Relation) Endpoint(app string) (RelationEndpoint, bool) {
	for _, e := range r.Endpoints {
		if e.App == app {
			return e, true
		}
	}
	return RelationEndpoint{}, false
}

// Remote returns the side of r across from app's: the other application's
// endpoint, or app's own in a peer relation. ok is false if app is not in r.
func (r *Relation) Remote(app string) (RelationEndpoint, bool) {
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

// InScope reports whether unit is in r's scope.
func (r *Relation) InScope(unit string) bool {
	_, ok := r.UnitData[unit]
	return ok
}

// Scope lists the units in r's scope, sorted.
func (r *Relation) Scope() []string { return slices.Sorted(maps.Keys(r.UnitData)) }

// Clone returns a deep copy.
func (r *Relation) Clone() *Relation {
	out := *r
	out.Endpoints = slices.Clone(r.Endpoints)
	out.AppData = cloneBags(r.AppData)
	out.UnitData = cloneBags(r.UnitData)
	return &out
}

func cloneBags(in map[string]Databag) map[string]Databag {
	out := make(map[string]Databag, len(in))
	for k, b := range in {
		out[k] = b.Clone()
	}
	return out
}

// cloneEndpoints deep-copies an application's endpoints, keeping nil nil.
func cloneEndpoints(in map[string]Endpoint) map[string]Endpoint {
	if in == nil {
		return nil
	}
	return maps.Clone(in)
}

// ValidEndpointName reports whether name is a valid endpoint (or
// interface) name, by Juju's rule: lower-case letters and digits starting
// with a letter, in words joined by single hyphens or underscores
// (^[a-z][a-z0-9]*([_-][a-z0-9]+)*$; checked by hand, as State.Validate
// runs it on every endpoint).
func ValidEndpointName(name string) bool {
	if name == "" || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i+1 < len(name) && name[i+1] != '-' && name[i+1] != '_':
		default:
			return false
		}
	}
	return true
}

// ParseRelationID parses a relation id as the hook tools' -r and the API
// take it: "N", or "endpoint:N" (Juju's form; relation-ids prints it).
// It returns the endpoint ("" for the bare form), for the caller to check
// against the relation's, and the id. Anything else (a negative, signed or
// zero-padded number, a bad endpoint name) is an error wrapping
// ErrInvalidCommand whose text begins `invalid relation id`.
func ParseRelationID(s string) (endpoint string, id int, err error) {
	num := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		endpoint, num = s[:i], s[i+1:]
		if !ValidEndpointName(endpoint) {
			return "", 0, fmt.Errorf("invalid relation id %q: %w", s, ErrInvalidCommand)
		}
	}
	if !canonicalID(num) {
		return "", 0, fmt.Errorf("invalid relation id %q: %w", s, ErrInvalidCommand)
	}
	id, err = strconv.Atoi(num)
	if err != nil {
		return "", 0, fmt.Errorf("invalid relation id %q: %w", s, ErrInvalidCommand)
	}
	return endpoint, id, nil
}

// canonicalID reports whether s is 0 or a decimal number of at most nine
// digits without a leading zero, so that every id has one spelling.
func canonicalID(s string) bool {
	if s == "" || len(s) > 9 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// FormatRelationID is the "endpoint:N" form of a relation id.
func FormatRelationID(endpoint string, id int) string { return endpoint + ":" + strconv.Itoa(id) }

// EndpointRef names an application's endpoint in add-relation: Endpoint
// may be "" to let the state machine pick the one that fits.
type EndpointRef struct {
	App      string `json:"app"`
	Endpoint string `json:"endpoint,omitempty"`
}

// String is "app" or "app:endpoint".
func (e EndpointRef) String() string {
	if e.Endpoint == "" {
		return e.App
	}
	return e.App + ":" + e.Endpoint
}

// ParseEndpointRef parses "app" or "app:endpoint" (the form of `uniter
// relate`). A malformed one is an error wrapping ErrInvalidCommand.
func ParseEndpointRef(s string) (EndpointRef, error) {
	app, ep, hasEP := strings.Cut(s, ":")
	if !ValidApplicationName(app) || (hasEP && !ValidEndpointName(ep)) {
		return EndpointRef{}, fmt.Errorf("invalid endpoint %q (want APP or APP:ENDPOINT): %w", s, ErrInvalidCommand)
	}
	return EndpointRef{App: app, Endpoint: ep}, nil
}

// validateEndpoints checks a charm's endpoints as register-unit carries
// them: valid names and interfaces, known roles.
func validateEndpoints(eps map[string]Endpoint) error {
	for _, name := range slices.Sorted(maps.Keys(eps)) {
		e := eps[name]
		switch {
		case !ValidEndpointName(name):
			return fmt.Errorf("invalid endpoint name %q", name)
		case !ValidEndpointName(e.Interface):
			return fmt.Errorf("endpoint %q has invalid interface %q", name, e.Interface)
		case e.Role != RoleProvider && e.Role != RoleRequirer && e.Role != RolePeer:
			return fmt.Errorf("endpoint %q has unknown role %q", name, e.Role)
		}
	}
	return nil
}

// sortedRelations returns s's relations that keep accepts, by id.
func (s *State) sortedRelations(keep func(*Relation) bool) []*Relation {
	var out []*Relation
	for _, r := range s.Relations {
		if keep(r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *Relation) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// relationsOf returns the relations app takes part in, by id.
func (s *State) relationsOf(app string) []*Relation {
	return s.sortedRelations(func(r *Relation) bool {
		_, ok := r.Endpoint(app)
		return ok
	})
}

// RelationIndex is the modify index of relation id, or State.Index if
// there is no such relation (a removed relation's waiters wake and see it
// gone).
func (s *State) RelationIndex(id int) uint64 {
	if r, ok := s.Relations[id]; ok {
		return r.ModifyIndex
	}
	return s.Index
}

// validateRelations checks the relation invariants: every relation is
// well formed and matches its applications' endpoints, its scope holds
// only registered units of its applications, a dying relation still has
// a unit in scope (else it is gone), ids are below NextRelationID, no two
// relations join the same endpoints, each peers endpoint has exactly one
// relation, and databags keep the limits.
func (s *State) validateRelations() error {
	if (len(s.Relations) > 0 || s.NextRelationID > 0) && s.EffectiveVersion < relationsProtocol {
		return fmt.Errorf("relations at effective version %d (they need protocol %d)", s.EffectiveVersion, relationsProtocol)
	}
	keys := make(map[string]int, len(s.Relations))
	for id, r := range s.Relations {
		if err := s.validateRelation(id, r); err != nil {
			return fmt.Errorf("invalid relation %d: %w", id, err)
		}
		key := r.Key()
		if other, dup := keys[key]; dup {
			return fmt.Errorf("relations %d and %d both join %s", min(id, other), max(id, other), key)
		}
		keys[key] = id
	}
	for name, a := range s.Applications {
		if a == nil {
			continue // validateApplication reports it
		}
		if a.Endpoints != nil && s.EffectiveVersion < relationsProtocol {
			return fmt.Errorf("application %q has endpoints at effective version %d (they need protocol %d)", name, s.EffectiveVersion, relationsProtocol)
		}
		if err := validateEndpoints(a.Endpoints); err != nil {
			return fmt.Errorf("invalid application %q: %w", name, err)
		}
		for ep, e := range a.Endpoints {
			if e.Role != RolePeer {
				continue
			}
			if _, ok := keys[name+":"+ep]; !ok {
				return fmt.Errorf("application %q: peers endpoint %q has no relation", name, ep)
			}
		}
	}
	return nil
}

func (s *State) validateRelation(id int, r *Relation) error {
	switch {
	case r == nil:
		return fmt.Errorf("missing record")
	case r.ID != id:
		return fmt.Errorf("record has id %d", r.ID)
	case id < 0 || id >= s.NextRelationID:
		return fmt.Errorf("id is not below the next id %d", s.NextRelationID)
	case r.Life != RelationAlive && r.Life != RelationDying:
		return fmt.Errorf("unknown life %q", r.Life)
	case r.Life == RelationDying && len(r.UnitData) == 0:
		return fmt.Errorf("dying with no unit in scope")
	case r.ModifyIndex > s.Index:
		return fmt.Errorf("modify index %d is beyond state index %d", r.ModifyIndex, s.Index)
	}
	if err := s.validateRelationEndpoints(r); err != nil {
		return err
	}
	if len(r.AppData) != len(r.Endpoints) {
		return fmt.Errorf("%d application databags for %d endpoints", len(r.AppData), len(r.Endpoints))
	}
	for _, e := range r.Endpoints {
		b, ok := r.AppData[e.App]
		if !ok {
			return fmt.Errorf("no application databag for %q", e.App)
		}
		if err := s.validateBag(b); err != nil {
			return fmt.Errorf("application databag of %q: %w", e.App, err)
		}
	}
	for name, b := range r.UnitData {
		u := s.Units[name]
		if u == nil {
			return fmt.Errorf("unit %q in scope is not registered", name)
		}
		if _, ok := r.Endpoint(u.App); !ok {
			return fmt.Errorf("unit %q in scope is not of an application of the relation", name)
		}
		if err := s.validateBag(b); err != nil {
			return fmt.Errorf("unit databag of %q: %w", name, err)
		}
	}
	return nil
}

// validateRelationEndpoints checks r's endpoints against its applications'.
func (s *State) validateRelationEndpoints(r *Relation) error {
	switch len(r.Endpoints) {
	case 1:
		if r.Endpoints[0].Role != RolePeer {
			return fmt.Errorf("one endpoint, %s, and it is not a peer", r.Endpoints[0])
		}
	case 2:
		req, prov := r.Endpoints[0], r.Endpoints[1]
		if req.Role != RoleRequirer || prov.Role != RoleProvider || req.Interface != prov.Interface || req.App == prov.App {
			return fmt.Errorf("endpoints %s (%s %s) and %s (%s %s) do not relate",
				req, req.Role, req.Interface, prov, prov.Role, prov.Interface)
		}
	default:
		return fmt.Errorf("%d endpoints", len(r.Endpoints))
	}
	for _, e := range r.Endpoints {
		a := s.Applications[e.App]
		if a == nil {
			return fmt.Errorf("application %q is missing", e.App)
		}
		if have, ok := a.Endpoints[e.Name]; !ok || have != (Endpoint{Role: e.Role, Interface: e.Interface}) {
			return fmt.Errorf("endpoint %s is not the application's", e)
		}
	}
	return nil
}

func (s *State) validateBag(b Databag) error {
	switch {
	case b.Values == nil:
		return fmt.Errorf("nil values")
	case b.Version > s.Index:
		return fmt.Errorf("version %d is beyond state index %d", b.Version, s.Index)
	case len(b.Values) > MaxDatabagKeys:
		return fmt.Errorf("%d keys (limit %d)", len(b.Values), MaxDatabagKeys)
	case b.size() > MaxDatabagBytes:
		return fmt.Errorf("%d bytes (limit %d)", b.size(), MaxDatabagBytes)
	}
	for k, v := range b.Values {
		if k == "" || v == "" || len(k) > MaxDatabagKeyBytes || len(v) > MaxDatabagValueBytes {
			return fmt.Errorf("bad key or value of key %.32q", k)
		}
	}
	return nil
}
