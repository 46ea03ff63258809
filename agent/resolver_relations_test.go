package agent_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// peerRel is the peer relation 0 of app, with the members given.
func peerRel(members map[string]uint64) remotestate.Relation {
	return remotestate.Relation{ID: 0, Endpoint: "cluster", RemoteApp: "app", Peer: true, Life: remotestate.Alive, InScope: true, Members: members}
}

// dbRel is the relation 3 between app:db and pg.
func dbRel(members map[string]uint64, appVersion uint64) remotestate.Relation {
	return remotestate.Relation{ID: 3, Endpoint: "db", RemoteApp: "pg", Life: remotestate.Alive, InScope: true, Members: members,
		RemoteAppVersion: appVersion}
}

func withRelations(s remotestate.Snapshot, rs ...remotestate.Relation) remotestate.Snapshot {
	s.Relations = remotestate.NewRelations(rs...)
	return s
}

// knownPeer and knownDB are what the charm was told of them.
func knownPeer(members map[string]uint64, pending string) operation.RelationState {
	return operation.RelationState{Endpoint: "cluster", RemoteApp: "app", Peer: true, Members: members, ChangedPending: pending}
}

func knownDB(members map[string]uint64, pending string, appVersion uint64) operation.RelationState {
	return operation.RelationState{Endpoint: "db", RemoteApp: "pg", Members: members, ChangedPending: pending, AppVersion: appVersion}
}

func withKnown(s operation.State, rs map[int]operation.RelationState) operation.State {
	s = s.Clone()
	s.LeaderSettingsVersion = 1
	s.Relations = rs
	return s
}

// relHook is the part of a decision a relation row checks.
type relHook struct {
	Action   agent.Action
	Kind     hooks.Kind
	Relation operation.RelationHookInfo
}

func TestNextRelationHooks(t *testing.T) {
	dying := func(r remotestate.Relation) remotestate.Relation { r.Life = remotestate.Dying; return r }
	leader := func(s remotestate.Snapshot) remotestate.Snapshot { s.Leader, s.Term = true, 2; return s }
	run := func(kind hooks.Kind, id int, unit, app string, version uint64) relHook {
		return relHook{Action: agent.RunHook, Kind: kind, Relation: operation.RelationHookInfo{RelationID: id, RemoteUnit: unit,
			RemoteApp: app, Peer: id == 0, Version: version}}
	}
	departed := func(kind hooks.Kind, id int, unit, app, departing string) relHook {
		h := run(kind, id, unit, app, 0)
		h.Relation.DepartingUnit = departing
		return h
	}
	for _, tc := range []struct {
		name   string
		local  operation.State
		remote remotestate.Snapshot
		want   relHook
	}{
		// -created.
		{name: "a new unit runs created after install, before leader-elected and config-changed",
			local: operation.State{Installed: true}, remote: leader(withRelations(alive, peerRel(nil))),
			want: run("cluster-relation-created", 0, "", "app", 0)},
		{name: "created before install never", local: operation.State{},
			remote: withRelations(alive, peerRel(nil)), want: relHook{Action: agent.RunHook, Kind: hooks.Install}},
		{name: "a new unit's created for every relation in id order",
			local:  operation.State{Installed: true, Relations: map[int]operation.RelationState{0: knownPeer(nil, "")}},
			remote: withRelations(alive, peerRel(nil), dbRel(nil, 0)), want: run("db-relation-created", 3, "", "pg", 0)},
		{name: "joined waits for start", local: operation.State{Installed: true, ConfigVersion: 1, LeaderSettingsVersion: 1,
			Relations: map[int]operation.RelationState{0: knownPeer(nil, "")}},
			remote: withRelations(alive, peerRel(map[string]uint64{"app/1": 4})), want: relHook{Action: agent.RunHook, Kind: hooks.Start}},
		{name: "a started unit's created waits behind leader-elected",
			local: withKnown(running, nil), remote: leader(withRelations(alive, dbRel(nil, 0))),
			want: relHook{Action: agent.RunHook, Kind: hooks.LeaderElected}},
		{name: "a started unit's created waits behind config-changed",
			local: withKnown(running, nil), remote: with(withRelations(alive, dbRel(nil, 0)), func(s *remotestate.Snapshot) { s.ConfigVersion = 2 }),
			want: relHook{Action: agent.RunHook, Kind: hooks.ConfigChanged}},
		{name: "a started unit runs created for a new relation", local: withKnown(running, nil),
			remote: withRelations(alive, dbRel(map[string]uint64{"pg/0": 5}, 0)), want: run("db-relation-created", 3, "", "pg", 0)},
		{name: "no created for a dying relation", local: withKnown(running, nil),
			remote: withRelations(alive, dying(dbRel(nil, 0))), want: relHook{Action: agent.Idle}},
		{name: "no created for a dying unit", local: withKnown(running, map[int]operation.RelationState{}),
			remote: unitDying(withRelations(alive, dbRel(nil, 0))), want: relHook{Action: agent.RunHook, Kind: hooks.Stop}},
		// -joined, then -changed for the same unit.
		{name: "joined for a new member, with its version",
			local:  withKnown(running, map[int]operation.RelationState{0: knownPeer(nil, "")}),
			remote: withRelations(alive, peerRel(map[string]uint64{"app/2": 8, "app/1": 4})), want: run("cluster-relation-joined", 0, "app/1", "app", 4)},
		{name: "changed right after joined, at the latest version",
			local:  withKnown(running, map[int]operation.RelationState{0: knownPeer(map[string]uint64{"app/1": 4}, "app/1")}),
			remote: withRelations(alive, peerRel(map[string]uint64{"app/2": 8, "app/1": 6})), want: run("cluster-relation-changed", 0, "app/1", "app", 6)},
		{name: "changed pending comes before another relation's hooks and the next joined",
			local: withKnown(running, map[int]operation.RelationState{
				0: knownPeer(nil, ""), 3: knownDB(map[string]uint64{"pg/0": 1}, "pg/0", 0)}),
			remote: withRelations(alive, peerRel(map[string]uint64{"app/1": 1}), dbRel(map[string]uint64{"pg/0": 1, "pg/1": 1}, 0)),
			want:   run("cluster-relation-joined", 0, "app/1", "app", 1)},
		{name: "the second member joins after the first one's changed",
			local:  withKnown(running, map[int]operation.RelationState{0: knownPeer(map[string]uint64{"app/1": 4}, "")}),
			remote: withRelations(alive, peerRel(map[string]uint64{"app/2": 8, "app/1": 4})), want: run("cluster-relation-joined", 0, "app/2", "app", 8)},
		// -changed when a version grows; coalesced.
		{name: "changed when a member's databag version grew",
			local:  withKnown(running, map[int]operation.RelationState{0: knownPeer(map[string]uint64{"app/1": 4, "app/2": 8}, "")}),
			remote: withRelations(alive, peerRel(map[string]uint64{"app/1": 4, "app/2": 90})), want: run("cluster-relation-changed", 0, "app/2", "app", 90)},
		{name: "nothing when versions are as seen", local: withKnown(running, map[int]operation.RelationState{0: knownPeer(map[string]uint64{"app/1": 4}, "")}),
			remote: withRelations(alive, peerRel(map[string]uint64{"app/1": 4})), want: relHook{Action: agent.Idle}},
		{name: "application changed when the remote app's databag grew, before joined",
			local:  withKnown(running, map[int]operation.RelationState{3: knownDB(nil, "", 2)}),
			remote: withRelations(alive, dbRel(map[string]uint64{"pg/0": 1}, 7)), want: run("db-relation-changed", 3, "", "pg", 7)},
		{name: "application changed in the peer relation", local: withKnown(running, map[int]operation.RelationState{0: knownPeer(map[string]uint64{"app/1": 4}, "")}),
			remote: withRelations(alive, func() remotestate.Relation {
				r := peerRel(map[string]uint64{"app/1": 4})
				r.RemoteAppVersion = 11
				return r
			}()),
			want: run("cluster-relation-changed", 0, "", "app", 11)},
		// -departed, -broken.
		{name: "departed for a member gone, the departing unit it",
			local:  withKnown(running, map[int]operation.RelationState{3: knownDB(map[string]uint64{"pg/0": 1, "pg/1": 2}, "", 0)}),
			remote: withRelations(alive, dbRel(map[string]uint64{"pg/0": 1, "pg/2": 1}, 0)), want: departed("db-relation-departed", 3, "pg/1", "pg", "pg/1")},
		{name: "departed before joined", local: withKnown(running, map[int]operation.RelationState{3: knownDB(map[string]uint64{"pg/1": 2}, "", 0)}),
			remote: withRelations(alive, dbRel(map[string]uint64{"pg/2": 1}, 0)), want: departed("db-relation-departed", 3, "pg/1", "pg", "pg/1")},
		{name: "a departed member's pending changed does not run",
			local:  withKnown(running, map[int]operation.RelationState{3: knownDB(map[string]uint64{"pg/1": 2}, "pg/1", 0)}),
			remote: withRelations(alive, dbRel(nil, 0)), want: departed("db-relation-departed", 3, "pg/1", "pg", "pg/1")},
		{name: "a dying relation departs every member, sorted",
			local:  withKnown(running, map[int]operation.RelationState{3: knownDB(map[string]uint64{"pg/1": 2, "pg/0": 1}, "", 0)}),
			remote: withRelations(alive, dying(dbRel(map[string]uint64{"pg/0": 1, "pg/1": 2}, 9))), want: departed("db-relation-departed", 3, "pg/0", "pg", "pg/0")},
		{name: "broken after the last departed", local: withKnown(running, map[int]operation.RelationState{3: knownDB(nil, "", 0)}),
			remote: withRelations(alive, dying(dbRel(map[string]uint64{"pg/0": 1}, 9))), want: run("db-relation-broken", 3, "", "pg", 0)},
		{name: "broken for a relation gone from the controller", local: withKnown(running, map[int]operation.RelationState{3: knownDB(nil, "", 0)}),
			remote: alive, want: run("db-relation-broken", 3, "", "pg", 0)},
		{name: "departed for a relation gone from the controller",
			local:  withKnown(running, map[int]operation.RelationState{3: knownDB(map[string]uint64{"pg/0": 1}, "", 0)}),
			remote: alive, want: departed("db-relation-departed", 3, "pg/0", "pg", "pg/0")},
		{name: "a dying unit departs its members, itself the departing unit, before stop",
			local:  withKnown(running, map[int]operation.RelationState{0: knownPeer(map[string]uint64{"app/1": 1}, "")}),
			remote: unitDying(withRelations(alive, peerRel(map[string]uint64{"app/1": 1}))), want: departed("cluster-relation-departed", 0, "app/1", "app", "")},
		{name: "a dying unit breaks its relations before stop", local: withKnown(running, map[int]operation.RelationState{
			0: knownPeer(nil, ""), 3: knownDB(nil, "", 0)}),
			remote: unitDying(withRelations(alive, peerRel(map[string]uint64{"app/1": 1}), dbRel(map[string]uint64{"pg/0": 1}, 0))),
			want:   run("db-relation-broken", 3, "", "pg", 0)},
		{name: "never broken for a peer relation: stop", local: withKnown(running, map[int]operation.RelationState{0: knownPeer(nil, "")}),
			remote: unitDying(withRelations(alive, peerRel(map[string]uint64{"app/1": 1}))), want: relHook{Action: agent.RunHook, Kind: hooks.Stop}},
		{name: "a dying unit that never started breaks its relations", local: operation.State{Installed: true,
			Relations: map[int]operation.RelationState{3: knownDB(nil, "", 0)}},
			remote: unitDying(withRelations(alive, dbRel(nil, 0))), want: run("db-relation-broken", 3, "", "pg", 0)},
		// Scope.
		{name: "a known relation the unit is not in: enter its scope first", local: withKnown(running, map[int]operation.RelationState{
			0: knownPeer(nil, "")}),
			remote: withRelations(alive, func() remotestate.Relation { r := peerRel(map[string]uint64{"app/1": 1}); r.InScope = false; return r }()),
			want:   relHook{Action: agent.EnterScope}},
		{name: "a dying relation the unit is not in: no scope, departs", local: withKnown(running, map[int]operation.RelationState{
			3: knownDB(map[string]uint64{"pg/0": 1}, "", 0)}),
			remote: withRelations(alive, func() remotestate.Relation { r := dying(dbRel(nil, 0)); r.InScope = false; return r }()),
			want:   departed("db-relation-departed", 3, "pg/0", "pg", "pg/0")},
		// Leadership keeps its priority.
		{name: "leader-elected before any relation hook", local: withKnown(running, map[int]operation.RelationState{0: knownPeer(nil, "")}),
			remote: leader(withRelations(alive, peerRel(map[string]uint64{"app/1": 1}))), want: relHook{Action: agent.RunHook, Kind: hooks.LeaderElected}},
		{name: "leader-deposed before a pending changed", local: func() operation.State {
			s := withKnown(running, map[int]operation.RelationState{0: knownPeer(map[string]uint64{"app/1": 1}, "app/1")})
			s.Leader, s.LeaderTerm = true, 1
			return s
		}(), remote: withRelations(alive, peerRel(map[string]uint64{"app/1": 1})), want: relHook{Action: agent.RunHook, Kind: hooks.LeaderDeposed}},
		{name: "leader-settings-changed before relation hooks", local: func() operation.State {
			s := withKnown(running, map[int]operation.RelationState{0: knownPeer(nil, "")})
			s.LeaderSettingsVersion = 0
			return s
		}(), remote: withRelations(alive, peerRel(map[string]uint64{"app/1": 1})), want: relHook{Action: agent.RunHook, Kind: hooks.LeaderSettingsChanged}},
		// Error state and recovery.
		{name: "in error state no relation hook runs", local: func() operation.State {
			s := withKnown(running, map[int]operation.RelationState{0: knownPeer(nil, "")})
			s.Error = &operation.HookError{Hook: hooks.ConfigChanged, Info: operation.HookInfo{Kind: hooks.ConfigChanged}, Attempts: 1}
			return s
		}(), remote: withRelations(alive, peerRel(map[string]uint64{"app/1": 1})), want: relHook{Action: agent.WaitRetry, Kind: hooks.ConfigChanged}},
		{name: "a failed joined is retried as it ran", local: func() operation.State {
			s := withKnown(running, map[int]operation.RelationState{0: knownPeer(nil, "")})
			info := operation.HookInfo{Kind: "cluster-relation-joined", Relation: operation.RelationHookInfo{RelationID: 0, RemoteUnit: "app/1", RemoteApp: "app", Peer: true, Version: 1}}
			s.Op = &operation.Op{Kind: operation.RunHook, Step: operation.Pending, Hook: info}
			s.Error = &operation.HookError{Hook: info.Kind, Info: info, Attempts: 1}
			return s
		}(), remote: with(withRelations(alive, peerRel(map[string]uint64{"app/1": 5})), func(s *remotestate.Snapshot) { s.ResolvedID = 1 }),
			want: run("cluster-relation-joined", 0, "app/1", "app", 1)},
		{name: "a joined interrupted by a restart is a failure", local: func() operation.State {
			s := withKnown(running, map[int]operation.RelationState{0: knownPeer(nil, "")})
			s.Op = &operation.Op{Kind: operation.RunHook, Step: operation.Pending, Hook: operation.HookInfo{Kind: "cluster-relation-joined",
				Relation: operation.RelationHookInfo{RemoteUnit: "app/1", RemoteApp: "app", Peer: true, Version: 1}}}
			return s
		}(), remote: withRelations(alive, peerRel(map[string]uint64{"app/1": 1})),
			want: relHook{Action: agent.EnterError, Kind: "cluster-relation-joined", Relation: operation.RelationHookInfo{
				RemoteUnit: "app/1", RemoteApp: "app", Peer: true, Version: 1}}},
		{name: "update-status waits behind relation hooks", local: withKnown(running, map[int]operation.RelationState{0: knownPeer(nil, "")}),
			remote: withRelations(alive, peerRel(map[string]uint64{"app/1": 1})), want: run("cluster-relation-joined", 0, "app/1", "app", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := agent.Next(tc.local, tc.remote, agent.Timers{UpdateStatusDue: tc.name == "update-status waits behind relation hooks"})
			got := relHook{Action: d.Action, Kind: d.Hook.Kind, Relation: d.Hook.Relation}
			if d.Action == agent.EnterScope && d.Relation != 0 {
				t.Errorf("EnterScope of relation %d, want 0", d.Relation)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("Next (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRelationHooksConverge plays the resolver against Apply: three peers
// joining, a storm of writes, one leaving and the unit going away run
// exactly Juju's sequence, and a storm costs one -changed per look.
func TestRelationHooksConverge(t *testing.T) {
	st := withKnown(running, nil)
	var ran []string
	drain := func(remote remotestate.Snapshot) {
		t.Helper()
		for range 100 {
			d := agent.Next(st, remote, agent.Timers{})
			if d.Action != agent.RunHook {
				return
			}
			name := string(d.Hook.Kind)
			if u := d.Hook.Relation.RemoteUnit; u != "" {
				name += " " + u
			}
			ran = append(ran, name)
			operation.Apply(&st, d.Hook)
			if d.Hook.Kind == hooks.Stop {
				st.Stopped = true
			}
		}
		t.Fatal("no convergence")
	}
	drain(withRelations(alive, peerRel(map[string]uint64{"app/1": 3, "app/2": 5})))
	for v := uint64(6); v < 1006; v++ { // the resolver looks once per hook: here every 100 writes
		if v%100 == 0 {
			drain(withRelations(alive, peerRel(map[string]uint64{"app/1": 3, "app/2": v})))
		}
	}
	drain(withRelations(alive, peerRel(map[string]uint64{"app/2": 1000})))
	drain(unitDying(withRelations(alive, peerRel(map[string]uint64{"app/2": 1000}))))
	want := []string{
		"cluster-relation-created",
		"cluster-relation-joined app/1", "cluster-relation-changed app/1",
		"cluster-relation-joined app/2", "cluster-relation-changed app/2",
	}
	for range 10 {
		want = append(want, "cluster-relation-changed app/2")
	}
	want = append(want, "cluster-relation-departed app/1", "cluster-relation-departed app/2", "stop", "remove")
	if diff := cmp.Diff(want, ran); diff != "" {
		t.Fatalf("hooks (-want +ran):\n%s", diff)
	}
}

func unitDying(s remotestate.Snapshot) remotestate.Snapshot { s.Life = remotestate.Dying; return s }
