package charm

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Relation roles of an endpoint, as Juju names them: a provides endpoint
// is a provider, a requires endpoint a requirer, a peers endpoint a peer.
const (
	RoleProvider = "provider"
	RoleRequirer = "requirer"
	RolePeer     = "peer"
)

// Relation scopes of an endpoint.
const (
	ScopeGlobal    = "global"
	ScopeContainer = "container"
)

// Endpoint is one relation endpoint of metadata.yaml. Juju's two forms are
// read: `db: pgsql` (the interface alone) and `db: {interface: pgsql,
// limit: 1, optional: true, scope: global}`; other keys are ignored.
type Endpoint struct {
	// Role is RoleProvider, RoleRequirer or RolePeer.
	Role string
	// Interface is the protocol the endpoint speaks; only endpoints of the
	// same interface relate.
	Interface string
	// Limit is the most relations the endpoint should take part in (0: no
	// limit). It is informational: nothing enforces it.
	Limit int
	// Optional marks a requires endpoint the charm works without.
	Optional bool
	// Scope is ScopeGlobal (the default) or ScopeContainer (subordinates).
	Scope string
}

// validEndpointName is Juju's rule for relation (endpoint) and interface
// names: lower-case letters and digits, starting with a letter, in words
// joined by single hyphens or underscores.
var validEndpointName = regexp.MustCompile(`^[a-z][a-z0-9]*([_-][a-z0-9]+)*$`)

// endpointKinds are metadata.yaml's endpoint sections and their roles, in
// the order they are read (so the first error is the same every time).
var endpointKinds = []struct{ field, role string }{
	{"provides", RoleProvider},
	{"requires", RoleRequirer},
	{"peers", RolePeer},
}

// parseEndpoints reads the provides, requires and peers sections of the
// metadata document root.
func parseEndpoints(root *yaml.Node) (map[string]Endpoint, error) {
	var out map[string]Endpoint
	kindOf := map[string]string{}
	for _, kind := range endpointKinds {
		section := field(root, kind.field)
		if section == nil || section.Tag == "!!null" {
			continue
		}
		if section.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("field %q is not a map (line %d)", kind.field, section.Line)
		}
		for i := 0; i+1 < len(section.Content); i += 2 {
			key, val := section.Content[i], section.Content[i+1]
			name := key.Value
			if prev, dup := kindOf[name]; dup && prev == kind.field {
				return nil, fmt.Errorf("endpoint %q is declared twice in %s (line %d)", name, prev, key.Line)
			} else if dup {
				return nil, fmt.Errorf("endpoint %q is declared in both %s and %s (line %d)", name, prev, kind.field, key.Line)
			}
			ep, err := parseEndpoint(kind.field, kind.role, key, val)
			if err != nil {
				return nil, err
			}
			if out == nil {
				out = map[string]Endpoint{}
			}
			kindOf[name] = kind.field
			out[name] = ep
		}
	}
	return out, nil
}

// field returns the value node of key in the mapping node m, or nil.
func field(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// rawEndpoint is the long form of an endpoint.
type rawEndpoint struct {
	Interface string `yaml:"interface"`
	Limit     *int   `yaml:"limit"`
	Optional  bool   `yaml:"optional"`
	Scope     string `yaml:"scope"`
}

func parseEndpoint(section, role string, key, val *yaml.Node) (Endpoint, error) {
	name := key.Value
	if key.Kind != yaml.ScalarNode || !validEndpointName.MatchString(name) {
		return Endpoint{}, fmt.Errorf("invalid endpoint name %q in %s (line %d)", name, section, key.Line)
	}
	if reserved(name) {
		return Endpoint{}, fmt.Errorf("endpoint name %q is reserved (line %d)", name, key.Line)
	}
	var raw rawEndpoint
	switch val.Kind {
	case yaml.ScalarNode:
		if val.Tag != "!!str" {
			return Endpoint{}, fmt.Errorf("endpoint %q: interface is not a string (line %d)", name, val.Line)
		}
		raw.Interface = val.Value
	case yaml.MappingNode:
		if iface := field(val, "interface"); iface != nil && (iface.Kind != yaml.ScalarNode || iface.Tag != "!!str") {
			return Endpoint{}, fmt.Errorf("endpoint %q: interface is not a string (line %d)", name, iface.Line)
		}
		if err := val.Decode(&raw); err != nil {
			return Endpoint{}, fmt.Errorf("endpoint %q: %w", name, err)
		}
	default:
		return Endpoint{}, fmt.Errorf("endpoint %q is neither an interface name nor a map (line %d)", name, val.Line)
	}
	ep := Endpoint{Role: role, Interface: raw.Interface, Optional: raw.Optional, Scope: raw.Scope}
	switch {
	case ep.Interface == "":
		return Endpoint{}, fmt.Errorf("endpoint %q has no interface (line %d)", name, val.Line)
	case !validEndpointName.MatchString(ep.Interface):
		return Endpoint{}, fmt.Errorf("endpoint %q has invalid interface %q (line %d)", name, ep.Interface, val.Line)
	case role != RoleRequirer && reserved(ep.Interface):
		// Only the controller provides juju-* interfaces; a charm may
		// require juju-info.
		return Endpoint{}, fmt.Errorf("endpoint %q uses reserved interface %q (line %d)", name, ep.Interface, val.Line)
	}
	if raw.Limit != nil {
		if *raw.Limit < 0 {
			return Endpoint{}, fmt.Errorf("endpoint %q has negative limit %d (line %d)", name, *raw.Limit, val.Line)
		}
		ep.Limit = *raw.Limit
	}
	switch ep.Scope {
	case "":
		ep.Scope = ScopeGlobal
	case ScopeGlobal, ScopeContainer:
	default:
		return Endpoint{}, fmt.Errorf("endpoint %q has unknown scope %q (line %d)", name, ep.Scope, val.Line)
	}
	return ep, nil
}

// reserved reports whether name is Juju's own ("juju", "juju-info", ...).
func reserved(name string) bool { return name == "juju" || strings.HasPrefix(name, "juju-") }
