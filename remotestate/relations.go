package remotestate

import (
	"encoding/json"
	"maps"
	"slices"
)

// Relation is one relation of the unit's application as the controller
// shows it in the unit's watch.
type Relation struct {
	// ID is the relation's number.
	ID int `json:"id" yaml:"id"`
	// Endpoint and Interface are this unit's side of the relation.
	Endpoint  string `json:"endpoint" yaml:"endpoint"`
	Interface string `json:"interface,omitempty" yaml:"interface,omitempty"`
	// RemoteApp is the application on the far side (the unit's own for a
	// peer relation).
	RemoteApp string `json:"remote-app" yaml:"remote-app"`
	Peer      bool   `json:"peer,omitempty" yaml:"peer,omitempty"`
	// Life is Alive, or Dying after remove-relation.
	Life Life `json:"life" yaml:"life"`
	// InScope is true once this unit has entered the relation's scope.
	InScope bool `json:"in-scope,omitempty" yaml:"in-scope,omitempty"`
	// Members maps each remote unit in scope to its unit databag's
	// version (it only grows).
	Members map[string]uint64 `json:"members,omitempty" yaml:"members,omitempty"`
	// RemoteAppVersion is the version of the remote application's
	// databag (the own application's in a peer relation).
	RemoteAppVersion uint64 `json:"remote-app-version,omitempty" yaml:"remote-app-version,omitempty"`
}

// Relations is an immutable set of relations, by id. It is a value: it
// compares with == and a copy of it shares nothing that can change, so a
// Snapshot holding it stays a plain value. The zero value is empty.
type Relations struct {
	enc string // canonical JSON of the relations sorted by id; "" when none
}

// NewRelations returns the set of rs; later changes to rs do not reach it.
// For two relations with the same id, the later wins.
func NewRelations(rs ...Relation) Relations {
	if len(rs) == 0 {
		return Relations{}
	}
	byID := map[int]Relation{}
	for _, r := range rs {
		if r.Life == "" {
			r.Life = Alive
		}
		if len(r.Members) == 0 {
			r.Members = nil
		}
		byID[r.ID] = r
	}
	list := make([]Relation, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		list = append(list, byID[id])
	}
	data, err := json.Marshal(list) // map keys are sorted: canonical
	if err != nil {
		panic("remotestate: cannot encode relations: " + err.Error()) // plain values always encode
	}
	return Relations{enc: string(data)}
}

// List returns the relations sorted by id, each a fresh copy.
func (s Relations) List() []Relation {
	if s.enc == "" {
		return nil
	}
	var list []Relation
	if err := json.Unmarshal([]byte(s.enc), &list); err != nil {
		panic("remotestate: cannot decode relations: " + err.Error()) // written by NewRelations only
	}
	return list
}

// Get returns the relation with id.
func (s Relations) Get(id int) (Relation, bool) {
	for _, r := range s.List() {
		if r.ID == id {
			return r, true
		}
	}
	return Relation{}, false
}

// Len is the number of relations.
func (s Relations) Len() int { return len(s.List()) }

// MarshalYAML writes the relations as a list (the fake remote state file).
func (s Relations) MarshalYAML() (any, error) {
	list := s.List()
	if list == nil {
		list = []Relation{}
	}
	return list, nil
}

// UnmarshalYAML reads a list written by MarshalYAML.
func (s *Relations) UnmarshalYAML(unmarshal func(any) error) error {
	var list []Relation
	if err := unmarshal(&list); err != nil {
		return err
	}
	*s = NewRelations(list...)
	return nil
}
