// Package raftnodetest holds test scaffolding for a raft node's files on
// disk.
package raftnodetest

import (
	"errors"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// DamageLogStore overwrites n bytes of the BoltDB raft log store at path
// with seeded random bytes, starting at the first page of raft's log
// bucket: a page bbolt reads at start-up. The store must not be open.
func DamageLogStore(t testing.TB, path string, n int) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var root uint64
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("logs"))
		if b == nil {
			return errors.New("no logs bucket")
		}
		root = uint64(b.Root())
		return nil
	})
	pageSize := db.Info().PageSize
	db.Close()
	if err != nil || root == 0 {
		t.Fatalf("cannot find the log bucket's root page in %s: %v (root %d)", path, err, root)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, n)
	rand.NewChaCha8([32]byte{7}).Read(junk)
	if _, err := f.WriteAt(junk, int64(root)*int64(pageSize)); err != nil {
		t.Fatal(err)
	}
}
