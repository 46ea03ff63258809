package tests

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/testutil"
)

// TestRelationBadInput (issue 12, must show 7, from real hooks): a minion's
// relation-set --app is refused at once with Juju's text (exit 1), a
// relation-get of an unknown relation id is a usage error (exit 2), and a
// 2 MiB value is buffered, then refused at the hook's commit with the
// limit named: the hook fails, nothing of it is written, and its retry
// (without the bad write) commits.
func TestRelationBadInput(t *testing.T) {
	c := startCluster(t, 1)
	waitProtocol4(t, c)
	units := startRelayUnits(t, c, "relay-source/0", "relay-sink/0", "relay-sink/1")
	testutil.WaitUntil(t, 60*time.Second, "a relay-sink leader", func() bool {
		holder, _ := c.leader("relay-sink")
		return holder != ""
	})
	leader, _ := c.leader("relay-sink")
	minion := "relay-sink/0"
	if minion == leader {
		minion = "relay-sink/1"
	}
	for _, u := range []string{"relay-sink/0", "relay-sink/1"} {
		if err := os.WriteFile(units[u].path("charm", "probe"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	relate(t, c, "relay-sink", "relay-source")
	probes := func(u string) map[string][2]string {
		out := map[string][2]string{}
		data, _ := os.ReadFile(units[u].path("charm", "probe.log"))
		data = data[:bytes.LastIndexByte(data, '\n')+1] // whole lines only
		for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if f := strings.SplitN(line, " ", 3); len(f) == 3 {
				out[f[0]] = [2]string{f[1], f[2]}
			}
		}
		return out
	}
	for _, u := range []string{"relay-sink/0", "relay-sink/1"} {
		testutil.WaitUntil(t, 60*time.Second, u+" to probe, then join the source and run its -changed", func() bool {
			st := agentState(t, units[u])
			_, joined := st.Relations[0].Members["relay-source/0"]
			_, probed := probes(u)["big-value"]
			return probed && joined && st.Relations[0].ChangedPending == "" && st.Op == nil && st.Error == nil
		})
	}
	want := map[string][2]string{
		"minion-app-set": {"1", "ERROR cannot write relation settings|"},
		"unknown-id":     {"2", `ERROR invalid value "99" for option -r: relation not found|`},
		"big-value":      {"0", ""},
	}
	got := probes(minion)
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: probe %s = %q, want %q", minion, name, got[name], w)
		}
	}
	if _, ok := probes(leader)["minion-app-set"]; ok {
		t.Errorf("the leader probed a minion's write")
	}
	for _, u := range []string{"relay-sink/0", "relay-sink/1"} {
		out, _ := os.ReadFile(units[u].path("agent.out"))
		if !strings.Contains(string(out), `value of \"big\" is 2097152 bytes; the limit is 262144`) {
			t.Errorf("%s's agent log does not name the refused value:\n%s", u, tail(string(out), 2000))
		}
		r, err := c.client().Relation(context.Background(), "0")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.UnitData[u].Values["big"]; ok {
			t.Errorf("%s's 2 MiB value landed", u)
		}
		if _, ok := r.AppData["relay-sink"].Values["x"]; ok {
			t.Errorf("a minion's app write landed")
		}
		if msg := c.unitStatus("relay-sink", u).Workload.Message; msg != "token=relay-token-1" {
			t.Errorf("%s's status %q", u, msg)
		}
	}
}
