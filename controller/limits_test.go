package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/lease"
)

// TestLimits: for each limit, a request just under it is applied and one
// just over it gets 413 limit-exceeded naming the limit, and changes
// nothing.
func TestLimits(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 60*time.Second)
	op := newClient(t, admin, c.APIAddr())
	db0 := newClient(t, tokDB0, c.APIAddr())
	web0 := newClient(t, tokWeb, c.APIAddr())
	if _, err := web0.Claim(ctx, "web", "web/0", time.Hour); err != nil {
		t.Fatal(err)
	}
	str := func(n int) string { return strings.Repeat("v", n) }
	keys := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("k%03d", i)] = "v"
		}
		return m
	}
	// The leader settings db/0 holds once the "fill" case has run: three
	// values at the value limit, room for one more of 65,532 bytes.
	fill := map[string]string{"a": str(controller.MaxValueBytes), "b": str(controller.MaxValueBytes), "c": str(controller.MaxValueBytes)}
	room := controller.MaxSettingsBytes - 3*(1+controller.MaxValueBytes) - 1

	for _, tc := range []struct {
		name  string
		setup func(ctx context.Context) error
		call  func(ctx context.Context, n int) error
		under int
		words string
	}{
		{"unit status message", nil, func(ctx context.Context, n int) error {
			return db0.SetUnitStatus(ctx, "db/0", "workload", "active", str(n))
		}, controller.MaxStatusMessage, "status message is"},
		{"application status message", nil, func(ctx context.Context, n int) error {
			return db0.SetApplicationStatus(ctx, "db", "db/0", 1, "active", str(n))
		}, controller.MaxStatusMessage, "status message is"},
		{"application version", nil, func(ctx context.Context, n int) error {
			return db0.SetApplicationVersion(ctx, "db/0", str(n))
		}, controller.MaxVersionString, "application version is"},
		{"config value", nil, func(ctx context.Context, n int) error {
			return op.SetConfig(ctx, "db", map[string]string{"name": str(n)})
		}, controller.MaxValueBytes, `config value of "name" is`},
		{"leader settings value", nil, func(ctx context.Context, n int) error {
			return db0.SetLeaderSettings(ctx, "db", "db/0", 1, map[string]string{"a": str(n)})
		}, controller.MaxValueBytes, `leader settings value of "a" is`},
		{"leader settings size", func(ctx context.Context) error {
			return db0.SetLeaderSettings(ctx, "db", "db/0", 1, fill)
		}, func(ctx context.Context, n int) error {
			return db0.SetLeaderSettings(ctx, "db", "db/0", 1, map[string]string{"d": str(n)})
		}, room, "leader settings after this change is"},
		{"leader settings key", nil, func(ctx context.Context, n int) error {
			return web0.SetLeaderSettings(ctx, "web", "web/0", 1, map[string]string{strings.Repeat("k", n): "v"})
		}, controller.MaxKeyBytes, "leader settings key"},
		{"leader settings keys", nil, func(ctx context.Context, n int) error {
			return web0.SetLeaderSettings(ctx, "web", "web/0", 1, keys(n))
		}, controller.MaxSettingsKeys - 1, "keys; the limit is"}, // the key case left one key
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				if err := tc.setup(ctx); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			before := stableState(c)
			err := tc.call(ctx, tc.under+1)
			if client.StatusCode(err) != http.StatusRequestEntityTooLarge || !strings.Contains(err.Error(), tc.words) ||
				!strings.Contains(err.Error(), "the limit is") {
				t.Fatalf("just over the limit: %v (status %d), want 413 saying %q and the limit", err, client.StatusCode(err), tc.words)
			}
			if diff := cmp.Diff(before, stableState(c), cmpopts.IgnoreUnexported(lease.State{})); diff != "" {
				t.Fatalf("a refused request changed the state:\n%s", diff)
			}
			if err := tc.call(ctx, tc.under); err != nil {
				t.Fatalf("just under the limit: %v", err)
			}
		})
	}
}
