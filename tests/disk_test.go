package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease/raftnode/raftnodetest"
)

// TestCorruptRaftDBExitsWithAMessage: `uniter controller` over a raft.db
// with 16 KiB of random bytes written over its log pages exits 1 with one
// message naming the file and the way out, not a bbolt panic, and leaves
// the file as it was.
func TestCorruptRaftDBExitsWithAMessage(t *testing.T) {
	c := startCluster(t, 1)
	// Enough log entries that raft's log bucket fills pages of its own.
	cl := c.client()
	for i := range 200 {
		if err := cl.RegisterUnit(t.Context(), fmt.Sprintf("filler/%d", i), fmt.Sprintf("filler-token-%08d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	nd := c.nodes[0]
	if err := nd.p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("controller did not stop cleanly: %v", err)
	}
	path := filepath.Join(nd.dir, "raft.db")
	raftnodetest.DamageLogStore(t, path, 16<<10)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	r := runBin(t, uniterBin, c.nodeArgs(0)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstderr: %s", r.code, tail(r.stderr, 2000))
	}
	for _, want := range []string{path, "corrupt", "--restore"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, tail(r.stderr, 2000))
		}
	}
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(r.stderr+r.stdout, bad) {
			t.Errorf("output has %q:\n%s", bad, tail(r.stderr, 2000))
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := sha256.Sum256(before), sha256.Sum256(after); !bytes.Equal(a[:], b[:]) {
		t.Error("the refused start changed raft.db")
	}
}

// mountTmpfs mounts a tmpfs of size bytes at dir (which it creates) until
// the test ends. It needs root (CAP_SYS_ADMIN), as the tests' Debian
// packages do; without it the test fails, saying so.
func mountTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("cannot mount a tmpfs at %s (the test needs root): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("cannot unmount %s: %v", dir, err)
		}
	})
}

// fill writes path until the filesystem under it is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("cannot fill %s: %v", path, err)
				}
				break
			}
		}
	}
}

// TestFullDiskKeepsLeases: the controller's data directory on a tmpfs
// that fills up. The node logs "no space left on device" with the path at
// error, steps down from raft leadership and stays down without a panic
// or a restart loop; the agents keep their leases (the global time stops
// with the writes) and run no leadership hook; once space is freed the
// node leads again and takes writes, with no operator step.
func TestFullDiskKeepsLeases(t *testing.T) {
	const g = 20 * time.Second // far above the outage, which is seconds
	c := newCluster(t, 1)
	nd := c.nodes[0]
	mountTmpfs(t, nd.dir, 24<<20)
	nd.log = filepath.Join(c.root, "node0.log") // not on the full disk
	c.boot()
	var units []*agentUnit
	for i := range 2 {
		u := c.addUnit(fmt.Sprintf("journal/%d", i), "journal", func(cfg *agent.Config) {
			cfg.LeadershipGuarantee = agent.Duration(g)
		})
		u.start()
		units = append(units, u)
	}
	holder, term := c.waitElected(units)
	journal := func(u *agentUnit) []entry { return readJournal(t, u.path("charm", "journal.log")) }
	marks := map[string]int{}
	for _, u := range units {
		marks[u.unit] = len(journal(u))
	}
	nodeLog := func() string { b, _ := os.ReadFile(nd.log); return string(b) }
	gainedBefore := strings.Count(nodeLog(), "raft leadership gained")

	filler := filepath.Join(nd.dir, "filler")
	fill(t, filler)
	// Writes that need new bbolt pages (the time advancer's small entries
	// may fit in free ones) until one fails for want of space.
	cl := c.client()
	value := strings.Repeat("x", 60<<10)
	testutil.WaitUntil(t, 30*time.Second, "the node to log the full disk", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cl.SetConfig(ctx, "journal", map[string]string{"message": value + time.Now().String()})
		return strings.Contains(nodeLog(), `"message":"no space left on device`)
	})
	out := nodeLog()
	for _, want := range []string{`"level":"error"`, `"path":"` + nd.dir + `"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("the full-disk line lacks %s:\n%s", want, tail(out, 3000))
		}
	}
	testutil.WaitUntil(t, 10*time.Second, "the node to step down", func() bool { return c.raftLeader() < 0 })
	full := time.Now()
	// A while full: not leading, not flapping, not crashed.
	for time.Since(full) < 3*time.Second {
		if c.raftLeader() == 0 {
			t.Fatal("the node leads again while its disk is full")
		}
		if nd.p.exited() {
			t.Fatalf("the node exited on a full disk:\n%s", tail(nodeLog(), 3000))
		}
	}
	// Where an operator looks: the status says the controller cannot
	// take writes, for the controller and for every unit.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatalf("status while the disk is full: %v", err)
	}
	if m := st.Controller.Message; !strings.Contains(m, "controller unavailable") || !strings.Contains(m, "no space left on device") {
		t.Errorf("the status's controller message while the disk is full: %q", m)
	}
	for _, u := range units {
		if m := st.Applications["journal"].Units[u.unit].Agent.Message; !strings.Contains(m, "controller unavailable") {
			t.Errorf("%s's agent message while the disk is full: %q", u.unit, m)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, 30*time.Second, "the node to lead again", func() bool { return c.raftLeader() == 0 })
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.SetConfig(ctx, "journal", map[string]string{"message": "room again"}); err != nil {
		t.Fatalf("a write once the disk has room: %v", err)
	}
	// Two extend rounds at least after the recovery.
	resumed := time.Now()
	for time.Since(resumed) < 3*time.Second {
		if h, tm := c.leader("journal"); h != "" && (h != holder || tm != term) {
			t.Fatalf("leadership moved from %s (term %d) to %s (term %d) over the full disk", holder, term, h, tm)
		}
	}
	if h, tm := c.leader("journal"); h != holder || tm != term {
		t.Fatalf("after the full disk the lease is %s term %d, want %s term %d", h, tm, holder, term)
	}
	if st, err := cl.Status(ctx); err != nil || st.Controller.Message != "" {
		t.Errorf("status after the recovery: message %q, %v", st.Controller.Message, err)
	}
	for _, u := range units {
		for _, e := range journal(u)[marks[u.unit]:] {
			if e.Hook == "leader-elected" || e.Hook == "leader-deposed" {
				t.Errorf("%s ran %s %s over the full disk", u.unit, e.Hook, e.Event)
			}
		}
	}
	out = nodeLog()
	if n := strings.Count(out, "raft leadership gained") - gainedBefore; n != 1 {
		t.Errorf("the node gained raft leadership %d times over the full disk, want once (after it had room):\n%s", n, tail(out, 4000))
	}
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(out, bad) {
			t.Errorf("the node's output has %q:\n%s", bad, tail(out, 4000))
		}
	}
	if !strings.Contains(out, "disk has room again") {
		t.Errorf("the recovery is not logged:\n%s", tail(out, 3000))
	}
}
