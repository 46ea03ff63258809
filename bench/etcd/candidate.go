package etcd

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/uniter-dev/uniter/bench/journal"
)

// CandidateArg is the first argument that makes the harness binary run
// as an election candidate (RunCandidate) instead of the suite.
const CandidateArg = "etcd-candidate"

// RunCandidate is one etcd election candidate, as etcd's own
// concurrency.Session and Election do it (what `etcdctl elect` runs), but
// with a lease of ttl seconds: grant the lease, keep it alive every ttl/3,
// campaign, and when the campaign wins append "elected <CLOCK_MONOTONIC
// ns>" to the file out. It runs until killed or its lease is lost.
func RunCandidate(ctx context.Context, endpoint, election, name string, ttl int64, out string) error {
	c := NewClient(endpoint)
	id, err := c.Grant(ctx, ttl)
	if err != nil {
		return err
	}
	lost := make(chan error, 1)
	go func() {
		t := time.NewTicker(time.Duration(ttl) * time.Second / 3)
		defer t.Stop()
		for range t.C {
			if err := c.KeepAlive(ctx, id); err != nil {
				lost <- err
				return
			}
		}
	}()
	if err := appendLine(out, "campaigning"); err != nil {
		return err
	}
	if err := c.Campaign(ctx, election, id, name); err != nil {
		return err
	}
	if err := appendLine(out, fmt.Sprintf("elected %d", journal.Now())); err != nil {
		return err
	}
	select {
	case err := <-lost:
		return err
	case <-ctx.Done():
		return nil
	}
}

// appendLine appends line to path in one write.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot record candidate event: %w", err)
	}
	defer f.Close()
	_, err = f.WriteString(line + "\n")
	return err
}
