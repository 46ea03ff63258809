package hooks

import (
	"regexp"
	"strings"
)

// RelationEvent is what a relation hook says happened in its relation;
// the hook's name is "<endpoint>-<event>" (RelationHook).
type RelationEvent string

// The relation events, in the order a relation meets them (HOOK-TOOLS.md
// §6, "Relation hook order").
const (
	RelationCreated  RelationEvent = "relation-created"
	RelationJoined   RelationEvent = "relation-joined"
	RelationChanged  RelationEvent = "relation-changed"
	RelationDeparted RelationEvent = "relation-departed"
	RelationBroken   RelationEvent = "relation-broken"
)

var relationEvents = []RelationEvent{RelationCreated, RelationJoined, RelationChanged, RelationDeparted, RelationBroken}

// endpointRE is Juju's rule for an endpoint name (as the controller's).
var endpointRE = regexp.MustCompile(`^[a-z][a-z0-9]*([_-][a-z0-9]+)*$`)

// RelationHook is the hook of event on endpoint, e.g.
// "db-relation-joined".
func RelationHook(endpoint string, event RelationEvent) Kind {
	return Kind(endpoint + "-" + string(event))
}

// Relation splits a relation hook's name into its endpoint and event; ok
// is false for a hook that is not a relation hook or names an invalid
// endpoint.
func (k Kind) Relation() (endpoint string, event RelationEvent, ok bool) {
	for _, ev := range relationEvents {
		if ep, found := strings.CutSuffix(string(k), "-"+string(ev)); found && endpointRE.MatchString(ep) {
			return ep, ev, true
		}
	}
	return "", "", false
}

// IsRelation reports whether k is a relation hook.
func (k Kind) IsRelation() bool {
	_, _, ok := k.Relation()
	return ok
}
