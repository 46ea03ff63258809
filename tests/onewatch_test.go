package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// blockingGauge is the controller's gauge of parked blocking queries.
const blockingGauge = "uniter_api_blocking_queries"

// TestOneWatchPerAgent (issue 20, must show 3): three agents on a real
// controller each park exactly one blocking query (the node's gauge of
// parked queries reaches one per agent, and no scrape shows more), and
// none asks for the lease on its own (no GET /v1/leases/{app} is ever
// answered), yet every change of every resource an agent watches reaches
// it through that one watch, including two changes of different resources
// written back to back: a config set and a step-down (config-changed on
// every source unit, leader-deposed on the old leader, leader-elected on
// a new one), and a relation databag write and an enqueued exec (every
// source unit's token-relation-changed, and the exec run); and two
// changes in one raft entry: a unit databag and its application's
// databag in one commit (the sink's -changed for each).
func TestOneWatchPerAgent(t *testing.T) {
	c := startCluster(t, 1)
	waitProtocol4(t, c)
	if n := c.scrapeNode(0).sum(blockingGauge); n != 0 {
		t.Fatalf("%s = %v before any agent runs, want 0", blockingGauge, n)
	}
	// relay-source with a config option, for the config set.
	charm := filepath.Join(t.TempDir(), "relay-source")
	if err := os.CopyFS(charm, os.DirFS(filepath.Join("..", "testcharms", "relay-source"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(charm, "config.yaml"), []byte("options:\n  onewatch:\n    type: string\n    default: \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	units := map[string]*agentUnit{}
	for _, unit := range []string{"relay-source/0", "relay-source/1"} {
		units[unit] = c.addUnitFrom(unit, charm, nil)
	}
	units["relay-sink/0"] = c.addUnit("relay-sink/0", "relay-sink", nil)
	for _, u := range units {
		u.start()
	}
	testutil.WaitUntil(t, 90*time.Second, "the relay units to start", func() bool {
		for _, u := range units {
			if count2(ended(relationLog(t, u)), "start") != 1 {
				return false
			}
		}
		return true
	})
	sources := []string{"relay-source/0", "relay-source/1"}
	agents := float64(len(units))
	settled := func(what string) {
		t.Helper()
		testutil.WaitUntil(t, 60*time.Second, what+": one parked watch per agent", func() bool {
			n := c.scrapeNode(0).sum(blockingGauge)
			if n > agents {
				t.Fatalf("%s: %s = %v with %v agents: an agent parked more than one query", what, blockingGauge, n, agents)
			}
			return n == agents
		})
	}
	testutil.WaitUntil(t, 60*time.Second, "a relay-source leader", func() bool {
		holder, _ := c.leader("relay-source")
		return holder != "" && count2(ended(relationLog(t, units[holder])), "leader-elected") == 1
	})
	settled("started")

	id := relate(t, c, "relay-sink", "relay-source")
	rid := fmt.Sprintf("token:%d", id)
	for _, src := range sources {
		testutil.WaitUntil(t, 60*time.Second, src+" to see relay-sink/0 join", func() bool {
			return slices.Contains(relationHooks(relationLog(t, units[src])), "token-relation-changed relay-sink/0")
		})
	}
	settled("related")

	// A config set and a lease change, back to back.
	admin := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	old, term := c.leader("relay-source")
	mark := map[string]int{}
	for _, src := range sources {
		mark[src] = len(ended(relationLog(t, units[src])))
	}
	if err := admin.SetConfig(ctx, "relay-source", map[string]string{"onewatch": "1"}); err != nil {
		t.Fatalf("set config: %v", err)
	}
	if _, _, err := admin.StepDown(ctx, "relay-source"); err != nil {
		t.Fatalf("step down: %v", err)
	}
	since := func(src, hook string) int { return count2(ended(relationLog(t, units[src]))[mark[src]:], hook) }
	for _, src := range sources {
		testutil.WaitUntil(t, 60*time.Second, src+" to run config-changed after the set", func() bool { return since(src, "config-changed") == 1 })
	}
	testutil.WaitUntil(t, 60*time.Second, old+" to run leader-deposed", func() bool { return since(old, "leader-deposed") == 1 })
	var (
		next  string
		nterm uint64
	)
	testutil.WaitUntil(t, 60*time.Second, "another relay-source unit to lead", func() bool {
		next, nterm = c.leader("relay-source")
		return next != "" && next != old && nterm > term && since(next, "leader-elected") == 1
	})
	settled("after the config set and the step-down")

	// Two databags in one raft entry: the new leader's unit databag and
	// its application's, in one commit. The sink runs -changed for each.
	sinkMark := len(ended(relationLog(t, units["relay-sink/0"])))
	leaderCfg, err := agent.ReadConfig(units[next].dir)
	if err != nil {
		t.Fatal(err)
	}
	commit := []api.RelationCommit{{Relation: rid, Unit: map[string]string{"n": "7"}, App: map[string]string{"token": "relay-token-2"}}}
	if err := c.clientAs(leaderCfg.Controller.Token).CommitRelationData(ctx, next, nterm, commit); err != nil {
		t.Fatalf("the leader's commit: %v", err)
	}
	testutil.WaitUntil(t, 60*time.Second, "relay-sink/0 to run -changed for both databags of the commit", func() bool {
		unit, app := false, false
		for _, e := range ended(relationLog(t, units["relay-sink/0"]))[sinkMark:] {
			if e.Hook != "token-relation-changed" {
				continue
			}
			unit = unit || e.Remote == next && strings.HasSuffix(e.Value, ",n=7")
			app = app || e.Remote == "-" && strings.HasPrefix(e.Value, "token=relay-token-2,")
		}
		return unit && app
	})
	settled("after the two databags")

	// A relation databag write and an enqueued operation, back to back.
	for _, src := range sources {
		mark[src] = len(ended(relationLog(t, units[src])))
	}
	sinkCfg, err := agent.ReadConfig(units["relay-sink/0"].dir)
	if err != nil {
		t.Fatal(err)
	}
	sink := c.clientAs(sinkCfg.Controller.Token)
	ran := filepath.Join(t.TempDir(), "exec-ran")
	if err := sink.CommitRelationData(ctx, "relay-sink/0", 0, []api.RelationCommit{{Relation: rid, Unit: map[string]string{"onewatch": "1"}}}); err != nil {
		t.Fatalf("relation data write: %v", err)
	}
	op, _, err := admin.EnqueueExec(ctx, next, "echo ran > "+ran, 0)
	if err != nil {
		t.Fatalf("enqueue exec: %v", err)
	}
	for _, src := range sources {
		testutil.WaitUntil(t, 60*time.Second, src+" to run token-relation-changed for the write", func() bool {
			for _, e := range ended(relationLog(t, units[src]))[mark[src]:] {
				if e.Hook == "token-relation-changed" && e.Remote == "relay-sink/0" {
					return true
				}
			}
			return false
		})
	}
	testutil.WaitUntil(t, 60*time.Second, "the exec to run on "+next, func() bool {
		o, err := admin.Operation(ctx, op.ID)
		return err == nil && o.Status == "completed"
	})
	if out, err := os.ReadFile(ran); err != nil || strings.TrimSpace(string(out)) != "ran" {
		t.Errorf("the exec's output file: %q, %v", out, err)
	}
	settled("after the databag write and the exec")

	m := c.scrapeNode(0)
	if n := m.sum("uniter_api_requests_total", "route", "GET /v1/leases/{app}"); n > 0 {
		t.Errorf("%v lease watches answered: the tracker watched the lease itself", n)
	}
	if n := m.sum("uniter_api_requests_total", "route", "GET /v1/units/{app}/{n}/watch"); n <= 0 {
		t.Errorf("%v unit watches answered", n)
	}
}
