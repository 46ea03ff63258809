package charm

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Action is one action of a charm's actions.yaml (Juju's format): what
// `uniter actions` lists and what `uniter run` validates parameters
// against.
type Action struct {
	// Description is the action's description ("No description" when the
	// charm gives none, as Juju shows it).
	Description string
	// Parallel and ExecutionGroup are Juju 3's scheduling hints; uniter
	// runs one operation of a unit at a time and keeps them only to show
	// them.
	Parallel       bool
	ExecutionGroup string
	// Schema is the JSON Schema of the action's parameters, built as Juju
	// builds it: {"type": "object", "title": NAME, "description": ...,
	// "properties": <params>}, plus every other key of the action
	// (required, additionalProperties, ...). Values are JSON-compatible
	// (maps with string keys, []any, string, bool, nil, int, float64).
	// Without additionalProperties, parameters the charm does not declare
	// are accepted, as in Juju 3.
	Schema map[string]any
}

// noDescription is what Juju shows for an action without a description.
const noDescription = "No description"

// actionNameRule is Juju's rule for action names.
var actionNameRule = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`)

// ValidActionName reports whether name is a valid action name: lower-case
// letters, digits and inner hyphens.
func ValidActionName(name string) bool { return actionNameRule.MatchString(name) }

// ReadActions reads dir/actions.yaml: the charm's actions by name. A charm
// without one has no actions. The charm's name (from metadata.yaml)
// decides whether the reserved "juju-" prefix is allowed. Errors name the
// file and the action.
func ReadActions(dir string) (map[string]Action, error) {
	path := filepath.Join(dir, "actions.yaml")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Action{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read charm actions: %w", err)
	}
	meta, err := ReadMetadata(dir)
	if err != nil {
		return nil, err
	}
	actions, err := ParseActions(meta.Name, data)
	if err != nil {
		return nil, fmt.Errorf("cannot read charm actions %s: %w", path, err)
	}
	return actions, nil
}

// ParseActions parses the content of an actions.yaml of the charm named
// charmName and checks each action's schema compiles (see Schema).
func ParseActions(charmName string, data []byte) (map[string]Action, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	out := make(map[string]Action, len(doc))
	for _, name := range slices.Sorted(maps.Keys(doc)) {
		a, err := parseAction(charmName, name, doc[name])
		if err != nil {
			return nil, err
		}
		out[name] = a
	}
	return out, nil
}

func parseAction(charmName, name string, raw any) (Action, error) {
	if !ValidActionName(name) {
		return Action{}, fmt.Errorf("bad action name %s", name)
	}
	if reason := reservedActionName(charmName, name); reason != "" {
		return Action{}, fmt.Errorf("cannot use action name %s: %s", name, reason)
	}
	var spec map[string]any
	if raw != nil {
		clean, err := cleanse(raw)
		if err != nil {
			return Action{}, fmt.Errorf("action %s: %w", name, err)
		}
		var ok bool
		if spec, ok = clean.(map[string]any); !ok {
			return Action{}, fmt.Errorf("action %s is not a map", name)
		}
	}
	a := Action{Description: noDescription, Schema: map[string]any{
		"description": noDescription, "type": TypeJSONObject, "title": name, "properties": map[string]any{},
	}}
	for _, key := range slices.Sorted(maps.Keys(spec)) {
		if err := a.set(key, spec[key]); err != nil {
			return Action{}, fmt.Errorf("action %s: %w", name, err)
		}
	}
	if _, err := CompileSchema(a.Schema); err != nil {
		return Action{}, fmt.Errorf("invalid params schema for action schema %s: %w", name, err)
	}
	return a, nil
}

// set applies one key of an action's spec, as Juju does: description,
// title and required are checked and kept in the schema, params becomes
// its properties, parallel and execution-group are kept aside, and every
// other key goes into the schema as it is.
func (a *Action) set(key string, v any) error {
	var ok bool
	switch key {
	case "description", "title":
		var s string
		if s, ok = v.(string); !ok {
			return wantType(key, "a string")
		}
		if key == "description" {
			a.Description = s
		}
	case "required":
		if _, ok = v.([]any); !ok {
			return wantType(key, "a YAML list")
		}
	case "parallel":
		if a.Parallel, ok = v.(bool); !ok {
			return wantType(key, "a bool")
		}
		return nil
	case "execution-group":
		if a.ExecutionGroup, ok = v.(string); !ok {
			return wantType(key, "a string")
		}
		return nil
	case "params":
		if v == nil {
			return nil
		}
		if _, ok = v.(map[string]any); !ok {
			return errors.New("params failed to parse as a map")
		}
		key = "properties"
	}
	a.Schema[key] = v
	return nil
}

func wantType(key, what string) error {
	return fmt.Errorf("value for schema key %q must be %s", key, what)
}

// reservedActionName says why name is reserved for Juju's own use, or "".
// A charm whose name starts with "juju-" may use them.
func reservedActionName(charmName, name string) string {
	switch {
	case strings.HasPrefix(charmName, "juju-"):
		return ""
	case name == "juju":
		return `"juju" is a reserved name`
	case strings.HasPrefix(name, "juju-"):
		return `the "juju-" prefix is reserved`
	}
	return ""
}

// cleanse turns a value decoded from YAML into one JSON can hold: maps
// keyed by strings only (else an error), finite numbers, timestamps as
// RFC 3339 strings.
func cleanse(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := cleanse(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		m, ok := asObject(x)
		if !ok {
			return nil, errors.New("map keyed with non-string value")
		}
		return cleanse(m)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := cleanse(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, fmt.Errorf("value %v is not a JSON number", x)
		}
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	}
	return v, nil
}

// Cleanse is cleanse for callers outside the package: it makes a value
// decoded from YAML (a `--params` file, say) one encoding/json can
// encode, refusing maps with keys that are not strings.
func Cleanse(v any) (any, error) { return cleanse(v) }
