package controller_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/internal/version"
	"github.com/uniter-dev/uniter/lease"
)

const (
	tokReport = "report0-token-0123456789ab"
)

// The charms of the relation tests: db provides pgsql and has a peers
// endpoint; web requires pgsql; report requires pgsql twice.
var (
	dbEPs = map[string]api.Endpoint{
		"server":  {Role: api.RoleProvider, Interface: "pgsql"},
		"cluster": {Role: api.RolePeer, Interface: "db-peers"},
	}
	webEPs = map[string]api.Endpoint{
		"db":    {Role: api.RoleRequirer, Interface: "pgsql"},
		"cache": {Role: api.RoleRequirer, Interface: "redis"},
	}
	reportEPs = map[string]api.Endpoint{
		"main":    {Role: api.RoleRequirer, Interface: "pgsql"},
		"replica": {Role: api.RoleRequirer, Interface: "pgsql"},
	}
)

// Relation ids after relSeed: db's peer relation, made when db/0
// registered, is 0; relate web db is 1.
const (
	peerID = "0"
	webID  = "1"
)

// relWorld is a controller running protocol 4 with db/0 (db's leader),
// db/1, web/0 (web's leader) and report/0 registered with their charms'
// endpoints, web related to db, and web/0, db/0 and db/1 in the scopes
// of both relations they are in.
type relWorld struct {
	c                     *controller.Controller
	admin, db0, db1, web0 *client.Client
	report                *client.Client
}

func relSeed(t *testing.T) *relWorld {
	t.Helper()
	c, admin := bootstrap(t, nodeOpts{})
	_, binMax, err := version.Protocol()
	if err != nil {
		t.Fatal(err)
	}
	waitVersion(t, c, binMax)
	ctx := ctxTimeout(t, 30*time.Second)
	w := &relWorld{c: c, admin: newClient(t, admin, c.APIAddr()), db0: newClient(t, tokDB0, c.APIAddr()),
		db1: newClient(t, tokDB1, c.APIAddr()), web0: newClient(t, tokWeb, c.APIAddr()), report: newClient(t, tokReport, c.APIAddr())}
	for _, r := range []api.RegisterUnitRequest{
		{Unit: "db/0", Token: tokDB0, Endpoints: dbEPs},
		{Unit: "db/1", Token: tokDB1, Endpoints: dbEPs},
		{Unit: "web/0", Token: tokWeb, Endpoints: webEPs},
		{Unit: "report/0", Token: tokReport, Endpoints: reportEPs},
	} {
		if err := w.admin.Register(ctx, r); err != nil {
			t.Fatalf("register %s: %v", r.Unit, err)
		}
	}
	for _, l := range []struct {
		cl        *client.Client
		app, unit string
	}{{w.db0, "db", "db/0"}, {w.web0, "web", "web/0"}} {
		if _, err := l.cl.Claim(ctx, l.app, l.unit, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	r, err := w.admin.AddRelation(ctx, "web", "db")
	if err != nil || r.ID != 1 || r.Key != "web:db db:server" || r.Interface != "pgsql" || r.Peer {
		t.Fatalf("relate web db: %+v, %v", r, err)
	}
	for _, e := range []struct {
		cl        *client.Client
		rel, unit string
	}{{w.web0, webID, "web/0"}, {w.db0, webID, "db/0"}, {w.db0, peerID, "db/0"}, {w.db1, peerID, "db/1"}} {
		if _, err := e.cl.EnterScope(ctx, e.rel, e.unit, map[string]string{"private-address": "10.0.0.1"}); err != nil {
			t.Fatalf("%s enters %s: %v", e.unit, e.rel, err)
		}
	}
	return w
}

// relations is the replicated relations as they stand, to compare a
// refused request's before and after.
func (w *relWorld) relations() []lease.Relation { return w.c.Node().FSM().Relations() }

// TestRelationLifecycle: the peer relation comes with the registration,
// relate infers the endpoints, data written through the API is stored
// with its version, and removal takes the relation through dying to gone
// as its units leave.
func TestRelationLifecycle(t *testing.T) {
	w := relSeed(t)
	ctx := ctxTimeout(t, 60*time.Second)

	peer, err := w.db1.Relation(ctx, peerID)
	if err != nil || peer.Key != "db:cluster" || !peer.Peer || peer.Interface != "db-peers" ||
		!cmp.Equal(peer.Scope, []string{"db/0", "db/1"}) || peer.Life != api.LifeAlive {
		t.Fatalf("peer relation %+v, %v", peer, err)
	}
	// The "endpoint:N" form names the same relation.
	if r, err := w.db1.Relation(ctx, "cluster:0"); err != nil || r.ID != 0 {
		t.Fatalf("cluster:0 = %+v, %v", r, err)
	}
	v, err := w.web0.SetUnitRelationData(ctx, webID, "web/0", map[string]string{"database": "shop"})
	if err != nil {
		t.Fatal(err)
	}
	av, err := w.db0.SetAppRelationData(ctx, webID, "db/0", 1, map[string]string{"host": "db.internal", "private-address": ""})
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.admin.Relation(ctx, "db:1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]api.Databag{"db": {Values: map[string]string{"host": "db.internal"}, Version: av},
		"web": {Values: map[string]string{}, Version: r.AppData["web"].Version}}
	if diff := cmp.Diff(want, r.AppData); diff != "" || av <= v {
		t.Errorf("application databags (-want +got):\n%s (versions %d then %d)", diff, v, av)
	}
	if got := r.UnitData["web/0"]; got.Version != v || !cmp.Equal(got.Values, map[string]string{"database": "shop", "private-address": "10.0.0.1"}) {
		t.Errorf("web/0's databag %+v, want version %d", got, v)
	}

	// The lists: every relation for the admin, an application's for its units.
	all, err := w.admin.Relations(ctx)
	if err != nil || len(all) != 2 || all[0].ID != 0 || all[1].ID != 1 || all[1].AppData != nil {
		t.Fatalf("relations %+v, %v", all, err)
	}
	if mine, err := w.web0.ApplicationRelations(ctx, "web"); err != nil || len(mine) != 1 || mine[0].Key != "web:db db:server" {
		t.Errorf("web's relations %+v, %v", mine, err)
	}
	if _, err := w.web0.ApplicationRelations(ctx, "db"); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("web/0 lists db's relations: %v", err)
	}
	if _, err := w.web0.Relations(ctx); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("web/0 lists every relation: %v", err)
	}

	// The status shows both, with Juju's provider and requirer.
	st, err := w.admin.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantRels := []api.RelationStatus{
		{ID: 0, Key: "db:cluster", Provider: "db:cluster", Requirer: "db:cluster", Interface: "db-peers", Type: "peer", Life: "alive", Units: []string{"db/0", "db/1"}},
		{ID: 1, Key: "web:db db:server", Provider: "db:server", Requirer: "web:db", Interface: "pgsql", Type: "regular", Life: "alive", Units: []string{"db/0", "web/0"}},
	}
	if diff := cmp.Diff(wantRels, st.Relations); diff != "" {
		t.Errorf("status relations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]string{"cluster": {"db"}, "server": {"web"}}, st.Applications["db"].Relations); diff != "" {
		t.Errorf("db's relations in status (-want +got):\n%s", diff)
	}
	if st.Applications["report"].Relations != nil {
		t.Errorf("report has no relation, status says %v", st.Applications["report"].Relations)
	}

	// Removal: dying while units are in scope, gone when the last leaves.
	if err := w.admin.RemoveRelation(ctx, webID); err != nil {
		t.Fatal(err)
	}
	if r, err := w.web0.Relation(ctx, webID); err != nil || r.Life != api.LifeDying {
		t.Fatalf("removed relation %+v, %v", r, err)
	}
	if _, err := w.web0.SetUnitRelationData(ctx, webID, "web/0", map[string]string{"bye": "1"}); err != nil {
		t.Errorf("a write to a dying relation: %v", err)
	}
	if _, err := w.db1.EnterScope(ctx, peerID, "db/1", nil); err != nil {
		t.Errorf("entering a scope again: %v", err)
	}
	if _, err := w.web0.EnterScope(ctx, webID, "web/0", nil); err != nil {
		t.Errorf("entering a dying relation's scope again (already in it): %v", err)
	}
	for _, l := range []struct {
		cl   *client.Client
		unit string
	}{{w.web0, "web/0"}, {w.db0, "db/0"}} {
		if err := l.cl.LeaveScope(ctx, webID, l.unit); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.admin.Relation(ctx, webID); !errors.Is(err, api.ErrUnknownRelation) || client.StatusCode(err) != http.StatusNotFound {
		t.Errorf("relation after the last unit left: %v", err)
	}
	if err := w.admin.RemoveRelation(ctx, peerID); !errors.Is(err, api.ErrInvalidCommand) || !strings.Contains(err.Error(), "peer relation") {
		t.Errorf("removing a peer relation: %v", err)
	}
	// The same endpoints relate again, under a new id.
	if r, err := w.admin.AddRelation(ctx, "db:server", "web:db"); err != nil || r.ID != 2 {
		t.Errorf("relate again: %+v, %v", r, err)
	}
}

// TestRelateRefusals: relate refuses what Juju refuses, with the
// controller's reason, and adds nothing.
func TestRelateRefusals(t *testing.T) {
	w := relSeed(t)
	ctx := ctxTimeout(t, 30*time.Second)
	for _, tc := range []struct {
		name   string
		a, b   string
		status int
		want   error
		text   string
	}{
		{"ambiguous", "report", "db", http.StatusBadRequest, api.ErrInvalidCommand,
			`ambiguous relation: "report db" could refer to "report:main db:server"; "report:replica db:server"`},
		{"interfaces do not match", "web:cache", "db", http.StatusBadRequest, api.ErrInvalidCommand, "no relations found"},
		{"named interfaces do not match", "web:cache", "db:server", http.StatusBadRequest, api.ErrInvalidCommand,
			`interfaces do not match: web:cache is "redis", db:server is "pgsql"`},
		{"unknown endpoint", "web:nope", "db", http.StatusBadRequest, api.ErrInvalidCommand, `application "web" has no "nope" relation`},
		{"peers endpoint", "db:cluster", "web:db", http.StatusBadRequest, api.ErrInvalidCommand, "db:cluster is a peers endpoint"},
		{"unknown application", "nope", "db", http.StatusNotFound, api.ErrUnknownApplication, "unknown application"},
		{"exists", "db", "web:db", http.StatusConflict, api.ErrRelationExists, "relation 1 (web:db db:server) already exists"},
		{"itself", "db", "db", http.StatusBadRequest, api.ErrInvalidCommand, "cannot relate to itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := w.relations()
			_, err := w.admin.AddRelation(ctx, tc.a, tc.b)
			if !errors.Is(err, tc.want) || client.StatusCode(err) != tc.status || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("relate %s %s = %v (%d), want %d %q", tc.a, tc.b, err, client.StatusCode(err), tc.status, tc.text)
			}
			if diff := cmp.Diff(before, w.relations()); diff != "" {
				t.Errorf("a refused relate changed the relations:\n%s", diff)
			}
		})
	}
	if _, err := w.admin.AddRelation(ctx, "report:main", "db"); err != nil {
		t.Errorf("naming one endpoint resolves the ambiguity: %v", err)
	}
}

// TestRelationPermissions: each write only by whom Juju allows it, fenced
// as leader-set is; refusals carry their status and code and change
// nothing.
func TestRelationPermissions(t *testing.T) {
	w := relSeed(t)
	ctx := ctxTimeout(t, 60*time.Second)
	raw := newRaw(t, w.c.APIAddr())
	admin := adminToken(t, w)
	// db/0's term is 1; a new term for db makes it 2 below.
	tests := []struct {
		name, method, path, token, body string
		status                          int
		code, text                      string
	}{
		{"a unit writes another unit's databag", "PATCH", "/v1/relations/1/unit-data", tokWeb, `{"unit":"db/0","changes":{"a":"1"}}`,
			403, "forbidden", "unit web/0 may not act as unit db/0"},
		{"a unit of another application", "PATCH", "/v1/relations/0/unit-data", tokWeb, `{"unit":"web/0","changes":{"a":"1"}}`,
			400, "invalid-command", "is not a unit of an application of relation 0"},
		{"a unit out of scope", "PATCH", "/v1/relations/1/unit-data", tokDB1, `{"unit":"db/1","changes":{"a":"1"}}`,
			409, "not-in-scope", "not in scope"},
		{"a minion writes the application databag", "PATCH", "/v1/relations/0/app-data", tokDB1, `{"unit":"db/1","term":1,"changes":{"a":"1"}}`,
			409, "not-leader", "not the leader"},
		{"the leader with another term", "PATCH", "/v1/relations/0/app-data", tokDB0, `{"unit":"db/0","term":2,"changes":{"a":"1"}}`,
			409, "not-leader", "not the leader"},
		{"the leader without a term", "PATCH", "/v1/relations/1/app-data", tokDB0, `{"unit":"db/0","changes":{"a":"1"}}`,
			409, "not-leader", "not the leader"},
		{"a unit enters another unit into scope", "POST", "/v1/relations/1/enter-scope", tokWeb, `{"unit":"db/1"}`,
			403, "forbidden", "may not act as unit db/1"},
		{"a unit takes another out of scope", "POST", "/v1/relations/0/leave-scope", tokDB1, `{"unit":"db/0"}`,
			403, "forbidden", "may not act as unit db/0"},
		{"a unit relates", "POST", "/v1/relations", tokWeb, `{"endpoints":["web","report"]}`, 403, "forbidden", "admin only"},
		{"a unit removes a relation", "DELETE", "/v1/relations/1", tokWeb, ``, 403, "forbidden", "admin only"},
		{"a unit reads a relation of another application", "GET", "/v1/relations/0", tokWeb, ``, 403, "forbidden", "may not read relation 0"},
		{"a unit commits as another unit", "POST", "/v1/units/db/0/relation-data", tokDB1, `{"relations":[]}`, 403, "forbidden", "may not act as unit db/0"},
		{"an unknown relation", "GET", "/v1/relations/7", admin, ``, 404, "unknown-relation", "relation 7"},
		{"an unknown relation's data", "PATCH", "/v1/relations/7/unit-data", tokWeb, `{"unit":"web/0","changes":{"a":"1"}}`, 404, "unknown-relation", "relation 7"},
		{"an unknown relation's removal", "DELETE", "/v1/relations/7", admin, ``, 404, "unknown-relation", "relation 7"},
		{"an unknown relation in a commit", "POST", "/v1/units/web/0/relation-data", tokWeb, `{"relations":[{"relation":"7","unit":{"a":"1"}}]}`,
			404, "unknown-relation", "relation 7"},
		{"an endpoint of another relation", "GET", "/v1/relations/cluster:1", admin, ``, 404, "unknown-relation",
			`relation cluster:1: relation 1 is web:db db:server, which has no endpoint "cluster"`},
		{"a malformed id", "GET", "/v1/relations/01", admin, ``, 400, "bad-request", `invalid relation id "01"`},
		{"a malformed id in a commit", "POST", "/v1/units/web/0/relation-data", tokWeb, `{"relations":[{"relation":"x"}]}`,
			400, "bad-request", `invalid relation id "x"`},
		{"one endpoint", "POST", "/v1/relations", admin, `{"endpoints":["web"]}`, 400, "bad-request", "needs two endpoints"},
		{"a malformed endpoint", "POST", "/v1/relations", admin, `{"endpoints":["web:","db"]}`, 400, "invalid-command", "invalid endpoint"},
		{"no changes", "PATCH", "/v1/relations/1/unit-data", tokWeb, `{"unit":"web/0"}`, 400, "bad-request", "missing changes"},
		{"an unknown field", "PATCH", "/v1/relations/1/unit-data", tokWeb, `{"unit":"web/0","changes":{},"app":true}`, 400, "bad-request", "unknown field"},
		{"an empty key", "PATCH", "/v1/relations/1/unit-data", tokWeb, `{"unit":"web/0","changes":{"":"1"}}`, 400, "invalid-command", "empty key"},
		{"data on leaving", "POST", "/v1/relations/1/leave-scope", tokWeb, `{"unit":"web/0","data":{"a":"1"}}`, 400, "bad-request", "takes no data"},
		{"a registration with an unknown role", "POST", "/v1/units", admin,
			`{"unit":"x/0","token":"x0-token-0123456789abcdef","config_schema":null,"endpoints":{"a":{"role":"boss","interface":"i"}}}`,
			400, "bad-request", `endpoint "a" has unknown role "boss"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := w.relations()
			var resp rawResp
			if tc.body == "" {
				resp = raw.json(tc.method, tc.path, tc.token, "")
			} else {
				resp = raw.json(tc.method, tc.path, tc.token, tc.body)
			}
			var body api.Error
			mustJSON(t, resp.body, &body)
			if resp.status != tc.status || body.Code != tc.code || !strings.Contains(body.Error, tc.text) {
				t.Fatalf("%s %s = %d %s, want %d %s %q", tc.method, tc.path, resp.status, resp.body, tc.status, tc.code, tc.text)
			}
			if diff := cmp.Diff(before, w.relations()); diff != "" {
				t.Errorf("a refused request changed the relations:\n%s", diff)
			}
		})
	}
	// A deposed leader: db/0's term 1 is over once db/1 holds term 2.
	if err := w.db0.Revoke(ctx, "db", "db/0", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := w.db1.Claim(ctx, "db", "db/1", time.Hour); err != nil {
		t.Fatal(err)
	}
	before := w.relations()
	if _, err := w.db0.SetAppRelationData(ctx, peerID, "db/0", 1, map[string]string{"counter": "2"}); !errors.Is(err, api.ErrNotLeader) {
		t.Errorf("a deposed leader's write: %v", err)
	}
	if diff := cmp.Diff(before, w.relations()); diff != "" {
		t.Errorf("the deposed leader's write changed the relations:\n%s", diff)
	}
	if _, err := w.db1.SetAppRelationData(ctx, peerID, "db/1", 2, map[string]string{"counter": "2"}); err != nil {
		t.Errorf("the new leader's write: %v", err)
	}
}

// adminToken is the admin token of w's controller.
func adminToken(t *testing.T, w *relWorld) string {
	t.Helper()
	path, _ := w.c.ClientFile()
	f, err := client.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f.Token
}

// TestRelationDataLimits: a value just under the limit is stored, one
// over it is refused with 413 limit-exceeded naming the limit, by the
// controller and by the client before it sends; nothing is applied.
func TestRelationDataLimits(t *testing.T) {
	w := relSeed(t)
	ctx := ctxTimeout(t, 60*time.Second)
	raw := newRaw(t, w.c.APIAddr())
	at := strings.Repeat("x", api.MaxDatabagValueBytes)
	over := at + "x"
	big := strings.Repeat("y", 200<<10)
	for _, tc := range []struct {
		name, path, body string
		status           int
		text             string
	}{
		{"a value at the limit", "/v1/relations/1/unit-data", `{"unit":"web/0","changes":{"v":"` + at + `"}}`, 200, ""},
		{"a value over it", "/v1/relations/1/unit-data", `{"unit":"web/0","changes":{"v":"` + over + `"}}`, 413,
			`cannot set relation data of relation 1: value of "v" is 262145 bytes; the limit is 262144`},
		{"a key over it", "/v1/relations/1/unit-data", `{"unit":"web/0","changes":{"` + strings.Repeat("k", api.MaxDatabagKeyBytes+1) + `":"1"}}`, 413,
			"bytes; the limit is 256"},
		{"a databag over its size", "/v1/relations/1/unit-data", `{"unit":"web/0","changes":{"v":"","a":"` + big + `","b":"` + big + `","c":"` + big + `"}}`, 413,
			"bytes; the limit is 524288"},
		{"the leader's value over it", "/v1/relations/1/app-data", `{"unit":"web/0","term":1,"changes":{"v":"` + over + `"}}`, 413,
			"the limit is 262144"},
		{"a commit with one value over it", "/v1/units/web/0/relation-data",
			`{"relations":[{"relation":"1","unit":{"ok":"1"},"app":{"v":"` + over + `"}}]}`, 413,
			`cannot commit relation data of relation 1: value of "v" is 262145 bytes; the limit is 262144`},
		{"seed data over it", "/v1/relations/0/enter-scope", `{"unit":"db/0","data":{"v":"` + over + `"}}`, 413,
			`cannot enter scope of relation 0: value of "v" is 262145 bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "PATCH"
			if !strings.Contains(tc.path, "-data") || strings.Contains(tc.path, "relation-data") {
				method = "POST"
			}
			before := w.relations()
			resp := raw.json(method, tc.path, tokenFor(tc.body), tc.body)
			if resp.status != tc.status {
				t.Fatalf("%s: %d %.200s, want %d", tc.path, resp.status, resp.body, tc.status)
			}
			if tc.status == 200 {
				return
			}
			var body api.Error
			mustJSON(t, resp.body, &body)
			if body.Code != api.CodeLimitExceeded || !strings.Contains(body.Error, tc.text) {
				t.Errorf("refusal %+v, want limit-exceeded %q", body, tc.text)
			}
			if diff := cmp.Diff(before, w.relations()); diff != "" {
				t.Errorf("a refused write changed the relations:\n%.2000s", diff)
			}
		})
	}
	// The client refuses a value over the limit before sending: the same
	// text and sentinel, whatever the request body limit.
	huge := strings.Repeat("z", 2<<20)
	for name, call := range map[string]func() error{
		"unit data": func() error {
			_, err := w.web0.SetUnitRelationData(ctx, webID, "web/0", map[string]string{"big": huge})
			return err
		},
		"app data": func() error {
			_, err := w.web0.SetAppRelationData(ctx, webID, "web/0", 1, map[string]string{"big": huge})
			return err
		},
		"commit": func() error {
			return w.web0.CommitRelationData(ctx, "web/0", 1, []api.RelationCommit{{Relation: webID, Unit: map[string]string{"big": huge}}})
		},
	} {
		err := call()
		if !errors.Is(err, api.ErrLimitExceeded) || client.StatusCode(err) != http.StatusRequestEntityTooLarge ||
			!strings.Contains(err.Error(), `value of "big" is 2097152 bytes; the limit is 262144`) {
			t.Errorf("%s with a 2 MB value: %v", name, err)
		}
	}
}

// tokenFor picks the unit token of the unit a test body names.
func tokenFor(body string) string {
	switch {
	case strings.Contains(body, `"unit":"db/0"`):
		return tokDB0
	case strings.Contains(body, `"unit":"db/1"`):
		return tokDB1
	}
	return tokWeb
}

// TestRelationCommitIsAtomic: a hook's commit applies every write in one
// raft entry, or, when any entry is refused, none.
func TestRelationCommitIsAtomic(t *testing.T) {
	w := relSeed(t)
	ctx := ctxTimeout(t, 60*time.Second)
	good := api.RelationCommit{Relation: "cluster:0", Unit: map[string]string{"seen": "1"}, App: map[string]string{"leader-unit": "db/0", "counter": "1"}}
	unitOnly := func(rel string) api.RelationCommit {
		return api.RelationCommit{Relation: rel, Unit: map[string]string{"seen": "1"}}
	}
	for _, tc := range []struct {
		name    string
		cl      *client.Client
		unit    string
		term    uint64
		commits []api.RelationCommit
		want    error
		text    string
	}{
		{"a relation out of scope", w.db1, "db/1", 0,
			[]api.RelationCommit{unitOnly(peerID), {Relation: webID, Unit: map[string]string{"a": "1"}}},
			api.ErrNotInScope, "cannot commit relation data of relation 1"},
		{"a minion's application write", w.db1, "db/1", 1,
			[]api.RelationCommit{{Relation: peerID, Unit: map[string]string{"a": "1"}, App: map[string]string{"counter": "9"}}},
			api.ErrNotLeader, "cannot commit relation data of relation 0: not the leader"},
		{"a stale term", w.db0, "db/0", 7,
			[]api.RelationCommit{unitOnly(peerID), {Relation: webID, App: map[string]string{"host": "x"}}},
			api.ErrNotLeader, "not the leader"},
		{"an empty key", w.db0, "db/0", 1,
			[]api.RelationCommit{good, {Relation: webID, Unit: map[string]string{"": "x"}}},
			api.ErrInvalidCommand, "empty key"},
		{"a relation twice", w.db0, "db/0", 1,
			[]api.RelationCommit{good, {Relation: peerID, Unit: map[string]string{"b": "x"}}},
			api.ErrInvalidCommand, "listed twice"},
		{"a relation of another application", w.web0, "web/0", 1,
			[]api.RelationCommit{unitOnly(webID), unitOnly(peerID)},
			api.ErrInvalidCommand, "is not a unit of an application of relation 0"},
		{"a removed relation", w.db0, "db/0", 1,
			[]api.RelationCommit{good, unitOnly("9")},
			api.ErrUnknownRelation, "relation 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := w.relations()
			err := tc.cl.CommitRelationData(ctx, tc.unit, tc.term, tc.commits)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("commit = %v, want %v %q", err, tc.want, tc.text)
			}
			if diff := cmp.Diff(before, w.relations()); diff != "" {
				t.Errorf("a refused commit applied part of itself:\n%s", diff)
			}
		})
	}
	// A good commit: every databag written at the one index.
	err := w.db0.CommitRelationData(ctx, "db/0", 1, []api.RelationCommit{good,
		{Relation: "db:1", Unit: map[string]string{"seen": "1"}, App: map[string]string{"host": "db.internal"}}})
	if err != nil {
		t.Fatal(err)
	}
	fsm := w.c.Node().FSM()
	peer, _ := fsm.Relation(0)
	web, _ := fsm.Relation(1)
	v := peer.AppData["db"].Version
	for name, b := range map[string]lease.Databag{"peer db/0": peer.UnitData["db/0"], "peer db": peer.AppData["db"],
		"web db/0": web.UnitData["db/0"], "web db": web.AppData["db"]} {
		if b.Version != v || b.Values["seen"] == "" && b.Values["counter"] == "" && b.Values["host"] == "" && b.Values["leader-unit"] == "" {
			t.Errorf("%s: %+v, want version %d and the commit's values", name, b, v)
		}
	}
	if peer.AppData["db"].Values["counter"] != "1" || web.AppData["db"].Values["host"] != "db.internal" {
		t.Errorf("committed application databags %v %v", peer.AppData["db"].Values, web.AppData["db"].Values)
	}
	// An empty commit (a hook that wrote nothing) is fine.
	if err := w.web0.CommitRelationData(ctx, "web/0", 0, nil); err != nil {
		t.Errorf("an empty commit: %v", err)
	}
}

// TestRelationVisibility: a unit reads what Juju's relation-get lets it:
// its own and the remote units' databags, the remote application's, and
// its own application's only as leader (or in a peer relation).
func TestRelationVisibility(t *testing.T) {
	w := relSeed(t)
	ctx := ctxTimeout(t, 60*time.Second)
	if _, err := w.db1.EnterScope(ctx, webID, "db/1", nil); err != nil {
		t.Fatal(err)
	}
	keys := func(r api.Relation) ([]string, []string) {
		var apps, units []string
		for k := range r.AppData {
			apps = append(apps, k)
		}
		for k := range r.UnitData {
			units = append(units, k)
		}
		return apps, units
	}
	for _, tc := range []struct {
		name        string
		cl          *client.Client
		rel         string
		apps, units []string
	}{
		{"the admin", w.admin, webID, []string{"db", "web"}, []string{"db/0", "db/1", "web/0"}},
		{"db's leader", w.db0, webID, []string{"db", "web"}, []string{"db/0", "web/0"}},
		{"a db minion", w.db1, webID, []string{"web"}, []string{"db/1", "web/0"}},
		{"web's leader", w.web0, webID, []string{"db", "web"}, []string{"db/0", "db/1", "web/0"}},
		{"a minion in a peer relation", w.db1, peerID, []string{"db"}, []string{"db/0", "db/1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.cl.Relation(ctx, tc.rel)
			if err != nil {
				t.Fatal(err)
			}
			apps, units := keys(r)
			sorted := cmpopts.SortSlices(func(a, b string) bool { return a < b })
			if !cmp.Equal(tc.apps, apps, sorted) || !cmp.Equal(tc.units, units, sorted) {
				t.Errorf("visible databags: applications %v units %v, want %v %v", apps, units, tc.apps, tc.units)
			}
		})
	}
}

// TestUnitWatchShowsRelations: the unit's watch view carries each
// relation of its application with its scope, the remote members'
// databag versions and the remote application's, and wakes on a remote
// unit's write and on a new relation.
func TestUnitWatchShowsRelations(t *testing.T) {
	w := relSeed(t)
	ctx := ctxTimeout(t, 60*time.Second)
	view, idx, err := w.web0.WatchUnit(ctx, "web/0", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	web, _ := w.c.Node().FSM().Relation(1)
	want := []api.UnitRelation{{ID: 1, Endpoint: "db", Role: "requirer", Interface: "pgsql", RemoteApp: "db", Life: "alive",
		InScope: true, UnitVersion: web.UnitData["web/0"].Version, Members: map[string]uint64{"db/0": web.UnitData["db/0"].Version},
		RemoteAppVersion: web.AppData["db"].Version, ModifyIndex: web.ModifyIndex}}
	if diff := cmp.Diff(want, view.Relations); diff != "" {
		t.Fatalf("web/0's relations (-want +got):\n%s", diff)
	}
	// A peer relation: the other units are the members; db/0 is not its own.
	dbView, _, err := w.db1.WatchUnit(ctx, "db/1", 0, 0)
	if err != nil || len(dbView.Relations) != 2 {
		t.Fatalf("db/1's relations %+v, %v", dbView.Relations, err)
	}
	if p := dbView.Relations[0]; !p.Peer || p.RemoteApp != "db" || !p.InScope || len(p.Members) != 1 || p.Members["db/0"] == 0 {
		t.Errorf("db/1's peer relation %+v", p)
	}
	if r := dbView.Relations[1]; r.InScope || r.UnitVersion != 0 || len(r.Members) != 1 || r.Members["web/0"] == 0 {
		t.Errorf("db/1's view of web:db, whose scope it has not entered: %+v", r)
	}

	watch := func(after uint64) <-chan api.UnitView {
		got := make(chan api.UnitView, 1)
		go func() {
			v, _, err := w.web0.WatchUnit(ctx, "web/0", after, 30*time.Second)
			if err != nil {
				t.Error(err)
			}
			got <- v
		}()
		return got
	}
	got := watch(idx)
	v, err := w.db0.SetUnitRelationData(ctx, webID, "db/0", map[string]string{"port": "5432"})
	if err != nil {
		t.Fatal(err)
	}
	if view := <-got; view.Relations[0].Members["db/0"] != v {
		t.Errorf("after db/0's write: %+v, want its version %d", view.Relations[0], v)
	}
	_, idx, _ = w.web0.WatchUnit(ctx, "web/0", 0, 0)
	got = watch(idx)
	if _, err := w.admin.AddRelation(ctx, "web:cache", "db:server"); !errors.Is(err, api.ErrInvalidCommand) {
		t.Fatalf("a mismatched relate: %v", err) // refused: wakes nobody
	}
	if err := w.admin.Register(ctx, api.RegisterUnitRequest{Unit: "redis/0", Token: "redis0-token-0123456789ab",
		Endpoints: map[string]api.Endpoint{"cache": {Role: api.RoleProvider, Interface: "redis"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.admin.AddRelation(ctx, "web", "redis"); err != nil {
		t.Fatal(err)
	}
	if view := <-got; len(view.Relations) != 2 || view.Relations[1].RemoteApp != "redis" || view.Relations[1].InScope {
		t.Errorf("after a new relation: %+v", view.Relations)
	}
}

// TestRelationsNeedProtocol4: a cluster at effective version 3 refuses
// every relation write, and the registration of a charm with endpoints,
// with 409 needs-protocol, changing nothing; a charm without endpoints
// registers as before. Restarted as a 1..4 node, the cluster rises to 4
// and the same requests work.
func TestRelationsNeedProtocol4(t *testing.T) {
	dir := t.TempDir()
	c, admin := bootstrap(t, nodeOpts{dataDir: dir, protoMax: 3})
	waitVersion(t, c, 3)
	ctx := ctxTimeout(t, 60*time.Second)
	op := newClient(t, admin, c.APIAddr())
	web0 := newClient(t, tokWeb, c.APIAddr())
	const want = "needs cluster protocol 4; the cluster runs 3 (upgrade every controller node)"
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, api.ErrNeedsProtocol) || client.StatusCode(err) != http.StatusConflict || !strings.Contains(err.Error(), want) {
			t.Errorf("%s at protocol 3: %v", what, err)
		}
	}
	refused("a registration with endpoints", op.Register(ctx, api.RegisterUnitRequest{Unit: "db/0", Token: tokDB0, Endpoints: dbEPs}))
	if _, ok := c.Node().FSM().Unit("db/0"); ok {
		t.Fatal("the refused registration registered db/0")
	}
	// A charm without endpoints: {} is left out below protocol 4.
	if err := op.Register(ctx, api.RegisterUnitRequest{Unit: "web/0", Token: tokWeb, Endpoints: map[string]api.Endpoint{}}); err != nil {
		t.Fatalf("a registration without endpoints at protocol 3: %v", err)
	}
	if err := op.RegisterUnit(ctx, "db/1", tokDB1, nil); err != nil {
		t.Fatal(err)
	}
	_, err := op.AddRelation(ctx, "web", "db")
	refused("relate", err)
	refused("remove-relation", op.RemoveRelation(ctx, "0"))
	_, err = web0.EnterScope(ctx, "0", "web/0", nil)
	refused("enter-scope", err)
	refused("leave-scope", web0.LeaveScope(ctx, "0", "web/0"))
	_, err = web0.SetUnitRelationData(ctx, "0", "web/0", map[string]string{"a": "1"})
	refused("unit data", err)
	_, err = web0.SetAppRelationData(ctx, "0", "web/0", 1, map[string]string{"a": "1"})
	refused("application data", err)
	refused("a commit", web0.CommitRelationData(ctx, "web/0", 1, []api.RelationCommit{{Relation: "0", Unit: map[string]string{"a": "1"}}}))
	if st := c.Node().FSM().State(); len(st.Relations) != 0 || st.NextRelationID != 0 || st.Applications["web"].Endpoints != nil {
		t.Fatalf("relation state at protocol 3: %+v", st.Relations)
	}
	if rels, err := op.Relations(ctx); err != nil || len(rels) != 0 {
		t.Errorf("relations at protocol 3: %+v, %v", rels, err)
	}
	closeNode(t, c)

	c = startNode(t, nodeOpts{dataDir: dir, protoMax: 4})
	waitVersion(t, c, 4)
	op = newClient(t, admin, c.APIAddr())
	for _, r := range []api.RegisterUnitRequest{{Unit: "db/0", Token: tokDB0, Endpoints: dbEPs}, {Unit: "web/0", Token: tokWeb, Endpoints: webEPs}} {
		if err := op.Register(ctx, r); err != nil {
			t.Fatalf("register %s at protocol 4: %v", r.Unit, err)
		}
	}
	if r, err := op.AddRelation(ctx, "web", "db"); err != nil || r.Key != "web:db db:server" {
		t.Fatalf("relate at protocol 4: %+v, %v", r, err)
	}
	if rels, err := op.Relations(ctx); err != nil || len(rels) != 2 || rels[0].Key != "db:cluster" {
		t.Errorf("relations at protocol 4: %+v, %v", rels, err)
	}
}

// TestDatabagLimitsAgree: the client checks the limits the state machine
// enforces.
func TestDatabagLimitsAgree(t *testing.T) {
	for _, l := range []struct {
		name      string
		api, want int
	}{
		{"key", api.MaxDatabagKeyBytes, lease.MaxDatabagKeyBytes},
		{"value", api.MaxDatabagValueBytes, lease.MaxDatabagValueBytes},
		{"databag", api.MaxDatabagBytes, lease.MaxDatabagBytes},
		{"keys", api.MaxDatabagKeys, lease.MaxDatabagKeys},
	} {
		if l.api != l.want {
			t.Errorf("api's %s limit %d, the state machine's %d", l.name, l.api, l.want)
		}
	}
}

// TestRelationIDParsersAgree: the client's parsing of relation ids and
// endpoints (package api) accepts exactly what the state machine does.
func TestRelationIDParsersAgree(t *testing.T) {
	for _, s := range []string{"0", "3", "db:3", "db-peers:12", "a_b:1", "123456789", "1234567890", "03", "-1", "+1", "",
		":3", "db:", "DB:3", "db:x", "db::3", "3:3", "db:3:4", "db-:3", "x y:3"} {
		le, lid, lerr := lease.ParseRelationID(s)
		ae, aid, aerr := api.ParseRelationID(s)
		if (lerr == nil) != (aerr == nil) || le != ae || lid != aid {
			t.Errorf("%q: lease %q %d %v, api %q %d %v", s, le, lid, lerr, ae, aid, aerr)
		}
		if aerr != nil && (!errors.Is(aerr, api.ErrInvalidCommand) || !strings.HasPrefix(aerr.Error(), "invalid relation id")) {
			t.Errorf("%q: api error %v", s, aerr)
		}
	}
	for _, s := range []string{"web", "web:db", "web-2:db_x", "Web", "web:", ":db", "web:DB", "web:db:x", "2web", ""} {
		ref, lerr := lease.ParseEndpointRef(s)
		app, ep, aerr := api.ParseEndpointRef(s)
		if (lerr == nil) != (aerr == nil) || lerr == nil && (ref.App != app || ref.Endpoint != ep) {
			t.Errorf("%q: lease %+v %v, api %q %q %v", s, ref, lerr, app, ep, aerr)
		}
	}
}

// TestRelationWritesThroughAFollower: every relation write works through
// a follower, including one naming a relation the follower has not
// applied yet (the leader judges it), and a refusal comes back intact.
func TestRelationWritesThroughAFollower(t *testing.T) {
	nodes, admin, _ := startCluster(t)
	for _, n := range nodes {
		waitVersion(t, n, lease.MaxProtocol) // the binary's newest: relations need 4
	}
	_, follower, _ := roles(t, nodes)
	ctx := ctxTimeout(t, 60*time.Second)
	op := newClient(t, admin, follower.APIAddr())
	for _, r := range []api.RegisterUnitRequest{{Unit: "db/0", Token: tokDB0, Endpoints: dbEPs}, {Unit: "web/0", Token: tokWeb, Endpoints: webEPs}} {
		if err := op.Register(ctx, r); err != nil {
			t.Fatalf("register %s through a follower: %v", r.Unit, err)
		}
	}
	testutil.WaitUntil(t, 10*time.Second, "the registrations to reach the follower", func() bool {
		_, ok := follower.Node().FSM().Unit("web/0")
		return ok
	})
	web0, db0 := newClient(t, tokWeb, follower.APIAddr()), newClient(t, tokDB0, follower.APIAddr())
	if _, err := web0.Claim(ctx, "web", "web/0", time.Hour); err != nil {
		t.Fatal(err)
	}
	r, err := op.AddRelation(ctx, "web", "db")
	if err != nil || r.ID != 1 {
		t.Fatalf("relate through a follower: %+v, %v", r, err)
	}
	// At once, whether or not the follower has applied the relation yet.
	if _, err := web0.EnterScope(ctx, "db:1", "web/0", nil); err != nil {
		t.Fatalf("enter scope through a follower: %v", err)
	}
	err = web0.CommitRelationData(ctx, "web/0", 1, []api.RelationCommit{{Relation: "1", Unit: map[string]string{"a": "1"}, App: map[string]string{"b": "2"}}})
	if err != nil {
		t.Fatalf("commit through a follower: %v", err)
	}
	err = db0.CommitRelationData(ctx, "db/0", 1, []api.RelationCommit{{Relation: "1", App: map[string]string{"c": "3"}}})
	if !errors.Is(err, api.ErrNotLeader) || client.StatusCode(err) != http.StatusConflict {
		t.Errorf("a minion's commit through a follower: %v", err)
	}
	if err := op.RemoveRelation(ctx, "1"); err != nil {
		t.Errorf("remove through a follower: %v", err)
	}
	leader, _, _ := roles(t, nodes)
	leaderRel, _ := leader.Node().FSM().Relation(1)
	if leaderRel.Life != lease.RelationDying || leaderRel.UnitData["web/0"].Values["a"] != "1" || leaderRel.AppData["web"].Values["b"] != "2" ||
		leaderRel.AppData["db"].Values["c"] != "" {
		t.Errorf("the leader's relation %+v", leaderRel)
	}
}
