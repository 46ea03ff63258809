package tests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/testutil"
)

// relEntry is one line of the relay charms' relation.log (see
// testcharms/relay-source/relay-common.sh).
type relEntry struct {
	Hook, Unit, RelationID, Remote, Departing, RemoteApp, Members, Value string
}

func (e relEntry) String() string {
	return strings.Join([]string{e.Hook, e.Remote, e.Departing, e.Members, e.Value}, " ")
}

// relationLog parses a relay unit's relation.log (whole lines only: a
// line being written may be read in part).
func relationLog(t *testing.T, u *agentUnit) []relEntry {
	t.Helper()
	data, err := os.ReadFile(u.path("charm", "relation.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	var out []relEntry
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 8 {
			t.Fatalf("bad line in %s's relation.log: %q", u.unit, line)
		}
		out = append(out, relEntry{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]})
	}
	return out
}

// ended returns the entries of hooks that ran to their end (not "start").
func ended(es []relEntry) []relEntry {
	var out []relEntry
	for _, e := range es {
		if e.Value != "start" {
			out = append(out, e)
		}
	}
	return out
}

// relationHooks returns the ended relation hooks of es, as "hook remote".
func relationHooks(es []relEntry) []string {
	var out []string
	for _, e := range ended(es) {
		if strings.Contains(e.Hook, "-relation-") {
			out = append(out, e.Hook+" "+e.Remote)
		}
	}
	return out
}

// startRelayUnits registers and starts the units of the relay pair.
func startRelayUnits(t *testing.T, c *cluster, units ...string) map[string]*agentUnit {
	t.Helper()
	out := map[string]*agentUnit{}
	for _, unit := range units {
		app, _, _ := strings.Cut(unit, "/")
		u := c.addUnit(unit, app, nil)
		u.start()
		out[unit] = u
	}
	testutil.WaitUntil(t, 90*time.Second, "the relay units to start", func() bool {
		for _, u := range out {
			if count2(ended(relationLog(t, u)), "start") != 1 {
				return false
			}
		}
		return true
	})
	return out
}

func count2(es []relEntry, hook string) int {
	n := 0
	for _, e := range es {
		if e.Hook == hook {
			n++
		}
	}
	return n
}

var addedRelationRE = regexp.MustCompile(`^added relation (\d+): `)

// relate runs `uniter relate a b` and returns the new relation's id.
func relate(t *testing.T, c *cluster, a, b string) int {
	t.Helper()
	r := c.run("relate", a, b)
	m := addedRelationRE.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("relate %s %s: exit %d: %q %s", a, b, r.code, r.stdout, r.stderr)
	}
	var id int
	fmt.Sscan(m[1], &id)
	return id
}

// TestRelationHooksSourceSink (issue 12, must show 3): `relate` a source
// and a sink, both run by real agents: every sink unit runs -created, then
// -joined and -changed for each source unit with the token the source's
// leader published; a source unit removed runs -departed (naming itself as
// the departing unit) and -broken, and every sink unit runs -departed for
// it; `remove-relation` runs -departed then -broken on both sides and the
// relation is gone once the last unit left its scope.
func TestRelationHooksSourceSink(t *testing.T) {
	c := startCluster(t, 1)
	waitProtocol4(t, c)
	units := startRelayUnits(t, c, "relay-source/0", "relay-source/1", "relay-sink/0", "relay-sink/1")
	sinks := []string{"relay-sink/0", "relay-sink/1"}
	sources := []string{"relay-source/0", "relay-source/1"}
	testutil.WaitUntil(t, 60*time.Second, "a relay-source leader", func() bool {
		holder, _ := c.leader("relay-source")
		return holder != "" && count2(ended(relationLog(t, units[holder])), "leader-elected") == 1
	})
	leader, _ := c.leader("relay-source")

	id := relate(t, c, "relay-sink", "relay-source")
	rid := fmt.Sprintf("token:%d", id)
	for _, s := range sinks {
		testutil.WaitUntil(t, 60*time.Second, s+" to see the token from both source units", func() bool {
			hooks := relationHooks(relationLog(t, units[s]))
			return slices.Contains(hooks, "token-relation-changed relay-source/0") && slices.Contains(hooks, "token-relation-changed relay-source/1") &&
				c.unitStatus("relay-sink", s).Workload.Message == "token=relay-token-1"
		})
	}
	for _, s := range sinks {
		log := ended(relationLog(t, units[s]))
		hooks := relationHooks(log)
		if hooks[0] != "token-relation-created -" {
			t.Errorf("%s: first relation hook %q, want -created:\n%v", s, hooks[0], log)
		}
		for _, src := range sources {
			joined := slices.Index(hooks, "token-relation-joined "+src)
			if joined < 0 || joined+1 >= len(hooks) || hooks[joined+1] != "token-relation-changed "+src {
				t.Errorf("%s: -joined %s not followed at once by its -changed:\n%v", s, src, hooks)
			}
		}
		for _, e := range log {
			if e.RelationID != rid || (e.Hook == "token-relation-changed" && e.Remote != "-" && !strings.HasPrefix(e.Value, "token=relay-token-1,")) {
				if strings.Contains(e.Hook, "-relation-") {
					t.Errorf("%s: %s in relation %s saw %q, want relation %s and the token", s, e.Hook, e.RelationID, e.Value, rid)
				}
			}
			if e.Hook == "token-relation-joined" && e.RemoteApp != "relay-source" {
				t.Errorf("%s: JUJU_REMOTE_APP %q in -joined", s, e.RemoteApp)
			}
		}
	}
	// The source's leader published in -created/-joined or leader-elected;
	// its own units saw both sink units join.
	for _, src := range sources {
		testutil.WaitUntil(t, 30*time.Second, src+" to see both sinks", func() bool {
			hooks := relationHooks(relationLog(t, units[src]))
			return slices.Contains(hooks, "token-relation-changed relay-sink/0") && slices.Contains(hooks, "token-relation-changed relay-sink/1")
		})
	}

	// A source unit removed: it departs from both sinks and breaks; every
	// sink unit runs -departed for it.
	gone := "relay-source/1"
	if gone == leader {
		gone = "relay-source/0"
	}
	stay := sources[0]
	if stay == gone {
		stay = sources[1]
	}
	if r := c.run("unit", "remove", gone, "--wait", "90s"); r.code != 0 {
		t.Fatalf("unit remove %s: exit %d: %s", gone, r.code, r.stderr)
	}
	goneHooks := relationHooks(relationLog(t, units[gone]))
	wantTail := []string{"token-relation-departed relay-sink/0", "token-relation-departed relay-sink/1", "token-relation-broken -"}
	if len(goneHooks) < 3 || !slices.Equal(goneHooks[len(goneHooks)-3:], wantTail) {
		t.Errorf("%s's last relation hooks = %v, want %v", gone, goneHooks, wantTail)
	}
	for _, e := range ended(relationLog(t, units[gone])) {
		if e.Hook == "token-relation-departed" && e.Departing != gone {
			t.Errorf("%s: JUJU_DEPARTING_UNIT %q in its own -departed, want itself", gone, e.Departing)
		}
	}
	if l := ended(relationLog(t, units[gone])); l[len(l)-1].Hook != "remove" || l[len(l)-2].Hook != "stop" {
		t.Errorf("%s did not stop and remove after its relation hooks:\n%v", gone, l)
	}
	for _, s := range sinks {
		testutil.WaitUntil(t, 60*time.Second, s+" to run -departed for "+gone, func() bool {
			return slices.Contains(relationHooks(relationLog(t, units[s])), "token-relation-departed "+gone)
		})
		for _, e := range ended(relationLog(t, units[s])) {
			if e.Hook == "token-relation-departed" && (e.Departing != gone || e.Members != stay) {
				t.Errorf("%s: -departed %s: departing %q, relation-list %q; want %s, %s", s, e.Remote, e.Departing, e.Members, gone, stay)
			}
		}
	}

	// remove-relation: -departed then -broken on both sides.
	if r := c.run("remove-relation", "relay-sink", "relay-source"); r.code != 0 {
		t.Fatalf("remove-relation: exit %d: %s", r.code, r.stderr)
	}
	testutil.WaitUntil(t, 60*time.Second, "the relation to be gone", func() bool {
		st := jsonStatus(t, c)
		return len(st.Relations) == 0
	})
	check := func(unit string, want []string) {
		t.Helper()
		hooks := relationHooks(relationLog(t, units[unit]))
		if len(hooks) < len(want) || !slices.Equal(hooks[len(hooks)-len(want):], want) {
			t.Errorf("%s's last relation hooks = %v, want %v", unit, hooks, want)
		}
		if n := count2(ended(relationLog(t, units[unit])), "token-relation-broken"); n != 1 {
			t.Errorf("%s ran -broken %d times", unit, n)
		}
	}
	for _, s := range sinks {
		check(s, []string{"token-relation-departed " + stay, "token-relation-broken -"})
		if msg := c.unitStatus("relay-sink", s).Workload.Message; msg != "no source" {
			t.Errorf("%s's status after -broken: %q", s, msg)
		}
	}
	check(stay, []string{"token-relation-departed relay-sink/0", "token-relation-departed relay-sink/1", "token-relation-broken -"})
	for unit, u := range units {
		for _, e := range relationLog(t, u) {
			if e.Hook == "token-relation-departed" && e.Value != "start" && e.Members != "-" && strings.Contains(e.Members, e.Remote) {
				t.Errorf("%s: relation-list in -departed %s still lists it: %s", unit, e.Remote, e.Members)
			}
		}
		if unit != gone {
			if st := u.p; st != nil && st.exited() {
				t.Errorf("%s's agent exited", unit)
			}
		}
	}
}
