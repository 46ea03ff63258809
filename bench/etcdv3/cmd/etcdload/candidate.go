package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"go.etcd.io/etcd/client/v3/concurrency"
	"golang.org/x/sys/unix"
)

func candidateMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("etcdload candidate", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "etcd client URL")
	election := fs.String("election", "", "election name")
	name := fs.String("name", "", "this candidate's proposal")
	ttl := fs.Int("ttl", 0, "session lease TTL in seconds")
	events := fs.String("events", "", "file to append events to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoint == "" || *election == "" || *name == "" || *ttl <= 0 || *events == "" {
		return errors.New("etcdload candidate wants -endpoint, -election, -name, -ttl and -events")
	}
	return runCandidate(ctx, *endpoint, *election, *name, *ttl, *events)
}

// runCandidate is one election candidate, as `etcdctl elect` is but with a
// session lease of ttl seconds (etcdctl's is always 60 s): a
// concurrency.Session (lease granted, kept alive every ttl/3 by the
// client), then Election.Campaign; when the campaign wins it appends
// "elected <CLOCK_MONOTONIC ns>" to the file out ("campaigning" before).
// It runs until killed or its session's lease is lost.
func runCandidate(ctx context.Context, endpoint, election, name string, ttl int, out string) error {
	cli, err := newClient([]string{endpoint})
	if err != nil {
		return err
	}
	defer cli.Close()
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("cannot start etcd session: %w", err)
	}
	defer sess.Close()
	if err := appendLine(out, "campaigning"); err != nil {
		return err
	}
	if err := concurrency.NewElection(sess, election).Campaign(ctx, name); err != nil {
		return fmt.Errorf("cannot campaign: %w", err)
	}
	if err := appendLine(out, fmt.Sprintf("elected %d", monotonicNow())); err != nil {
		return err
	}
	select {
	case <-sess.Done():
		return errors.New("etcd session lease lost")
	case <-ctx.Done():
		return nil
	}
}

// monotonicNow is CLOCK_MONOTONIC in ns, the clock of the suite's
// timings (bench/journal.Now in the main module).
func monotonicNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("cannot read CLOCK_MONOTONIC: %v", err))
	}
	return ts.Nano()
}

// appendLine appends line to path in one write.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot record candidate event: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		return fmt.Errorf("cannot record candidate event: %w", err)
	}
	return nil
}
