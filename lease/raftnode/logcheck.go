package raftnode

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrCorruptLogStore: the raft log store on disk fails bbolt's consistency
// check. The node does not start; its data directory is left as it was.
var ErrCorruptLogStore = errors.New("raftnode: raft log store is corrupt")

// maxReported bounds how many of bbolt's findings the error quotes.
const maxReported = 3

// checkLogStore runs bbolt's consistency check over the log store at path
// (read-only) before raft opens it. bbolt trusts its pages: a damaged page
// makes a later read panic deep inside raft's start-up, with a stack trace
// instead of a message. Checking first turns that into an error naming the
// file and the way out. A missing file is a new node: nothing to check. The
// check reads the whole file once; with raft's log truncated after each
// snapshot that is a few megabytes.
func checkLogStore(path string) (err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(path, fmt.Sprint("cannot read a page: ", r))
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return fmt.Errorf("cannot open raft log store %s: another process has it open", path)
		}
		return corrupt(path, err.Error())
	}
	defer db.Close()
	var found []string
	err = db.View(func(tx *bbolt.Tx) error {
		for e := range tx.Check() {
			if len(found) < maxReported {
				// bbolt reports a page it could not read as "panic: ...".
				found = append(found, strings.TrimPrefix(e.Error(), "panic: "))
			}
		}
		return nil
	})
	if err != nil {
		return corrupt(path, err.Error())
	}
	if len(found) > 0 {
		return corrupt(path, strings.Join(found, "; "))
	}
	return nil
}

func corrupt(path, detail string) error {
	return fmt.Errorf("%w: %s: %s (the file is left untouched; move its data directory aside and start "+
		"the node anew from a backup with 'uniter controller --restore FILE', or remove the node from "+
		"the cluster and join a fresh one)", ErrCorruptLogStore, path, detail)
}
