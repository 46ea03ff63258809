package lease_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/lease"
)

// The charms of the relation tests: db provides pgsql and has a peers
// endpoint; web requires pgsql and redis; report requires pgsql twice.
var (
	dbEndpoints = map[string]lease.Endpoint{
		"server":  {Role: lease.RoleProvider, Interface: "pgsql"},
		"metrics": {Role: lease.RoleProvider, Interface: "prometheus_scrape"},
		"cluster": {Role: lease.RolePeer, Interface: "db-peers"},
	}
	webEndpoints = map[string]lease.Endpoint{
		"db":      {Role: lease.RoleRequirer, Interface: "pgsql"},
		"cache":   {Role: lease.RoleRequirer, Interface: "redis"},
		"website": {Role: lease.RoleProvider, Interface: "http"},
	}
	reportEndpoints = map[string]lease.Endpoint{
		"main":    {Role: lease.RoleRequirer, Interface: "pgsql"},
		"replica": {Role: lease.RoleRequirer, Interface: "pgsql"},
	}
)

// Relation ids after relSetup: db's peer relation is 0; the first
// relation added (relate web db) is 1.
const (
	peerRel = 0
	webDB   = 1
)

func registerWith(unit string, eps map[string]lease.Endpoint) lease.Op {
	return lease.RegisterUnit{Name: unit, TokenHash: lease.HashToken("token-" + unit), Endpoints: eps}
}

// relSetup raises the effective version to 3, gives db and web their
// charms' endpoints (re-registering their units), then applies more.
func relSetup(more ...lease.Op) []lease.Op {
	ops := []lease.Op{lease.SetEffectiveVersion{Old: 1, New: 4}}
	for _, u := range units {
		eps := dbEndpoints
		if appOf(u) == "web" {
			eps = webEndpoints
		}
		ops = append(ops, registerWith(u, eps))
	}
	return append(ops, more...)
}

func ref(s string) lease.EndpointRef {
	r, err := lease.ParseEndpointRef(s)
	if err != nil {
		panic(err)
	}
	return r
}

func relate(a, b string) lease.Op { return lease.AddRelation{A: ref(a), B: ref(b)} }

func enter(id int, unit string) lease.Op { return lease.EnterScope{Relation: id, Unit: unit} }

func leave(id int, unit string) lease.Op { return lease.LeaveScope{Relation: id, Unit: unit} }

// kv makes a change map from pairs; the value "-" is nil (delete).
func kv(pairs ...string) map[string]*string {
	out := map[string]*string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "-" {
			out[pairs[i]] = nil
		} else {
			out[pairs[i]] = ptr(pairs[i+1])
		}
	}
	return out
}

func unitData(id int, unit string, pairs ...string) lease.Op {
	return lease.SetRelationData{Relation: id, Unit: unit, Changes: kv(pairs...)}
}

func appData(id int, unit string, term uint64, pairs ...string) lease.Op {
	return lease.SetRelationData{Relation: id, Unit: unit, App: true, Term: term, Changes: kv(pairs...)}
}

// wantRelation checks relation id with check, or that it is gone (nil).
func wantRelation(id int, check func(t *testing.T, r *lease.Relation, res lease.Result)) func(*testing.T, *lease.State, lease.Result) {
	return func(t *testing.T, s *lease.State, res lease.Result) {
		t.Helper()
		r := s.Relations[id]
		switch {
		case check == nil && r != nil:
			t.Fatalf("relation %d is still there: %+v", id, r)
		case check != nil && r == nil:
			t.Fatalf("relation %d is gone", id)
		case check != nil:
			check(t, r, res)
		}
	}
}

// wantScope checks the units in relation id's scope.
func wantScope(id int, units ...string) func(*testing.T, *lease.State, lease.Result) {
	return wantRelation(id, func(t *testing.T, r *lease.Relation, _ lease.Result) {
		t.Helper()
		if diff := cmp.Diff(units, r.Scope(), cmpEmpty); diff != "" {
			t.Errorf("scope of relation %d (-want +got):\n%s", id, diff)
		}
	})
}

// wantBag checks the databag the command wrote: its values, that its
// version is the index of the command (changed) or older, and that the
// result reports that version.
func wantBag(id int, owner string, app bool, values map[string]string, changed bool) func(*testing.T, *lease.State, lease.Result) {
	return checkBag(id, owner, app, values, changed, true)
}

// wantOtherBag is wantBag for a databag the command did not write.
func wantOtherBag(id int, owner string, app bool, values map[string]string) func(*testing.T, *lease.State, lease.Result) {
	return checkBag(id, owner, app, values, false, false)
}

func checkBag(id int, owner string, app bool, values map[string]string, changed, written bool) func(*testing.T, *lease.State, lease.Result) {
	return wantRelation(id, func(t *testing.T, r *lease.Relation, res lease.Result) {
		t.Helper()
		bags := r.UnitData
		if app {
			bags = r.AppData
		}
		b, ok := bags[owner]
		if !ok {
			t.Fatalf("relation %d has no databag of %s", id, owner)
		}
		if diff := cmp.Diff(values, b.Values, cmpEmpty); diff != "" {
			t.Errorf("databag of %s (-want +got):\n%s", owner, diff)
		}
		if changed != (b.Version == res.Index) || b.Version > res.Index {
			t.Errorf("databag version %d at index %d (changed: %v)", b.Version, res.Index, changed)
		}
		if written && res.Err == nil && res.Version != b.Version {
			t.Errorf("result version %d, databag version %d", res.Version, b.Version)
		}
	})
}

// wantErrText checks that the refusal's message contains want.
func wantErrText(want string) func(*testing.T, *lease.State, lease.Result) {
	return func(t *testing.T, _ *lease.State, res lease.Result) {
		t.Helper()
		if res.Err == nil || !strings.Contains(res.Err.Error(), want) {
			t.Errorf("error %v, want one containing %q", res.Err, want)
		}
	}
}

// cmpEmpty treats nil and empty slices and maps alike.
var cmpEmpty = cmp.Transformer("empty", func(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	return in
})

func TestAddRelation(t *testing.T) {
	pgsql := func(t *testing.T, r *lease.Relation, res lease.Result) {
		t.Helper()
		want := &lease.Relation{
			ID: webDB,
			Endpoints: []lease.RelationEndpoint{
				{App: "web", Name: "db", Role: lease.RoleRequirer, Interface: "pgsql"},
				{App: "db", Name: "server", Role: lease.RoleProvider, Interface: "pgsql"},
			},
			Life: lease.RelationAlive,
			AppData: map[string]lease.Databag{
				"web": {Values: map[string]string{}, Version: res.Index},
				"db":  {Values: map[string]string{}, Version: res.Index},
			},
			UnitData:    map[string]lease.Databag{},
			ModifyIndex: res.Index,
		}
		if diff := cmp.Diff(want, r); diff != "" {
			t.Errorf("relation (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(r, res.Relation); diff != "" {
			t.Errorf("result relation differs from the state's:\n%s", diff)
		}
		if r.Key() != "web:db db:server" {
			t.Errorf("key %q", r.Key())
		}
	}
	regReport := registerWith("report/0", reportEndpoints)
	runCases(t, []tcase{{
		name:  "the one pair that relates is inferred",
		setup: relSetup(),
		op:    relate("web", "db"),
		check: all(wantRelation(webDB, pgsql), func(t *testing.T, s *lease.State, _ lease.Result) {
			if s.NextRelationID != webDB+1 {
				t.Errorf("next relation id %d", s.NextRelationID)
			}
		}),
	}, {
		name:  "named endpoints, provider first, are stored requirer first",
		setup: relSetup(),
		op:    relate("db:server", "web:db"),
		check: wantRelation(webDB, pgsql),
	}, {
		name:  "one endpoint named, the other inferred",
		setup: relSetup(),
		op:    relate("db", "web:db"),
		check: wantRelation(webDB, pgsql),
	}, {
		name:    "an unknown application",
		setup:   relSetup(),
		op:      relate("web", "nope"),
		wantErr: lease.ErrUnknownApplication,
		check:   wantErrText(`cannot add relation web nope: application "nope": lease: unknown application`),
	}, {
		name:    "an unknown endpoint",
		setup:   relSetup(),
		op:      relate("web:db", "db:nope"),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText(`application "db" has no "nope" relation`),
	}, {
		name:    "interfaces that do not match",
		setup:   relSetup(),
		op:      relate("web:cache", "db:server"),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText(`interfaces do not match: web:cache is "redis", db:server is "pgsql"`),
	}, {
		name:    "two providers",
		setup:   relSetup(),
		op:      relate("web:website", "db:server"),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText(`roles do not pair: web:website and db:server are both providers`),
	}, {
		name:    "two requirers",
		setup:   relSetup(regReport),
		op:      relate("web:db", "report:main"),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText(`roles do not pair: web:db and report:main are both requirers`),
	}, {
		name:    "a peers endpoint",
		setup:   relSetup(),
		op:      relate("web:db", "db:cluster"),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText(`db:cluster is a peers endpoint`),
	}, {
		name:    "a relation that exists",
		setup:   relSetup(relate("web", "db")),
		op:      relate("db:server", "web:db"),
		wantErr: lease.ErrRelationExists,
		check:   wantErrText(`cannot add relation db:server web:db: relation 1 (web:db db:server) already exists`),
	}, {
		name:    "a relation that exists, dying",
		setup:   relSetup(relate("web", "db"), enter(webDB, "web/0"), lease.RemoveRelation{Relation: webDB}),
		op:      relate("web", "db"),
		wantErr: lease.ErrRelationExists,
	}, {
		name:    "two pairs relate: ambiguous",
		setup:   relSetup(regReport),
		op:      relate("report", "db"),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText(`ambiguous relation: "report db" could refer to "report:main db:server"; "report:replica db:server"`),
	}, {
		name:  "an endpoint named among two",
		setup: relSetup(regReport),
		op:    relate("report:replica", "db"),
		check: wantRelation(webDB, func(t *testing.T, r *lease.Relation, _ lease.Result) {
			if r.Key() != "report:replica db:server" {
				t.Errorf("key %q", r.Key())
			}
		}),
	}, {
		name:    "nothing relates",
		setup:   relSetup(registerWith("solo/0", map[string]lease.Endpoint{})),
		op:      relate("web", "solo"),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText("no relations found"),
	}, {
		name:    "an application registered without endpoints has none",
		setup:   relSetup(lease.RegisterUnit{Name: "old/0", TokenHash: lease.HashToken("o")}),
		op:      relate("web", "old"),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText("no relations found"),
	}, {
		name:    "an application related to itself",
		setup:   relSetup(),
		op:      relate("db", "db"),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText("an application cannot relate to itself"),
	}, {
		name:    "a malformed application name",
		setup:   relSetup(),
		op:      lease.AddRelation{A: lease.EndpointRef{App: "Web"}, B: ref("db")},
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:  "ids are never reused",
		setup: relSetup(relate("web", "db"), lease.RemoveRelation{Relation: webDB}),
		op:    relate("web", "db"),
		check: all(wantRelation(webDB, nil), wantRelation(webDB+1, func(t *testing.T, r *lease.Relation, _ lease.Result) {
			if r.Key() != "web:db db:server" {
				t.Errorf("key %q", r.Key())
			}
		})),
	}})
}

func TestPeerRelations(t *testing.T) {
	peer := func(app, name, iface string) func(t *testing.T, r *lease.Relation, res lease.Result) {
		return func(t *testing.T, r *lease.Relation, _ lease.Result) {
			t.Helper()
			want := []lease.RelationEndpoint{{App: app, Name: name, Role: lease.RolePeer, Interface: iface}}
			if diff := cmp.Diff(want, r.Endpoints); diff != "" || !r.Peer() || len(r.AppData) != 1 || r.Life != lease.RelationAlive {
				t.Errorf("peer relation %+v:\n%s", r, diff)
			}
		}
	}
	count := func(n int) func(*testing.T, *lease.State, lease.Result) {
		return func(t *testing.T, s *lease.State, _ lease.Result) {
			t.Helper()
			if len(s.Relations) != n {
				t.Errorf("%d relations, want %d", len(s.Relations), n)
			}
		}
	}
	twoPeers := map[string]lease.Endpoint{
		"zeta":  {Role: lease.RolePeer, Interface: "z"},
		"alpha": {Role: lease.RolePeer, Interface: "a"},
	}
	upgraded := map[string]lease.Endpoint{
		"server":  dbEndpoints["server"],
		"cluster": dbEndpoints["cluster"],
		"backup":  {Role: lease.RolePeer, Interface: "db-backup"},
	}
	runCases(t, []tcase{{
		name:  "the first unit with a peers endpoint creates its relation",
		setup: []lease.Op{lease.SetEffectiveVersion{Old: 1, New: 4}},
		op:    registerWith("db/0", dbEndpoints),
		check: all(count(1), wantRelation(peerRel, peer("db", "cluster", "db-peers")), func(t *testing.T, s *lease.State, _ lease.Result) {
			if diff := cmp.Diff(dbEndpoints, s.Applications["db"].Endpoints); diff != "" {
				t.Errorf("endpoints:\n%s", diff)
			}
		}),
	}, {
		name:  "a new application's first unit creates it with the application",
		setup: []lease.Op{lease.SetEffectiveVersion{Old: 1, New: 4}},
		op:    registerWith("fresh/0", dbEndpoints),
		check: all(count(1), wantRelation(peerRel, peer("fresh", "cluster", "db-peers"))),
	}, {
		name:  "the next units join it, not another",
		setup: relSetup(),
		op:    registerWith("db/5", dbEndpoints),
		check: count(1),
	}, {
		name:  "one relation per peers endpoint, in name order",
		setup: []lease.Op{lease.SetEffectiveVersion{Old: 1, New: 4}},
		op:    registerWith("pair/0", twoPeers),
		check: all(count(2), wantRelation(0, peer("pair", "alpha", "a")), wantRelation(1, peer("pair", "zeta", "z"))),
	}, {
		name:  "an upgraded charm's new peers endpoint gets its relation",
		setup: relSetup(),
		op:    registerWith("db/0", upgraded),
		check: all(count(2), wantRelation(1, peer("db", "backup", "db-backup"))),
	}, {
		name:    "a peer relation cannot be removed",
		setup:   relSetup(),
		op:      lease.RemoveRelation{Relation: peerRel},
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText("db:cluster is a peer relation: it lasts as long as its application"),
	}, {
		name:    "an upgraded charm may not drop an endpoint in use",
		setup:   relSetup(relate("web", "db")),
		op:      registerWith("db/0", map[string]lease.Endpoint{"cluster": dbEndpoints["cluster"]}),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText(`the charm has no endpoint "server", which relation 1 (web:db db:server) uses`),
	}, {
		name:    "nor drop its peers endpoint",
		setup:   relSetup(),
		op:      registerWith("db/9", map[string]lease.Endpoint{}),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText(`the charm has no endpoint "cluster", which relation 0 (db:cluster) uses`),
	}, {
		name:  "nor change the interface of one in use",
		setup: relSetup(relate("web", "db")),
		op: registerWith("web/0", map[string]lease.Endpoint{
			"db": {Role: lease.RoleRequirer, Interface: "mysql"}}),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText(`the charm's endpoint "db" is requirer mysql, but relation 1 (web:db db:server) uses it as requirer pgsql`),
	}, {
		name:  "an endpoint not in use may go",
		setup: relSetup(relate("web", "db")),
		op:    registerWith("db/0", map[string]lease.Endpoint{"server": dbEndpoints["server"], "cluster": dbEndpoints["cluster"]}),
		check: func(t *testing.T, s *lease.State, _ lease.Result) {
			if _, ok := s.Applications["db"].Endpoints["metrics"]; ok {
				t.Error("metrics endpoint kept")
			}
		},
	}, {
		name:  "a registration without endpoints leaves them alone",
		setup: relSetup(),
		op:    lease.RegisterUnit{Name: "db/7", TokenHash: lease.HashToken("x")},
		check: func(t *testing.T, s *lease.State, _ lease.Result) {
			if diff := cmp.Diff(dbEndpoints, s.Applications["db"].Endpoints); diff != "" {
				t.Errorf("endpoints:\n%s", diff)
			}
		},
	}, {
		name:    "an unknown role",
		setup:   relSetup(),
		op:      registerWith("db/7", map[string]lease.Endpoint{"x": {Role: "consumer", Interface: "i"}}),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText(`endpoint "x" has unknown role "consumer"`),
	}, {
		name:    "a bad endpoint name",
		setup:   relSetup(),
		op:      registerWith("db/7", map[string]lease.Endpoint{"X y": {Role: lease.RolePeer, Interface: "i"}}),
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "a bad interface",
		setup:   relSetup(),
		op:      registerWith("db/7", map[string]lease.Endpoint{"x": {Role: lease.RolePeer}}),
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "a wrong token still loses over endpoints",
		setup:   relSetup(),
		op:      lease.RegisterUnit{Name: "db/0", TokenHash: lease.HashToken("other"), Endpoints: map[string]lease.Endpoint{}},
		wantErr: lease.ErrUnitExists,
	}})
}

func TestScope(t *testing.T) {
	rel := relSetup(relate("web", "db"))
	runCases(t, []tcase{{
		name:  "entering scope makes the unit databag with the seed data",
		setup: rel,
		op:    lease.EnterScope{Relation: webDB, Unit: "web/0", Data: map[string]string{"private-address": "10.0.0.1", "empty": ""}},
		check: all(wantScope(webDB, "web/0"),
			wantBag(webDB, "web/0", false, map[string]string{"private-address": "10.0.0.1"}, true)),
	}, {
		name:  "entering twice keeps the databag",
		setup: with(rel, lease.EnterScope{Relation: webDB, Unit: "web/0", Data: map[string]string{"a": "1"}}),
		op:    lease.EnterScope{Relation: webDB, Unit: "web/0", Data: map[string]string{"a": "2"}},
		check: all(wantScope(webDB, "web/0"), wantBag(webDB, "web/0", false, map[string]string{"a": "1"}, false)),
	}, {
		name:  "every unit of both applications may enter",
		setup: with(rel, enter(webDB, "web/0"), enter(webDB, "db/0"), enter(webDB, "db/1")),
		op:    enter(webDB, "db/2"),
		check: wantScope(webDB, "db/0", "db/1", "db/2", "web/0"),
	}, {
		name:  "the peer relation",
		setup: rel,
		op:    enter(peerRel, "db/1"),
		check: wantScope(peerRel, "db/1"),
	}, {
		name:    "a unit of another application",
		setup:   rel,
		op:      enter(peerRel, "web/0"),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText(`unit "web/0" is not a unit of an application of relation 0 (db:cluster)`),
	}, {
		name:    "an unknown relation",
		setup:   rel,
		op:      enter(7, "web/0"),
		wantErr: lease.ErrUnknownRelation,
		check:   wantErrText("cannot enter scope of relation 7: relation 7: lease: relation not found"),
	}, {
		name:    "an unknown unit",
		setup:   rel,
		op:      enter(webDB, "web/9"),
		wantErr: lease.ErrUnknownUnit,
	}, {
		name:    "a malformed unit name",
		setup:   rel,
		op:      enter(webDB, "web"),
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "a dying relation",
		setup:   with(rel, enter(webDB, "db/0"), lease.RemoveRelation{Relation: webDB}),
		op:      enter(webDB, "web/0"),
		wantErr: lease.ErrCannotEnterScope,
		check:   wantErrText("the relation is dying"),
	}, {
		name:    "a dying unit",
		setup:   with(rel, lease.RequestUnitRemoval{Name: "web/0"}),
		op:      enter(webDB, "web/0"),
		wantErr: lease.ErrCannotEnterScope,
		check:   wantErrText(`unit "web/0" is dying`),
	}, {
		name:  "a dying unit already in scope stays",
		setup: with(rel, enter(webDB, "web/0"), lease.RequestUnitRemoval{Name: "web/0"}),
		op:    enter(webDB, "web/0"),
		check: wantScope(webDB, "web/0"),
	}, {
		name:    "seed data over the value limit",
		setup:   rel,
		op:      lease.EnterScope{Relation: webDB, Unit: "web/0", Data: map[string]string{"big": strings.Repeat("x", lease.MaxDatabagValueBytes+1)}},
		wantErr: lease.ErrTooLarge,
	}, {
		name:  "leaving drops the databag",
		setup: with(rel, enter(webDB, "web/0"), enter(webDB, "db/0"), unitData(webDB, "web/0", "a", "1")),
		op:    leave(webDB, "web/0"),
		check: all(wantScope(webDB, "db/0"), wantRelation(webDB, func(t *testing.T, r *lease.Relation, _ lease.Result) {
			if _, ok := r.UnitData["web/0"]; ok {
				t.Error("the leaver's databag is kept")
			}
		})),
	}, {
		name:  "re-entering starts a new databag at a later version",
		setup: with(rel, enter(webDB, "web/0"), unitData(webDB, "web/0", "a", "1"), leave(webDB, "web/0")),
		op:    enter(webDB, "web/0"),
		check: wantBag(webDB, "web/0", false, map[string]string{}, true),
	}, {
		name:  "leaving when not in scope changes nothing",
		setup: rel,
		op:    leave(webDB, "web/0"),
		check: func(t *testing.T, s *lease.State, res lease.Result) {
			if s.Index == res.Index {
				t.Error("a no-op leave changed the state")
			}
		},
	}, {
		name:    "leaving an unknown relation",
		setup:   rel,
		op:      leave(9, "web/0"),
		wantErr: lease.ErrUnknownRelation,
	}, {
		name:    "leaving with a malformed unit name",
		setup:   rel,
		op:      leave(webDB, "web/x"),
		wantErr: lease.ErrInvalidCommand,
	}})
}

func TestRemoveRelation(t *testing.T) {
	rel := relSetup(relate("web", "db"))
	dying := func(t *testing.T, r *lease.Relation, _ lease.Result) {
		t.Helper()
		if r.Life != lease.RelationDying {
			t.Errorf("life %q", r.Life)
		}
	}
	runCases(t, []tcase{{
		name:  "a relation without units in scope goes at once",
		setup: rel,
		op:    lease.RemoveRelation{Relation: webDB},
		check: wantRelation(webDB, nil),
	}, {
		name:  "a relation with units in scope is dying",
		setup: with(rel, enter(webDB, "web/0"), enter(webDB, "db/0")),
		op:    lease.RemoveRelation{Relation: webDB},
		check: all(wantRelation(webDB, dying), wantScope(webDB, "db/0", "web/0")),
	}, {
		name:  "removing a dying relation again is a no-op",
		setup: with(rel, enter(webDB, "web/0"), lease.RemoveRelation{Relation: webDB}),
		op:    lease.RemoveRelation{Relation: webDB},
		check: wantRelation(webDB, dying),
	}, {
		name:  "the last unit to leave a dying relation removes it",
		setup: with(rel, enter(webDB, "web/0"), enter(webDB, "db/0"), lease.RemoveRelation{Relation: webDB}, leave(webDB, "db/0")),
		op:    leave(webDB, "web/0"),
		check: wantRelation(webDB, nil),
	}, {
		name:    "a removed relation is unknown",
		setup:   with(rel, lease.RemoveRelation{Relation: webDB}),
		op:      lease.RemoveRelation{Relation: webDB},
		wantErr: lease.ErrUnknownRelation,
	}, {
		name:    "leaving a removed relation is refused cleanly",
		setup:   with(rel, enter(webDB, "web/0"), lease.RemoveRelation{Relation: webDB}, leave(webDB, "web/0")),
		op:      leave(webDB, "web/0"),
		wantErr: lease.ErrUnknownRelation,
	}, {
		name:  "deregistering a unit leaves every scope it is in",
		setup: with(rel, enter(webDB, "db/0"), enter(webDB, "web/0"), enter(peerRel, "db/0"), enter(peerRel, "db/1")),
		op:    lease.DeregisterUnit{Name: "db/0"},
		check: all(wantScope(webDB, "web/0"), wantScope(peerRel, "db/1")),
	}, {
		name:  "deregistering the last unit of a dying relation removes it",
		setup: with(rel, enter(webDB, "db/0"), lease.RemoveRelation{Relation: webDB}),
		op:    lease.DeregisterUnit{Name: "db/0"},
		check: wantRelation(webDB, nil),
	}, {
		name:    "deregistering a pinned holder leaves no scope",
		setup:   with(rel, enter(webDB, "db/0"), claim("db/0", dur), pin("db", "op")),
		op:      lease.DeregisterUnit{Name: "db/0"},
		wantErr: lease.ErrPinned,
	}, {
		name:  "the peer relation stays when the last unit goes",
		setup: relSetup(enter(peerRel, "db/0")),
		op:    lease.DeregisterUnit{Name: "db/0"},
		check: wantScope(peerRel),
	}})
}

func TestSetRelationData(t *testing.T) {
	rel := relSetup(relate("web", "db"), enter(webDB, "web/0"), enter(webDB, "db/0"), enter(peerRel, "db/0"))
	big := strings.Repeat("x", 200<<10)
	runCases(t, []tcase{{
		name:  "a unit writes its own databag",
		setup: rel,
		op:    unitData(webDB, "web/0", "a", "1", "b", "2"),
		check: wantBag(webDB, "web/0", false, map[string]string{"a": "1", "b": "2"}, true),
	}, {
		name:  "nil and empty delete",
		setup: with(rel, unitData(webDB, "web/0", "a", "1", "b", "2", "c", "3")),
		op:    unitData(webDB, "web/0", "a", "-", "b", "", "z", "-"),
		check: wantBag(webDB, "web/0", false, map[string]string{"c": "3"}, true),
	}, {
		name:  "unchanged values keep the version and wake nobody",
		setup: with(rel, unitData(webDB, "web/0", "a", "1")),
		op:    unitData(webDB, "web/0", "a", "1", "gone", "-"),
		check: all(wantBag(webDB, "web/0", false, map[string]string{"a": "1"}, false),
			func(t *testing.T, s *lease.State, res lease.Result) {
				if s.Index == res.Index {
					t.Error("a write that changed nothing moved the state index")
				}
			}),
	}, {
		name:    "a unit not in scope",
		setup:   rel,
		op:      unitData(webDB, "db/1", "a", "1"),
		wantErr: lease.ErrNotInScope,
		check:   wantErrText(`cannot set relation data of relation 1: unit "db/1": lease: unit is not in scope of the relation`),
	}, {
		name:    "a unit of another application",
		setup:   rel,
		op:      unitData(peerRel, "web/0", "a", "1"),
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "an unknown relation",
		setup:   rel,
		op:      unitData(5, "web/0", "a", "1"),
		wantErr: lease.ErrUnknownRelation,
	}, {
		name:    "an unknown unit",
		setup:   rel,
		op:      unitData(webDB, "web/3", "a", "1"),
		wantErr: lease.ErrUnknownUnit,
	}, {
		name:  "a dying relation still takes writes",
		setup: with(rel, lease.RemoveRelation{Relation: webDB}),
		op:    unitData(webDB, "db/0", "bye", "1"),
		check: wantBag(webDB, "db/0", false, map[string]string{"bye": "1"}, true),
	}, {
		name:  "the leader writes its application's databag",
		setup: with(rel, claim("db/0", dur)),
		op:    appData(webDB, "db/0", 1, "token", "t1"),
		check: all(wantBag(webDB, "db", true, map[string]string{"token": "t1"}, true),
			wantOtherBag(webDB, "web", true, map[string]string{})),
	}, {
		name:  "the leader need not be in scope",
		setup: with(rel, claim("web/0", dur), leave(webDB, "web/0")),
		op:    appData(webDB, "web/0", 1, "k", "v"),
		check: wantBag(webDB, "web", true, map[string]string{"k": "v"}, true),
	}, {
		name:  "the leader writes the peer relation's application databag",
		setup: with(rel, claim("db/0", dur)),
		op:    appData(peerRel, "db/0", 1, "leader-unit", "db/0", "counter", "1"),
		check: wantBag(peerRel, "db", true, map[string]string{"leader-unit": "db/0", "counter": "1"}, true),
	}, {
		name:    "a minion's application write",
		setup:   with(rel, claim("db/0", dur)),
		op:      appData(webDB, "db/1", 1, "token", "t1"),
		wantErr: lease.ErrNotLeader,
		check: func(t *testing.T, _ *lease.State, res lease.Result) {
			if res.Err.Error() != "not the leader" {
				t.Errorf("error text %q", res.Err)
			}
		},
	}, {
		name:    "a deposed leader's write with its old term",
		setup:   with(rel, claim("db/0", dur), adv(0, time.Minute), claim("db/1", dur)),
		op:      appData(peerRel, "db/0", 1, "counter", "2"),
		wantErr: lease.ErrNotLeader,
	}, {
		name:    "a re-elected leader's write with its old term",
		setup:   with(rel, claim("db/0", dur), revoke("db/0"), claim("db/0", dur)),
		op:      appData(peerRel, "db/0", 1, "counter", "2"),
		wantErr: lease.ErrNotLeader,
	}, {
		name:    "an expired leader's write",
		setup:   with(rel, claim("db/0", dur), adv(0, time.Minute)),
		op:      appData(peerRel, "db/0", 1, "counter", "2"),
		wantErr: lease.ErrNotLeader,
	}, {
		name:    "an application write without a term",
		setup:   with(rel, claim("db/0", dur)),
		op:      appData(peerRel, "db/0", 0, "counter", "2"),
		wantErr: lease.ErrNotLeader,
	}, {
		name:    "an empty key",
		setup:   rel,
		op:      unitData(webDB, "web/0", "", "1"),
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "a 2 MB value",
		setup:   rel,
		op:      unitData(webDB, "web/0", "big", strings.Repeat("x", 2<<20), "small", "1"),
		wantErr: lease.ErrTooLarge,
		check:   wantErrText(`cannot set relation data of relation 1: value of "big" is 2097152 bytes; the limit is 262144: lease: over a state limit`),
	}, {
		name:    "a 2 MB value by the leader",
		setup:   with(rel, claim("db/0", dur)),
		op:      appData(webDB, "db/0", 1, "big", strings.Repeat("x", 2<<20)),
		wantErr: lease.ErrTooLarge,
	}, {
		name:  "a value at the limit",
		setup: rel,
		op:    unitData(webDB, "web/0", "v", strings.Repeat("x", lease.MaxDatabagValueBytes)),
		check: wantBag(webDB, "web/0", false, map[string]string{"v": strings.Repeat("x", lease.MaxDatabagValueBytes)}, true),
	}, {
		name:    "a key over the limit",
		setup:   rel,
		op:      unitData(webDB, "web/0", strings.Repeat("k", lease.MaxDatabagKeyBytes+1), "1"),
		wantErr: lease.ErrTooLarge,
	}, {
		name:    "a databag over the size limit",
		setup:   with(rel, unitData(webDB, "web/0", "a", big, "b", big)),
		op:      unitData(webDB, "web/0", "c", big),
		wantErr: lease.ErrTooLarge,
		check:   wantErrText("the databag would be 614403 bytes; the limit is 524288"),
	}, {
		name:  "replacing a value counts the new one only",
		setup: with(rel, unitData(webDB, "web/0", "a", big, "b", big)),
		op:    unitData(webDB, "web/0", "b", big+"y", "a", "-", "c", big),
		check: wantBag(webDB, "web/0", false, map[string]string{"b": big + "y", "c": big}, true),
	}, {
		name:    "too many keys",
		setup:   with(rel, lease.SetRelationData{Relation: webDB, Unit: "web/0", Changes: manyKeys(0, lease.MaxDatabagKeys)}),
		op:      unitData(webDB, "web/0", "one-more", "1"),
		wantErr: lease.ErrTooLarge,
		check:   wantErrText("the databag would have 257 keys; the limit is 256"),
	}, {
		name:  "a full databag may still change its values",
		setup: with(rel, lease.SetRelationData{Relation: webDB, Unit: "web/0", Changes: manyKeys(0, lease.MaxDatabagKeys)}),
		op:    unitData(webDB, "web/0", "k0", "new"),
		check: wantRelation(webDB, func(t *testing.T, r *lease.Relation, _ lease.Result) {
			if v := r.UnitData["web/0"].Values["k0"]; v != "new" {
				t.Errorf("k0 = %q", v)
			}
		}),
	}})
}

func manyKeys(from, n int) map[string]*string {
	out := map[string]*string{}
	for i := from; i < from+n; i++ {
		out[fmt.Sprint("k", i)] = ptr("v")
	}
	return out
}

// TestRelationsNeedProtocol4: under effective version 2 every relation
// command, and a registration with endpoints, is refused with a
// ProtocolError; without endpoints a registration is what it was.
func TestRelationsNeedProtocol4(t *testing.T) {
	for _, op := range []lease.Op{
		relate("web", "db"), lease.RemoveRelation{Relation: 0}, enter(0, "db/0"), leave(0, "db/0"),
		unitData(0, "db/0", "a", "1"), appData(0, "db/0", 1, "a", "1"),
		lease.CommitRelationData{Unit: "db/0", Relations: []lease.RelationChanges{{Relation: 0, Unit: kv("a", "1")}}},
		registerWith("db/0", dbEndpoints), registerWith("new/0", map[string]lease.Endpoint{}),
	} {
		t.Run(op.Type(), func(t *testing.T) {
			h := newHarness(t)
			h.must(lease.SetEffectiveVersion{Old: 1, New: 3})
			before := h.s.Clone()
			res := h.apply(op)
			var pe *lease.ProtocolError
			if !errors.As(res.Err, &pe) || pe.Need != 4 || pe.Have != 3 || !strings.Contains(pe.Feature, "relation") {
				t.Fatalf("%s at protocol 3: %v", op.Type(), res.Err)
			}
			if diff := cmp.Diff(before, h.s, ignoreScratch); diff != "" {
				t.Errorf("refused %s changed the state:\n%s", op.Type(), diff)
			}
		})
	}
	h := newHarness(t)
	h.must(lease.SetEffectiveVersion{Old: 1, New: 3})
	h.must(lease.RegisterUnit{Name: "new/0", TokenHash: lease.HashToken("n")})
	// The protocol-1 form encodes exactly as before relations.
	data, err := lease.Encode(lease.RegisterUnit{Name: "new/0", TokenHash: "h"})
	if want := `{"version":1,"type":"register-unit","payload":{"name":"new/0","token_hash":"h","config_schema":null}}`; err != nil || string(data) != want {
		t.Errorf("protocol-1 register-unit encodes as %s (%v), want %s", data, err, want)
	}
	// An empty endpoint set is not left out: it is a charm without any.
	data, _ = lease.Encode(lease.RegisterUnit{Name: "new/0", TokenHash: "h", Endpoints: map[string]lease.Endpoint{}})
	op, err := lease.Decode(data)
	if err != nil || op.(lease.RegisterUnit).Endpoints == nil {
		t.Errorf("empty endpoints decode as %#v (%v)", op, err)
	}
}

func TestParseRelationID(t *testing.T) {
	for _, tc := range []struct {
		in       string
		endpoint string
		id       int
		ok       bool
	}{
		{"0", "", 0, true},
		{"17", "", 17, true},
		{"db:3", "db", 3, true},
		{"db-peers:12", "db-peers", 12, true},
		{"my_ep:0", "my_ep", 0, true},
		{"999999999", "", 999999999, true},
		{"", "", 0, false},
		{"db", "", 0, false},
		{"db:", "", 0, false},
		{":3", "", 0, false},
		{"-1", "", 0, false},
		{"+1", "", 0, false},
		{"03", "", 0, false},
		{"db:x", "", 0, false},
		{"DB:3", "", 0, false},
		{"a:b:3", "", 0, false},
		{"1000000000", "", 0, false},
		{"3 ", "", 0, false},
	} {
		ep, id, err := lease.ParseRelationID(tc.in)
		switch {
		case tc.ok && (err != nil || ep != tc.endpoint || id != tc.id):
			t.Errorf("ParseRelationID(%q) = %q, %d, %v; want %q, %d", tc.in, ep, id, err, tc.endpoint, tc.id)
		case !tc.ok && (err == nil || !errors.Is(err, lease.ErrInvalidCommand) ||
			!strings.HasPrefix(err.Error(), fmt.Sprintf("invalid relation id %q", tc.in))):
			t.Errorf("ParseRelationID(%q) = %q, %d, %v; want an invalid relation id", tc.in, ep, id, err)
		}
	}
	if got := lease.FormatRelationID("db", 3); got != "db:3" {
		t.Errorf("FormatRelationID = %q", got)
	}
	if _, id, err := lease.ParseRelationID(lease.FormatRelationID("cluster", 42)); err != nil || id != 42 {
		t.Errorf("round trip: %d, %v", id, err)
	}
}

func TestParseEndpointRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want lease.EndpointRef
		ok   bool
	}{
		{"web", lease.EndpointRef{App: "web"}, true},
		{"web:db", lease.EndpointRef{App: "web", Endpoint: "db"}, true},
		{"my-app:tls_certificates", lease.EndpointRef{App: "my-app", Endpoint: "tls_certificates"}, true},
		{"", lease.EndpointRef{}, false},
		{"Web", lease.EndpointRef{}, false},
		{"web:", lease.EndpointRef{}, false},
		{"web:db:x", lease.EndpointRef{}, false},
		{":db", lease.EndpointRef{}, false},
	} {
		got, err := lease.ParseEndpointRef(tc.in)
		if (err == nil) != tc.ok || got != tc.want || (err != nil && !errors.Is(err, lease.ErrInvalidCommand)) {
			t.Errorf("ParseEndpointRef(%q) = %+v, %v", tc.in, got, err)
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func TestRelationHelpers(t *testing.T) {
	h := newHarness(t)
	for _, op := range relSetup(relate("web", "db")) {
		h.must(op)
	}
	r := h.s.Relations[webDB]
	if ep, ok := r.Endpoint("web"); !ok || ep.Name != "db" {
		t.Errorf("web's endpoint %+v", ep)
	}
	if ep, ok := r.Remote("web"); !ok || ep.String() != "db:server" {
		t.Errorf("web's remote %+v", ep)
	}
	if _, ok := r.Remote("nope"); ok {
		t.Error("a remote for an application not in the relation")
	}
	p := h.s.Relations[peerRel]
	if ep, ok := p.Remote("db"); !ok || ep.String() != "db:cluster" || !p.Peer() || r.Peer() {
		t.Errorf("peer remote %+v", ep)
	}
}

// with is base then more, in a new slice (table rows share base).
func with(base []lease.Op, more ...lease.Op) []lease.Op { return slices.Concat(base, more) }

func TestValidEndpointName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "db": true, "a1": true, "tls-certificates": true, "prometheus_scrape": true, "a-1": true, "a-b_c": true,
		"": false, "A": false, "1a": false, "-a": false, "a-": false, "a_": false, "a--b": false, "a_-b": false,
		"a b": false, "a.b": false, "a:b": false, "é": false,
	} {
		if got := lease.ValidEndpointName(name); got != want {
			t.Errorf("ValidEndpointName(%q) = %v, want %v", name, got, want)
		}
	}
}
