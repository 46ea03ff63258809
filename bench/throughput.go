package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/report"
	"github.com/uniter-dev/uniter/bench/stats"
)

// b5Clients is the number of concurrent clients of B5 and B9.
const b5Clients = 64

// b5Lease is the lease duration B5's claims and extends ask for.
const b5Lease = 30 * time.Second

// runB5 measures the lease store's write throughput through the HTTP API:
// 64 clients, each a registered unit of its own application with its own
// token, alternate claim and extend of their lease back to back (every
// one a raft write), against a 1-node and a 3-node controller of
// `uniter controller` processes on loopback. Clients spread their first
// address over the nodes; a write that reaches a follower is forwarded,
// and its answer names the raft leader, where the client sends its later
// writes (the typed client's leader hint).
func runB5(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	var rows []report.Row
	for _, nodes := range []int{1, 3} {
		sub := deploy.Env{Bin: env.Bin, Dir: filepath.Join(env.Dir, fmt.Sprintf("%dnode", nodes))}
		t, err := b5Topology(ctx, s, sub, nodes)
		if err != nil {
			return rows, fmt.Errorf("%d node(s): %w", nodes, err)
		}
		s.publish(fmt.Sprintf("B5.ops.%d", nodes), t.spread.opsPerSec)
		r := t.spread.rows("B5", "lease store throughput", "claim+extend, 64 clients", nodes)
		if nodes == 1 {
			mr := t.manyUnits.rows("B5", "lease store throughput", fmt.Sprintf("claim+extend, 64 clients, %d more units registered (diagnostic: token lookup)", b5IdleUnits), nodes)
			r = append(r, mr[0].WithBaseline("64 units", stats.Summarize(t.spread.opsPerSec).Median))
		}
		if nodes == 3 {
			r[0] = r[0].WithTarget(report.Target{Stat: "median", Op: ">=", Value: 5000, Text: "≥ 5,000 ops/s"})
			lr := t.onLeader.rows("B5", "lease store throughput", "claim+extend, 64 clients all on the raft leader (diagnostic: no forwarding)", nodes)
			r = append(r, lr[0].WithBaseline("clients spread", stats.Summarize(t.spread.opsPerSec).Median))
			fr := t.forwarded.rows("B5", "lease store throughput", "claim+extend, 64 clients that know only the followers (diagnostic: every write forwarded)", nodes)
			r = append(r, fr[0].WithBaseline("clients spread", stats.Summarize(t.spread.opsPerSec).Median))
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

// b5Result is one topology's throughput with clients spread over the
// nodes; with every client on the raft leader, and with clients that know
// only the followers, so that every write is forwarded (3 nodes); and with
// b5IdleUnits more units registered (1 node).
type b5Result struct{ spread, onLeader, forwarded, manyUnits throughput }

// b5IdleUnits is how many idle units the token-lookup diagnostic adds.
const b5IdleUnits = 10000

func b5Topology(ctx context.Context, s *Suite, env deploy.Env, nodes int) (b5Result, error) {
	c, err := deploy.StartCluster(ctx, env, nodes)
	if err != nil {
		return b5Result{}, err
	}
	defer c.Close()
	units, err := registerUnits(ctx, c.Admin, "bfive", b5Clients, 16)
	if err != nil {
		return b5Result{}, err
	}
	var res b5Result
	if res.spread, err = b5Trials(ctx, s, units, c.Addresses(), fmt.Sprintf("%d node(s)", nodes)); err != nil {
		return res, err
	}
	if nodes == 1 {
		if _, err := registerUnits(ctx, c.Admin, "bidle", b5IdleUnits, 64); err != nil {
			return res, err
		}
		res.manyUnits, err = b5Trials(ctx, s, units, c.Addresses(), fmt.Sprintf("1 node, %d more units", b5IdleUnits))
		return res, err
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		return res, err
	}
	if res.onLeader, err = b5Trials(ctx, s, units, []string{leader.APIAddr}, "3 nodes, on the leader"); err != nil {
		return res, err
	}
	// The leader hint names an address these clients were not given, so
	// they never follow it.
	var followers []string
	for _, a := range c.Addresses() {
		if a != leader.APIAddr {
			followers = append(followers, a)
		}
	}
	res.forwarded, err = b5Trials(ctx, s, units, followers, "3 nodes, followers only")
	return res, err
}

// b5Trials runs B5's trials with clients of units over addrs.
func b5Trials(ctx context.Context, s *Suite, units []loadUnit, addrs []string, what string) (throughput, error) {
	clients, err := unitClients(units, addrs, nil)
	if err != nil {
		return throughput{}, err
	}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	op := func(ctx context.Context, i, seq int) error {
		u := units[i]
		var err error
		if seq%2 == 0 {
			_, err = clients[i].Claim(ctx, u.app, u.unit, b5Lease)
		} else {
			_, err = clients[i].Extend(ctx, u.app, u.unit, b5Lease, 0)
		}
		return err
	}
	return loadTrials(ctx, s, "B5 "+what, op)
}
