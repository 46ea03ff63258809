package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/etcd"
	"github.com/uniter-dev/uniter/bench/journal"
	"github.com/uniter-dev/uniter/bench/report"
	"github.com/uniter-dev/uniter/bench/stats"
)

// runEtcdBaseline (B9) runs B1 and B5 for etcd as its users run it: a
// current etcd server built from go.etcd.io/etcd/server/v3 and loads
// through etcd's Go client (clientv3, gRPC, one client per load process
// shared by its goroutines), both from the module bench/etcdv3, built
// here. Election failover with a lease TTL equal to B1's G; on 1 and 3
// nodes, 64 clients (a) alternating lease grant and keep-alive and (b)
// renewing lease records by compare-and-swap (every renewal a raft
// write), each on a fresh cluster; and, as a diagnostic, (a) through
// etcd's JSON gateway. Ratios are ours / etcd, against B1 and B5 of the
// same run.
func runEtcdBaseline(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	s.logf("B9: building etcd and its clientv3 load (%s)", etcd.ModuleDir)
	bins, err := etcd.Build(ctx, s.opts.Root, env.Dir)
	if err != nil {
		return nil, err
	}
	version := etcd.Version(ctx, bins.Server)
	s.logf("B9: %s", version)
	fo, err := etcdFailover(ctx, s, deploy.Env{Bin: env.Bin, Dir: filepath.Join(env.Dir, "failover")}, bins)
	if err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	rows := etcdFailoverRows(version, fo, s.published(publishedFailover))
	for _, nodes := range []int{1, 3} {
		sub := deploy.Env{Bin: env.Bin, Dir: filepath.Join(env.Dir, fmt.Sprintf("%dnode", nodes))}
		r, err := etcdTopology(ctx, s, sub, bins, nodes)
		if err != nil {
			return rows, fmt.Errorf("%d node(s): %w", nodes, err)
		}
		r.version = version
		rows = append(rows, r.rows(nodes, s.published(fmt.Sprintf(publishedOps, nodes)))...)
	}
	return rows, nil
}

// etcdFailoverRows are etcd's failover in ms and, if B1 ran, ours
// against it.
func etcdFailoverRows(version string, fo, ours []float64) []report.Row {
	rows := []report.Row{
		newRow("etcd_failover", "ms", fo).WithPercentiles(fo).
			WithFacts(etcdFacts{Version: version, TTLS: failoverG.Seconds(), Candidates: etcdCandidates}),
	}
	if len(ours) > 0 {
		rows = append(rows, newRow("uniter_vs_etcd_failover", "ms", ours).WithBaseline("etcd", stats.Summarize(fo).Median))
	}
	return rows
}

// etcdResult is one topology's etcd throughput: clientv3 lease
// grant+keep-alive, clientv3 CAS-renewed lease records, and grant+keep-alive
// through the JSON gateway (the diagnostic); the etcd server's version and
// the client module's.
type etcdResult struct {
	keepAlive, cas, gateway throughput
	version, client         string
}

// rows are one topology's B9 rows (metrics named by node count:
// etcd_ops_1node, etcd_cas_latency_3node...) and, if B5 ran (ours), our
// ops/s against each clientv3 form.
func (r etcdResult) rows(nodes int, ours []float64) []report.Row {
	suffix := fmt.Sprintf("_%dnode", nodes)
	facts := func(t throughput) etcdLoadFacts {
		return etcdLoadFacts{loadFacts: t.facts(nodes), Version: r.version, Client: r.client}
	}
	keepAlive := stats.Summarize(r.keepAlive.opsPerSec).Median
	cas := stats.Summarize(r.cas.opsPerSec).Median
	rows := []report.Row{
		r.keepAlive.opsRow("etcd_ops"+suffix, nodes).WithFacts(facts(r.keepAlive)),
		r.keepAlive.latencyRow("etcd_latency"+suffix, nodes).WithFacts(facts(r.keepAlive)),
	}
	if len(ours) > 0 {
		rows = append(rows, newRow("uniter_vs_etcd_ops"+suffix, "ops/s", ours).WithBaseline("etcd clientv3", keepAlive))
	}
	rows = append(rows,
		r.cas.opsRow("etcd_cas_ops"+suffix, nodes).WithFacts(facts(r.cas)),
		r.cas.latencyRow("etcd_cas_latency"+suffix, nodes).WithFacts(facts(r.cas)))
	if len(ours) > 0 {
		rows = append(rows, newRow("uniter_vs_etcd_cas"+suffix, "ops/s", ours).WithBaseline("etcd clientv3 CAS", cas))
	}
	return append(rows, r.gateway.opsRow("etcd_gateway_ops"+suffix, nodes).WithBaseline("etcd clientv3", keepAlive))
}

// etcdFacts are the setup of B9's failover: etcd's version, the lease TTL
// (B1's G) and the number of candidate processes.
type etcdFacts struct {
	Version    string  `json:"version"`
	TTLS       float64 `json:"ttl_s"`
	Candidates int     `json:"candidates"`
}

// etcdLoadFacts are a clientv3 load row's setup: the load's, the etcd
// server's version and the client module's.
type etcdLoadFacts struct {
	loadFacts
	Version string `json:"version"`
	Client  string `json:"client"`
}

// etcdCandidates is how many election candidates B9 runs.
const etcdCandidates = 3

// etcdTopology measures each form of the load on a fresh etcd cluster of
// nodes, so that none inherits another's leases and keys.
func etcdTopology(ctx context.Context, s *Suite, env deploy.Env, bins etcd.Binaries, nodes int) (etcdResult, error) {
	var r etcdResult
	sub := func(name string) deploy.Env { return deploy.Env{Bin: env.Bin, Dir: filepath.Join(env.Dir, name)} }
	var err error
	if r.keepAlive, r.client, err = etcdClientLoad(ctx, s, sub("keepalive"), bins, nodes, etcd.ModeGrantKeepAlive); err != nil {
		return r, err
	}
	if r.cas, _, err = etcdClientLoad(ctx, s, sub("cas"), bins, nodes, etcd.ModeCAS); err != nil {
		return r, err
	}
	r.gateway, err = etcdGateway(ctx, s, sub("gateway"), bins, nodes)
	return r, err
}

// etcdClientLoad runs B5's trials (loadPlan) against an etcd cluster of
// nodes in etcdload, one process with one clientv3 client of every member
// shared by loadClients goroutines, in mode. It returns the client
// module's version too.
func etcdClientLoad(ctx context.Context, s *Suite, env deploy.Env, bins etcd.Binaries, nodes int, mode string) (throughput, string, error) {
	c, err := etcd.Start(ctx, env, bins.Server, nodes)
	if err != nil {
		return throughput{}, "", err
	}
	defer c.Close()
	n, window := loadPlan(s)
	load := etcd.Load{Endpoints: c.Endpoints, Mode: mode, Clients: loadClients, Warmup: loadWarmup, Trials: n, Window: window}
	trials, err := load.Run(ctx, bins.Load, filepath.Join(env.Dir, "load.err"))
	if err != nil {
		return throughput{}, "", err
	}
	var t throughput
	for _, tr := range trials {
		if tr.Ops == 0 {
			return t, "", fmt.Errorf("no op succeeded: %s", tr.FirstErr)
		}
		s.logf("B9 etcd clientv3 %s %d node(s) trial %d/%d: %.0f ops/s, %d errors", mode, nodes, tr.Trial, n, tr.OpsPerSec(), tr.Errs)
		var first error
		if tr.FirstErr != "" {
			first = errors.New(tr.FirstErr)
		}
		t.add(loadResult{ops: tr.Ops, errs: tr.Errs, latency: tr.LatencyMS(),
			elapsed: time.Duration(tr.ElapsedS * float64(time.Second)), firstErr: first})
	}
	return t, trials[0].Client, nil
}

// etcdGateway is the diagnostic: B5's load as 64 clients alternating
// lease grant and keep-alive through etcd's JSON gateway over HTTP/1.1
// (what B9 measured before it had clientv3), in this process.
func etcdGateway(ctx context.Context, s *Suite, env deploy.Env, bins etcd.Binaries, nodes int) (throughput, error) {
	c, err := etcd.Start(ctx, env, bins.Server, nodes)
	if err != nil {
		return throughput{}, err
	}
	defer c.Close()
	clients := make([]*etcd.Client, loadClients)
	ids := make([]string, loadClients)
	for i := range clients {
		clients[i] = etcd.NewClient(c.Endpoints[i%len(c.Endpoints)])
	}
	// Long leases, so none expires (and is revoked by etcd) in the run.
	const ttl = 600
	op := func(ctx context.Context, i, seq int) error {
		if seq%2 == 0 || ids[i] == "" {
			id, err := clients[i].Grant(ctx, ttl)
			ids[i] = id
			return err
		}
		return clients[i].KeepAlive(ctx, ids[i])
	}
	return loadTrials(ctx, s, fmt.Sprintf("B9 etcd JSON gateway %d node(s)", nodes), op)
}

// etcdFailover times etcd election failovers with etcdCandidates
// candidate processes.
func etcdFailover(ctx context.Context, s *Suite, env deploy.Env, bins etcd.Binaries) ([]float64, error) {
	c, err := etcd.Start(ctx, env, bins.Server, 1)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	cs := &candidates{env: env, bin: bins.Load, endpoint: c.Endpoints[0], live: map[string]*deploy.Process{}}
	defer cs.stop()
	for range etcdCandidates {
		if err := cs.start(); err != nil {
			return nil, err
		}
	}
	n := s.trials(3, 10)
	var out []float64
	for i := range n {
		d, err := cs.trial(ctx)
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		s.logf("B9 etcd failover trial %d/%d: %.0f ms", i+1, n, d)
		out = append(out, d)
	}
	return out, nil
}

// candidates are the election candidate processes of B9 (etcdload
// candidate: a clientv3 concurrency.Session and Election).
type candidates struct {
	env           deploy.Env
	bin, endpoint string
	live          map[string]*deploy.Process
	next          int
}

func (cs *candidates) events(name string) string {
	return filepath.Join(cs.env.Dir, name+".events")
}

func (cs *candidates) start() error {
	cs.next++
	name := fmt.Sprintf("cand-%d", cs.next)
	p, err := deploy.Start(cs.env, name, filepath.Join(cs.env.Dir, name+".out"), cs.bin, "candidate",
		"-endpoint", cs.endpoint, "-election", "b9", "-name", name,
		"-ttl", strconv.Itoa(int(failoverG/time.Second)), "-events", cs.events(name))
	if err != nil {
		return err
	}
	cs.live[name] = p
	return nil
}

func (cs *candidates) stop() {
	for _, p := range cs.live {
		p.Kill()
	}
}

// state reads a candidate's events: campaigning yet, and when elected.
func (cs *candidates) state(name string) (campaigning bool, elected int64) {
	data, _ := os.ReadFile(cs.events(name))
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && f[0] == "campaigning":
			campaigning = true
		case len(f) == 2 && f[0] == "elected":
			elected, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return campaigning, elected
}

// leader waits until one live candidate leads and the others campaign.
func (cs *candidates) leader(ctx context.Context) (string, error) {
	var leader string
	err := deploy.Poll(ctx, "elect an etcd candidate", 60*time.Second, 20*time.Millisecond, func() (bool, error) {
		leaders, waiting := 0, 0
		for name, p := range cs.live {
			if !p.Alive() {
				return false, fmt.Errorf("candidate %s exited: %v", name, p.Err())
			}
			campaigning, elected := cs.state(name)
			switch {
			case elected != 0:
				leaders, leader = leaders+1, name
			case campaigning:
				waiting++
			}
		}
		return leaders == 1 && leaders+waiting == len(cs.live), nil
	})
	return leader, err
}

// trial kills the leading candidate at a random point of its keep-alive
// cycle and returns the ms until another candidate is elected.
func (cs *candidates) trial(ctx context.Context) (float64, error) {
	leader, err := cs.leader(ctx)
	if err != nil {
		return 0, err
	}
	if err := sleep(ctx, randomPhase(failoverG/3)); err != nil {
		return 0, err
	}
	t0 := journal.Now()
	cs.live[leader].Kill()
	delete(cs.live, leader)
	var at int64
	err = deploy.Poll(ctx, "elect the next etcd candidate", 3*failoverG+30*time.Second, 5*time.Millisecond, func() (bool, error) {
		for name := range cs.live {
			if _, elected := cs.state(name); elected > t0 {
				at = elected
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return 0, err
	}
	if err := cs.start(); err != nil {
		return 0, err
	}
	return ms(at - t0), nil
}
