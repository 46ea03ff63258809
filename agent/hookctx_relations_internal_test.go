package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// relCtrl is the relation half of ControllerAPI, recording the calls.
type relCtrl struct {
	ControllerAPI // the rest is not called
	calls         []string
	relations     map[int]api.Relation
	commitErr     error
	enterErr      error
	leaveErr      error
	commits       [][]api.RelationCommit
	terms         []uint64
	seed          map[string]string
	appStatus     api.ApplicationStatus
}

func (f *relCtrl) Relation(_ context.Context, id string) (api.Relation, error) {
	f.calls = append(f.calls, "relation "+id)
	var n int
	fmt.Sscan(id, &n)
	r, ok := f.relations[n]
	if !ok {
		return api.Relation{}, fmt.Errorf("lease: relation not found: %w", api.ErrUnknownRelation)
	}
	return r, nil
}

func (f *relCtrl) ApplicationRelations(context.Context, string) ([]api.Relation, error) {
	f.calls = append(f.calls, "application-relations")
	var out []api.Relation
	for _, r := range f.relations {
		out = append(out, api.Relation{ID: r.ID, Key: r.Key})
	}
	return out, nil
}

func (f *relCtrl) EnterScope(_ context.Context, rel, unit string, data map[string]string) (uint64, error) {
	f.calls = append(f.calls, "enter-scope "+rel+" "+unit)
	f.seed = data
	return 1, f.enterErr
}

func (f *relCtrl) LeaveScope(_ context.Context, rel, unit string) error {
	f.calls = append(f.calls, "leave-scope "+rel+" "+unit)
	return f.leaveErr
}

func (f *relCtrl) CommitRelationData(_ context.Context, unit string, term uint64, commits []api.RelationCommit) error {
	f.calls = append(f.calls, "commit "+unit)
	f.commits, f.terms = append(f.commits, commits), append(f.terms, term)
	return f.commitErr
}

func (f *relCtrl) ApplicationStatus(context.Context, string) (api.ApplicationStatus, error) {
	return f.appStatus, nil
}

// pendingTools is a ToolServer whose hook buffered pending.
type pendingTools struct {
	ToolServer
	pending hooktools.Pending
}

func (p pendingTools) Pending(id string) (hooktools.Pending, bool) { return p.pending, id == "ctx" }

func testContexts(ctrl *relCtrl, local operation.State, remote remotestate.Snapshot, pending hooktools.Pending) *hookContexts {
	return &hookContexts{cfg: Config{Unit: "app/0"}, app: "app", ctrl: ctrl, tools: pendingTools{pending: pending},
		net:   networkContext{network: hooktools.Network{Address: "10.0.0.5"}},
		state: func() operation.State { return local }, remote: func() remotestate.Snapshot { return remote },
		clock: clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
}

func relInfo(kind hooks.Kind, id int, remote string, term uint64) operation.HookInfo {
	return operation.HookInfo{Kind: kind, Term: term, Relation: operation.RelationHookInfo{RelationID: id, RemoteUnit: remote, RemoteApp: "pg"}}
}

// TestFlushCommitsAHooksRelationWork: what the agent sends once a hook
// has exited 0, by hook and leadership.
func TestFlushCommitsAHooksRelationWork(t *testing.T) {
	twoRels := hooktools.Pending{Relations: map[int]hooktools.RelationChanges{
		3: {Unit: map[string]string{"a": "1"}},
		5: {Unit: map[string]string{"b": ""}, App: map[string]string{"c": "2"}},
		7: {},
	}}
	unitOnly := hooktools.Pending{Relations: map[int]hooktools.RelationChanges{3: {Unit: map[string]string{"a": "1"}}}}
	leader := operation.State{Leader: true, LeaderTerm: 4}
	for _, tc := range []struct {
		name      string
		local     operation.State
		info      operation.HookInfo
		pending   hooktools.Pending
		ctrl      relCtrl
		wantCalls []string
		wantTerm  uint64
		wantErr   string
	}{
		{name: "nothing buffered: nothing sent", info: relInfo("db-relation-changed", 3, "pg/0", 1)},
		{name: "unit writes of every relation in one commit, unfenced", info: relInfo("db-relation-changed", 3, "pg/0", 1),
			pending: unitOnly, wantCalls: []string{"commit app/0"}},
		{name: "app writes fenced by the committed leader's term", local: leader, info: relInfo("db-relation-changed", 3, "pg/0", 9),
			pending: twoRels, wantCalls: []string{"commit app/0"}, wantTerm: 4},
		{name: "app writes in leader-elected fenced by its term", info: operation.HookInfo{Kind: hooks.LeaderElected, Term: 6},
			pending: twoRels, wantCalls: []string{"commit app/0"}, wantTerm: 6},
		{name: "app writes by a minion refused before sending", info: relInfo("db-relation-changed", 3, "pg/0", 1), pending: twoRels,
			wantErr: "cannot commit relation data: cannot write relation settings: not the leader"},
		{name: "app writes in leader-deposed refused", local: leader, info: operation.HookInfo{Kind: hooks.LeaderDeposed, Term: 4},
			pending: twoRels, wantErr: "not the leader"},
		{name: "a refusal fails the hook", local: leader, info: relInfo("db-relation-changed", 3, "pg/0", 4), pending: twoRels,
			ctrl:      relCtrl{commitErr: fmt.Errorf("cannot commit relation data of relation 5: not the leader: %w", api.ErrNotLeader)},
			wantCalls: []string{"commit app/0"}, wantTerm: 4, wantErr: "cannot commit relation data: cannot commit relation data of relation 5: not the leader"},
		{name: "created enters the scope first, even with nothing buffered", info: relInfo("db-relation-created", 3, "", 1),
			wantCalls: []string{"enter-scope 3 app/0"}},
		{name: "created enters the scope, then commits", info: relInfo("db-relation-created", 3, "", 1), pending: unitOnly,
			wantCalls: []string{"enter-scope 3 app/0", "commit app/0"}},
		{name: "created of a dying relation: no scope, its writes dropped", info: relInfo("db-relation-created", 3, "", 1), pending: unitOnly,
			ctrl: relCtrl{enterErr: fmt.Errorf("x: %w", api.ErrCannotEnterScope)}, wantCalls: []string{"enter-scope 3 app/0"}},
		{name: "created fails when the scope cannot be entered", info: relInfo("db-relation-created", 3, "", 1),
			ctrl: relCtrl{enterErr: errors.New("connection refused")}, wantCalls: []string{"enter-scope 3 app/0"},
			wantErr: "cannot enter scope of relation 3: connection refused"},
		{name: "broken drops its own relation's writes and leaves the scope", local: leader, info: relInfo("db-relation-broken", 5, "", 4),
			pending: twoRels, wantCalls: []string{"commit app/0", "leave-scope 5 app/0"}},
		{name: "broken of a relation already gone", info: relInfo("db-relation-broken", 3, "", 1), pending: unitOnly,
			ctrl: relCtrl{leaveErr: fmt.Errorf("x: %w", api.ErrUnknownRelation)}, wantCalls: []string{"leave-scope 3 app/0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctrl := tc.ctrl
			h := testContexts(&ctrl, tc.local, remotestate.Snapshot{}, tc.pending)
			_, err := h.Flush(t.Context(), tc.info, hooks.Params{ContextID: "ctx"})
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Flush = %v, want %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantCalls, ctrl.calls); diff != "" {
				t.Fatalf("calls (-want +got):\n%s", diff)
			}
			if len(ctrl.terms) > 0 && ctrl.terms[0] != tc.wantTerm {
				t.Errorf("term %d, want %d", ctrl.terms[0], tc.wantTerm)
			}
		})
	}
}

// TestFlushSendsEveryRelationOnce: the commit's body, and the seed of a
// new scope.
func TestFlushSendsEveryRelationOnce(t *testing.T) {
	ctrl := &relCtrl{}
	pending := hooktools.Pending{Relations: map[int]hooktools.RelationChanges{
		5: {Unit: map[string]string{"b": ""}, App: map[string]string{"c": "2"}}, 3: {Unit: map[string]string{"a": "1"}}, 7: {}}}
	h := testContexts(ctrl, operation.State{Leader: true, LeaderTerm: 4}, remotestate.Snapshot{}, pending)
	if _, err := h.Flush(t.Context(), relInfo("db-relation-created", 3, "", 4), hooks.Params{ContextID: "ctx"}); err != nil {
		t.Fatal(err)
	}
	want := []api.RelationCommit{{Relation: "3", Unit: map[string]string{"a": "1"}},
		{Relation: "5", Unit: map[string]string{"b": ""}, App: map[string]string{"c": "2"}}}
	if diff := cmp.Diff([][]api.RelationCommit{want}, ctrl.commits); diff != "" {
		t.Fatalf("commits (-want +got):\n%s", diff)
	}
	wantSeed := map[string]string{"private-address": "10.0.0.5", "ingress-address": "10.0.0.5", "egress-subnets": "10.0.0.5/32"}
	if diff := cmp.Diff(wantSeed, ctrl.seed); diff != "" {
		t.Errorf("scope seed (-want +got):\n%s", diff)
	}
}

// TestHookRelations: the relations a hook's tools see, and its
// environment.
func TestHookRelations(t *testing.T) {
	local := operation.State{Relations: map[int]operation.RelationState{
		0: {Endpoint: "cluster", RemoteApp: "app", Peer: true, Members: map[string]uint64{"app/1": 3, "app/2": 4}},
		3: {Endpoint: "db", RemoteApp: "pg", Members: map[string]uint64{"pg/0": 1}},
	}}
	remote := remotestate.Snapshot{Life: remotestate.Alive, Relations: remotestate.NewRelations(
		remotestate.Relation{ID: 0, Endpoint: "cluster", RemoteApp: "app", Peer: true, Members: map[string]uint64{"app/1": 3, "app/2": 4, "app/3": 1}},
		remotestate.Relation{ID: 3, Endpoint: "db", RemoteApp: "pg", Life: remotestate.Dying},
		remotestate.Relation{ID: 8, Endpoint: "cache", RemoteApp: "redis"},
	)}
	ctrl := &relCtrl{relations: map[int]api.Relation{0: {ID: 0, Key: "app:cluster"}, 3: {ID: 3, Key: "app:db pg:server"}, 8: {ID: 8, Key: "app:cache redis:cache"}}}
	h := testContexts(ctrl, local, remote, hooktools.Pending{})
	peer := func(members ...string) hooktools.Relation {
		return hooktools.Relation{ID: 0, Endpoint: "cluster", Key: "app:cluster", Peer: true, RemoteApp: "app", Members: members}
	}
	db := hooktools.Relation{ID: 3, Endpoint: "db", Key: "app:db pg:server", RemoteApp: "pg", Members: []string{"pg/0"}, Dying: true}
	for _, tc := range []struct {
		name    string
		info    operation.HookInfo
		want    []hooktools.Relation
		hookRel *hooktools.HookRelation
		env     *hooks.RelationParams
	}{
		{name: "not a relation hook: the known relations, members seen joined", info: operation.HookInfo{Kind: hooks.ConfigChanged},
			want: []hooktools.Relation{peer("app/1", "app/2"), db}},
		{name: "joined: the joining unit is a member", info: relInfo("cluster-relation-joined", 0, "app/3", 0),
			want: []hooktools.Relation{peer("app/1", "app/2", "app/3"), db}, hookRel: &hooktools.HookRelation{ID: 0, RemoteUnit: "app/3", RemoteApp: "pg"},
			env: &hooks.RelationParams{Endpoint: "cluster", ID: "cluster:0", RemoteUnit: "app/3", RemoteApp: "pg"}},
		{name: "departed: the departing unit is not", info: func() operation.HookInfo {
			i := relInfo("cluster-relation-departed", 0, "app/2", 0)
			i.Relation.DepartingUnit = "app/2"
			return i
		}(), want: []hooktools.Relation{peer("app/1"), db}, hookRel: &hooktools.HookRelation{ID: 0, RemoteUnit: "app/2", RemoteApp: "pg"},
			env: &hooks.RelationParams{Endpoint: "cluster", ID: "cluster:0", RemoteUnit: "app/2", RemoteApp: "pg", DepartingUnit: "app/2"}},
		{name: "departed of this unit going away names it", info: relInfo("cluster-relation-departed", 0, "app/2", 0),
			want: []hooktools.Relation{peer("app/1"), db}, hookRel: &hooktools.HookRelation{ID: 0, RemoteUnit: "app/2", RemoteApp: "pg"},
			env: &hooks.RelationParams{Endpoint: "cluster", ID: "cluster:0", RemoteUnit: "app/2", RemoteApp: "pg", DepartingUnit: "app/0"}},
		{name: "created: its relation is one, without members", info: operation.HookInfo{Kind: "cache-relation-created",
			Relation: operation.RelationHookInfo{RelationID: 8, RemoteApp: "redis"}},
			want:    []hooktools.Relation{peer("app/1", "app/2"), db, {ID: 8, Endpoint: "cache", Key: "app:cache redis:cache", RemoteApp: "redis"}},
			hookRel: &hooktools.HookRelation{ID: 8, RemoteApp: "redis"},
			env:     &hooks.RelationParams{Endpoint: "cache", ID: "cache:8", RemoteApp: "redis"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, hookRel := h.relations(t.Context(), tc.info)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("relations (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.hookRel, hookRel); diff != "" {
				t.Errorf("hook relation (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.env, h.relationParams(tc.info)); diff != "" {
				t.Errorf("environment (-want +got):\n%s", diff)
			}
		})
	}
	if n := strings.Count(strings.Join(ctrl.calls, ","), "application-relations"); n != 1 {
		t.Errorf("relation keys asked %d times, want once: %v", n, ctrl.calls)
	}
}

// TestRelationBackendReads: one fetch per relation per hook; absent bags
// and gone relations are "not found".
func TestRelationBackendReads(t *testing.T) {
	ctrl := &relCtrl{relations: map[int]api.Relation{3: {ID: 3,
		AppData:  map[string]api.Databag{"pg": {Values: map[string]string{"token": "t"}, Version: 4}},
		UnitData: map[string]api.Databag{"pg/0": {Values: map[string]string{"n": "1"}, Version: 5}},
	}}}
	h := testContexts(ctrl, operation.State{}, remotestate.Snapshot{}, hooktools.Pending{})
	b := &relationBackend{h: h, rels: map[int]api.Relation{}}
	ctx := t.Context()
	if bag, err := b.ReadSettings(ctx, 3, "pg", true); err != nil || bag["token"] != "t" {
		t.Fatalf("app bag = %v, %v", bag, err)
	}
	if bag, err := b.ReadSettings(ctx, 3, "pg/0", false); err != nil || bag["n"] != "1" {
		t.Fatalf("unit bag = %v, %v", bag, err)
	}
	if _, err := b.ReadSettings(ctx, 3, "pg/9", false); !errors.Is(err, hooktools.ErrSettingsNotFound) {
		t.Fatalf("absent bag: %v", err)
	}
	if _, err := b.ReadSettings(ctx, 4, "pg", true); !errors.Is(err, hooktools.ErrSettingsNotFound) {
		t.Fatalf("gone relation: %v", err)
	}
	if diff := cmp.Diff([]string{"relation 3", "relation 4"}, ctrl.calls); diff != "" {
		t.Fatalf("fetches (-want +got):\n%s", diff)
	}
}

// TestGoalStateRelations: goal-state's relations come from the snapshot,
// peer relations left out.
func TestGoalStateRelations(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctrl := &relCtrl{appStatus: api.ApplicationStatus{Units: map[string]api.UnitStatus{
		"app/0": {Agent: api.StatusInfo{Status: "idle", Since: since}}}}}
	remote := remotestate.Snapshot{Relations: remotestate.NewRelations(
		remotestate.Relation{ID: 0, Endpoint: "cluster", RemoteApp: "app", Peer: true, Members: map[string]uint64{"app/1": 1}},
		remotestate.Relation{ID: 3, Endpoint: "db", RemoteApp: "pg", Members: map[string]uint64{"pg/0": 1}},
		remotestate.Relation{ID: 4, Endpoint: "db", RemoteApp: "mysql", Life: remotestate.Dying},
	)}
	h := testContexts(ctrl, operation.State{}, remote, hooktools.Pending{})
	g, err := (&relationBackend{h: h}).GoalState(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	want := hooktools.GoalState{
		Units: map[string]hooktools.GoalStatus{"app/0": {Status: "active", Since: since}},
		Relations: map[string]map[string]hooktools.GoalStatus{"db": {
			"pg": {Status: "joined", Since: now}, "pg/0": {Status: "active", Since: now}, "mysql": {Status: "dying", Since: now}}},
	}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Fatalf("goal state (-want +got):\n%s", diff)
	}
}

// TestUnitClientCarriesRelations: the watch's relations reach the
// remote state watcher.
func TestUnitClientCarriesRelations(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Uniter-Index", "9")
		w.Write([]byte(`{"life":"alive","lease":{"holder":"","term":0,"pins":[]},"operations":[],"relations":[` +
			`{"id":0,"endpoint":"cluster","role":"peer","interface":"c","remote_app":"db","peer":true,"life":"alive","in_scope":true,` +
			`"unit_version":7,"members":{"db/1":8},"remote_app_version":9,"modify_index":10}]}`))
	}))
	defer srv.Close()
	c, err := client.New(client.Config{Addresses: []string{strings.TrimPrefix(srv.URL, "https://")}, Token: "t", Timeout: 5 * time.Second,
		HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	view, _, err := unitClient{c}.WatchUnit(t.Context(), "db/0", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []remotestate.Relation{{ID: 0, Endpoint: "cluster", Interface: "c", RemoteApp: "db", Peer: true, Life: remotestate.Alive,
		InScope: true, Members: map[string]uint64{"db/1": 8}, RemoteAppVersion: 9}}
	if diff := cmp.Diff(want, view.Relations); diff != "" {
		t.Errorf("relations (-want +got):\n%s", diff)
	}
}

// TestFlushRecordsTheVersionRead: a -changed or -joined that read its
// remote unit's (or, application-level, the remote application's) bag at
// a newer version than it was chosen for records that version; a hook
// that read nothing of its relation, an older read and other hooks keep
// theirs.
func TestFlushRecordsTheVersionRead(t *testing.T) {
	ctrl := &relCtrl{relations: map[int]api.Relation{3: {ID: 3,
		AppData:  map[string]api.Databag{"pg": {Values: map[string]string{"token": "t"}, Version: 40}},
		UnitData: map[string]api.Databag{"pg/0": {Values: map[string]string{"n": "1"}, Version: 50}},
	}}}
	h := testContexts(ctrl, operation.State{}, remotestate.Snapshot{}, hooktools.Pending{})
	for _, tc := range []struct {
		name string
		info operation.HookInfo
		read bool
		want uint64
	}{
		{"unit changed read newer", versioned(relInfo("db-relation-changed", 3, "pg/0", 1), 7), true, 50},
		{"joined read newer", versioned(relInfo("db-relation-joined", 3, "pg/0", 1), 7), true, 50},
		{"application changed read newer", versioned(relInfo("db-relation-changed", 3, "", 1), 7), true, 40},
		{"read nothing", versioned(relInfo("db-relation-changed", 3, "pg/0", 1), 7), false, 7},
		{"read older than chosen", versioned(relInfo("db-relation-changed", 3, "pg/0", 1), 60), true, 60},
		{"departed keeps its info", relInfo("db-relation-departed", 3, "pg/0", 1), true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := func() {}
			b := &relationBackend{h: h, rels: map[int]api.Relation{}}
			done = h.keepReads("ctx", &hooktools.HookContext{RelationBackend: b}, done)
			if tc.read {
				if _, err := b.ReadSettings(t.Context(), 3, "pg/0", false); err != nil {
					t.Fatal(err)
				}
			}
			got, err := h.Flush(t.Context(), tc.info, hooks.Params{ContextID: "ctx"})
			done()
			if err != nil || got.Relation.Version != tc.want {
				t.Fatalf("Flush = version %d, %v; want %d", got.Relation.Version, err, tc.want)
			}
			if len(h.reads) != 0 {
				t.Fatalf("reads kept after done: %v", h.reads)
			}
		})
	}
}

func versioned(info operation.HookInfo, v uint64) operation.HookInfo {
	info.Relation.Version = v
	return info
}
