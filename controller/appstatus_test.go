package controller_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/controller/client"
)

// TestApplicationStatusListsItsOwnUnits: GET /v1/applications/{app}/status
// lists exactly the application's units (not those of an application
// whose name it begins, nor any other), as units come and go, and a unit
// that went no longer authenticates.
func TestApplicationStatusListsItsOwnUnits(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin) // db/0, db/1, web/0
	ctx := ctxTimeout(t, 60*time.Second)
	op := newClient(t, admin, c.APIAddr())
	for unit, tok := range map[string]string{"db/10": "db10-token-0123456789abcd", "dbx/0": "dbx0-token-0123456789abcd"} {
		if err := op.RegisterUnit(ctx, unit, tok, nil); err != nil {
			t.Fatalf("register %s: %v", unit, err)
		}
	}
	units := func(app string) []string {
		t.Helper()
		st, err := op.ApplicationStatus(ctx, app)
		if err != nil {
			t.Fatalf("status of %s: %v", app, err)
		}
		return slices.Sorted(maps.Keys(st.Units))
	}
	for app, want := range map[string][]string{"db": {"db/0", "db/1", "db/10"}, "dbx": {"dbx/0"}, "web": {"web/0"}} {
		if got := units(app); !slices.Equal(got, want) {
			t.Errorf("status of %s lists %v, want %v", app, got, want)
		}
	}
	db1 := newClient(t, tokDB1, c.APIAddr())
	if err := db1.DeregisterUnit(ctx, "db/1"); err != nil {
		t.Fatal(err)
	}
	if got, want := units("db"), []string{"db/0", "db/10"}; !slices.Equal(got, want) {
		t.Errorf("after db/1 went, status of db lists %v, want %v", got, want)
	}
	if _, err := db1.ApplicationStatus(ctx, "db"); client.StatusCode(err) != 401 {
		t.Errorf("db/1's token after it deregistered: %v, want 401", err)
	}
}
