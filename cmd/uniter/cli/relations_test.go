package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/cmd/uniter/cli"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// writeRelationCharm makes a charm named name whose metadata.yaml has
// the given endpoint sections.
func writeRelationCharm(t *testing.T, name, endpoints string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Join(dir, "hooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	meta := "name: " + name + "\nsummary: a relation test charm\n" + endpoints
	if err := os.WriteFile(filepath.Join(dir, "metadata.yaml"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// relationDeployment starts a controller and adds db/0 (provides pgsql,
// peers db-peers), web/0 (requires pgsql and redis) and report/0
// (requires pgsql twice) with `uniter unit add`.
func relationDeployment(t *testing.T) (*client.Client, map[string]string) {
	t.Helper()
	t.Setenv("UNITER_HOME", t.TempDir())
	d := startDaemon(t, filepath.Join(t.TempDir(), "ctl"))
	cfgPath := filepath.Join(d.dataDir, "client.yaml")
	admin := adminClient(t, cfgPath)
	t.Setenv(cli.ClientConfigEnv, cfgPath)
	// The charms' endpoints need protocol 4, which the node raises to
	// once it has recorded itself.
	testutil.WaitUntil(t, 20*time.Second, "protocol 4", func() bool {
		v, _, err := admin.Cluster(t.Context(), 0, 0)
		return err == nil && v.EffectiveVersion >= 4
	})
	charms := map[string]string{
		"db":     "provides:\n  server: pgsql\npeers:\n  cluster:\n    interface: db-peers\n",
		"web":    "requires:\n  db: pgsql\n  cache: {interface: redis}\n",
		"report": "requires:\n  main: pgsql\n  replica: pgsql\n",
	}
	agentDirs := map[string]string{}
	for _, app := range []string{"db", "web", "report"} {
		dir := writeRelationCharm(t, app, charms[app])
		agentDirs[app] = filepath.Join(t.TempDir(), app)
		r := run(t, "unit", "add", app+"/0", "--charm", dir, "--agent-dir", agentDirs[app])
		if r.code != 0 {
			t.Fatalf("unit add %s/0: %+v", app, r)
		}
	}
	return admin, agentDirs
}

// TestRelateInfersEndpoints: the charms' endpoints reach the controller
// at `unit add` (the peers endpoint with its relation), relate infers an
// endpoint when one pair fits and refuses clearly when none or several do.
func TestRelateInfersEndpoints(t *testing.T) {
	admin, _ := relationDeployment(t)
	rels, err := admin.Relations(t.Context())
	if err != nil || len(rels) != 1 || rels[0].Key != "db:cluster" || !rels[0].Peer {
		t.Fatalf("relations after unit add: %+v, %v", rels, err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string // a regexp
	}{
		{"inferred", []string{"relate", "web", "db"}, 0, "added relation 1: web:db db:server (pgsql)\n", "^$"},
		{"exists", []string{"relate", "db", "web:db"}, 1, "",
			`^ERROR cannot add relation db web:db: relation 1 \(web:db db:server\) already exists`},
		{"ambiguous", []string{"relate", "report", "db"}, 1, "",
			`^ERROR cannot add relation report db: ambiguous relation: "report db" could refer to "report:main db:server"; "report:replica db:server"; name the endpoints`},
		{"no interface in common", []string{"relate", "web:cache", "db"}, 1, "",
			`^ERROR cannot add relation web:cache db: no relations found \(a requires endpoint relates to a provides endpoint of the same interface\)`},
		{"interfaces do not match", []string{"integrate", "web:cache", "db:server"}, 1, "",
			`^ERROR cannot add relation web:cache db:server: interfaces do not match: web:cache is "redis", db:server is "pgsql"`},
		{"unknown endpoint", []string{"relate", "web:nope", "db"}, 1, "", `application "web" has no "nope" relation`},
		{"unknown application", []string{"relate", "web", "nope"}, 1, "", `application "nope": lease: unknown application`},
		{"named endpoint", []string{"integrate", "report:replica", "db"}, 0, "added relation 2: report:replica db:server (pgsql)\n", "^$"},
		{"bad endpoint", []string{"relate", "Web", "db"}, 2, "", `^ERROR bad endpoint "Web": want APP or APP:ENDPOINT\n`},
		{"one argument", []string{"relate", "web"}, 2, "", `^ERROR want APP\[:ENDPOINT\] APP\[:ENDPOINT\], got 1 arguments\n`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.args...)
			if r.code != tt.code || r.stdout != tt.stdout || !regexp.MustCompile(tt.stderr).MatchString(r.stderr) {
				t.Errorf("%v = %+v, want exit %d, stdout %q, stderr matching %s", tt.args, r, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
	rels, _ = admin.Relations(t.Context())
	var keys []string
	for _, r := range rels {
		keys = append(keys, r.Key)
	}
	if want := []string{"db:cluster", "web:db db:server", "report:replica db:server"}; !cmp.Equal(keys, want) {
		t.Errorf("relations %v, want %v (refusals added nothing)", keys, want)
	}
}

// TestRelationsAndStatus: relations and status show the relations in
// Juju's integration table and in the JSON schema; remove-relation finds
// a relation by its endpoints or its id.
func TestRelationsAndStatus(t *testing.T) {
	_, agentDirs := relationDeployment(t)
	for _, args := range [][]string{{"relate", "web", "db"}, {"relate", "report:main", "db"}, {"relate", "report:replica", "db"}} {
		if r := run(t, args...); r.code != 0 {
			t.Fatalf("%v: %+v", args, r)
		}
	}
	cfg, err := agent.ReadConfig(agentDirs["web"])
	if err != nil {
		t.Fatal(err)
	}
	web, err := client.New(cfg.Controller.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	if _, err := web.EnterScope(t.Context(), "1", "web/0", nil); err != nil {
		t.Fatal(err)
	}

	r := run(t, "relations")
	for _, want := range []string{
		`(?m)^INTEGRATION PROVIDER\s+REQUIRER\s+INTERFACE\s+TYPE\s+ID\s+LIFE\s+UNITS$`,
		`(?m)^db:cluster\s+db:cluster\s+db-peers\s+peer\s+0\s+alive\s+-$`,
		`(?m)^db:server\s+web:db\s+pgsql\s+regular\s+1\s+alive\s+web/0$`,
		`(?m)^db:server\s+report:main\s+pgsql\s+regular\s+2\s+alive\s+-$`,
	} {
		if r.code != 0 || !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("relations: no line matching %s in %+v", want, r)
		}
	}
	if r := run(t, "relations", "web"); r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stdout, "web:db") {
		t.Errorf("relations web: %+v", r)
	}
	var listed struct{ Relations []api.Relation }
	if r := run(t, "relations", "--format", "json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &listed) != nil || len(listed.Relations) != 4 {
		t.Errorf("relations --format json: %+v", r)
	}
	st := run(t, "status")
	if !regexp.MustCompile(`(?m)^db:server\s+web:db\s+pgsql\s+regular\s+1\s+alive\s+web/0$`).MatchString(st.stdout) {
		t.Errorf("status table without the relation:\n%s", st.stdout)
	}
	var doc struct {
		Applications map[string]struct {
			Relations map[string][]string `json:"relations"`
		} `json:"applications"`
		Relations []api.RelationStatus `json:"relations"`
	}
	if r := run(t, "status", "--format", "json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &doc) != nil {
		t.Fatalf("status --format json: %+v", r)
	}
	if len(doc.Relations) != 4 || doc.Relations[1].Requirer != "web:db" ||
		!cmp.Equal(doc.Relations[1].Units, []string{"web/0"}) ||
		!cmp.Equal(doc.Applications["db"].Relations, map[string][]string{"cluster": {"db"}, "server": {"report", "web"}}) {
		t.Errorf("status json relations %+v, db's %v", doc.Relations, doc.Applications["db"].Relations)
	}
	if r := run(t, "status", "--format", "yaml"); r.code != 0 || !strings.Contains(r.stdout, "requirer: web:db") {
		t.Errorf("status --format yaml: %+v", r)
	}

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string // a regexp
	}{
		{"ambiguous", []string{"remove-relation", "report", "db"}, 1, "",
			`^ERROR report and db could mean relation 2 \(report:main db:server\) or 3 \(report:replica db:server\): name the endpoints, or the relation's id\n$`},
		{"by endpoints", []string{"remove-relation", "db", "report:main"}, 0, "removed relation 2 (report:main db:server)\n", "^$"},
		{"gone", []string{"remove-relation", "db", "report:main"}, 1, "", `^ERROR no relation joins db and report:main \(see 'uniter relations'\)\n$`},
		{"by id", []string{"remove-relation", "replica:3"}, 0, "removed relation 3 (report:replica db:server)\n", "^$"},
		{"in scope", []string{"remove-relation", "web", "db"}, 0,
			"relation 1 (web:db db:server) is dying: it is gone once its 1 unit(s) in scope have run their -departed and -broken hooks\n", "^$"},
		{"a peer relation", []string{"remove-relation", "0"}, 1, "", `^ERROR cannot remove relation db:cluster: .*is a peer relation`},
		{"an unknown id", []string{"remove-relation", "9"}, 1, "", `^ERROR cannot remove relation 9: relation 9: lease: relation not found\n$`},
		{"a bad id", []string{"remove-relation", "x"}, 2, "", `^ERROR bad relation id "x"`},
		{"three arguments", []string{"remove-relation", "a", "b", "c"}, 2, "", `^ERROR want APP\[:ENDPOINT\] APP\[:ENDPOINT\] or ID, got 3 arguments`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.args...)
			if r.code != tt.code || r.stdout != tt.stdout || !regexp.MustCompile(tt.stderr).MatchString(r.stderr) {
				t.Errorf("%v = %+v, want exit %d, stdout %q, stderr matching %s", tt.args, r, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestDeployStandalone: against a controller that is not `uniter up`'s,
// deploy registers N units of a new application under --agents-dir (each
// with its charm and a 0600 agent.yaml) and prints how to start each
// agent; a second deploy of the application is refused and adds nothing.
func TestDeployStandalone(t *testing.T) {
	admin, _ := relationDeployment(t)
	charm := writeRelationCharm(t, "cache", "provides:\n  store: {interface: redis}\n")
	root := filepath.Join(t.TempDir(), "agents")
	r := run(t, "deploy", charm, "--units", "2", "--agents-dir", root)
	want := "deployed cache: 2 units of " + charm + "; start their agents with:\n" +
		"  uniter agent --agent-dir " + filepath.Join(root, "cache-0") + "\n" +
		"  uniter agent --agent-dir " + filepath.Join(root, "cache-1") + "\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("deploy = %+v, want exit 0 and %q", r, want)
	}
	for _, unit := range []string{"cache-0", "cache-1"} {
		fi, err := os.Stat(filepath.Join(root, unit, "agent.yaml"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s/agent.yaml: %v, %v; want mode 0600", unit, fi, err)
		}
		if _, err := os.Stat(filepath.Join(root, unit, "charm", "metadata.yaml")); err != nil {
			t.Errorf("%s has no copy of the charm: %v", unit, err)
		}
	}
	st, err := admin.ApplicationStatus(t.Context(), "cache")
	if err != nil || len(st.Units) != 2 {
		t.Fatalf("cache after deploy: %+v, %v; want 2 units", st, err)
	}
	if r := run(t, "deploy", charm, "--app", "cache", "--agents-dir", t.TempDir()); r.code != 1 ||
		!strings.Contains(r.stderr, `application "cache" already exists`) {
		t.Errorf("second deploy = %+v, want exit 1, already exists", r)
	}
	if r := run(t, "relate", "web:cache", "cache"); r.code != 0 {
		t.Errorf("relate web:cache cache = %+v", r)
	}
	if st, _ := admin.ApplicationStatus(t.Context(), "cache"); len(st.Units) != 2 {
		t.Errorf("cache has %d units after the refused deploy, want 2", len(st.Units))
	}
}
