package lease_test

import (
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/lease"
)

// commit is a CommitRelationData of unit at term.
func commit(unit string, term uint64, entries ...lease.RelationChanges) lease.Op {
	return lease.CommitRelationData{Unit: unit, Term: term, Relations: entries}
}

// wantCommitted is wantBag for a commit, whose result carries no version.
func wantCommitted(id int, owner string, app bool, values map[string]string, changed bool) func(*testing.T, *lease.State, lease.Result) {
	return checkBag(id, owner, app, values, changed, false)
}

// TestCommitRelationData: a hook's relation writes are applied together,
// each checked as set-relation-data checks it, and one refused entry
// refuses them all (runCases checks that a refusal changed nothing).
func TestCommitRelationData(t *testing.T) {
	rel := relSetup(relate("web", "db"), enter(webDB, "web/0"), enter(webDB, "db/0"), enter(peerRel, "db/0"),
		enter(peerRel, "db/1"), claim("db/0", dur))
	big := strings.Repeat("x", 2<<20)
	runCases(t, []tcase{{
		name:  "unit and application writes in two relations",
		setup: rel,
		op: commit("db/0", 1,
			lease.RelationChanges{Relation: peerRel, Unit: kv("addr", "10.0.0.1"), App: kv("leader-unit", "db/0", "counter", "1")},
			lease.RelationChanges{Relation: webDB, App: kv("token", "t1")}),
		check: all(
			wantCommitted(peerRel, "db/0", false, map[string]string{"addr": "10.0.0.1"}, true),
			wantCommitted(peerRel, "db", true, map[string]string{"leader-unit": "db/0", "counter": "1"}, true),
			wantCommitted(webDB, "db", true, map[string]string{"token": "t1"}, true),
			wantOtherBag(webDB, "db/0", false, map[string]string{}),
			wantOtherBag(webDB, "web", true, map[string]string{})),
	}, {
		name:  "deletes and unchanged values",
		setup: with(rel, unitData(peerRel, "db/1", "a", "1", "b", "2"), unitData(webDB, "web/0", "k", "v")),
		op: commit("db/1", 0,
			lease.RelationChanges{Relation: peerRel, Unit: kv("a", "-", "b", "")}),
		check: wantCommitted(peerRel, "db/1", false, map[string]string{}, true),
	}, {
		name:  "a commit that changes nothing keeps the versions",
		setup: with(rel, unitData(webDB, "web/0", "k", "v")),
		op:    commit("web/0", 0, lease.RelationChanges{Relation: webDB, Unit: kv("k", "v", "gone", "-")}),
		check: all(wantCommitted(webDB, "web/0", false, map[string]string{"k": "v"}, false),
			func(t *testing.T, s *lease.State, res lease.Result) {
				if s.Index == res.Index {
					t.Error("a commit that changed nothing moved the state index")
				}
			}),
	}, {
		name:  "no entries",
		setup: rel,
		op:    commit("web/0", 0),
	}, {
		name:    "a second entry out of scope refuses the first too",
		setup:   rel,
		op:      commit("db/1", 0, lease.RelationChanges{Relation: peerRel, Unit: kv("a", "1")}, lease.RelationChanges{Relation: webDB, Unit: kv("b", "2")}),
		wantErr: lease.ErrNotInScope,
		check:   wantErrText(`cannot commit relation data of relation 1: unit "db/1": lease: unit is not in scope of the relation`),
	}, {
		name:    "a minion's application write refuses its unit write",
		setup:   rel,
		op:      commit("db/1", 1, lease.RelationChanges{Relation: peerRel, Unit: kv("a", "1"), App: kv("counter", "9")}),
		wantErr: lease.ErrNotLeader,
		check:   wantErrText("cannot commit relation data of relation 0: not the leader"),
	}, {
		name:    "a deposed leader's commit with its old term",
		setup:   with(rel, adv(0, time.Minute), claim("db/1", dur)),
		op:      commit("db/0", 1, lease.RelationChanges{Relation: webDB, Unit: kv("a", "1")}, lease.RelationChanges{Relation: peerRel, App: kv("counter", "2")}),
		wantErr: lease.ErrNotLeader,
	}, {
		name:    "the leader with a stale term",
		setup:   with(rel, revoke("db/0"), claim("db/0", dur)),
		op:      commit("db/0", 1, lease.RelationChanges{Relation: peerRel, App: kv("counter", "2")}),
		wantErr: lease.ErrNotLeader,
	}, {
		name:    "a value over the limit in the last entry",
		setup:   rel,
		op:      commit("db/0", 1, lease.RelationChanges{Relation: peerRel, App: kv("counter", "2")}, lease.RelationChanges{Relation: webDB, Unit: kv("big", big)}),
		wantErr: lease.ErrTooLarge,
		check:   wantErrText(`cannot commit relation data of relation 1: value of "big" is 2097152 bytes; the limit is 262144`),
	}, {
		name:  "a value at the limit",
		setup: rel,
		op:    commit("web/0", 0, lease.RelationChanges{Relation: webDB, Unit: kv("v", strings.Repeat("x", lease.MaxDatabagValueBytes))}),
		check: wantCommitted(webDB, "web/0", false, map[string]string{"v": strings.Repeat("x", lease.MaxDatabagValueBytes)}, true),
	}, {
		name:    "a databag over the size limit",
		setup:   rel,
		op:      commit("web/0", 0, lease.RelationChanges{Relation: webDB, Unit: kv("a", big[:200<<10], "b", big[:200<<10], "c", big[:200<<10])}),
		wantErr: lease.ErrTooLarge,
		check:   wantErrText("the databag would be 614403 bytes; the limit is 524288"),
	}, {
		name:    "an unknown relation",
		setup:   rel,
		op:      commit("web/0", 0, lease.RelationChanges{Relation: webDB, Unit: kv("a", "1")}, lease.RelationChanges{Relation: 7, Unit: kv("a", "1")}),
		wantErr: lease.ErrUnknownRelation,
	}, {
		name:    "a relation of another application",
		setup:   rel,
		op:      commit("web/0", 0, lease.RelationChanges{Relation: peerRel, Unit: kv("a", "1")}),
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "a relation listed twice",
		setup:   rel,
		op:      commit("web/0", 0, lease.RelationChanges{Relation: webDB, Unit: kv("a", "1")}, lease.RelationChanges{Relation: webDB, Unit: kv("b", "1")}),
		wantErr: lease.ErrInvalidCommand,
		check:   wantErrText("listed twice"),
	}, {
		name:    "an empty key",
		setup:   rel,
		op:      commit("web/0", 0, lease.RelationChanges{Relation: webDB, Unit: kv("", "1")}),
		wantErr: lease.ErrInvalidCommand,
	}, {
		name:    "an unknown unit",
		setup:   rel,
		op:      commit("web/4", 0),
		wantErr: lease.ErrUnknownUnit,
	}, {
		name:    "a malformed unit",
		setup:   rel,
		op:      commit("web", 0),
		wantErr: lease.ErrInvalidCommand,
	}})
}
