package lease

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"time"
)

// State is the whole replicated state. It is plain data: every exported
// field serializes to JSON, every time is UTC, and maps are never nil (so
// a snapshot round trip is exact). Mutate it only through Apply. (Compare
// states with cmpopts.IgnoreUnexported(State{}): the one unexported field
// is scratch space of the command being applied.)
type State struct {
	// GlobalTime is the cluster's notion of now. Only advance-time changes
	// it; every other command stamps its times with it.
	GlobalTime time.Time `json:"global_time"`
	// EffectiveVersion is the protocol version the cluster runs (starts at 1).
	EffectiveVersion uint64 `json:"effective_version"`
	// Members records each controller node's supported protocol range.
	Members map[string]Member `json:"members"`
	// Applications by name.
	Applications map[string]*Application `json:"applications"`
	// Units by name ("app/N").
	Units map[string]*Unit `json:"units"`
	// Relations by id (protocol 4). omitempty, like NextRelationID: a
	// state without relations encodes as in snapshot formats 1 and 2.
	Relations map[int]*Relation `json:"relations,omitempty"`
	// NextRelationID is the id the next relation gets: ids start at 0 and
	// are never reused.
	NextRelationID int `json:"next_relation_id,omitempty"`
	// Operations by id (protocol 4; operations.go), omitempty like
	// Relations; LastOperationID is the id the last one got (ids start
	// at 1 and are never reused).
	Operations      map[uint64]*Operation `json:"operations,omitempty"`
	LastOperationID uint64                `json:"last_operation_id,omitempty"`
	// Index is the raft log index of the last command that changed anything.
	Index uint64 `json:"index"`

	// touched lists, for the last command applied, the keys (appKey,
	// unitKey, relationKey) of the resources whose modify index it set,
	// so the FSM wakes only their waiters. Never encoded or cloned.
	touched []string
}

// Member is one controller node's supported protocol version range and
// addresses (empty if the node never announced them).
type Member struct {
	ProtoMin uint64 `json:"proto_min"`
	ProtoMax uint64 `json:"proto_max"`
	// APIAddr is the node's HTTP API address, where writes are forwarded.
	APIAddr string `json:"api_addr,omitempty"`
	// RaftAddr is the node's raft transport address.
	RaftAddr string `json:"raft_addr,omitempty"`
}

// Application is the per-application state.
type Application struct {
	Name           string   `json:"name"`
	Lease          Lease    `json:"lease"`
	LeaderSettings Settings `json:"leader_settings"`
	Config         Settings `json:"config"`
	// ConfigSchema is the charm's config options, nil if never given (then
	// set-config accepts any key and value). Not omitempty: an empty
	// schema (no options) is not the same as none.
	ConfigSchema map[string]Option `json:"config_schema"`
	// Status is the application status the leader set (set-application-
	// status); Status.Status is "" until it first does, and readers then
	// derive one from the units' workload statuses, as Juju does.
	Status Status `json:"status"`
	// Endpoints are the charm's relation endpoints by name (protocol 4),
	// nil if never given (then the application can only have none).
	// omitzero: an empty map (a charm without endpoints) is kept.
	Endpoints map[string]Endpoint `json:"endpoints,omitzero"`
	// Actions are the charm's actions by name (protocol 4), nil if never
	// given (then only exec operations can be enqueued); omitzero as
	// Endpoints.
	Actions map[string]ActionSpec `json:"actions,omitzero"`
	// ModifyIndex is the log index of the last command that changed the
	// lease, settings, config, schema, status, endpoints or unit
	// membership of this application, or made, removed, or changed the
	// life or scope of one of its relations (not their data: only the
	// units in scope care, and they wake through their own index).
	ModifyIndex uint64 `json:"modify_index"`
}

// Option types of a config schema (charm config.yaml).
const (
	OptionString  = "string"
	OptionInt     = "int"
	OptionFloat   = "float"
	OptionBoolean = "boolean"
)

// Option is one charm config option.
type Option struct {
	// Type is OptionString, OptionInt, OptionFloat or OptionBoolean.
	Type string `json:"type"`
	// Default, if set, is the value in its string form; it parses as Type.
	Default     *string `json:"default,omitempty"`
	Description string  `json:"description,omitempty"`
}

// Lease is an application's leadership lease. It is vacant when Holder is
// empty; Term is kept when it becomes vacant so the next claim increments it.
type Lease struct {
	Holder string `json:"holder"`
	// Term counts the claims of a vacant lease: 0 = never held.
	Term uint64 `json:"term"`
	// Start is the global time of the last claim or extend.
	Start time.Time `json:"start"`
	// Duration is the duration of the last claim or extend.
	Duration time.Duration `json:"duration"`
	// Expiry is the global time after which (plus an advance-time's slack)
	// the lease expires unless pinned. It never moves earlier while held.
	Expiry time.Time `json:"expiry"`
	// Pins by entity; a pinned lease never expires.
	Pins map[string]Pin `json:"pins"`
	// StepDownRequested: no more extends; cleared when the lease is released.
	StepDownRequested bool `json:"step_down_requested"`
	// SteppedDown is the unit that last gave this lease up after a step-down
	// (its holder revoked it, or it ran out): from protocol 3 it may not
	// claim the vacant lease again before HandOverUntil while another alive
	// unit of the application could, so that a step-down moves the
	// leadership. Both are cleared by the next successful claim and once the
	// global time reaches HandOverUntil. Empty (and absent from snapshots)
	// before protocol 3.
	SteppedDown   string    `json:"stepped_down,omitempty"`
	HandOverUntil time.Time `json:"hand_over_until,omitzero"`
}

// Pin freezes a lease for an operator entity.
type Pin struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// Until, if set, is the global time at which the pin removes itself.
	Until *time.Time `json:"until,omitempty"`
}

// Settings is a versioned string map (leader settings or config).
type Settings struct {
	Values map[string]string `json:"values"`
	// Version counts the commands that changed Values (0 = never set).
	Version uint64 `json:"version"`
}

// Unit is a registered unit.
type Unit struct {
	Name string `json:"name"`
	App  string `json:"app"`
	// TokenHash is the lowercase hex SHA-256 of the unit's token (see
	// HashToken); the token itself is never stored.
	TokenHash          string `json:"token_hash"`
	Workload           Status `json:"workload"`
	Agent              Status `json:"agent"`
	ApplicationVersion string `json:"application_version"`
	// LastSeen is the global time of the unit's last status or version
	// report; zero until the agent first reports.
	LastSeen time.Time `json:"last_seen"`
	// Life is LifeAlive, or LifeDying once removal was requested.
	Life string `json:"life"`
	// ResolvedID counts the operator's resolve requests; the agent acts
	// on each new value. ResolvedNoRetry is the last request's mode.
	ResolvedID      uint64 `json:"resolved_id"`
	ResolvedNoRetry bool   `json:"resolved_no_retry"`
	// OpenedPorts (protocol 5; ports.go) are the port ranges the unit's
	// hooks opened, sorted (ComparePortRanges); omitempty, so that a unit
	// without any encodes as in snapshot formats 1 to 3.
	OpenedPorts []PortRange `json:"opened_ports,omitempty"`
	// ModifyIndex is the log index of the last command that changed it,
	// or the life, membership or data of a relation whose scope it is in
	// (or just entered or left), so that its agent's blocking query wakes.
	ModifyIndex uint64 `json:"modify_index"`
}

// Unit life values.
const (
	LifeAlive = "alive"
	LifeDying = "dying"
)

// Status is a workload, agent or application status.
type Status struct {
	Status  string    `json:"status"`
	Message string    `json:"message"`
	Since   time.Time `json:"since"`
}

// NewState returns the initial state: global time zero, effective version 1.
func NewState() *State {
	return &State{
		EffectiveVersion: 1,
		Members:          map[string]Member{},
		Applications:     map[string]*Application{},
		Units:            map[string]*Unit{},
		Relations:        map[int]*Relation{},
		Operations:       map[uint64]*Operation{},
	}
}

// Vacant reports whether nobody holds the lease.
func (l Lease) Vacant() bool { return l.Holder == "" }

// Pinned reports whether the lease has at least one pin.
func (l Lease) Pinned() bool { return len(l.Pins) > 0 }

// Clone returns a deep copy.
func (l Lease) Clone() Lease {
	out := l
	out.Pins = make(map[string]Pin, len(l.Pins))
	for k, p := range l.Pins {
		if p.Until != nil {
			u := *p.Until
			p.Until = &u
		}
		out.Pins[k] = p
	}
	return out
}

// Clone returns a deep copy.
func (s Settings) Clone() Settings {
	out := s
	out.Values = maps.Clone(s.Values)
	if out.Values == nil {
		out.Values = map[string]string{}
	}
	return out
}

// Clone returns a deep copy.
func (a *Application) Clone() *Application {
	out := *a
	out.Lease = a.Lease.Clone()
	out.LeaderSettings = a.LeaderSettings.Clone()
	out.Config = a.Config.Clone()
	out.ConfigSchema = cloneSchema(a.ConfigSchema)
	out.Endpoints = cloneEndpoints(a.Endpoints)
	out.Actions = cloneActions(a.Actions)
	return &out
}

// cloneSchema deep-copies a schema, keeping nil nil.
func cloneSchema(schema map[string]Option) map[string]Option {
	if schema == nil {
		return nil
	}
	out := make(map[string]Option, len(schema))
	for k, o := range schema {
		if o.Default != nil {
			d := *o.Default
			o.Default = &d
		}
		out[k] = o
	}
	return out
}

// Clone returns a deep copy.
func (u *Unit) Clone() *Unit {
	out := *u
	out.OpenedPorts = slices.Clone(u.OpenedPorts)
	return &out
}

// Clone returns a deep copy.
func (s *State) Clone() *State {
	out := *s
	out.touched = nil
	out.Members = maps.Clone(s.Members)
	if out.Members == nil {
		out.Members = map[string]Member{}
	}
	out.Applications = make(map[string]*Application, len(s.Applications))
	for k, a := range s.Applications {
		out.Applications[k] = a.Clone()
	}
	out.Units = make(map[string]*Unit, len(s.Units))
	for k, u := range s.Units {
		out.Units[k] = u.Clone()
	}
	out.Relations = make(map[int]*Relation, len(s.Relations))
	for k, r := range s.Relations {
		out.Relations[k] = r.Clone()
	}
	out.Operations = cloneOperations(s.Operations)
	return &out
}

// ApplicationIndex is the modify index of app, or State.Index if there is
// no such application (so a blocking query on a missing resource wakes on
// any change and sees it still missing).
func (s *State) ApplicationIndex(app string) uint64 {
	if a, ok := s.Applications[app]; ok {
		return a.ModifyIndex
	}
	return s.Index
}

// UnitIndex is the modify index of the unit, or State.Index if there is no
// such unit (a deregistered unit's waiters wake and see it gone).
func (s *State) UnitIndex(name string) uint64 {
	if u, ok := s.Units[name]; ok {
		return u.ModifyIndex
	}
	return s.Index
}

// normalize makes nil maps empty and every time UTC, so that a state
// decoded from JSON is identical to the one encoded.
func (s *State) normalize() {
	if s.Members == nil {
		s.Members = map[string]Member{}
	}
	if s.Applications == nil {
		s.Applications = map[string]*Application{}
	}
	if s.Units == nil {
		s.Units = map[string]*Unit{}
	}
	if s.Relations == nil {
		s.Relations = map[int]*Relation{} // formats 1 and 2, or none yet
	}
	for _, r := range s.Relations {
		if r == nil {
			continue // Validate reports it
		}
		r.AppData = normalizeBags(r.AppData)
		r.UnitData = normalizeBags(r.UnitData)
	}
	s.normalizeOperations()
	s.GlobalTime = s.GlobalTime.UTC()
	for _, u := range s.Units {
		if u != nil && u.Life == "" {
			u.Life = LifeAlive // a snapshot from before unit life
		}
	}
	for _, a := range s.Applications {
		if a == nil {
			continue // Validate reports it
		}
		a.Lease = a.Lease.Clone()
		a.LeaderSettings = a.LeaderSettings.Clone()
		a.Config = a.Config.Clone()
	}
}

// Validate checks the invariants every reachable state keeps. Restore
// refuses a snapshot that breaks them; tests check them after every step.
func (s *State) Validate() error {
	if s.EffectiveVersion < 1 {
		return fmt.Errorf("effective version %d is below 1", s.EffectiveVersion)
	}
	for name := range s.Applications {
		if err := s.validateApplication(name); err != nil {
			return fmt.Errorf("invalid application %q: %w", name, err)
		}
	}
	for name := range s.Units {
		if err := s.validateUnit(name); err != nil {
			return fmt.Errorf("invalid unit %q: %w", name, err)
		}
	}
	for id, m := range s.Members {
		if m.ProtoMin < 1 || m.ProtoMin > m.ProtoMax {
			return fmt.Errorf("invalid member %q: bad range %d..%d", id, m.ProtoMin, m.ProtoMax)
		}
	}
	if err := s.validateOperations(); err != nil {
		return err
	}
	return s.validateRelations()
}

// normalizeBags makes nil maps (a databag decoded from "values":null)
// empty.
func normalizeBags(bags map[string]Databag) map[string]Databag {
	if bags == nil {
		bags = map[string]Databag{}
	}
	for k, b := range bags {
		if b.Values == nil {
			b.Values = map[string]string{}
			bags[k] = b
		}
	}
	return bags
}

func (s *State) validateApplication(name string) error {
	a := s.Applications[name]
	switch {
	case a == nil:
		return fmt.Errorf("missing record")
	case a.Name != name:
		return fmt.Errorf("record is named %q", a.Name)
	case a.ModifyIndex > s.Index:
		return fmt.Errorf("modify index %d is beyond state index %d", a.ModifyIndex, s.Index)
	}
	if err := validateSchema(a.ConfigSchema); err != nil {
		return err
	}
	if st := a.Status.Status; st != "" && !slices.Contains(workloadStatuses, st) {
		return fmt.Errorf("unknown application status %q", st)
	}
	l := a.Lease
	if (l.SteppedDown == "") != l.HandOverUntil.IsZero() {
		return fmt.Errorf("hand-over names unit %q until %v: want both or neither", l.SteppedDown, l.HandOverUntil)
	}
	if l.SteppedDown != "" && (!l.Vacant() || s.EffectiveVersion < HandOverProtocol) {
		return fmt.Errorf("hand-over on a held lease, or before protocol %d", HandOverProtocol)
	}
	if l.Vacant() {
		if l.Pinned() || l.StepDownRequested {
			return fmt.Errorf("vacant lease is pinned or stepping down")
		}
		return nil
	}
	if u, ok := s.Units[l.Holder]; !ok || u.App != name {
		return fmt.Errorf("lease holder %q is not a unit of the application", l.Holder)
	}
	if l.Term == 0 {
		return fmt.Errorf("held lease has term 0")
	}
	return nil
}

func (s *State) validateUnit(name string) error {
	u := s.Units[name]
	if u == nil {
		return fmt.Errorf("missing record")
	}
	app, err := parseUnitName(name)
	switch {
	case err != nil:
		return err
	case u.Name != name || u.App != app:
		return fmt.Errorf("record is named %q of %q", u.Name, u.App)
	case s.Applications[app] == nil:
		return fmt.Errorf("application %q is missing", app)
	case !validTokenHash(u.TokenHash):
		return fmt.Errorf("malformed token hash")
	case u.ModifyIndex > s.Index:
		return fmt.Errorf("modify index %d is beyond state index %d", u.ModifyIndex, s.Index)
	case u.Life != LifeAlive && u.Life != LifeDying:
		return fmt.Errorf("unknown life %q", u.Life)
	case len(u.OpenedPorts) > 0 && s.EffectiveVersion < portsProtocol:
		return fmt.Errorf("opened ports before protocol %d", portsProtocol)
	}
	return validatePorts(u)
}

// validTokenHash reports whether h looks like HashToken's output.
func validTokenHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(h) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
