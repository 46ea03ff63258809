package tests

// Helpers of the tool charm tests (hooktools_*_test.go) and
// TestToolsBinary: units of a charm under real agents, the CLI's status,
// and what an agent's log holds.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// toolUnits adds n units of charm to c, tuned for quick tests, each with
// its own address (toolAddress), and starts their agents.
func toolUnits(c *cluster, charmName string, n int) []*agentUnit {
	c.t.Helper()
	var units []*agentUnit
	for i := range n {
		name := fmt.Sprintf("%s/%d", charmName, i)
		u := c.addUnit(name, charmName, func(cfg *agent.Config) {
			cfg.RetryInitial = agent.Duration(200 * time.Millisecond)
			cfg.StopTimeout = agent.Duration(10 * time.Second)
			cfg.Address = toolAddress(name)
		})
		units = append(units, u)
	}
	for _, u := range units {
		u.start()
	}
	return units
}

// toolAddress is the address toolUnits gives unit (agent.yaml address):
// 192.0.2.(10+N) for unit app/N, from a documentation range no interface
// of the host has, so network-get answers it with a /32 and no interface.
func toolAddress(unit string) string {
	_, n, _ := strings.Cut(unit, "/")
	i, err := strconv.Atoi(n)
	if err != nil {
		panic("bad unit name " + unit)
	}
	return fmt.Sprintf("192.0.2.%d", 10+i)
}

// cliStatus is `uniter status --format json` of the real CLI.
func cliStatus(c *cluster) api.Status {
	c.t.Helper()
	res := c.run("status", "--format", "json")
	var st api.Status
	if res.code != 0 {
		return api.Status{}
	}
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		c.t.Fatalf("uniter status --format json: %v\n%s", err, res.stdout)
	}
	return st
}

// leaderAndMinion waits until app has a leader among units and returns it
// and another unit.
func leaderAndMinion(c *cluster, app string, units []*agentUnit, ready func(leader *agentUnit) bool) (leader, minion *agentUnit) {
	c.t.Helper()
	testutil.WaitUntil(c.t, 30*time.Second, app+" to have a leader", func() bool {
		st := cliStatus(c)
		a := st.Applications[app]
		if a.Leader == nil {
			return false
		}
		for _, u := range units {
			if u.unit == *a.Leader {
				leader = u
			}
		}
		return leader != nil && ready(leader)
	})
	for _, u := range units {
		if u != leader {
			minion = u
			break
		}
	}
	return leader, minion
}

// logEntry is one JSON line of an agent's log.
type logEntry map[string]any

func (e logEntry) str(k string) string { s, _ := e[k].(string); return s }

// agentLog reads every line of u's agent log (and its rotated files).
func agentLog(t *testing.T, u *agentUnit) (entries []logEntry, raw string) {
	t.Helper()
	paths, _ := filepath.Glob(agent.LogPath(u.dir) + "*")
	var all strings.Builder
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e logEntry
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				entries = append(entries, e)
			}
		}
	}
	return entries, all.String()
}

// jujuLogEntries returns the entries juju-log wrote, by message.
func jujuLogEntries(entries []logEntry) map[string]logEntry {
	out := map[string]logEntry{}
	for _, e := range entries {
		if _, ok := e["juju_level"]; ok {
			out[e.str("message")] = e
		}
	}
	return out
}

// checkJujuLog asserts that u's agent log has an entry for each message
// with the unit, hook, juju_level and log level.
func checkJujuLog(t *testing.T, u *agentUnit, hook string, want map[string][2]string) {
	t.Helper()
	var got map[string]logEntry
	testutil.WaitUntil(t, 10*time.Second, u.unit+"'s juju-log entries in its agent log", func() bool {
		entries, _ := agentLog(t, u)
		got = jujuLogEntries(entries)
		for msg := range want {
			if _, ok := got[msg]; !ok {
				return false
			}
		}
		return true
	})
	for msg, lv := range want {
		e := got[msg]
		if e.str("unit") != u.unit || e.str("hook") != hook || e.str("juju_level") != lv[0] || e.str("level") != lv[1] {
			t.Errorf("%s: juju-log entry %q: unit %q hook %q juju_level %q level %q; want %s %s %s %s",
				u.unit, msg, e.str("unit"), e.str("hook"), e.str("juju_level"), e.str("level"), u.unit, hook, lv[0], lv[1])
		}
	}
}

// checkNoSecrets asserts that none of secrets appears in u's agent log, at
// any level (the agent logs at debug, so nothing above trace may hold them:
// tool arguments and stdin are trace only).
func checkNoSecrets(t *testing.T, u *agentUnit, secrets ...string) {
	t.Helper()
	entries, raw := agentLog(t, u)
	if len(entries) == 0 {
		t.Fatalf("%s: empty agent log", u.unit)
	}
	for _, s := range secrets {
		if !strings.Contains(raw, s) {
			continue
		}
		for _, e := range entries {
			b, _ := json.Marshal(e)
			if strings.Contains(string(b), s) {
				t.Errorf("%s: secret %q in the agent log at level %q: %s", u.unit, s, e.str("level"), b)
			}
		}
		t.Errorf("%s: secret %q in the agent log", u.unit, s)
	}
}

// mustJSON is v in JSON.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// asLoaded is v as json.loads (and json.Unmarshal into an any) gives it
// back.
func asLoaded(t *testing.T, v any) any {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(mustJSON(t, v)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}
