package lease_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/lease"
)

func wantSettings(leader bool, values map[string]string, version uint64) func(*testing.T, *lease.State, lease.Result) {
	return func(t *testing.T, s *lease.State, res lease.Result) {
		t.Helper()
		got := s.Applications["db"].Config
		if leader {
			got = s.Applications["db"].LeaderSettings
		}
		if diff := cmp.Diff(lease.Settings{Values: values, Version: version}, got); diff != "" {
			t.Errorf("settings (-want +got):\n%s", diff)
		}
		if res.Err == nil && res.Version != version {
			t.Errorf("result version %d, want %d", res.Version, version)
		}
	}
}

func TestSetLeaderSettings(t *testing.T) {
	runCases(t, []tcase{{
		name:  "leader writes and the version is bumped",
		setup: []lease.Op{claim("db/0", dur)},
		op:    leaderSet("db/0", 1, map[string]string{"a": "1", "b": "2"}),
		check: wantSettings(true, map[string]string{"a": "1", "b": "2"}, 2),
	}, {
		name:    "stale-term write is refused with Juju's text",
		setup:   []lease.Op{claim("db/0", dur), revoke("db/0"), claim("db/0", dur)},
		op:      leaderSet("db/0", 1, map[string]string{"a": "1"}),
		wantErr: lease.ErrNotLeader,
		check: func(t *testing.T, _ *lease.State, res lease.Result) {
			if got := res.Err.Error(); got != "not the leader" {
				t.Errorf("error text %q", got)
			}
		},
	}, {
		name:    "non-holder write is refused",
		setup:   []lease.Op{claim("db/0", dur)},
		op:      leaderSet("db/1", 1, map[string]string{"a": "1"}),
		wantErr: lease.ErrNotLeader,
	}, {
		name:    "expired leader's write is refused",
		setup:   []lease.Op{claim("db/0", dur), adv(0, time.Minute)},
		op:      leaderSet("db/0", 1, map[string]string{"a": "1"}),
		wantErr: lease.ErrNotLeader,
	}, {
		name:    "write to an unknown application is refused",
		op:      lease.SetLeaderSettings{App: "nope", Unit: "nope/0", Term: 1},
		wantErr: lease.ErrNotLeader,
	}, {
		name: "empty value deletes a key",
		setup: []lease.Op{claim("db/0", dur),
			leaderSet("db/0", 1, map[string]string{"a": "1", "b": "2"})},
		op:    leaderSet("db/0", 1, map[string]string{"a": "", "c": ""}),
		check: wantSettings(true, map[string]string{"b": "2"}, 3),
	}, {
		name:  "unchanged values keep the version",
		setup: []lease.Op{claim("db/0", dur), leaderSet("db/0", 1, map[string]string{"a": "1"})},
		op:    leaderSet("db/0", 1, map[string]string{"a": "1"}),
		check: wantSettings(true, map[string]string{"a": "1"}, 2),
	}, {
		name:    "empty key is invalid",
		setup:   []lease.Op{claim("db/0", dur)},
		op:      leaderSet("db/0", 1, map[string]string{"": "1"}),
		wantErr: lease.ErrInvalidCommand,
	}})
}

func TestSetConfig(t *testing.T) {
	runCases(t, []tcase{{
		name:  "a new application starts at version 1",
		op:    lease.SetConfig{App: "db", Changes: map[string]string{}},
		check: wantSettings(false, map[string]string{}, 1),
	}, {
		name:  "config set bumps the version",
		op:    lease.SetConfig{App: "db", Changes: map[string]string{"port": "5432"}},
		check: wantSettings(false, map[string]string{"port": "5432"}, 2),
	}, {
		name:  "empty value deletes a key",
		setup: []lease.Op{lease.SetConfig{App: "db", Changes: map[string]string{"port": "5432", "x": "y"}}},
		op:    lease.SetConfig{App: "db", Changes: map[string]string{"x": ""}},
		check: wantSettings(false, map[string]string{"port": "5432"}, 3),
	}, {
		name:    "unknown application",
		op:      lease.SetConfig{App: "nope", Changes: map[string]string{"a": "b"}},
		wantErr: lease.ErrUnknownApplication,
	}})
}

func TestUnitStatus(t *testing.T) {
	wantUnit := func(check func(u *lease.Unit) string) func(*testing.T, *lease.State, lease.Result) {
		return func(t *testing.T, s *lease.State, _ lease.Result) {
			t.Helper()
			if msg := check(s.Units["db/0"]); msg != "" {
				t.Error(msg)
			}
		}
	}
	runCases(t, []tcase{{
		name:  "workload status is stamped with the global time",
		setup: []lease.Op{adv(0, time.Minute)},
		op:    lease.SetUnitStatus{Unit: "db/0", Kind: lease.StatusWorkload, Status: "active", Message: "ready"},
		check: wantUnit(func(u *lease.Unit) string {
			want := lease.Status{Status: "active", Message: "ready", Since: at(time.Minute)}
			return cmp.Diff(want, u.Workload) + cmp.Diff(at(time.Minute), u.LastSeen)
		}),
	}, {
		name: "unchanged agent status keeps since but refreshes last seen",
		setup: []lease.Op{lease.SetUnitStatus{Unit: "db/0", Kind: lease.StatusAgent, Status: "idle"},
			adv(0, time.Minute)},
		op: lease.SetUnitStatus{Unit: "db/0", Kind: lease.StatusAgent, Status: "idle"},
		check: wantUnit(func(u *lease.Unit) string {
			return cmp.Diff(lease.Status{Status: "idle", Since: at(0)}, u.Agent) +
				cmp.Diff(at(time.Minute), u.LastSeen)
		}),
	}, {
		name:    "unknown kind",
		op:      lease.SetUnitStatus{Unit: "db/0", Kind: "machine", Status: "idle"},
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "agent status outside the list",
		op:      lease.SetUnitStatus{Unit: "db/0", Kind: lease.StatusAgent, Status: "active"},
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "unknown unit",
		op:      lease.SetUnitStatus{Unit: "db/9", Kind: lease.StatusAgent, Status: "idle"},
		wantErr: lease.ErrUnknownUnit,
	}, {
		name: "application version",
		op:   lease.SetApplicationVersion{Unit: "db/0", Version: "14.2"},
		check: wantUnit(func(u *lease.Unit) string {
			return cmp.Diff("14.2", u.ApplicationVersion)
		}),
	}, {
		name:    "application version of an unknown unit",
		op:      lease.SetApplicationVersion{Unit: "db/9", Version: "1"},
		wantErr: lease.ErrUnknownUnit,
	}})
}

func TestRegisterUnit(t *testing.T) {
	hash := lease.HashToken("secret")
	runCases(t, []tcase{{
		name: "registering creates the application and stores only the hash",
		op:   lease.RegisterUnit{Name: "cache/3", TokenHash: hash},
		check: func(t *testing.T, s *lease.State, _ lease.Result) {
			want := &lease.Unit{
				Name: "cache/3", App: "cache", TokenHash: hash,
				Workload:    lease.Status{Status: "unknown", Since: base},
				Agent:       lease.Status{Status: "allocating", Since: base},
				Life:        lease.LifeAlive,
				ModifyIndex: s.Index,
			}
			if diff := cmp.Diff(want, s.Units["cache/3"]); diff != "" {
				t.Errorf("unit (-want +got):\n%s", diff)
			}
			if a := s.Applications["cache"]; a == nil || a.Lease.Term != 0 || !a.Lease.Vacant() {
				t.Errorf("application %+v", a)
			}
		},
	}, {
		name:  "replay with the same hash is a no-op",
		setup: []lease.Op{lease.RegisterUnit{Name: "cache/3", TokenHash: hash}},
		op:    lease.RegisterUnit{Name: "cache/3", TokenHash: hash},
	}, {
		name:    "another hash for a registered unit",
		op:      lease.RegisterUnit{Name: "db/0", TokenHash: hash},
		wantErr: lease.ErrUnitExists,
	}, {
		name:    "malformed unit name",
		op:      lease.RegisterUnit{Name: "Db/01", TokenHash: hash},
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "token instead of hash",
		op:      lease.RegisterUnit{Name: "cache/0", TokenHash: "secret"},
		wantErr: lease.ErrInvalidCommand,
	}})
}

func TestDeregisterUnit(t *testing.T) {
	runCases(t, []tcase{{
		name:  "deregistering the holder releases the lease",
		setup: []lease.Op{claim("db/0", dur)},
		op:    lease.DeregisterUnit{Name: "db/0"},
		check: all(wantLease("db", "", 1, 0), func(t *testing.T, s *lease.State, _ lease.Result) {
			if _, ok := s.Units["db/0"]; ok {
				t.Error("unit still registered")
			}
		}),
	}, {
		name:  "the next claim after deregistration takes a new term",
		setup: []lease.Op{claim("db/0", dur), lease.DeregisterUnit{Name: "db/0"}},
		op:    claim("db/1", dur),
		check: wantLease("db", "db/1", 2, dur),
	}, {
		name:  "deregistering a minion keeps the lease",
		setup: []lease.Op{claim("db/0", dur)},
		op:    lease.DeregisterUnit{Name: "db/1"},
		check: wantLease("db", "db/0", 1, dur),
	}, {
		name:    "deregistering a pinned holder is refused",
		setup:   []lease.Op{claim("db/0", dur), pin("db", "op")},
		op:      lease.DeregisterUnit{Name: "db/0"},
		wantErr: lease.ErrPinned,
	}, {
		name:    "replayed deregistration fails cleanly",
		setup:   []lease.Op{lease.DeregisterUnit{Name: "db/0"}},
		op:      lease.DeregisterUnit{Name: "db/0"},
		wantErr: lease.ErrUnknownUnit,
	}, {
		name:    "deregistered unit cannot claim",
		setup:   []lease.Op{lease.DeregisterUnit{Name: "db/0"}},
		op:      claim("db/0", dur),
		wantErr: lease.ErrUnknownUnit,
	}})
}

func TestMembersAndEffectiveVersion(t *testing.T) {
	version := func(want uint64) func(*testing.T, *lease.State, lease.Result) {
		return func(t *testing.T, s *lease.State, res lease.Result) {
			if s.EffectiveVersion != want || res.Version != want {
				t.Errorf("effective version %d (result %d), want %d", s.EffectiveVersion, res.Version, want)
			}
		}
	}
	m1 := lease.RecordMember{ID: "n1", ProtoMin: 1, ProtoMax: 2, APIAddr: "10.0.0.1:8080", RaftAddr: "10.0.0.1:7000"}
	runCases(t, []tcase{{
		name: "record a member",
		op:   m1,
		check: func(t *testing.T, s *lease.State, _ lease.Result) {
			want := map[string]lease.Member{"n1": {ProtoMin: 1, ProtoMax: 2, APIAddr: "10.0.0.1:8080", RaftAddr: "10.0.0.1:7000"}}
			if diff := cmp.Diff(want, s.Members); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
		},
	}, {
		name:    "member range must be ordered",
		op:      lease.RecordMember{ID: "n1", ProtoMin: 3, ProtoMax: 2},
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:  "forget a member",
		setup: []lease.Op{m1},
		op:    lease.ForgetMember{ID: "n1"},
		check: func(t *testing.T, s *lease.State, _ lease.Result) {
			if len(s.Members) != 0 {
				t.Errorf("members %v", s.Members)
			}
		},
	}, {
		name:  "effective version compare-and-set",
		setup: []lease.Op{m1},
		op:    lease.SetEffectiveVersion{Old: 1, New: 2},
		check: version(2),
	}, {
		name:    "effective version mismatch",
		op:      lease.SetEffectiveVersion{Old: 2, New: 3},
		wantErr: lease.ErrVersionMismatch,
		check:   version(1),
	}, {
		name:    "replayed effective version fails cleanly",
		setup:   []lease.Op{m1, lease.SetEffectiveVersion{Old: 1, New: 2}},
		op:      lease.SetEffectiveVersion{Old: 1, New: 2},
		wantErr: lease.ErrVersionMismatch,
	}, {
		name:    "a member must support the new version",
		setup:   []lease.Op{m1, lease.RecordMember{ID: "n2", ProtoMin: 1, ProtoMax: 1}},
		op:      lease.SetEffectiveVersion{Old: 1, New: 2},
		wantErr: lease.ErrVersionUnsupported,
	}})
}

func TestModifyIndexes(t *testing.T) {
	h := newHarness(t)
	res := h.must(claim("db/0", dur))
	if got := h.s.ApplicationIndex("db"); got != res.Index {
		t.Errorf("db index %d after claim at %d", got, res.Index)
	}
	webBefore, unitBefore := h.s.ApplicationIndex("web"), h.s.UnitIndex("db/0")
	res = h.must(lease.SetUnitStatus{Unit: "db/0", Kind: lease.StatusAgent, Status: "idle"})
	if h.s.UnitIndex("db/0") != res.Index || h.s.UnitIndex("db/0") == unitBefore {
		t.Errorf("unit index %d after status at %d", h.s.UnitIndex("db/0"), res.Index)
	}
	if h.s.ApplicationIndex("web") != webBefore || h.s.ApplicationIndex("db") == res.Index {
		t.Error("a unit status change bumped an application index")
	}
	res = h.must(lease.DeregisterUnit{Name: "db/2"})
	if got := h.s.UnitIndex("db/2"); got != res.Index {
		t.Errorf("index of a deregistered unit %d, want the state index %d", got, res.Index)
	}
}
