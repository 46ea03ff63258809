package tests

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// TestDeposedLeaderAppDatabagWriteRefused (issue 12, must show 2): the
// source's leader buffers an app-databag write in -joined, then its agent
// is frozen past its lease and another unit takes it; resumed, the hook
// exits 0, but the controller refuses the commit by term: the hook fails
// (the agent log says why, with the controller's "not the leader"),
// nothing of it is written, and after leader-deposed the retried -joined
// succeeds without writing.
func TestDeposedLeaderAppDatabagWriteRefused(t *testing.T) {
	c := startCluster(t, 1)
	waitProtocol4(t, c)
	history := watchAppBag(t, c, "0", "relay-source")
	src := c.addUnit("relay-source/0", "relay-source", func(cfg *agent.Config) {
		cfg.RetryInitial, cfg.RetryMax = agent.Duration(200*time.Millisecond), agent.Duration(time.Second)
	})
	src.start()
	testutil.WaitUntil(t, 60*time.Second, "relay-source/0 to lead and start", func() bool {
		holder, _ := c.leader("relay-source")
		return holder == "relay-source/0" && count2(ended(relationLog(t, src)), "start") == 1
	})
	// A second source unit and the sink unit have no agents: the test acts
	// as them with their tokens.
	dirs := map[string]string{}
	for _, u := range []string{"relay-source/9", "relay-sink/0"} {
		app, _, _ := strings.Cut(u, "/")
		dirs[u] = filepath.Join(c.root, "units", strings.ReplaceAll(u, "/", "-"))
		if r := c.run("unit", "add", u, "--charm", filepath.Join("..", "testcharms", app), "--agent-dir", dirs[u]); r.code != 0 {
			t.Fatalf("unit add %s: exit %d: %s", u, r.code, r.stderr)
		}
	}
	ghost, sink := unitClient(t, dirs["relay-source/9"]), unitClient(t, dirs["relay-sink/0"])
	id := relate(t, c, "relay-sink", "relay-source")
	rel := strconv.Itoa(id)
	cl := c.client()
	testutil.WaitUntil(t, 60*time.Second, "the leader to publish its token in -created", func() bool {
		r, err := cl.Relation(context.Background(), rel)
		return err == nil && r.AppData["relay-source"].Values["token"] == "relay-token-1"
	})

	// The next -joined buffers token=fenced-token, then waits at its end.
	joined := "token-relation-joined"
	for name, content := range map[string]string{"token": "fenced-token", "block-end-" + joined: ""} {
		if err := os.WriteFile(src.path("charm", name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := sink.EnterScope(ctx, rel, "relay-sink/0", nil); err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, 60*time.Second, "-joined to buffer its write and wait", func() bool {
		return exists(src.path("charm", "blocked-end-"+joined+".pid"))
	})
	src.p.signal(syscall.SIGSTOP)
	testutil.WaitUntil(t, 60*time.Second, "another unit to take the lease", func() bool {
		_, err := ghost.Claim(context.Background(), "relay-source", "relay-source/9", time.Minute)
		return err == nil
	})
	src.p.signal(syscall.SIGCONT)
	os.Remove(src.path("charm", "block-end-"+joined))

	testutil.WaitUntil(t, 60*time.Second, "-joined to be retried and committed", func() bool {
		st := agentState(t, src)
		_, ok := st.Relations[id].Members["relay-sink/0"]
		return ok && st.Op == nil && st.Error == nil && !st.Leader
	})
	var runs []string
	for _, e := range ended(relationLog(t, src)) {
		if e.Hook == joined || e.Hook == "leader-deposed" {
			runs = append(runs, e.Hook+" "+e.Value)
		}
	}
	want := []string{joined + " published:token:" + rel, "leader-deposed ok", joined + " ok"}
	if strings.Join(runs, "|") != strings.Join(want, "|") {
		t.Errorf("runs %q, want %q", runs, want)
	}
	out, _ := os.ReadFile(src.path("agent.out"))
	if !strings.Contains(string(out), "cannot commit relation data") || !strings.Contains(string(out), "not the leader") {
		t.Errorf("the agent log does not say the commit was refused:\n%s", tail(string(out), 3000))
	}
	_, values := history.snapshot()
	for _, v := range values {
		if v["token"] == "fenced-token" {
			t.Fatalf("the deposed leader's write landed: %v", values)
		}
	}
	r, err := cl.Relation(context.Background(), rel)
	if err != nil || r.AppData["relay-source"].Values["token"] != "relay-token-1" {
		t.Fatalf("app databag now %v, %v", r.AppData, err)
	}
}
