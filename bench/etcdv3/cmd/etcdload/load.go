package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// trialLine is what etcdload prints for each trial, one JSON object a
// line; bench/etcd (in the main module) reads it back.
type trialLine struct {
	Mode     string  `json:"mode"`
	Trial    int     `json:"trial"`
	Clients  int     `json:"clients"`
	Ops      int     `json:"ops"`
	Errs     int     `json:"errs"`
	ElapsedS float64 `json:"elapsed_s"`
	FirstErr string  `json:"first_err,omitempty"`
	// LatencyUS is the latency of every successful op, in µs.
	LatencyUS []int64 `json:"latency_us"`
	// Client is the etcd client module and version this binary holds.
	Client string `json:"client"`
}

// opFunc is one operation of goroutine client, seq counting its calls
// in the current trial.
type opFunc func(ctx context.Context, client, seq int) error

// runTrials runs a warm-up and then trials of op, writing a trialLine
// for each to w.
func runTrials(ctx context.Context, w io.Writer, mode string, clients int, warmup time.Duration, trials int, window time.Duration, op opFunc) error {
	runLoad(ctx, clients, warmup, op)
	enc := json.NewEncoder(w)
	client := clientVersion()
	for i := range trials {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := runLoad(ctx, clients, window, op)
		r.Mode, r.Trial, r.Clients, r.Client = mode, i+1, clients, client
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("cannot write trial: %w", err)
		}
	}
	return nil
}

// runLoad runs a closed loop for window: each of clients goroutines calls
// op back to back. An op cut off by the end of the window is not counted
// (gRPC may fail it on the deadline a moment before ctx reports it).
func runLoad(ctx context.Context, clients int, window time.Duration, op opFunc) trialLine {
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	deadline, _ := ctx.Deadline()
	type count struct {
		ops, errs int
		firstErr  error
		latency   []int64
	}
	per := make([]count, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Go(func() {
			c := &per[i]
			for seq := 0; ctx.Err() == nil; seq++ {
				t := time.Now()
				err := op(ctx, i, seq)
				switch {
				case ctx.Err() != nil || !time.Now().Before(deadline):
				case err != nil:
					c.errs++
					if c.firstErr == nil {
						c.firstErr = err
					}
				default:
					c.ops++
					c.latency = append(c.latency, time.Since(t).Microseconds())
				}
			}
		})
	}
	wg.Wait()
	out := trialLine{ElapsedS: time.Since(start).Seconds(), LatencyUS: []int64{}}
	for _, c := range per {
		out.Ops += c.ops
		out.Errs += c.errs
		out.LatencyUS = append(out.LatencyUS, c.latency...)
		if out.FirstErr == "" && c.firstErr != nil {
			out.FirstErr = c.firstErr.Error()
		}
	}
	return out
}

// grantLeaseTTL is the TTL of the leases grant-keepalive grants, in
// seconds: long, so that none expires (and is revoked) in a run.
const grantLeaseTTL = 600

// grantKeepAlive is B5's load in etcd's terms: each goroutine grants a
// lease (a raft write) and keeps it alive once (answered by the leader),
// by turns.
func grantKeepAlive(cli *clientv3.Client, clients int) opFunc {
	ids := make([]clientv3.LeaseID, clients)
	return func(ctx context.Context, i, seq int) error {
		if seq%2 == 0 || ids[i] == 0 {
			resp, err := cli.Grant(ctx, grantLeaseTTL)
			if err != nil {
				ids[i] = 0
				return err
			}
			ids[i] = resp.ID
			return nil
		}
		_, err := cli.KeepAliveOnce(ctx, ids[i])
		return err
	}
}

// leaseRecord is the value of a CAS-renewed lease record: the fields of
// Kubernetes' LeaderElectionRecord.
type leaseRecord struct {
	HolderIdentity       string `json:"holderIdentity"`
	LeaseDurationSeconds int    `json:"leaseDurationSeconds"`
	AcquireTime          string `json:"acquireTime"`
	RenewTime            string `json:"renewTime"`
	LeaderTransitions    int    `json:"leaderTransitions"`
}

// casAttempts is how many times a renewal retries a lost compare-and-swap
// (with the revision its Else read) before it fails.
const casAttempts = 3

// casRenewal is the load of leadership by lease records: each goroutine
// holds a record of its own and renews it with
// Txn(If(ModRevision(key) == rev)).Then(Put(key, record)).Else(Get(key)),
// what the Kubernetes API server's etcd store does for every update of a
// Lease (on a lost compare it retries with the revision the Else read).
// It writes every record first.
func casRenewal(ctx context.Context, cli *clientv3.Client, clients int) (opFunc, error) {
	acquired := time.Now().UTC().Format(time.RFC3339Nano)
	keys := make([]string, clients)
	revs := make([]int64, clients)
	value := func(i int) string {
		data, _ := json.Marshal(leaseRecord{
			HolderIdentity: fmt.Sprintf("holder-%d", i), LeaseDurationSeconds: 15,
			AcquireTime: acquired, RenewTime: time.Now().UTC().Format(time.RFC3339Nano),
		})
		return string(data)
	}
	for i := range keys {
		keys[i] = fmt.Sprintf("/b9/leases/lease-%d", i)
		resp, err := cli.Put(ctx, keys[i], value(i))
		if err != nil {
			return nil, fmt.Errorf("cannot write lease record: %w", err)
		}
		revs[i] = resp.Header.Revision
	}
	return func(ctx context.Context, i, _ int) error {
		for range casAttempts {
			resp, err := cli.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(keys[i]), "=", revs[i])).
				Then(clientv3.OpPut(keys[i], value(i))).
				Else(clientv3.OpGet(keys[i])).
				Commit()
			if err != nil {
				return err
			}
			if resp.Succeeded {
				revs[i] = resp.Header.Revision
				return nil
			}
			revs[i] = 0
			if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
				revs[i] = kvs[0].ModRevision
			}
		}
		return errors.New("cannot renew lease record: lost the compare-and-swap")
	}, nil
}

// clientVersion is "go.etcd.io/etcd/client/v3 VERSION", as built in.
func clientVersion() string {
	const path = "go.etcd.io/etcd/client/v3"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return path + " " + d.Version
			}
		}
	}
	return path + " (unknown version)"
}
