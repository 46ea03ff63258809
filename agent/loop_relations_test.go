package agent_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/remotestate"
)

// TestLoopRunsRelationHooksAndEntersScope: a unit sees its peer relation
// from the start and a peer joining later; the loop runs -created before
// leader-settings-changed and start, -joined and -changed after start, and
// enters the scope of a known relation it is not in (once per change: the
// loop waits for the watch to show it) before any other hook of it.
func TestLoopRunsRelationHooksAndEntersScope(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var entered []int
		h := startLoopWith(t, func(h *harness, cfg *agent.LoopConfig) {
			cfg.EnterScope = func(_ context.Context, id int) error {
				mu.Lock()
				defer mu.Unlock()
				entered = append(entered, id)
				return nil
			}
		})
		peer := remotestate.Relation{ID: 0, Endpoint: "cluster", RemoteApp: "app", Peer: true, InScope: true}
		h.remote.Update(func(s *remotestate.Snapshot) {
			s.LeaderSettingsVersion = 1
			s.Relations = remotestate.NewRelations(peer)
		})
		h.expect(hooks.Install)
		h.expect("cluster-relation-created")
		h.expect(hooks.ConfigChanged)
		h.expect(hooks.LeaderSettingsChanged)
		h.expect(hooks.Start)
		h.idle(1)

		// The controller lost the unit's scope: the loop enters it again,
		// runs nothing for the relation meanwhile, and waits.
		peer.InScope, peer.Members = false, map[string]uint64{"app/1": 4}
		h.remote.Update(func(s *remotestate.Snapshot) { s.Relations = remotestate.NewRelations(peer) })
		h.idle(1)
		mu.Lock()
		if len(entered) != 1 || entered[0] != 0 {
			t.Fatalf("entered scopes %v, want [0] once", entered)
		}
		mu.Unlock()
		peer.InScope = true
		h.remote.Update(func(s *remotestate.Snapshot) { s.Relations = remotestate.NewRelations(peer) })
		h.expect("cluster-relation-joined")
		h.expect("cluster-relation-changed")
		h.idle(1)
		if m := h.x.State().Relations[0].Members; m["app/1"] != 4 {
			t.Fatalf("members recorded %v", m)
		}
	})
}
