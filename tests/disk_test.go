package tests

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

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
