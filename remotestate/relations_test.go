package remotestate_test

import (
	"bytes"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/uniter-dev/uniter/remotestate"
)

func TestRelationsAreValues(t *testing.T) {
	members := map[string]uint64{"app/1": 4}
	a := remotestate.NewRelations(remotestate.Relation{ID: 2, Endpoint: "db", RemoteApp: "pg", Members: members},
		remotestate.Relation{ID: 0, Endpoint: "cluster", RemoteApp: "app", Peer: true})
	members["app/2"] = 9 // the caller's map is not shared
	b := remotestate.NewRelations(remotestate.Relation{ID: 0, Endpoint: "cluster", RemoteApp: "app", Peer: true, Life: remotestate.Alive},
		remotestate.Relation{ID: 2, Endpoint: "db", RemoteApp: "pg", Members: map[string]uint64{"app/1": 4}})
	if a != b {
		t.Fatalf("equal sets compare unequal:\n%v\n%v", a.List(), b.List())
	}
	list := a.List()
	if len(list) != 2 || list[0].ID != 0 || list[1].ID != 2 || list[0].Life != remotestate.Alive {
		t.Fatalf("List() = %+v, want ids 0, 2, alive", list)
	}
	list[1].Members["app/3"] = 1 // nor is the returned one
	if r, _ := a.Get(2); len(r.Members) != 1 {
		t.Fatalf("a change to a listed relation reached the set: %+v", r)
	}
	s1 := remotestate.Snapshot{Relations: a}
	s2 := s1 // a copy is a deep copy
	s2.Relations = remotestate.NewRelations()
	if s1.Relations.Len() != 2 || s2.Relations.Len() != 0 || s1 == s2 {
		t.Fatal("snapshot copies share relations")
	}
	if _, ok := a.Get(1); ok {
		t.Fatal("Get of an absent id found something")
	}
	if (remotestate.Relations{}) != remotestate.NewRelations() {
		t.Fatal("the empty set is not the zero value")
	}
}

func TestRelationsYAMLRoundTrip(t *testing.T) {
	in := remotestate.NewRelations(remotestate.Relation{ID: 3, Endpoint: "db", RemoteApp: "pg", Life: remotestate.Dying,
		InScope: true, Members: map[string]uint64{"pg/0": 11, "pg/1": 12}, RemoteAppVersion: 7})
	data, err := yaml.Marshal(struct {
		R remotestate.Relations `yaml:"relations"`
	}{in})
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		R remotestate.Relations `yaml:"relations"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if diff := cmp.Diff(in.List(), out.R.List()); diff != "" {
		t.Fatalf("round trip (-in +out):\n%s\n%s", diff, data)
	}
}

func TestSnapshotCarriesRelations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, l, u := start(t)
		l.set(remotestate.LeaderState{})
		rel := remotestate.Relation{ID: 0, Endpoint: "cluster", RemoteApp: "app", Peer: true, Life: remotestate.Alive,
			InScope: true, Members: map[string]uint64{"app/1": 5}}
		u.views <- remotestate.UnitView{Life: remotestate.Alive, Relations: []remotestate.Relation{rel}}
		synctest.Wait()
		if !published(w) {
			t.Fatal("no snapshot")
		}
		got, ok := w.Snapshot().Relations.Get(0)
		if !ok || !cmp.Equal(got, rel) {
			t.Fatalf("relation 0 = %+v, %v; want %+v", got, ok, rel)
		}
		// The same view again publishes nothing; a grown version does.
		u.views <- remotestate.UnitView{Life: remotestate.Alive, Relations: []remotestate.Relation{rel}}
		synctest.Wait()
		if published(w) {
			t.Fatal("an unchanged view was published")
		}
		rel.Members = map[string]uint64{"app/1": 6}
		u.views <- remotestate.UnitView{Life: remotestate.Alive, Relations: []remotestate.Relation{rel}}
		synctest.Wait()
		if !published(w) {
			t.Fatal("a databag change was not published")
		}
		if got, _ := w.Snapshot().Relations.Get(0); got.Members["app/1"] != 6 {
			t.Fatalf("relation 0 = %+v, want app/1 at 6", got)
		}
	})
}
