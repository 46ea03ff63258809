package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/report"
	"github.com/uniter-dev/uniter/bench/stats"
	"github.com/uniter-dev/uniter/controller/client"
)

// throughputLease is the lease duration B5's claims and extends ask for.
const throughputLease = 30 * time.Second

// runThroughput (B5) measures the lease store's write throughput through the HTTP API:
// 64 clients, each a registered unit of its own application with its own
// token, alternate claim and extend of their lease back to back (every
// one a raft write), against a 1-node and a 3-node controller of
// `uniter controller` processes on loopback. Clients spread their first
// address over the nodes; a write that reaches a follower is forwarded,
// and its answer names the raft leader, where the client sends its later
// writes (the typed client's leader hint).
func runThroughput(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	var rows []report.Row
	for _, nodes := range []int{1, 3} {
		sub := deploy.Env{Bin: env.Bin, Dir: filepath.Join(env.Dir, fmt.Sprintf("%dnode", nodes))}
		t, err := throughputTopology(ctx, s, sub, nodes)
		if err != nil {
			return rows, fmt.Errorf("%d node(s): %w", nodes, err)
		}
		s.publish(fmt.Sprintf(publishedOps, nodes), t.spread.opsPerSec)
		rows = append(rows, t.rows(nodes)...)
	}
	return rows, nil
}

// rows are one topology's rows: ops/s and latency with the clients spread
// (the registry judges the ops/s of 3 nodes), and the ops/s of the
// diagnostics against the spread clients'. Metrics are named by node
// count: ops_1node, latency_3node, ops_3node_on_leader...
func (r throughputResult) rows(nodes int) []report.Row {
	suffix := fmt.Sprintf("_%dnode", nodes)
	spread := stats.Summarize(r.spread.opsPerSec).Median
	rows := []report.Row{r.spread.opsRow("ops"+suffix, nodes), r.spread.latencyRow("latency"+suffix, nodes),
		r.unbatched.opsRow("ops"+suffix+"_unbatched", nodes).WithBaseline("batching on", spread),
		r.unbatched.latencyRow("latency"+suffix+"_unbatched", nodes)}
	if nodes == 1 {
		return append(rows, r.manyUnits.opsRow("ops"+suffix+"_idle_units", nodes).
			WithBaseline(fmt.Sprintf("%d units", loadClients), spread).
			WithFacts(idleUnitsFacts{r.manyUnits.facts(nodes), throughputIdleUnits}))
	}
	return append(rows,
		r.onLeader.opsRow("ops"+suffix+"_on_leader", nodes).WithBaseline("clients spread", spread),
		r.forwarded.opsRow("ops"+suffix+"_forwarded", nodes).WithBaseline("clients spread", spread))
}

// idleUnitsFacts are the facts of the token-lookup diagnostic.
type idleUnitsFacts struct {
	loadFacts
	IdleUnits int `json:"idle_units"`
}

// throughputResult is one topology's throughput with clients spread over the
// nodes; with every client on the raft leader, and with clients that know
// only the followers, so that every write is forwarded (3 nodes); with
// throughputIdleUnits more units registered (1 node); and, on a cluster of
// its own started with --batch-writes=false, with clients spread and
// every write in a raft entry of its own (its trials alternate with the
// spread ones).
type throughputResult struct{ spread, onLeader, forwarded, manyUnits, unbatched throughput }

// startUnbatched starts a second cluster of nodes whose raft leader
// proposes every write alone (--batch-writes=false), with B5's units,
// for the comparison with batching: its trials alternate with the
// batched cluster's.
func startUnbatched(ctx context.Context, env deploy.Env, nodes int) (*deploy.Cluster, []loadUnit, error) {
	off := deploy.Env{Bin: env.Bin, Dir: env.Dir + "-unbatched"}
	c, err := deploy.StartCluster(ctx, off, nodes, "--batch-writes=false")
	if err != nil {
		return nil, nil, err
	}
	units, err := registerUnits(ctx, c.Admin, "bfive", loadClients, 16)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, units, nil
}

// throughputIdleUnits is how many idle units the token-lookup diagnostic
// adds.
const throughputIdleUnits = 10000

func throughputTopology(ctx context.Context, s *Suite, env deploy.Env, nodes int) (throughputResult, error) {
	c, err := deploy.StartCluster(ctx, env, nodes)
	if err != nil {
		return throughputResult{}, err
	}
	defer c.Close()
	units, err := registerUnits(ctx, c.Admin, "bfive", loadClients, 16)
	if err != nil {
		return throughputResult{}, err
	}
	var res throughputResult
	off, offUnits, err := startUnbatched(ctx, env, nodes)
	if err != nil {
		return res, fmt.Errorf("batching off: %w", err)
	}
	on, closeOn, err := leaseLoad(c.File, units, c.Addresses())
	if err != nil {
		off.Close()
		return res, err
	}
	unbatched, closeOff, err := leaseLoad(off.File, offUnits, off.Addresses())
	if err != nil {
		closeOn()
		off.Close()
		return res, err
	}
	t, err := interleavedTrials(ctx, s, []namedLoad{
		{"B5 " + fmt.Sprintf("%d node(s)", nodes), on},
		{"B5 " + fmt.Sprintf("%d node(s), batching off", nodes), unbatched},
	})
	closeOn()
	closeOff()
	off.Close()
	if err != nil {
		return res, err
	}
	res.spread, res.unbatched = t[0], t[1]
	if nodes == 1 {
		if _, err := registerUnits(ctx, c.Admin, "bidle", throughputIdleUnits, 64); err != nil {
			return res, err
		}
		res.manyUnits, err = throughputTrials(ctx, s, c.File, units, c.Addresses(), fmt.Sprintf("1 node, %d more units", throughputIdleUnits))
		return res, err
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		return res, err
	}
	if res.onLeader, err = throughputTrials(ctx, s, c.File, units, []string{leader.APIAddr}, "3 nodes, on the leader"); err != nil {
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
	res.forwarded, err = throughputTrials(ctx, s, c.File, units, followers, "3 nodes, followers only")
	return res, err
}

// throughputTrials runs B5's trials with clients of units over addrs.
func throughputTrials(ctx context.Context, s *Suite, f client.File, units []loadUnit, addrs []string, what string) (throughput, error) {
	op, closeClients, err := leaseLoad(f, units, addrs)
	if err != nil {
		return throughput{}, err
	}
	defer closeClients()
	return loadTrials(ctx, s, "B5 "+what, op)
}

// leaseLoad is B5's op, claim and extend alternating, with a client of
// each of units over addrs (trusting f's controller), and what closes the
// clients.
func leaseLoad(f client.File, units []loadUnit, addrs []string) (func(ctx context.Context, client, seq int) error, func(), error) {
	clients, err := unitClients(f, units, addrs, nil)
	if err != nil {
		return nil, nil, err
	}
	closeClients := func() {
		for _, cl := range clients {
			cl.Close()
		}
	}
	op := func(ctx context.Context, i, seq int) error {
		u := units[i]
		var err error
		if seq%2 == 0 {
			_, err = clients[i].Claim(ctx, u.app, u.unit, throughputLease)
		} else {
			_, err = clients[i].Extend(ctx, u.app, u.unit, throughputLease, 0)
		}
		return err
	}
	return op, closeClients, nil
}
