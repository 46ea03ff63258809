package controller_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestUnitWatchCarriesTheLease: the unit's watch, an agent's one blocking
// query, sends the application's lease as GET /v1/leases/{app} shows it,
// and wakes on every change of it (a step-down, a revoke, a claim by
// another unit, a pin), as well as on a config set.
func TestUnitWatchCarriesTheLease(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 60*time.Second)
	op := newClient(t, admin, c.APIAddr())
	db0, db1 := newClient(t, tokDB0, c.APIAddr()), newClient(t, tokDB1, c.APIAddr())

	w, err := db1.WatchUnitStream(ctx, "db/1", 0, 0)
	if err != nil || !w.LeaseSent || w.View.Lease.Holder != "db/0" {
		t.Fatalf("first answer: %+v, %v", w, err)
	}
	for _, change := range []struct {
		what string
		do   func() error
	}{
		{"step-down", func() error { _, _, err := op.StepDown(ctx, "db"); return err }},
		{"revoke", func() error { return db0.Revoke(ctx, "db", "db/0", 1) }},
		{"claim by db/1", func() error { _, err := db1.Claim(ctx, "db", "db/1", time.Hour); return err }},
		{"pin", func() error { return op.Pin(ctx, "db", "upgrade", "maintenance", 0) }},
		{"config set", func() error { return op.SetConfig(ctx, "db", map[string]string{"port": "81"}) }},
	} {
		if err := change.do(); err != nil {
			t.Fatalf("%s: %v", change.what, err)
		}
		next, err := db1.WatchUnitStream(ctx, "db/1", w.Index, time.Minute)
		if err != nil || next.Index <= w.Index {
			t.Fatalf("after the %s: watch at %d (was %d): %v", change.what, next.Index, w.Index, err)
		}
		l, idx, err := db1.WatchLease(ctx, "db", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if idx > next.Index {
			t.Fatalf("after the %s: the lease moved to %d past the watch's %d", change.what, idx, next.Index)
		}
		if diff := cmp.Diff(l, next.View.Lease); !next.LeaseSent || diff != "" {
			t.Errorf("after the %s: the watch's lease (-lease endpoint +watch):\n%s", change.what, diff)
		}
		w = next
	}
	if w.View.ConfigVersion != 2 || w.View.Lease.Holder != "db/1" || len(w.View.Lease.Pins) != 1 {
		t.Errorf("last answer %+v", w.View)
	}
}
