package operation_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/operation"
)

func relHook(kind hooks.Kind, id int, remoteUnit, remoteApp string, version uint64) operation.HookInfo {
	return operation.HookInfo{Kind: kind, Relation: operation.RelationHookInfo{RelationID: id, RemoteUnit: remoteUnit,
		RemoteApp: remoteApp, Version: version}}
}

// TestApplyRelationHooks: what committing each relation hook records, and
// that committing it twice records the same.
func TestApplyRelationHooks(t *testing.T) {
	peer := operation.RelationState{Endpoint: "cluster", RemoteApp: "app", Peer: true}
	with := func(r operation.RelationState, f func(*operation.RelationState)) map[int]operation.RelationState {
		r.Members = map[string]uint64{}
		f(&r)
		if len(r.Members) == 0 {
			r.Members = nil
		}
		return map[int]operation.RelationState{0: r}
	}
	created := operation.HookInfo{Kind: "cluster-relation-created", Relation: operation.RelationHookInfo{RemoteApp: "app", Peer: true}}
	for _, tc := range []struct {
		name  string
		start map[int]operation.RelationState
		hook  operation.HookInfo
		want  map[int]operation.RelationState
	}{
		{name: "created records the relation", hook: created, want: map[int]operation.RelationState{0: peer}},
		{name: "created again keeps what is known", start: with(peer, func(r *operation.RelationState) { r.Members["app/1"] = 3 }),
			hook: created, want: with(peer, func(r *operation.RelationState) { r.Members["app/1"] = 3 })},
		{name: "joined records the member and its version, changed pending", start: with(peer, func(*operation.RelationState) {}),
			hook: relHook("cluster-relation-joined", 0, "app/1", "app", 7),
			want: with(peer, func(r *operation.RelationState) { r.Members["app/1"] = 7; r.ChangedPending = "app/1" })},
		{name: "changed after joined clears pending and records the newer version",
			start: with(peer, func(r *operation.RelationState) { r.Members["app/1"] = 7; r.ChangedPending = "app/1" }),
			hook:  relHook("cluster-relation-changed", 0, "app/1", "app", 9),
			want:  with(peer, func(r *operation.RelationState) { r.Members["app/1"] = 9 })},
		{name: "changed never moves a version back",
			start: with(peer, func(r *operation.RelationState) { r.Members["app/1"] = 9 }),
			hook:  relHook("cluster-relation-changed", 0, "app/1", "app", 8),
			want:  with(peer, func(r *operation.RelationState) { r.Members["app/1"] = 9 })},
		{name: "application changed records the app version",
			start: with(peer, func(r *operation.RelationState) { r.Members["app/1"] = 9 }),
			hook:  relHook("cluster-relation-changed", 0, "", "app", 12),
			want:  with(peer, func(r *operation.RelationState) { r.Members["app/1"] = 9; r.AppVersion = 12 })},
		{name: "departed forgets the member and its pending changed",
			start: with(peer, func(r *operation.RelationState) {
				r.Members["app/1"] = 9
				r.Members["app/2"] = 1
				r.ChangedPending = "app/2"
			}),
			hook: relHook("cluster-relation-departed", 0, "app/2", "app", 0),
			want: with(peer, func(r *operation.RelationState) { r.Members["app/1"] = 9 })},
		{name: "broken forgets the relation", start: map[int]operation.RelationState{0: peer, 3: {Endpoint: "db", RemoteApp: "pg"}},
			hook: relHook("db-relation-broken", 3, "", "pg", 0), want: map[int]operation.RelationState{0: peer}},
		{name: "broken of the last relation leaves none", start: map[int]operation.RelationState{3: {Endpoint: "db", RemoteApp: "pg"}},
			hook: relHook("db-relation-broken", 3, "", "pg", 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := operation.State{Relations: tc.start, Op: &operation.Op{Kind: operation.RunHook, Step: operation.Done, Hook: tc.hook}}
			before := st.Clone()
			for range 2 {
				operation.Apply(&st, tc.hook)
				if d := cmp.Diff(tc.want, st.Relations); d != "" {
					t.Fatalf("relations (-want +got):\n%s", d)
				}
				if st.Op != nil {
					t.Fatal("the operation was not cleared")
				}
				if err := st.Validate(); err != nil {
					t.Fatal(err)
				}
			}
			if d := cmp.Diff(tc.start, before.Relations); d != "" {
				t.Fatalf("Apply changed a clone's relations:\n%s", d)
			}
		})
	}
}

// flushingContexts is a ContextFactory that flushes, with a scripted
// error.
type flushingContexts struct {
	fakeContexts
	err         error
	flushed     []hooks.Kind
	readVersion uint64 // what Flush says the hook read
}

func (f *flushingContexts) Flush(_ context.Context, info operation.HookInfo, _ hooks.Params) (operation.HookInfo, error) {
	f.flushed = append(f.flushed, info.Kind)
	info.Relation.Version = f.readVersion
	return info, f.err
}

// TestFlushBeforeDone: a context factory's Flush runs after a hook exited
// 0 (or was missing) and before its done step; a failed Flush fails the
// hook; a failed hook is never flushed.
func TestFlushBeforeDone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		runErr    error
		flushErr  error
		wantFlush int
		wantSteps []string
		wantErr   error
	}{
		{name: "success flushes", wantFlush: 1, wantSteps: []string{"pending", "done", "none"}},
		{name: "missing hook flushes", runErr: hooks.ErrMissing, wantFlush: 1, wantSteps: []string{"pending", "done", "none"}},
		{name: "failed hook does not flush", runErr: &hooks.ExitError{Kind: "db-relation-changed", Code: 1},
			wantSteps: []string{"pending", "pending"}, wantErr: operation.ErrHookFailed},
		{name: "failed flush fails the hook", flushErr: errors.New("cannot commit relation data: not the leader"), wantFlush: 1,
			wantSteps: []string{"pending", "pending"}, wantErr: operation.ErrHookFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, l, r := &recorder{}, &nopLocker{}, &fakeRunner{err: tc.runErr}
			ctxs := &flushingContexts{err: tc.flushErr, readVersion: 9}
			member := map[int]operation.RelationState{3: {Endpoint: "db", RemoteApp: "pg", Members: map[string]uint64{"pg/0": 4}}}
			x := newExecutor(t, operation.State{Installed: true, Started: true, Relations: member}, w, l)
			info := relHook("db-relation-changed", 3, "pg/0", "pg", 5)
			op := operation.NewRunHook(info, operation.HookDeps{Runner: r, Contexts: ctxs,
				Clock: clocktest.New(time.Unix(0, 0)), Logger: zerolog.New(zerolog.NewTestWriter(t))})
			err := x.Run(t.Context(), op)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Run = %v, want %v", err, tc.wantErr)
			}
			if len(ctxs.flushed) != tc.wantFlush || ctxs.ended != 1 {
				t.Fatalf("flushed %d times, ended %d; want %d, 1", len(ctxs.flushed), ctxs.ended, tc.wantFlush)
			}
			if d := cmp.Diff(tc.wantSteps, w.steps()); d != "" {
				t.Fatalf("steps (-want +got):\n%s", d)
			}
			st := x.State()
			if tc.wantErr != nil {
				if st.Error == nil || st.Error.Message != `hook failed: "db-relation-changed"` || st.Relations[3].Members["pg/0"] != 4 {
					t.Fatalf("state = %+v, want error state and nothing recorded", st)
				}
				return
			}
			// The version the hook read (9), not the one it was chosen for
			// (5), is recorded, in the done step too.
			if v := st.Relations[3].Members["pg/0"]; v != 9 {
				t.Fatalf("recorded version %d, want 9", v)
			}
			if done := w.states[len(w.states)-2]; done.Op == nil || done.Op.Hook.Relation.Version != 9 {
				t.Fatalf("done step %+v, want the read version", done.Op)
			}
		})
	}
}
