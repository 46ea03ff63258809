package tests

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// unitClient is a controller client with unit's own token (from its
// agent.yaml), as its agent would have.
func unitClient(t *testing.T, dir string) *client.Client {
	t.Helper()
	cfg, err := agent.ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := client.New(cfg.Controller.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(uc.Close)
	return uc
}

// TestRelationDatabagStorm (issue 12, must show 5): one source unit writes
// its unit databag 1,000 times as fast as the controller takes it; each
// sink unit (real agents) runs a bounded number of -changed hooks for it
// (coalesced: a -changed reads the databag as the controller has it when
// the hook reads it, not as it was when the hook was chosen, and the
// version it read is recorded), each seeing newer data than the one
// before, the last the final value; the sink agents' goroutines and memory
// stay flat.
func TestRelationDatabagStorm(t *testing.T) {
	const writes = 1000
	c := startCluster(t, 1)
	waitProtocol4(t, c)
	// The source unit has no agent: the test writes as it would, with its
	// token.
	srcDir := c.root + "/units/relay-source-0"
	if r := c.run("unit", "add", "relay-source/0", "--charm", "../testcharms/relay-source", "--agent-dir", srcDir); r.code != 0 {
		t.Fatalf("unit add: exit %d: %s", r.code, r.stderr)
	}
	src := unitClient(t, srcDir)
	metricsAddr := map[string]string{}
	sinks := map[string]*agentUnit{}
	for _, n := range []string{"relay-sink/0", "relay-sink/1"} {
		addr := freePort(t)
		metricsAddr[n] = addr
		u := c.addUnit(n, "relay-sink", func(cfg *agent.Config) { cfg.MetricsAddr = addr })
		u.start()
		sinks[n] = u
		waitStarted(t, u)
	}
	id := relate(t, c, "relay-sink", "relay-source")
	rel := strconv.Itoa(id)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := src.EnterScope(ctx, rel, "relay-source/0", map[string]string{"n": "0"}); err != nil {
		t.Fatal(err)
	}
	changedFor := func(u *agentUnit) []relEntry {
		var out []relEntry
		for _, e := range ended(relationLog(t, u)) {
			if e.Hook == "token-relation-changed" && e.Remote == "relay-source/0" {
				out = append(out, e)
			}
		}
		return out
	}
	for n, u := range sinks {
		testutil.WaitUntil(t, 60*time.Second, n+" to run -changed for the source", func() bool { return len(changedFor(u)) == 1 })
	}
	type footprint struct{ goroutines, rss float64 }
	measure := func(n string) footprint {
		m := scrapeAgent(t, metricsAddr[n])
		return footprint{m.sum("go_goroutines"), m.sum("process_resident_memory_bytes")}
	}
	before := map[string]footprint{}
	for n := range sinks {
		before[n] = measure(n)
	}

	start := time.Now()
	for i := 1; i <= writes; i++ {
		if _, err := src.SetUnitRelationData(ctx, rel, "relay-source/0", map[string]string{"n": strconv.Itoa(i)}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	took := time.Since(start)
	t.Logf("%d writes in %v", writes, took)

	for n, u := range sinks {
		testutil.WaitUntil(t, 60*time.Second, n+" to see the last value", func() bool {
			cs := changedFor(u)
			return strings.HasSuffix(cs[len(cs)-1].Value, fmt.Sprintf(",n=%d", writes))
		})
		cs := changedFor(u)[1:] // the storm's
		// Bounded: far fewer hooks than writes (each hook takes some tens
		// of milliseconds; the writes came faster).
		if len(cs) == 0 || len(cs) > writes/4 {
			t.Errorf("%s ran %d -changed hooks for %d writes", n, len(cs), writes)
		}
		last := 0
		for _, e := range cs {
			_, v, _ := strings.Cut(e.Value, ",n=")
			got, err := strconv.Atoi(v)
			if err != nil || got <= last {
				t.Errorf("%s: a -changed saw n=%q after n=%d: every -changed must see newer data", n, v, last)
			}
			last = got
		}
		t.Logf("%s: %d -changed hooks for %d writes", n, len(cs), writes)
	}
	// Flat: no goroutine per write, no memory per write.
	for n := range sinks {
		after := measure(n)
		if after.goroutines > before[n].goroutines+10 || after.rss > before[n].rss+64<<20 {
			t.Errorf("%s grew from %+v to %+v", n, before[n], after)
		}
	}
}
