package lease_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/lease"
)

var cacheEndpoints = map[string]lease.Endpoint{"cache": {Role: lease.RoleProvider, Interface: "redis"}}

// populateRelations is populate, then protocol 4 and relations in every
// state: db's peer relation 0 with two units in scope, web:db db:server
// (1) with unit and application data, web:cache cache:cache (2) dying
// with web/0 still in scope, and a removed relation (3), so the next id
// is 4.
func (h *fsmHarness) populateRelations() {
	h.populate()
	for _, op := range []lease.Op{
		lease.RecordMember{ID: "n1", ProtoMin: 1, ProtoMax: 4, APIAddr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2"},
		lease.SetEffectiveVersion{Old: 2, New: 4},
		registerWith("db/0", dbEndpoints), registerWith("db/1", dbEndpoints), registerWith("db/2", dbEndpoints),
		registerWith("web/0", webEndpoints), registerWith("cache/0", cacheEndpoints),
		relate("web", "db"), relate("web", "cache"),
		lease.EnterScope{Relation: 1, Unit: "web/0", Data: map[string]string{"private-address": "10.0.0.9"}},
		enter(1, "db/1"), enter(0, "db/1"), enter(0, "db/2"), enter(2, "web/0"),
		unitData(1, "web/0", "database", "shop"),
		appData(1, "web/0", 1, "token", "t-1"),
		unitData(0, "db/2", "seen", "1"),
		lease.RemoveRelation{Relation: 2},
		lease.AddRelation{A: ref("web:cache"), B: ref("cache")}, // refused: 2 is dying
		relate("db", "report"),                                  // refused: unknown
	} {
		h.apply(op)
	}
	h.must(lease.RegisterUnit{Name: "report/0", TokenHash: lease.HashToken("r"), Endpoints: reportEndpoints})
	h.must(relate("report:main", "db"))
	h.must(lease.RemoveRelation{Relation: 3})
}

func TestSnapshotFormat3RoundTrip(t *testing.T) {
	h := newFSMHarness(t)
	h.populateRelations()
	if ids := relationIDs(h.fsm.Relations()); !slices.Equal(ids, []int{0, 1, 2}) || h.fsm.State().NextRelationID != 4 {
		t.Fatalf("populated relations %v, next id %d", ids, h.fsm.State().NextRelationID)
	}
	sink := snapshot(t, h.fsm)
	if !bytes.HasPrefix(sink.Bytes(), []byte(`{"format":3,"state":{`)) {
		t.Errorf("snapshot at protocol 4 starts %.40s", sink.Bytes())
	}
	next := roundTrip(t, h, sink)
	restored := next.fsm
	for _, op := range []lease.Op{
		unitData(1, "db/1", "a", "1"), leave(2, "web/0"), relate("web", "cache"), enter(0, "db/0"),
		lease.DeregisterUnit{Name: "db/1"}, appData(1, "web/0", 1, "token", "t-2"), unitData(1, "db/1", "x", "y"),
	} {
		if diff := cmp.Diff(h.apply(op), next.apply(op), cmp.Comparer(sameErr)); diff != "" {
			t.Errorf("%s results differ:\n%s", op.Type(), diff)
		}
	}
	if diff := cmp.Diff(h.fsm.State(), restored.State(), ignoreScratch); diff != "" {
		t.Errorf("replicas diverged after restore:\n%s", diff)
	}
}

func relationIDs(rs []lease.Relation) []int {
	var ids []int
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestSnapshotFormat1BeforeProtocol3: below protocol 3 (and 4) the snapshot is
// format 1 without a trace of relations (a protocol-2 binary reads it
// strictly), restores with no relations, and relations work once the
// cluster runs protocol 4.
func TestSnapshotFormat1BeforeProtocol3(t *testing.T) {
	h := newFSMHarness(t)
	h.populate()
	sink := snapshot(t, h.fsm)
	if !bytes.HasPrefix(sink.Bytes(), []byte(`{"format":1,"state":{`)) {
		t.Errorf("snapshot at protocol 2 starts %.40s", sink.Bytes())
	}
	for _, field := range []string{`"relations"`, `"next_relation_id"`, `"endpoints"`} {
		if bytes.Contains(sink.Bytes(), []byte(field)) {
			t.Errorf("a format-1 snapshot has %s", field)
		}
	}
	restored := lease.NewFSM()
	if err := restored.Restore(sink.Reader()); err != nil {
		t.Fatal(err)
	}
	if s := restored.State(); s.Relations == nil || len(s.Relations) != 0 || s.NextRelationID != 0 {
		t.Errorf("relations after a format-1 restore: %v, next %d", s.Relations, s.NextRelationID)
	}
	next := &fsmHarness{t: t, fsm: restored, index: h.index}
	next.must(lease.RecordMember{ID: "n1", ProtoMin: 1, ProtoMax: 4, APIAddr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2"})
	next.must(lease.SetEffectiveVersion{Old: 2, New: 4})
	next.must(registerWith("db/0", dbEndpoints))
	next.must(registerWith("web/0", webEndpoints))
	if res := next.must(relate("web", "db")); res.Relation == nil || res.Relation.ID != 1 {
		t.Errorf("first relation after the upgrade: %+v", res.Relation)
	}
}

// mutateSnapshot decodes a snapshot, lets edit change it and encodes it.
func mutateSnapshot(t *testing.T, data []byte, edit func(file, state map[string]any)) string {
	t.Helper()
	var file map[string]any
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	edit(file, file["state"].(map[string]any))
	out, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func relationJSON(state map[string]any, id int) map[string]any {
	return state["relations"].(map[string]any)[fmt.Sprint(id)].(map[string]any)
}

func TestRestoreRefusesBadRelationSnapshots(t *testing.T) {
	h := newFSMHarness(t)
	h.populateRelations()
	good := snapshot(t, h.fsm).Bytes()
	for _, tc := range []struct {
		name string
		edit func(file, state map[string]any)
		want string
	}{
		{"relations in format 1", func(f, s map[string]any) { f["format"], s["effective_version"] = 1, 2 }, "format 1 cannot hold relations"},
		{"format 2 at protocol 4", func(f, _ map[string]any) { f["format"] = 2 }, "format 2 cannot hold the state of protocol 4"},
		{"relations in format 2", func(f, s map[string]any) {
			f["format"] = 2
			s["effective_version"] = 3
		}, "format 2 cannot hold relations"},
		{"relations below protocol 4", func(f, s map[string]any) {
			f["format"] = 2
			s["effective_version"] = 2
		}, "format 2 cannot hold relations"},
		{"a unit in scope that is not registered", func(_, s map[string]any) {
			ud := relationJSON(s, 1)["unit_data"].(map[string]any)
			ud["db/9"] = ud["db/1"]
		}, `unit "db/9" in scope is not registered`},
		{"a unit in scope of another application's relation", func(_, s map[string]any) {
			ud := relationJSON(s, 0)["unit_data"].(map[string]any)
			ud["web/0"] = ud["db/1"]
		}, `unit "web/0" in scope is not of an application of the relation`},
		{"dying with nobody in scope", func(_, s map[string]any) {
			relationJSON(s, 2)["unit_data"] = map[string]any{}
		}, "dying with no unit in scope"},
		{"unknown life", func(_, s map[string]any) { relationJSON(s, 1)["life"] = "zombie" }, `unknown life "zombie"`},
		{"an id not below the next", func(_, s map[string]any) { s["next_relation_id"] = 2 }, "not below the next id 2"},
		{"an id that is not its key", func(_, s map[string]any) { relationJSON(s, 1)["id"] = 0 }, "record has id 0"},
		{"an endpoint that is not the application's", func(_, s map[string]any) {
			for _, e := range relationJSON(s, 1)["endpoints"].([]any) {
				e.(map[string]any)["interface"] = "mysql"
			}
		}, "endpoint web:db is not the application's"},
		{"endpoints that do not relate", func(_, s map[string]any) {
			eps := relationJSON(s, 1)["endpoints"].([]any)
			eps[0], eps[1] = eps[1], eps[0]
		}, "do not relate"},
		{"a peers endpoint without its relation", func(_, s map[string]any) {
			delete(s["relations"].(map[string]any), "0")
		}, `peers endpoint "cluster" has no relation`},
		{"two relations of the same endpoints", func(_, s map[string]any) {
			r := relationJSON(s, 1)
			dup := maps.Clone(r)
			dup["id"] = 3
			s["relations"].(map[string]any)["3"] = dup
		}, "relations 1 and 3 both join web:db db:server"},
		{"a missing application databag", func(_, s map[string]any) {
			delete(relationJSON(s, 1)["app_data"].(map[string]any), "db")
		}, "1 application databags for 2 endpoints"},
		{"a databag over its limit", func(_, s map[string]any) {
			bag := relationJSON(s, 1)["unit_data"].(map[string]any)["web/0"].(map[string]any)
			bag["values"].(map[string]any)["big"] = strings.Repeat("x", lease.MaxDatabagValueBytes+1)
		}, `bad key or value of key "big"`},
		{"an empty value", func(_, s map[string]any) {
			bag := relationJSON(s, 1)["app_data"].(map[string]any)["web"].(map[string]any)
			bag["values"].(map[string]any)["token"] = ""
		}, `bad key or value of key "token"`},
		{"a databag version beyond the index", func(_, s map[string]any) {
			relationJSON(s, 1)["app_data"].(map[string]any)["web"].(map[string]any)["version"] = 1 << 40
		}, "beyond state index"},
		{"an unknown role", func(_, s map[string]any) {
			s["applications"].(map[string]any)["web"].(map[string]any)["endpoints"].(map[string]any)["x"] =
				map[string]any{"role": "consumer", "interface": "i"}
		}, `endpoint "x" has unknown role "consumer"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := mutateSnapshot(t, good, tc.edit)
			fsm := lease.NewFSM()
			err := fsm.Restore(strings.NewReader(data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore: %v, want an error containing %q", err, tc.want)
			}
			if len(fsm.Relations()) != 0 || fsm.Index() != 0 {
				t.Error("a refused restore changed the state")
			}
		})
	}
	// The unedited snapshot restores: the refusals are the edits'.
	if err := lease.NewFSM().Restore(strings.NewReader(mutateSnapshot(t, good, func(_, _ map[string]any) {}))); err != nil {
		t.Fatalf("the unedited snapshot: %v", err)
	}
}

func TestRelationReads(t *testing.T) {
	h := newFSMHarness(t)
	h.populateRelations()
	if got := relationIDs(h.fsm.ApplicationRelations("web")); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("web's relations %v", got)
	}
	if got := relationIDs(h.fsm.ApplicationRelations("db")); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("db's relations %v", got)
	}
	// db/0 is in neither scope yet: its agent still sees both.
	if got := relationIDs(h.fsm.UnitRelations("db/0")); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("db/0's relations %v", got)
	}
	if got := h.fsm.UnitRelations("nope/0"); got != nil {
		t.Errorf("an unknown unit's relations %v", got)
	}
	r, ok := h.fsm.Relation(1)
	if !ok || r.Key() != "web:db db:server" || !slices.Equal(r.Scope(), []string{"db/1", "web/0"}) ||
		r.UnitData["web/0"].Values["private-address"] != "10.0.0.9" || r.AppData["web"].Values["token"] != "t-1" {
		t.Errorf("relation 1 %+v", r)
	}
	if r.ModifyIndex != h.fsm.RelationIndex(1) {
		t.Errorf("relation index %d, modify index %d", h.fsm.RelationIndex(1), r.ModifyIndex)
	}
	if _, ok := h.fsm.Relation(3); ok || h.fsm.RelationIndex(3) != h.fsm.Index() {
		t.Error("a removed relation is still there, or its index is not the state's")
	}
	before := h.fsm.State()
	r.UnitData["web/0"].Values["private-address"] = "x"
	r.AppData["web"].Values["token"] = "x"
	r.Endpoints[0].Name = "x"
	for _, rs := range [][]lease.Relation{h.fsm.Relations(), h.fsm.ApplicationRelations("web"), h.fsm.UnitRelations("web/0")} {
		for _, r := range rs {
			r.UnitData["web/0"] = lease.Databag{}
			for _, b := range r.AppData {
				b.Values["mallory"] = "1"
			}
		}
	}
	a, _ := h.fsm.Application("db")
	a.Endpoints["x"] = lease.Endpoint{}
	s := h.fsm.State()
	s.Relations[1].AppData["db"].Values["eve"] = "1"
	if diff := cmp.Diff(before, h.fsm.State(), ignoreScratch); diff != "" {
		t.Errorf("a caller changed the FSM through a read:\n%s", diff)
	}
}

func TestWaitRelationBlocksUntilItChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFSMHarness(t)
		for _, op := range relSetup(relate("web", "db"), enter(webDB, "web/0"), unitData(webDB, "web/0", "a", "1")) {
			h.must(op)
		}
		after := h.fsm.RelationIndex(webDB)
		done := make(chan uint64)
		go func() {
			idx, err := h.fsm.WaitRelation(t.Context(), webDB, after)
			if err != nil {
				t.Errorf("wait: %v", err)
			}
			done <- idx
		}()
		synctest.Wait()
		h.must(enter(peerRel, "db/0"))
		h.must(unitData(peerRel, "db/0", "a", "1"))
		h.must(unitData(webDB, "web/0", "a", "1")) // no change
		synctest.Wait()
		select {
		case idx := <-done:
			t.Fatalf("woke at %d", idx)
		default:
		}
		// The peer relation's write woke nobody on relation 1; this one does.
		res := h.must(unitData(webDB, "web/0", "a", "2"))
		if idx := <-done; idx != res.Index {
			t.Errorf("woke at %d, want %d", idx, res.Index)
		}
	})
}

// TestRelationWatchesWakeEveryUnitInScope drives random relation, lease
// and unit commands through the FSM with a watch on every application,
// unit and relation before each one. As in
// TestKeyedWatchesWakeExactlyWhatChanged, a resource whose index moved
// must find its watch closed and one that did not must not; and when a
// relation changed, its modify index and every unit in its scope before
// or after must carry the command's index, so their agents wake. Its
// applications must carry it too when the relation came, went, or changed
// its life or scope, and must not when only its data changed (no herd of
// the units out of scope).
func TestRelationWatchesWakeEveryUnitInScope(t *testing.T) {
	apps := []string{"db", "web", "cache"}
	names := []string{"db/0", "db/1", "db/2", "web/0", "cache/0"}
	charms := map[string]map[string]lease.Endpoint{"db": dbEndpoints, "web": webEndpoints, "cache": cacheEndpoints}
	var stats struct{ relationChanges, inScopeWakes, dataOnly int }
	for seed := range uint64(10) {
		h := newFSMHarness(t)
		h.must(lease.SetEffectiveVersion{Old: 1, New: 4})
		for _, u := range names {
			h.must(registerWith(u, charms[appOf(u)]))
		}
		r := rand.New(rand.NewPCG(seed, 12))
		now := time.Duration(0)
		for step := range 400 {
			unit := names[r.IntN(len(names))]
			// Mostly a relation that exists; now and then the next id.
			before := h.fsm.State()
			next := before.NextRelationID
			rel := next
			if ids := slices.Sorted(maps.Keys(before.Relations)); r.IntN(8) != 0 && len(ids) > 0 {
				rel = ids[r.IntN(len(ids))]
			}
			relationOps := []lease.Op{
				relate("web", "db"), relate("web", "cache"), lease.RemoveRelation{Relation: rel},
				enter(rel, unit), enter(rel, unit), enter(rel, unit), leave(rel, unit),
				unitData(rel, unit, "k", fmt.Sprint(r.IntN(3))), unitData(rel, unit, "k", "-"),
				unitData(rel, unit, "j", fmt.Sprint(r.IntN(3))), unitData(rel, unit, "i", fmt.Sprint(r.IntN(3))),
				appData(rel, unit, uint64(1+r.IntN(3)), "k", fmt.Sprint(r.IntN(3))),
				appData(rel, unit, termOf(before, appOf(unit)), "k", fmt.Sprint(r.IntN(3))),
			}
			otherOps := []lease.Op{
				claim(unit, dur), claim(unit, dur), revoke(unit),
				lease.RequestUnitRemoval{Name: unit}, lease.DeregisterUnit{Name: unit},
				registerWith(unit, charms[appOf(unit)]), registerWith(unit, charms[appOf(unit)]),
			}
			var op lease.Op
			switch k := r.IntN(10); {
			case k == 0:
				d := time.Duration(1+r.IntN(40)) * time.Second
				op, now = adv(now, now+d), now+d
			case k < 3:
				op = otherOps[r.IntN(len(otherOps))]
			default:
				op = relationOps[r.IntN(len(relationOps))]
			}
			w := watchAll(h.fsm, apps, names, next+1)
			res := h.apply(op)
			after := h.fsm.State()
			where := fmt.Sprintf("seed %d step %d %s %+v", seed, step, op.Type(), op)
			w.check(t, h.fsm, where)
			for id := range after.NextRelationID {
				rb, ra := before.Relations[id], after.Relations[id]
				if rb == nil && ra == nil {
					continue
				}
				if rb != nil && ra != nil && sameBesidesIndex(*rb, *ra) {
					if ra.ModifyIndex != rb.ModifyIndex {
						t.Fatalf("%s: relation %d did not change but its index moved", where, id)
					}
					continue
				}
				stats.relationChanges++
				if after.RelationIndex(id) != res.Index {
					t.Fatalf("%s: relation %d changed but its index is %d, not %d", where, id, after.RelationIndex(id), res.Index)
				}
				var scope []string
				var eps []lease.RelationEndpoint
				for _, x := range []*lease.Relation{rb, ra} {
					if x != nil {
						scope = append(scope, x.Scope()...)
						eps = x.Endpoints
					}
				}
				for _, u := range scope {
					if got := after.UnitIndex(u); got != res.Index {
						t.Fatalf("%s: relation %d changed but unit %s in its scope has index %d, not %d", where, id, u, got, res.Index)
					}
					stats.inScopeWakes++
				}
				dataOnly := rb != nil && ra != nil && rb.Life == ra.Life && slices.Equal(rb.Scope(), ra.Scope())
				if dataOnly {
					stats.dataOnly++
				}
				for _, e := range eps {
					switch got := after.ApplicationIndex(e.App); {
					case !dataOnly && got != res.Index:
						t.Fatalf("%s: relation %d came, went or changed its scope but its application %s has index %d, not %d",
							where, id, e.App, got, res.Index)
					case dataOnly && got != before.ApplicationIndex(e.App):
						t.Fatalf("%s: only relation %d's data changed but its application %s's index moved", where, id, e.App)
					}
				}
			}
		}
	}
	if stats.relationChanges < 300 || stats.inScopeWakes < 300 || stats.dataOnly < 60 {
		t.Errorf("too few relation changes to prove anything: %+v", stats)
	}
	t.Logf("%+v", stats)
}

// termOf is app's current lease term, 0 if there is no such application.
func termOf(s *lease.State, app string) uint64 {
	if a, ok := s.Applications[app]; ok {
		return a.Lease.Term
	}
	return 0
}

// sameBesidesIndex reports whether two relations differ in nothing but
// their modify index.
func sameBesidesIndex(a, b lease.Relation) bool {
	a.ModifyIndex, b.ModifyIndex = 0, 0
	return reflect.DeepEqual(a, b)
}

// watches holds a watch channel and the index it was taken at for every
// application, unit and relation (some not there yet).
type watches struct {
	apps, units map[string]watched
	relations   map[int]watched
}

type watched struct {
	ch     <-chan struct{}
	before uint64
	exists bool
}

func watchAll(f *lease.FSM, apps, units []string, relations int) watches {
	w := watches{apps: map[string]watched{}, units: map[string]watched{}, relations: map[int]watched{}}
	for _, a := range apps {
		_, ok := f.Application(a)
		w.apps[a] = watched{f.WatchApplication(a), f.ApplicationIndex(a), ok}
	}
	for _, u := range units {
		_, ok := f.Unit(u)
		w.units[u] = watched{f.WatchUnit(u), f.UnitIndex(u), ok}
	}
	for id := range relations {
		_, ok := f.Relation(id)
		w.relations[id] = watched{f.WatchRelation(id), f.RelationIndex(id), ok}
	}
	return w
}

// check fails t if a watch missed its resource's change, or an existing
// resource's watch was closed though its index did not move.
func (w watches) check(t *testing.T, f *lease.FSM, where string) {
	t.Helper()
	one := func(kind, name string, w watched, after uint64) {
		t.Helper()
		closed := false
		select {
		case <-w.ch:
			closed = true
		default:
		}
		switch {
		case after != w.before && !closed:
			t.Fatalf("%s: %s %s moved its index %d → %d but its watch was not closed", where, kind, name, w.before, after)
		case w.exists && after == w.before && closed:
			t.Fatalf("%s: %s %s did not change but its watch was closed", where, kind, name)
		}
	}
	for a, x := range w.apps {
		one("application", a, x, f.ApplicationIndex(a))
	}
	for u, x := range w.units {
		one("unit", u, x, f.UnitIndex(u))
	}
	for id, x := range w.relations {
		one("relation", fmt.Sprint(id), x, f.RelationIndex(id))
	}
}

// TestRelationSummaries: the summaries are the relations with each
// databag's version in place of its values, selected as the full reads
// select them, and deep copies.
func TestRelationSummaries(t *testing.T) {
	h := newFSMHarness(t)
	h.populateRelations()
	summarize := func(rs []lease.Relation) []lease.RelationSummary {
		var out []lease.RelationSummary
		for _, r := range rs {
			out = append(out, r.Summary())
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		got, want  []lease.RelationSummary
		wantLength int
	}{
		{"all", h.fsm.RelationSummaries(), summarize(h.fsm.Relations()), 3},
		{"web", h.fsm.ApplicationRelationSummaries("web"), summarize(h.fsm.ApplicationRelations("web")), 2},
		{"db/0", h.fsm.UnitRelationSummaries("db/0"), summarize(h.fsm.UnitRelations("db/0")), 2},
		{"unknown unit", h.fsm.UnitRelationSummaries("nope/0"), nil, 0},
	} {
		if len(tc.got) != tc.wantLength {
			t.Errorf("%s: %d summaries, want %d", tc.name, len(tc.got), tc.wantLength)
		}
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	r, _ := h.fsm.Relation(1)
	sum := r.Summary()
	want := lease.RelationSummary{ID: 1, Endpoints: r.Endpoints, Life: lease.RelationAlive, ModifyIndex: r.ModifyIndex,
		UnitVersions: map[string]uint64{"db/1": r.UnitData["db/1"].Version, "web/0": r.UnitData["web/0"].Version},
		AppVersions:  map[string]uint64{"db": r.AppData["db"].Version, "web": r.AppData["web"].Version}}
	if diff := cmp.Diff(want, sum); diff != "" || sum.AppVersions["web"] <= sum.AppVersions["db"] {
		t.Errorf("summary of relation 1 (-want +got):\n%s", diff)
	}
	before := h.fsm.State()
	for _, s := range h.fsm.RelationSummaries() {
		s.Endpoints[0].Name = "x"
		s.UnitVersions["mallory"] = 1
	}
	if diff := cmp.Diff(before, h.fsm.State(), ignoreScratch); diff != "" {
		t.Errorf("a caller changed the FSM through a summary:\n%s", diff)
	}
}
