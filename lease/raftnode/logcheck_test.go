package raftnode_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uniter-dev/uniter/lease"
	"github.com/uniter-dev/uniter/lease/raftnode"
	"github.com/uniter-dev/uniter/lease/raftnode/raftnodetest"
)

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// TestCorruptLogStoreIsRefusedWithoutPanic: a raft.db with 16 KiB of
// random bytes over its log pages makes Open fail with an error naming
// the file and the way out; nothing panics and the file is left as it was.
func TestCorruptLogStoreIsRefusedWithoutPanic(t *testing.T) {
	dir := t.TempDir()
	cfg := nodeConfig(t, "node-1", dir, true)
	n, err := raftnode.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitLeader(t, n)
	c := &client{nodes: []*raftnode.Node{n}}
	populateCluster(t, c)
	for i := range 300 {
		c.must(t, lease.SetConfig{App: "db", Changes: map[string]string{"name": strings.Repeat("x", i)}})
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "raft.db")
	raftnodetest.DamageLogStore(t, path, 16<<10)
	before := fileHash(t, path)

	cfg = nodeConfig(t, "node-1", dir, false)
	n, err = raftnode.Open(context.Background(), cfg)
	if err == nil {
		n.Close()
		t.Fatal("a node opened a corrupt raft.db")
	}
	if !errors.Is(err, raftnode.ErrCorruptLogStore) || !strings.Contains(err.Error(), path) ||
		!strings.Contains(err.Error(), "--restore") {
		t.Fatalf("open: %v; want ErrCorruptLogStore naming %s and the restore command", err, path)
	}
	if after := fileHash(t, path); !bytes.Equal(before[:], after[:]) {
		t.Fatal("the corrupt raft.db was changed by the refused open")
	}
}
