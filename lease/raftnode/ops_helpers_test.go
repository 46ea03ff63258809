package raftnode_test

import (
	"strings"
	"time"

	"github.com/uniter-dev/uniter/lease"
)

// The commands the cluster tests send, in the words of lease's own tests.

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func appOf(unit string) string { return strings.Split(unit, "/")[0] }

func claim(unit string, d time.Duration) lease.Op {
	return lease.Claim{App: appOf(unit), Unit: unit, Duration: d}
}

func extend(unit string, d time.Duration) lease.Op {
	return lease.Extend{App: appOf(unit), Unit: unit, Duration: d}
}

func revoke(unit string) lease.Op { return lease.Revoke{App: appOf(unit), Unit: unit} }

func pin(app, entity string) lease.Op {
	return lease.PinLease{App: app, Entity: entity, Reason: "maintenance"}
}

func leaderSet(unit string, term uint64, changes map[string]string) lease.Op {
	return lease.SetLeaderSettings{App: appOf(unit), Unit: unit, Term: term, Changes: changes}
}

var schema = map[string]lease.Option{
	"name":    {Type: lease.OptionString},
	"port":    {Type: lease.OptionInt, Default: ptr("5432")},
	"ratio":   {Type: lease.OptionFloat},
	"verbose": {Type: lease.OptionBoolean, Default: ptr("false")},
}
