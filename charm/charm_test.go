package charm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/charm"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// charmDir writes the given files into a fresh directory.
func charmDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadMetadata(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string // "" = no file
		want    *charm.Metadata
		wantErr string
	}{{
		name: "full",
		yaml: "name: my-app\nsummary: s\ndescription: |\n  long\nrequires:\n  db: {interface: pgsql}\n",
		want: &charm.Metadata{Name: "my-app", Summary: "s", Description: "long\n", Endpoints: map[string]charm.Endpoint{
			"db": {Role: charm.RoleRequirer, Interface: "pgsql", Scope: charm.ScopeGlobal},
		}},
	}, {
		name: "name only",
		yaml: "name: a1\n",
		want: &charm.Metadata{Name: "a1"},
	}, {
		name:    "missing file",
		wantErr: "cannot read charm metadata: open ",
	}, {
		name:    "empty",
		yaml:    "",
		wantErr: "file is empty",
	}, {
		name:    "not a map",
		yaml:    "- a\n",
		wantErr: "top level is not a map",
	}, {
		name:    "no name",
		yaml:    "summary: s\n",
		wantErr: `field "name" is missing`,
	}, {
		name:    "bad name",
		yaml:    "name: My_App\n",
		wantErr: `invalid charm name "My_App"`,
	}, {
		name:    "name not a string",
		yaml:    "name: 12\n",
		wantErr: `field "name" is not a string (line 1)`,
	}, {
		name:    "summary is a list",
		yaml:    "name: a\nsummary: [x]\n",
		wantErr: `field "summary" is not a string (line 2)`,
	}, {
		name:    "bad yaml",
		yaml:    "name: [\n",
		wantErr: "yaml:",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			if tt.name != "missing file" {
				files["metadata.yaml"] = tt.yaml
			}
			got, err := charm.ReadMetadata(charmDir(t, files))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadMetadataNamesFile(t *testing.T) {
	dir := charmDir(t, map[string]string{"metadata.yaml": "summary: x\n"})
	_, err := charm.ReadMetadata(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "metadata.yaml")) {
		t.Fatalf("err = %v, want it to name the file", err)
	}
}

const testConfig = `options:
  name:
    type: string
    default: hello
    description: a string
  empty:
    type: string
    default: ""
  port:
    type: int
    default: 8080
  ratio:
    type: float
    default: 1
  debug:
    type: boolean
    default: false
  token:
    type: string
    description: no default
  count:
    type: int
    default: "3"
`

func readTestConfig(t *testing.T) *charm.Config {
	t.Helper()
	c, err := charm.ReadConfig(charmDir(t, map[string]string{"config.yaml": testConfig}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReadConfig(t *testing.T) {
	c := readTestConfig(t)
	want := map[string]charm.Option{
		"name":  {Type: "string", Default: "hello", Description: "a string"},
		"empty": {Type: "string", Default: ""},
		"port":  {Type: "int", Default: int64(8080)},
		"ratio": {Type: "float", Default: float64(1)},
		"debug": {Type: "boolean", Default: false},
		"token": {Type: "string", Description: "no default"},
		"count": {Type: "int", Default: int64(3)},
	}
	if diff := cmp.Diff(want, c.Options); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"count", "debug", "empty", "name", "port", "ratio", "token"}, c.Keys()); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestReadConfigMissingFile(t *testing.T) {
	c, err := charm.ReadConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys()) != 0 {
		t.Errorf("keys = %v, want none", c.Keys())
	}
	got, err := c.Typed(nil)
	if err != nil || len(got) != 0 {
		t.Errorf("Typed = %v, %v; want empty", got, err)
	}
}

func TestReadConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"unknown type", "options:\n  a: {type: list}\n", `option "a" has unknown type "list"`},
		{"no type", "options:\n  a: {default: 1}\n", `option "a" has no type`},
		{"int default not int", "options:\n  a: {type: int, default: abc}\n", `option "a": default abc is not a valid int`},
		{"int default float", "options:\n  a: {type: int, default: 1.5}\n", `option "a": default 1.5 is not a valid int`},
		{"string default int", "options:\n  a: {type: string, default: 1}\n", `option "a": default 1 is not a valid string`},
		{"bool default string", "options:\n  a: {type: boolean, default: maybe}\n", `option "a": default maybe is not a valid boolean`},
		{"not yaml", "options: [\n", "yaml:"},
		{"options a list", "options: [a]\n", "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := charmDir(t, map[string]string{"config.yaml": tt.yaml})
			_, err := charm.ReadConfig(dir)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, "config.yaml")) {
				t.Errorf("err = %v, want it to name the file", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	c := readTestConfig(t)
	tests := []struct {
		name    string
		values  map[string]string
		wantErr string
	}{
		{"nil", nil, ""},
		{"all good", map[string]string{"name": "x", "port": "-1", "ratio": "0.5", "debug": "True", "token": "s"}, ""},
		{"unset values", map[string]string{"port": "", "debug": ""}, ""},
		{"unknown key", map[string]string{"nope": "1"}, `cannot validate config: unknown option "nope"`},
		{"bad int", map[string]string{"port": "80a"}, `cannot validate config: option "port": value "80a" is not a valid int`},
		{"int overflow", map[string]string{"port": "99999999999999999999"}, `option "port": value "99999999999999999999" is not a valid int`},
		{"bad float", map[string]string{"ratio": "half"}, `option "ratio": value "half" is not a valid float`},
		{"bad bool", map[string]string{"debug": "yes"}, `option "debug": value "yes" is not a valid boolean`},
		{"first in key order", map[string]string{"zzz": "1", "debug": "x"}, `option "debug"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Validate(tt.values)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestTyped(t *testing.T) {
	c := readTestConfig(t)
	defaults := map[string]any{
		"name": "hello", "empty": "", "port": int64(8080), "ratio": float64(1), "debug": false, "count": int64(3),
	}
	tests := []struct {
		name   string
		values map[string]string
		want   map[string]any
	}{
		{"defaults only", nil, defaults},
		{"unset means default", map[string]string{"name": "", "port": ""}, defaults},
		{"set values", map[string]string{"name": "x y", "port": "1", "ratio": "2.5", "debug": "true", "token": "t"}, map[string]any{
			"name": "x y", "empty": "", "port": int64(1), "ratio": 2.5, "debug": true, "count": int64(3), "token": "t",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Typed(tt.values)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("typed (-want +got):\n%s", diff)
			}
			if _, ok := got["token"]; ok != (tt.values["token"] != "") {
				t.Errorf("token present = %v; an option without default or value must be absent", ok)
			}
		})
	}
	if _, err := c.Typed(map[string]string{"port": "x"}); err == nil {
		t.Error("Typed accepted an invalid value")
	}
}

// TestJournalCharm reads the real test charm, so the parser agrees with
// the charms the end-to-end tests deploy.
func TestJournalCharm(t *testing.T) {
	dir := filepath.Join("..", "testcharms", "journal")
	m, err := charm.ReadMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "journal" {
		t.Errorf("name = %q", m.Name)
	}
	c, err := charm.ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Typed(map[string]string{"count": "2"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"message": "hello", "count": int64(2), "verbose": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("typed (-want +got):\n%s", diff)
	}
}

func TestReadMetadataEndpoints(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    map[string]charm.Endpoint
		wantErr string
	}{{
		name: "both forms and every role",
		yaml: `name: db
provides:
  server: pgsql
  metrics: {interface: prometheus_scrape, limit: 2}
requires:
  certificates:
    interface: tls-certificates
    optional: true
    description: ignored
  info: {interface: juju-info, scope: container}
peers:
  cluster: {interface: db-peers}
`,
		want: map[string]charm.Endpoint{
			"server":       {Role: charm.RoleProvider, Interface: "pgsql", Scope: charm.ScopeGlobal},
			"metrics":      {Role: charm.RoleProvider, Interface: "prometheus_scrape", Limit: 2, Scope: charm.ScopeGlobal},
			"certificates": {Role: charm.RoleRequirer, Interface: "tls-certificates", Optional: true, Scope: charm.ScopeGlobal},
			"info":         {Role: charm.RoleRequirer, Interface: "juju-info", Scope: charm.ScopeContainer},
			"cluster":      {Role: charm.RolePeer, Interface: "db-peers", Scope: charm.ScopeGlobal},
		},
	}, {
		name: "no endpoints",
		yaml: "name: a\n",
	}, {
		name: "empty sections",
		yaml: "name: a\nprovides:\nrequires: {}\n",
	}, {
		name:    "a section that is not a map",
		yaml:    "name: a\npeers: [cluster]\n",
		wantErr: `field "peers" is not a map (line 2)`,
	}, {
		name:    "the same name in two sections",
		yaml:    "name: a\nprovides:\n  db: pgsql\nrequires:\n  db: pgsql\n",
		wantErr: `endpoint "db" is declared in both provides and requires (line 5)`,
	}, {
		name:    "the same name twice in a section",
		yaml:    "name: a\npeers:\n  c: x\n  c: y\n",
		wantErr: `endpoint "c" is declared twice in peers (line 4)`,
	}, {
		name:    "bad endpoint name",
		yaml:    "name: a\nrequires:\n  DB: pgsql\n",
		wantErr: `invalid endpoint name "DB" in requires (line 3)`,
	}, {
		name:    "reserved endpoint name",
		yaml:    "name: a\nrequires:\n  juju-info: juju-info\n",
		wantErr: `endpoint name "juju-info" is reserved (line 3)`,
	}, {
		name:    "providing a reserved interface",
		yaml:    "name: a\nprovides:\n  info: juju-info\n",
		wantErr: `endpoint "info" uses reserved interface "juju-info" (line 3)`,
	}, {
		name:    "no interface",
		yaml:    "name: a\nrequires:\n  db: {limit: 1}\n",
		wantErr: `endpoint "db" has no interface (line 3)`,
	}, {
		name:    "bad interface",
		yaml:    "name: a\nrequires:\n  db: Pg SQL\n",
		wantErr: `endpoint "db" has invalid interface "Pg SQL" (line 3)`,
	}, {
		name:    "interface not a string",
		yaml:    "name: a\nrequires:\n  db: {interface: 12}\n",
		wantErr: `endpoint "db": interface is not a string (line 3)`,
	}, {
		name:    "a list for an endpoint",
		yaml:    "name: a\nrequires:\n  db: [pgsql]\n",
		wantErr: `endpoint "db" is neither an interface name nor a map (line 3)`,
	}, {
		name:    "negative limit",
		yaml:    "name: a\nrequires:\n  db: {interface: pgsql, limit: -1}\n",
		wantErr: `endpoint "db" has negative limit -1 (line 3)`,
	}, {
		name:    "limit not a number",
		yaml:    "name: a\nrequires:\n  db: {interface: pgsql, limit: many}\n",
		wantErr: `endpoint "db": yaml:`,
	}, {
		name:    "unknown scope",
		yaml:    "name: a\nrequires:\n  db: {interface: pgsql, scope: machine}\n",
		wantErr: `endpoint "db" has unknown scope "machine" (line 3)`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := charm.ReadMetadata(charmDir(t, map[string]string{"metadata.yaml": tt.yaml}))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.Endpoints); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
		})
	}
}
