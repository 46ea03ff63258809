package tests

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// relationCharm is a copy of the journal charm named name, with the
// endpoint sections of metadata.yaml given.
func relationCharm(t *testing.T, name, endpoints string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "testcharms", "journal"))); err != nil {
		t.Fatal(err)
	}
	meta := "name: " + name + "\nsummary: the journal charm with relation endpoints\n" + endpoints
	if err := os.WriteFile(filepath.Join(dir, "metadata.yaml"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// jsonStatus is `uniter status --format json`, decoded.
func jsonStatus(t *testing.T, c *cluster) api.Status {
	t.Helper()
	r := c.run("status", "--format", "json")
	var st api.Status
	if r.code != 0 {
		t.Fatalf("status --format json: exit %d: %s", r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --format json: %v\n%s", err, r.stdout)
	}
	return st
}

// TestRelationsOnARealController: two applications and a charm with a
// peers endpoint, registered with the real CLI on a real controller (the
// peer charm's units run by real agents): the peer relation exists from
// the first registration, `uniter relate` infers web's endpoint and
// refuses mismatched interfaces, and `uniter status --format json` shows
// the relations (with the units in scope) until `remove-relation` takes
// the relation away.
func TestRelationsOnARealController(t *testing.T) {
	c := startCluster(t, 1)
	cl := c.client()
	waitProtocol4(t, c)
	charms := map[string]string{
		"pg":     relationCharm(t, "pg", "provides:\n  server: pgsql\npeers:\n  cluster:\n    interface: pg-peers\n"),
		"web":    relationCharm(t, "web", "requires:\n  db: pgsql\n  cache: redis\n"),
		"report": relationCharm(t, "report", "requires:\n  source:\n    interface: mysql\n"),
	}
	dirs := map[string]string{}
	var agents []*agentUnit
	for _, unit := range []string{"pg/0", "pg/1", "web/0", "report/0"} {
		app, _, _ := strings.Cut(unit, "/")
		dirs[unit] = filepath.Join(c.root, "units", strings.ReplaceAll(unit, "/", "-"))
		if r := c.run("unit", "add", unit, "--charm", charms[app], "--agent-dir", dirs[unit], "--guarantee", "3s"); r.code != 0 {
			t.Fatalf("unit add %s: exit %d: %s", unit, r.code, r.stderr)
		}
		if app == "pg" {
			u := &agentUnit{t: t, unit: unit, dir: dirs[unit]}
			t.Cleanup(func() { u.stop(syscall.SIGTERM) })
			u.start()
			agents = append(agents, u)
		}
	}
	// The peer relation came with pg's first unit; its agents run as ever.
	testutil.WaitUntil(t, 60*time.Second, "pg's agents to start and elect a leader", func() bool {
		st := jsonStatus(t, c)
		pg := st.Applications["pg"]
		for _, u := range []string{"pg/0", "pg/1"} {
			if pg.Units[u].Agent.Status != "idle" {
				return false
			}
		}
		return pg.Leader != nil
	})
	for _, u := range agents {
		if n := count(readJournal(t, u.path("charm", "journal.log")), "start", "end"); n != 1 {
			t.Errorf("%s ran start %d times", u.unit, n)
		}
	}

	if r := c.run("relate", "web", "pg"); r.code != 0 || r.stdout != "added relation 1: web:db pg:server (pgsql)\n" {
		t.Fatalf("relate web pg: exit %d: %q %s", r.code, r.stdout, r.stderr)
	}
	if r := c.run("relate", "report", "pg"); r.code != 1 || !strings.Contains(r.stderr, "no relations found") {
		t.Errorf("relate report pg (mysql against pgsql): exit %d: %s", r.code, r.stderr)
	}
	if r := c.run("relate", "report:source", "pg:server"); r.code != 1 ||
		!strings.Contains(r.stderr, `interfaces do not match: report:source is "mysql", pg:server is "pgsql"`) {
		t.Errorf("relate report:source pg:server: exit %d: %s", r.code, r.stderr)
	}
	// web/0 has no agent: it enters scope with its own token, as its
	// agent would; pg's agents enter by themselves after -created.
	for _, unit := range []string{"web/0"} {
		cfg, err := agent.ReadConfig(dirs[unit])
		if err != nil {
			t.Fatal(err)
		}
		uc, err := client.New(cfg.Controller.ClientConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer uc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = uc.EnterScope(ctx, "db:1", unit, map[string]string{"private-address": "127.0.0.1"})
		cancel()
		if err != nil {
			t.Fatalf("%s enters scope: %v", unit, err)
		}
	}

	want := []api.RelationStatus{
		{ID: 0, Key: "pg:cluster", Provider: "pg:cluster", Requirer: "pg:cluster", Interface: "pg-peers", Type: "peer", Life: "alive",
			Units: []string{"pg/0", "pg/1"}},
		{ID: 1, Key: "web:db pg:server", Provider: "pg:server", Requirer: "web:db", Interface: "pgsql", Type: "regular", Life: "alive",
			Units: []string{"pg/0", "pg/1", "web/0"}},
	}
	var st api.Status
	testutil.WaitUntil(t, 30*time.Second, "pg's agents to enter the scopes", func() bool {
		st = jsonStatus(t, c)
		return cmp.Equal(want, st.Relations)
	})
	if diff := cmp.Diff(map[string][]string{"cluster": {"pg"}, "server": {"web"}}, st.Applications["pg"].Relations); diff != "" {
		t.Errorf("pg's relations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]string{"db": {"pg"}}, st.Applications["web"].Relations); diff != "" {
		t.Errorf("web's relations (-want +got):\n%s", diff)
	}
	if r := c.run("status"); !strings.Contains(r.stdout, "INTEGRATION PROVIDER") || !strings.Contains(r.stdout, "pg:server") {
		t.Errorf("status table:\n%s", r.stdout)
	}

	if r := c.run("remove-relation", "pg", "web"); r.code != 0 || !strings.Contains(r.stdout, "relation 1 (web:db pg:server) is dying") {
		t.Fatalf("remove-relation pg web: exit %d: %q %s", r.code, r.stdout, r.stderr)
	}
	if st := jsonStatus(t, c); len(st.Relations) != 2 || st.Relations[1].Life != "dying" {
		t.Errorf("relations after remove-relation: %+v", st.Relations)
	}
	if r := c.run("remove-relation", "cluster:0"); r.code != 1 || !strings.Contains(r.stderr, "peer relation") {
		t.Errorf("remove-relation of the peer relation: exit %d: %s", r.code, r.stderr)
	}
	// pg's agents run -broken and leave; web/0 leaves as its agent
	// would; the last unit to leave removes the relation.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.LeaveScope(ctx, "1", "web/0"); err != nil && !errors.Is(err, api.ErrUnknownRelation) {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, 30*time.Second, "the relation to be gone", func() bool {
		st := jsonStatus(t, c)
		return len(st.Relations) == 1 && st.Relations[0].Key == "pg:cluster" && st.Applications["web"].Relations == nil
	})
}
