package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/testutil"
)

// TestDeployIntoUp: `uniter deploy` adds an application to the controller
// of a running `uniter up`, whose supervisor starts the new units' agents;
// `relate` connects the two and the sink's units show the source's token;
// `remove-relation` takes it away. A second deploy of the same application
// and bad arguments are refused, and nothing is added by them.
func TestDeployIntoUp(t *testing.T) {
	home := t.TempDir()
	u := &upRun{t: t, home: home}
	u.p = startProc(t, filepath.Join(home, "up.out"), u.env(), "up", filepath.Join("..", "testcharms", "relay-source"), "--units", "2", "--guarantee", "3s")
	units := []string{"relay-source/0", "relay-source/1", "relay-sink/0", "relay-sink/1"}
	t.Cleanup(func() {
		u.p.stop(syscall.SIGKILL)
		if t.Failed() {
			out, _ := os.ReadFile(filepath.Join(home, "up.out"))
			t.Logf("up output:\n%s", tail(string(out), 6000))
		}
		for _, unit := range units {
			if pid := findProc(u.unitDir(unit)); pid != 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	idle := func(app string, n int) func() bool {
		return func() bool {
			a, ok := u.status().Applications[app]
			if !ok || len(a.Units) != n {
				return false
			}
			for _, us := range a.Units {
				if us.Agent.Status != "idle" {
					return false
				}
			}
			return true
		}
	}
	testutil.WaitUntil(t, 60*time.Second, "2 idle relay-source units", idle("relay-source", 2))

	sink := filepath.Join("..", "testcharms", "relay-sink")
	deploy := func(args ...string) result {
		return runUniterEnv(t, u.env(), append([]string{"deploy"}, append(args, "--client-config", filepath.Join(home, "client.yaml"))...)...)
	}
	if r := deploy(sink, "--units", "0"); r.code != 2 || !strings.Contains(r.stderr, "--units must be between 1 and 50") {
		t.Errorf("deploy --units 0: exit %d: %s", r.code, r.stderr)
	}
	if r := deploy(sink, "--app", "Bad_Name"); r.code != 2 || !strings.Contains(r.stderr, `invalid application name "Bad_Name"`) {
		t.Errorf("deploy --app Bad_Name: exit %d: %s", r.code, r.stderr)
	}
	if _, ok := u.status().Applications["relay-sink"]; ok {
		t.Fatal("a refused deploy registered relay-sink")
	}
	if r := deploy(sink, "--units", "2"); r.code != 0 || !strings.Contains(r.stdout, "deployed relay-sink: 2 units") {
		t.Fatalf("deploy relay-sink: exit %d: %s\n%s", r.code, r.stdout, r.stderr)
	}
	testutil.WaitUntil(t, 60*time.Second, "2 idle relay-sink units, run by uniter up", idle("relay-sink", 2))
	if r := deploy(sink); r.code != 1 || !strings.Contains(r.stderr, `application "relay-sink" already exists`) {
		t.Errorf("a second deploy of relay-sink: exit %d: %s", r.code, r.stderr)
	}
	if n := len(u.status().Applications["relay-sink"].Units); n != 2 {
		t.Errorf("after the refused second deploy relay-sink has %d units, want 2", n)
	}

	if r := u.cli("relate", "relay-source", "relay-sink"); r.code != 0 {
		t.Fatalf("relate: exit %d: %s", r.code, r.stderr)
	}
	sinkMessages := func(want string) func() bool {
		return func() bool {
			a := u.status().Applications["relay-sink"]
			for _, unit := range []string{"relay-sink/0", "relay-sink/1"} {
				if us, ok := a.Units[unit]; !ok || us.Workload.Message != want {
					return false
				}
			}
			return true
		}
	}
	testutil.WaitUntil(t, 60*time.Second, "both sink units to show the source's token", sinkMessages("token=relay-token-1"))
	if r := u.cli("remove-relation", "relay-source", "relay-sink"); r.code != 0 {
		t.Fatalf("remove-relation: exit %d: %s", r.code, r.stderr)
	}
	testutil.WaitUntil(t, 60*time.Second, "both sink units to say no source after -broken", sinkMessages("no source"))
}
