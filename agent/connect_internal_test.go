package agent

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/remotestate"
)

// TestUnitClientCarriesTheQueue: the unit's watch answer reaches the
// remote state watcher with its operation queue.
func TestUnitClientCarriesTheQueue(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Uniter-Index", "9")
		w.Write([]byte(`{"life":"alive","resolved_id":2,"config_version":3,"leader_settings_version":4,` +
			`"lease":{"holder":"db/1","term":5,"start":"2026-01-01T00:00:00Z","duration":"30s","expiry":"2026-01-01T00:00:30Z","pins":[],"step_down":false},` +
			`"operations":[{"id":"7","kind":"action","action":"greet","status":"running"},{"id":"8","kind":"exec","status":"pending"}]}`))
	}))
	defer srv.Close()
	c, err := client.New(client.Config{Addresses: []string{strings.TrimPrefix(srv.URL, "https://")}, Token: "t", Timeout: 5 * time.Second,
		HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	view, idx, err := unitClient{c}.WatchUnit(t.Context(), "db/0", 0, 0)
	if err != nil || idx != 9 {
		t.Fatalf("watch: index %d, %v", idx, err)
	}
	want := remotestate.UnitView{Life: remotestate.Alive, ResolvedID: 2, ConfigVersion: 3, LeaderSettingsVersion: 4, Term: 5,
		Operations: []remotestate.Operation{{ID: "7", Kind: "action", Action: "greet", Status: "running"}, {ID: "8", Kind: "exec", Status: "pending"}}}
	if diff := cmp.Diff(want, view); diff != "" {
		t.Errorf("view (-want +got):\n%s", diff)
	}
}
