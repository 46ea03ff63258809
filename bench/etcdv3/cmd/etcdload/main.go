// Command etcdload is benchmark B9's client of etcd, through etcd's own Go
// client (go.etcd.io/etcd/client/v3, gRPC) with one clientv3.Client per
// process shared by its goroutines, as etcd's documentation advises.
//
//	etcdload -endpoints URL,URL -mode grant-keepalive|cas -clients 64 -warmup 1s -trials 3 -window 2s
//
// runs a closed loop of -clients goroutines: a warm-up, then -trials
// trials of -window, printing one JSON line per trial (trialLine) on
// standard output. Mode grant-keepalive alternates Grant and KeepAliveOnce
// of a lease per goroutine (what B5's claim+extend does against uniter);
// mode cas renews a lease record per goroutine by compare-and-swap on its
// mod revision, as Kubernetes' leader election renews its Lease through
// the API server (every renewal a raft write).
//
//	etcdload candidate -endpoint URL -election NAME -name NAME -ttl SECONDS -events FILE
//
// is one election candidate of B9's failover (candidate.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "candidate" {
		err = candidateMain(ctx, os.Args[2:])
	} else {
		err = loadMain(ctx, os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdload:", err)
		os.Exit(1)
	}
}

func loadMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("etcdload", flag.ContinueOnError)
	endpoints := fs.String("endpoints", "", "etcd client URLs, comma-separated")
	mode := fs.String("mode", "", "grant-keepalive or cas")
	clients := fs.Int("clients", 64, "concurrent goroutines sharing the one client")
	warmup := fs.Duration("warmup", time.Second, "warm-up before the trials (not reported)")
	trials := fs.Int("trials", 3, "trials")
	window := fs.Duration("window", 2*time.Second, "length of a trial")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoints == "" || *clients <= 0 || *trials <= 0 || *window <= 0 {
		return errors.New("etcdload wants -endpoints, and -clients, -trials and -window above 0")
	}
	cli, err := newClient(splitComma(*endpoints))
	if err != nil {
		return err
	}
	defer cli.Close()
	var op opFunc
	switch *mode {
	case "grant-keepalive":
		op = grantKeepAlive(cli, *clients)
	case "cas":
		if op, err = casRenewal(ctx, cli, *clients); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown mode %q: the modes are grant-keepalive and cas", *mode)
	}
	return runTrials(ctx, os.Stdout, *mode, *clients, *warmup, *trials, *window, op)
}

// newClient is the process's one etcd client of endpoints.
func newClient(endpoints []string) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("cannot make etcd client: %w", err)
	}
	return cli, nil
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
