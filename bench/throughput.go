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
// token, alternate claim and extend of their lease back to back (from
// protocol 7 the raft leader answers both from memory once the lease is
// held, and writes them back a tick later; the "renewals to the log"
// cluster makes every one a raft write), against a 1-node and a 3-node controller of
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
		r.unbatched.latencyRow("latency"+suffix+"_unbatched", nodes),
		r.logRenewals.opsRow("ops"+suffix+"_log_renewals", nodes).WithBaseline("renewals from memory", spread),
		r.logRenewals.latencyRow("latency"+suffix+"_log_renewals", nodes)}
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
// every write in a raft entry of its own; and, on another started with
// --leader-renew=false, with every renewal a raft write (the trials of
// all three alternate).
type throughputResult struct {
	spread, onLeader, forwarded, manyUnits, unbatched, logRenewals throughput
}

// startVariant starts another cluster of nodes run with flags (in
// directory env.Dir + suffix), with B5's units, for a comparison: its
// trials alternate with the default cluster's.
func startVariant(ctx context.Context, env deploy.Env, nodes int, suffix string, flags ...string) (*deploy.Cluster, []loadUnit, error) {
	off := deploy.Env{Bin: env.Bin, Dir: env.Dir + suffix}
	c, err := deploy.StartCluster(ctx, off, nodes, flags...)
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
	res, err := variantTrials(ctx, s, env, c, units, nodes)
	if err != nil {
		return res, err
	}
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

// variantTrials runs B5's alternating trials on c (with units) and on two
// more clusters of as many nodes, one with batching off and one with
// every renewal a log entry, and stops those two.
func variantTrials(ctx context.Context, s *Suite, env deploy.Env, c *deploy.Cluster, units []loadUnit, nodes int) (throughputResult, error) {
	var res throughputResult
	off, offUnits, err := startVariant(ctx, env, nodes, "-unbatched", "--batch-writes=false")
	if err != nil {
		return res, fmt.Errorf("batching off: %w", err)
	}
	defer off.Close()
	logged, loggedUnits, err := startVariant(ctx, env, nodes, "-log-renewals", "--leader-renew=false")
	if err != nil {
		return res, fmt.Errorf("leader renewals off: %w", err)
	}
	defer logged.Close()
	var loads []namedLoad
	for _, v := range []struct {
		what  string
		f     client.File
		units []loadUnit
		addrs []string
	}{
		{"", c.File, units, c.Addresses()},
		{", batching off", off.File, offUnits, off.Addresses()},
		{", renewals to the log", logged.File, loggedUnits, logged.Addresses()},
	} {
		op, closeClients, err := leaseLoad(v.f, v.units, v.addrs)
		if err != nil {
			return res, err
		}
		defer closeClients()
		loads = append(loads, namedLoad{fmt.Sprintf("B5 %d node(s)%s", nodes, v.what), op})
	}
	t, err := interleavedTrials(ctx, s, loads)
	if err != nil {
		return res, err
	}
	res.spread, res.unbatched, res.logRenewals = t[0], t[1], t[2]
	return res, nil
}
