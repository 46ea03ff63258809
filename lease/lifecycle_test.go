package lease_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/lease"
)

func wantUnitField(name string, check func(u *lease.Unit) string) func(*testing.T, *lease.State, lease.Result) {
	return func(t *testing.T, s *lease.State, _ lease.Result) {
		t.Helper()
		u := s.Units[name]
		if u == nil {
			t.Fatalf("unit %s is gone", name)
		}
		if msg := check(u); msg != "" {
			t.Error(msg)
		}
	}
}

func wantLife(name, life string) func(*testing.T, *lease.State, lease.Result) {
	return wantUnitField(name, func(u *lease.Unit) string { return cmp.Diff(life, u.Life) })
}

func TestUnitLife(t *testing.T) {
	dying := lease.RequestUnitRemoval{Name: "db/0"}
	runCases(t, []tcase{{
		name:  "removal marks the unit dying",
		op:    dying,
		check: wantLife("db/0", lease.LifeDying),
	}, {
		name:  "removal is idempotent",
		setup: []lease.Op{dying},
		op:    dying,
		check: wantLife("db/0", lease.LifeDying),
	}, {
		name:    "removal of an unknown unit",
		op:      lease.RequestUnitRemoval{Name: "db/9"},
		wantErr: lease.ErrUnknownUnit,
	}, {
		name:    "a dying unit cannot claim a vacant lease",
		setup:   []lease.Op{dying},
		op:      claim("db/0", dur),
		wantErr: lease.ErrUnitDying,
		check:   wantLease("db", "", 0, 0),
	}, {
		name:    "a dying unit cannot claim an expired lease",
		setup:   []lease.Op{claim("db/0", dur), dying, adv(0, time.Minute)},
		op:      claim("db/0", dur),
		wantErr: lease.ErrUnitDying,
		check:   wantLease("db", "", 1, 0),
	}, {
		name:    "a dying unit's claim on a held lease is denied as any other",
		setup:   []lease.Op{claim("db/1", dur), dying},
		op:      claim("db/0", dur),
		wantErr: lease.ErrClaimDenied,
	}, {
		name:  "a dying holder can still extend by claim",
		setup: []lease.Op{claim("db/0", dur), dying, adv(0, 5*time.Second)},
		op:    claim("db/0", dur),
		check: wantLease("db", "db/0", 1, 15*time.Second),
	}, {
		name:  "a dying holder can still extend",
		setup: []lease.Op{claim("db/0", dur), dying, adv(0, 5*time.Second)},
		op:    extend("db/0", dur),
		check: wantLease("db", "db/0", 1, 15*time.Second),
	}, {
		name:  "a dying holder can revoke",
		setup: []lease.Op{claim("db/0", dur), dying},
		op:    revoke("db/0"),
		check: wantLease("db", "", 1, 0),
	}, {
		name:  "step-down of a dying holder works as before",
		setup: []lease.Op{claim("db/0", dur), dying},
		op:    stepDown("db"),
		check: func(t *testing.T, s *lease.State, _ lease.Result) {
			if !s.Applications["db"].Lease.StepDownRequested {
				t.Error("step-down not recorded")
			}
		},
	}, {
		name:  "another unit claims after the dying holder revoked",
		setup: []lease.Op{claim("db/0", dur), dying, revoke("db/0")},
		op:    claim("db/1", dur),
		check: wantLease("db", "db/1", 2, dur),
	}})
}

func TestResolve(t *testing.T) {
	resolved := func(id uint64, noRetry bool) func(*testing.T, *lease.State, lease.Result) {
		return func(t *testing.T, s *lease.State, res lease.Result) {
			t.Helper()
			u := s.Units["db/0"]
			if u.ResolvedID != id || u.ResolvedNoRetry != noRetry || res.Version != id {
				t.Errorf("resolved id %d no-retry %v (result %d), want %d %v",
					u.ResolvedID, u.ResolvedNoRetry, res.Version, id, noRetry)
			}
		}
	}
	runCases(t, []tcase{{
		name:  "resolve bumps the id",
		op:    lease.Resolve{Unit: "db/0"},
		check: resolved(1, false),
	}, {
		name:  "an unconditional resolve is not idempotent",
		setup: []lease.Op{lease.Resolve{Unit: "db/0", NoRetry: true}},
		op:    lease.Resolve{Unit: "db/0"},
		check: resolved(2, false),
	}, {
		name:  "a conditional resolve applies on the id it names",
		setup: []lease.Op{lease.Resolve{Unit: "db/0"}},
		op:    lease.Resolve{Unit: "db/0", NoRetry: true, After: 1},
		check: resolved(2, true),
	}, {
		name:    "a replayed conditional resolve fails cleanly",
		setup:   []lease.Op{lease.Resolve{Unit: "db/0"}, lease.Resolve{Unit: "db/0", After: 1}},
		op:      lease.Resolve{Unit: "db/0", After: 1},
		wantErr: lease.ErrStaleResolve,
		check:   resolved(2, false),
	}, {
		name:  "a dying unit can be resolved",
		setup: []lease.Op{lease.RequestUnitRemoval{Name: "db/0"}},
		op:    lease.Resolve{Unit: "db/0"},
		check: resolved(1, false),
	}, {
		name:    "unknown unit",
		op:      lease.Resolve{Unit: "db/9"},
		wantErr: lease.ErrUnknownUnit,
	}})
}

func TestSetApplicationStatus(t *testing.T) {
	appStatus := func(want lease.Status) func(*testing.T, *lease.State, lease.Result) {
		return func(t *testing.T, s *lease.State, _ lease.Result) {
			t.Helper()
			if diff := cmp.Diff(want, s.Applications["db"].Status); diff != "" {
				t.Errorf("application status (-want +got):\n%s", diff)
			}
		}
	}
	set := func(unit string, term uint64, status, msg string) lease.Op {
		return lease.SetApplicationStatus{App: appOf(unit), Unit: unit, Term: term, Status: status, Message: msg}
	}
	runCases(t, []tcase{{
		name:  "the leader sets the status, stamped with the global time",
		setup: []lease.Op{claim("db/0", dur), adv(0, time.Second)},
		op:    set("db/0", 1, "active", "ready"),
		check: appStatus(lease.Status{Status: "active", Message: "ready", Since: at(time.Second)}),
	}, {
		name: "an unchanged status keeps since",
		setup: []lease.Op{claim("db/0", dur), set("db/0", 1, "active", "ready"),
			adv(0, time.Second)},
		op:    set("db/0", 1, "active", "ready"),
		check: appStatus(lease.Status{Status: "active", Message: "ready", Since: at(0)}),
	}, {
		name:    "a minion is refused",
		setup:   []lease.Op{claim("db/0", dur)},
		op:      set("db/1", 1, "active", ""),
		wantErr: lease.ErrNotLeader,
	}, {
		name:    "a stale term is refused",
		setup:   []lease.Op{claim("db/0", dur), revoke("db/0"), claim("db/0", dur)},
		op:      set("db/0", 1, "active", ""),
		wantErr: lease.ErrNotLeader,
	}, {
		name:    "an expired leader is refused",
		setup:   []lease.Op{claim("db/0", dur), adv(0, time.Minute)},
		op:      set("db/0", 1, "active", ""),
		wantErr: lease.ErrNotLeader,
	}, {
		name:    "unknown application",
		op:      lease.SetApplicationStatus{App: "nope", Unit: "nope/0", Term: 1, Status: "active"},
		wantErr: lease.ErrNotLeader,
	}, {
		name:    "an agent status is not an application status",
		setup:   []lease.Op{claim("db/0", dur)},
		op:      set("db/0", 1, "idle", ""),
		wantErr: lease.ErrInvalidCommand,
	}})
}

var schema = map[string]lease.Option{
	"name":    {Type: lease.OptionString},
	"port":    {Type: lease.OptionInt, Default: ptr("5432")},
	"ratio":   {Type: lease.OptionFloat},
	"verbose": {Type: lease.OptionBoolean, Default: ptr("false")},
}

func TestConfigSchema(t *testing.T) {
	hash := lease.HashToken("secret")
	register := func(name string, schema map[string]lease.Option) lease.Op {
		return lease.RegisterUnit{Name: name, TokenHash: hash, ConfigSchema: schema}
	}
	set := func(changes map[string]string) lease.Op {
		return lease.SetConfig{App: "cache", Changes: changes}
	}
	wantSchema := func(want map[string]lease.Option) func(*testing.T, *lease.State, lease.Result) {
		return func(t *testing.T, s *lease.State, _ lease.Result) {
			t.Helper()
			got := s.Applications["cache"].ConfigSchema
			if diff := cmp.Diff(want, got); diff != "" || (want == nil) != (got == nil) {
				t.Errorf("schema (-want +got):\n%s", diff)
			}
		}
	}
	wantConfig := func(want map[string]string) func(*testing.T, *lease.State, lease.Result) {
		return func(t *testing.T, s *lease.State, _ lease.Result) {
			t.Helper()
			if diff := cmp.Diff(want, s.Applications["cache"].Config.Values); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		}
	}
	wantMessage := func(msg string) func(*testing.T, *lease.State, lease.Result) {
		return func(t *testing.T, _ *lease.State, res lease.Result) {
			t.Helper()
			if !strings.Contains(res.Err.Error(), msg) {
				t.Errorf("error %q does not say %q", res.Err, msg)
			}
		}
	}
	onlyPort := map[string]lease.Option{"port": {Type: lease.OptionString}}
	runCases(t, []tcase{{
		name:  "the first registration sets the schema",
		op:    register("cache/0", schema),
		check: wantSchema(schema),
	}, {
		name:  "a registration without a schema sets none",
		op:    register("cache/0", nil),
		check: wantSchema(nil),
	}, {
		name:  "an empty schema is kept as a schema",
		op:    register("cache/0", map[string]lease.Option{}),
		check: wantSchema(map[string]lease.Option{}),
	}, {
		name:  "a later registration without a schema keeps it",
		setup: []lease.Op{register("cache/0", schema)},
		op:    register("cache/1", nil),
		check: wantSchema(schema),
	}, {
		name:  "a later registration with a schema replaces it",
		setup: []lease.Op{register("cache/0", schema)},
		op:    register("cache/1", onlyPort),
		check: wantSchema(onlyPort),
	}, {
		name:  "re-registering a unit with a schema replaces it",
		setup: []lease.Op{register("cache/0", schema)},
		op:    register("cache/0", onlyPort),
		check: wantSchema(onlyPort),
	}, {
		name:    "a schema with an unknown type is invalid",
		op:      register("cache/0", map[string]lease.Option{"x": {Type: "list"}}),
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "a schema whose default does not parse is invalid",
		op:      register("cache/0", map[string]lease.Option{"x": {Type: lease.OptionInt, Default: ptr("ten")}}),
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:  "typed values are accepted",
		setup: []lease.Op{register("cache/0", schema)},
		op:    set(map[string]string{"name": "c", "port": "-1", "ratio": "0.5", "verbose": "true"}),
		check: wantConfig(map[string]string{"name": "c", "port": "-1", "ratio": "0.5", "verbose": "true"}),
	}, {
		name:    "an unknown option is refused",
		setup:   []lease.Op{register("cache/0", schema)},
		op:      set(map[string]string{"port": "1", "x": "1"}),
		wantErr: lease.ErrInvalidConfig,
		check:   wantMessage(`cannot set config: unknown option "x"`),
	}, {
		name:    "an int option refuses a word",
		setup:   []lease.Op{register("cache/0", schema)},
		op:      set(map[string]string{"port": "abc"}),
		wantErr: lease.ErrInvalidConfig,
		check:   wantMessage(`option "port" expects int, got "abc"`),
	}, {
		name:    "an int option refuses a float",
		setup:   []lease.Op{register("cache/0", schema)},
		op:      set(map[string]string{"port": "1.5"}),
		wantErr: lease.ErrInvalidConfig,
		check:   wantMessage(`option "port" expects int, got "1.5"`),
	}, {
		name:    "a float option refuses a word",
		setup:   []lease.Op{register("cache/0", schema)},
		op:      set(map[string]string{"ratio": "half"}),
		wantErr: lease.ErrInvalidConfig,
		check:   wantMessage(`option "ratio" expects float, got "half"`),
	}, {
		name:    "a boolean option refuses yes",
		setup:   []lease.Op{register("cache/0", schema)},
		op:      set(map[string]string{"verbose": "yes"}),
		wantErr: lease.ErrInvalidConfig,
		check:   wantMessage(`option "verbose" expects boolean, got "yes"`),
	}, {
		name:    "the first bad key in sorted order is reported",
		setup:   []lease.Op{register("cache/0", schema)},
		op:      set(map[string]string{"zz": "1", "port": "x", "aa": "1"}),
		wantErr: lease.ErrInvalidConfig,
		check:   wantMessage(`unknown option "aa"`),
	}, {
		name:  "empty still deletes",
		setup: []lease.Op{register("cache/0", schema), set(map[string]string{"port": "1", "name": "n"})},
		op:    set(map[string]string{"port": ""}),
		check: wantConfig(map[string]string{"name": "n"}),
	}, {
		name: "a key the new schema lacks can still be deleted",
		setup: []lease.Op{register("cache/0", schema), set(map[string]string{"name": "n", "verbose": "true"}),
			register("cache/1", onlyPort)},
		op:    set(map[string]string{"name": ""}),
		check: wantConfig(map[string]string{"verbose": "true"}),
	}, {
		name:    "an empty schema refuses every key",
		setup:   []lease.Op{register("cache/0", map[string]lease.Option{})},
		op:      set(map[string]string{"port": "1"}),
		wantErr: lease.ErrInvalidConfig,
	}, {
		name:  "without a schema anything goes",
		setup: []lease.Op{register("cache/0", nil)},
		op:    set(map[string]string{"anything": "at all"}),
		check: wantConfig(map[string]string{"anything": "at all"}),
	}})
}

// A format-1 snapshot written before unit life, resolve, application
// status, config schemas and member addresses existed still restores.
func TestRestoreSnapshotWithoutNewFields(t *testing.T) {
	hash := lease.HashToken("t")
	old := `{"format":1,"state":{"global_time":"2026-01-01T00:00:00Z","effective_version":1,` +
		`"members":{"n1":{"proto_min":1,"proto_max":1}},` +
		`"applications":{"db":{"name":"db","lease":{"holder":"db/0","term":1,"start":"2026-01-01T00:00:00Z",` +
		`"duration":10000000000,"expiry":"2026-01-01T00:00:10Z","pins":{},"step_down_requested":false},` +
		`"leader_settings":{"values":{},"version":0},"config":{"values":{"a":"b"},"version":1},"modify_index":3}},` +
		`"units":{"db/0":{"name":"db/0","app":"db","token_hash":"` + hash + `",` +
		`"workload":{"status":"unknown","message":"","since":"2026-01-01T00:00:00Z"},` +
		`"agent":{"status":"idle","message":"","since":"2026-01-01T00:00:00Z"},` +
		`"application_version":"","last_seen":"0001-01-01T00:00:00Z","modify_index":2}},"index":3}}`
	fsm := lease.NewFSM()
	if err := fsm.Restore(io.NopCloser(strings.NewReader(old))); err != nil {
		t.Fatalf("restore: %v", err)
	}
	u, _ := fsm.Unit("db/0")
	if u.Life != lease.LifeAlive || u.ResolvedID != 0 {
		t.Errorf("unit %+v", u)
	}
	a, _ := fsm.Application("db")
	if a.ConfigSchema != nil || a.Status.Status != "" || a.Lease.Holder != "db/0" || a.Config.Values["a"] != "b" {
		t.Errorf("application %+v", a)
	}
	if m := fsm.Members()["n1"]; m.APIAddr != "" || m.ProtoMax != 1 {
		t.Errorf("member %+v", m)
	}
	// And it goes on: the old unit may claim, the schema-less app takes any config.
	h := &fsmHarness{t: t, fsm: fsm, index: 3}
	h.must(lease.SetConfig{App: "db", Changes: map[string]string{"x": "y"}})
	h.must(lease.RequestUnitRemoval{Name: "db/0"})
}
