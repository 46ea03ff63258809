package charm_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/charm"
)

const demoActions = `
greet:
  description: Say hello.
  params:
    name:
      type: string
      description: who to greet
    times: {type: integer, default: 1, minimum: 1, maximum: 10}
  required: [name]
  additionalProperties: false
pause:
backup:
  parallel: true
  execution-group: disk
  params:
    target:
      type: object
      properties:
        kind: {type: string, enum: [full, incremental], default: full}
        path: {type: string, minLength: 1}
`

func TestReadActions(t *testing.T) {
	dir := charmDir(t, map[string]string{"metadata.yaml": "name: demo\n", "actions.yaml": demoActions})
	got, err := charm.ReadActions(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]charm.Action{
		"greet": {Description: "Say hello.", Schema: map[string]any{
			"type": "object", "title": "greet", "description": "Say hello.",
			"properties": map[string]any{
				"name":  map[string]any{"type": "string", "description": "who to greet"},
				"times": map[string]any{"type": "integer", "default": 1, "minimum": 1, "maximum": 10},
			},
			"required": []any{"name"}, "additionalProperties": false,
		}},
		"pause": {Description: "No description", Schema: map[string]any{
			"type": "object", "title": "pause", "description": "No description", "properties": map[string]any{},
		}},
		"backup": {Description: "No description", Parallel: true, ExecutionGroup: "disk", Schema: map[string]any{
			"type": "object", "title": "backup", "description": "No description",
			"properties": map[string]any{"target": map[string]any{"type": "object", "properties": map[string]any{
				"kind": map[string]any{"type": "string", "enum": []any{"full", "incremental"}, "default": "full"},
				"path": map[string]any{"type": "string", "minLength": 1},
			}}},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	// The schema goes to the controller as JSON.
	if _, err := json.Marshal(got["greet"].Schema); err != nil {
		t.Errorf("schema does not encode as JSON: %v", err)
	}
}

func TestReadActionsWithoutFile(t *testing.T) {
	got, err := charm.ReadActions(charmDir(t, map[string]string{"metadata.yaml": "name: demo\n"}))
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("ReadActions without actions.yaml = %v, %v; want an empty map", got, err)
	}
}

func TestReadActionsErrors(t *testing.T) {
	tests := []struct {
		name, charm, yaml, wantErr string
	}{
		{"not yaml", "demo", "greet: [", "yaml:"},
		{"bad name", "demo", "Greet: {}\n", "bad action name Greet"},
		{"trailing hyphen", "demo", "greet-: {}\n", "bad action name greet-"},
		{"reserved prefix", "demo", "juju-run: {}\n", `cannot use action name juju-run: the "juju-" prefix is reserved`},
		{"reserved name", "demo", "juju: {}\n", `cannot use action name juju: "juju" is a reserved name`},
		{"action not a map", "demo", "greet: hello\n", "action greet is not a map"},
		{"description not a string", "demo", "greet: {description: [a]}\n", `action greet: value for schema key "description" must be a string`},
		{"required not a list", "demo", "greet: {required: name}\n", `action greet: value for schema key "required" must be a YAML list`},
		{"parallel not a bool", "demo", "greet: {parallel: often}\n", `action greet: value for schema key "parallel" must be a bool`},
		{"params not a map", "demo", "greet: {params: [a]}\n", "action greet: params failed to parse as a map"},
		{"unknown type", "demo", "greet: {params: {n: {type: str}}}\n", `invalid params schema for action schema greet: n: unknown type "str"`},
		{"ref", "demo", "greet: {params: {n: {$ref: x}}}\n", `invalid params schema for action schema greet: n: schema key "$ref" is not supported`},
		{"non-string key", "demo", "greet: {params: {1: {type: string}}}\n", "action greet: map keyed with non-string value"},
		{"bad pattern", "demo", "greet: {params: {n: {type: string, pattern: '('}}}\n", `greet: n: bad pattern "("`},
		{"bad minimum", "demo", "greet: {params: {n: {minimum: low}}}\n", `greet: n: "minimum" must be a number`},
		{"infinite default", "demo", "greet: {params: {n: {default: .inf}}}\n", "action greet: value +Inf is not a JSON number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := charmDir(t, map[string]string{"metadata.yaml": "name: " + tt.charm + "\n", "actions.yaml": tt.yaml})
			_, err := charm.ReadActions(dir)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "actions.yaml") {
				t.Fatalf("error %v, want one naming actions.yaml and containing %q", err, tt.wantErr)
			}
		})
	}
	// A charm named juju-* may use the prefix, as in Juju.
	dir := charmDir(t, map[string]string{"metadata.yaml": "name: juju-qa\n", "actions.yaml": "juju-run: {}\n"})
	if _, err := charm.ReadActions(dir); err != nil {
		t.Errorf("juju-qa's juju-run: %v", err)
	}
}

// params decodes a JSON object as the controller does (numbers exact).
func params(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("bad test params %s: %v", s, err)
	}
	return m
}

func compile(t *testing.T, schema string) *charm.Schema {
	t.Helper()
	s, err := charm.CompileSchema(params(t, schema))
	if err != nil {
		t.Fatalf("compile %s: %v", schema, err)
	}
	return s
}

func TestSchemaValidate(t *testing.T) {
	greet := `{"type":"object","properties":{
		"name":{"type":"string","minLength":2,"maxLength":5},
		"times":{"type":"integer","minimum":1,"maximum":10},
		"ratio":{"type":"number","exclusiveMinimum":0,"maximum":1},
		"mode":{"enum":["fast","safe",3]},
		"tags":{"type":"array","items":{"type":"string"},"maxItems":2},
		"id":{"type":"string","pattern":"^[a-z]+-[0-9]+$"},
		"opt":{"type":["string","null"]},
		"target":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"],"additionalProperties":false}
	},"required":["name"],"additionalProperties":false}`
	open := `{"type":"object","properties":{"n":{"type":"integer"}}}`
	typed := `{"type":"object","additionalProperties":{"type":"boolean"}}`
	tests := []struct {
		name, schema, params, wantErr string
	}{
		{"valid", greet, `{"name":"ann","times":3,"ratio":0.5,"mode":"safe","tags":["a"],"id":"db-1","opt":null,"target":{"path":"/x"}}`, ""},
		{"integer written as a float", greet, `{"name":"ann","times":3.0}`, ""},
		{"big integer kept exact", `{"type":"object","properties":{"n":{"type":"integer","maximum":12345678901234567890}}}`, `{"n":12345678901234567890}`, ""},
		{"enum by numeric value", greet, `{"name":"ann","mode":3.0}`, ""},
		{"missing required", greet, `{}`, `validation failed: (root) : "name" property is missing and required, given {}`},
		{"additional property", greet, `{"name":"ann","colour":"red"}`, `validation failed: (root) : additional property "colour" is not allowed, given {"colour":"red","name":"ann"}`},
		{"additional allowed by default", open, `{"n":1,"colour":"red"}`, ""},
		{"additional of a type", typed, `{"a":true,"b":"no"}`, `validation failed: (root).b : invalid type. Expected: boolean, given: string`},
		{"wrong type", greet, `{"name":3}`, `validation failed: (root).name : invalid type. Expected: string, given: integer`},
		{"integer given a fraction", greet, `{"name":"ann","times":1.5}`, `(root).times : invalid type. Expected: integer, given: number`},
		{"below minimum", greet, `{"name":"ann","times":0}`, `(root).times : must be greater than or equal to 1, given 0`},
		{"above maximum", greet, `{"name":"ann","times":11}`, `(root).times : must be less than or equal to 10, given 11`},
		{"exclusive minimum", greet, `{"name":"ann","ratio":0}`, `(root).ratio : must be greater than 0, given 0`},
		{"too short", greet, `{"name":"a"}`, `(root).name : string length must be greater than or equal to 2, given "a"`},
		{"too long, in characters", greet, `{"name":"ééééé"}`, ""},
		{"too long", greet, `{"name":"annabel"}`, `(root).name : string length must be less than or equal to 5, given "annabel"`},
		{"not in enum", greet, `{"name":"ann","mode":"slow"}`, `(root).mode : must be one of the following: "fast", "safe", 3, given "slow"`},
		{"array item", greet, `{"name":"ann","tags":["a",1]}`, `(root).tags.1 : invalid type. Expected: string, given: integer`},
		{"too many items", greet, `{"name":"ann","tags":["a","b","c"]}`, `(root).tags : array must have at most 2 items, given 3`},
		{"pattern", greet, `{"name":"ann","id":"DB-1"}`, `(root).id : does not match pattern "^[a-z]+-[0-9]+$", given "DB-1"`},
		{"type list", greet, `{"name":"ann","opt":1}`, `(root).opt : invalid type. Expected: string/null, given: integer`},
		{"nested required and additional", greet, `{"name":"ann","target":{"size":1}}`,
			`validation failed: (root).target : "path" property is missing and required, given {"size":1}; (root).target : additional property "size" is not allowed, given {"size":1}`},
		{"every error, sorted", greet, `{"times":"x","name":"a"}`,
			`validation failed: (root).name : string length must be greater than or equal to 2, given "a"; (root).times : invalid type. Expected: integer, given: string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := compile(t, tt.schema).Validate(params(t, tt.params))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("valid params refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestSchemaValidatesYAMLValues(t *testing.T) {
	// The CLI checks nothing itself, but values parsed from YAML (int,
	// float64, map[string]any) must validate as their JSON forms would.
	s := compile(t, `{"type":"object","properties":{"n":{"type":"integer"},"f":{"type":"number"},"m":{"type":"object","properties":{"b":{"type":"boolean"}}}}}`)
	if err := s.Validate(map[string]any{"n": 3, "f": 1.5, "m": map[string]any{"b": true}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(map[string]any{"n": 3.5}); err == nil {
		t.Fatal("3.5 accepted as an integer")
	}
	if err := s.Validate(nil); err != nil {
		t.Fatalf("nil params are {}: %v", err)
	}
}

func TestCompileSchemaErrors(t *testing.T) {
	for _, tt := range []struct{ schema, wantErr string }{
		{`{"type":3}`, `"type" must be a string or a list of strings`},
		{`{"type":"text"}`, `unknown type "text"`},
		{`{"enum":[]}`, `"enum" must be a non-empty list`},
		{`{"minLength":-1}`, `"minLength" must be a non-negative integer`},
		{`{"maxItems":1.5}`, `"maxItems" must be a non-negative integer`},
		{`{"exclusiveMaximum":"x"}`, `"exclusiveMaximum" must be a boolean or a number`},
		{`{"properties":[]}`, `"properties" must be a map`},
		{`{"properties":{"a":1}}`, `property "a" must be a map`},
		{`{"properties":{"a":{"properties":{"b":{"type":"x"}}}}}`, `a.b: unknown type "x"`},
		{`{"required":[1]}`, `"required" must be a list of strings`},
		{`{"additionalProperties":1}`, `"additionalProperties" must be a boolean or a map`},
		{`{"items":1}`, `"items" must be a map or a list of maps`},
		{`{"$schema":"x"}`, `schema key "$schema" is not supported`},
	} {
		if _, err := charm.CompileSchema(params(t, tt.schema)); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("CompileSchema(%s) = %v, want %q", tt.schema, err, tt.wantErr)
		}
	}
	if _, err := charm.CompileSchema([]any{}); err == nil {
		t.Error("a list compiled as a schema")
	}
}

func TestInsertDefaults(t *testing.T) {
	s := compile(t, `{"type":"object","properties":{
		"times":{"type":"integer","default":1},
		"name":{"type":"string"},
		"target":{"type":"object","properties":{"kind":{"default":"full"},"opts":{"default":{"a":[1]}}}}
	}}`)
	in := params(t, `{"name":"x","target":{}}`)
	got := s.InsertDefaults(in)
	want := map[string]any{"name": "x", "times": json.Number("1"),
		"target": map[string]any{"kind": "full", "opts": map[string]any{"a": []any{json.Number("1")}}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("with defaults (-want +got):\n%s", diff)
	}
	if _, ok := in["times"]; ok {
		t.Error("InsertDefaults changed its argument")
	}
	// A value given is kept, even one the default would have replaced.
	if got := s.InsertDefaults(map[string]any{"times": 5}); got["times"] != 5 {
		t.Errorf("times = %v, want 5", got["times"])
	}
	// An absent object is not made up to hold its properties' defaults.
	if got := s.InsertDefaults(nil); len(got) != 1 {
		t.Errorf("defaults of nil params = %v, want only times", got)
	}
}

// TestLeaderDemoActions: the demo charm's actions parse, and their
// schemas take and refuse what its docs say.
func TestLeaderDemoActions(t *testing.T) {
	actions, err := charm.ReadActions(filepath.Join("..", "testcharms", "leader-demo"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		action, params string
		ok             bool
	}{
		{"greet", `{"name":"x"}`, true},
		{"greet", `{}`, false},
		{"greet", `{"name":"x","extra":1}`, false},
		{"count", `{}`, true},
		{"count", `{"to":21}`, false},
		{"fail", `{}`, true},
	} {
		a, ok := actions[tt.action]
		if !ok {
			t.Fatalf("no action %s in %v", tt.action, actions)
		}
		s, err := charm.CompileSchema(a.Schema)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(params(t, tt.params)); (err == nil) != tt.ok {
			t.Errorf("%s %s: %v, want ok=%v", tt.action, tt.params, err, tt.ok)
		}
	}
}
