package bench

import (
	"context"
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

// runEtcdBaseline (B9) runs B1 and B5 for etcd (Debian's etcd-server, installed if
// missing): election failover with a lease TTL equal to B1's G, and lease
// grant+keep-alive throughput from 64 clients through etcd's JSON
// gateway, on 1 and 3 nodes. Ratios are ours / etcd, against B1 and B5 of
// the same run.
func runEtcdBaseline(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	if err := etcd.Ensure(ctx); err != nil {
		return nil, err
	}
	version := etcd.Version(ctx)
	s.logf("B9: %s", version)
	fo, err := etcdFailover(ctx, s, deploy.Env{Bin: env.Bin, Dir: filepath.Join(env.Dir, "failover")})
	if err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	rows := etcdFailoverRows(version, fo, s.published(publishedFailover))
	for _, nodes := range []int{1, 3} {
		sub := deploy.Env{Bin: env.Bin, Dir: filepath.Join(env.Dir, fmt.Sprintf("%dnode", nodes))}
		t, err := etcdThroughput(ctx, s, sub, nodes)
		if err != nil {
			return rows, fmt.Errorf("%d node(s): %w", nodes, err)
		}
		rows = append(rows, etcdThroughputRows(t, nodes, s.published(fmt.Sprintf(publishedOps, nodes)))...)
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

// etcdThroughputRows are etcd's throughput and latency on nodes and, if
// B5 ran, our ops/s against etcd's.
func etcdThroughputRows(t throughput, nodes int, ours []float64) []report.Row {
	suffix := fmt.Sprintf("_%dnode", nodes)
	rows := []report.Row{t.opsRow("etcd_ops"+suffix, nodes), t.latencyRow("etcd_latency"+suffix, nodes)}
	if len(ours) > 0 {
		rows = append(rows, newRow("uniter_vs_etcd_ops"+suffix, "ops/s", ours).
			WithBaseline("etcd", stats.Summarize(t.opsPerSec).Median))
	}
	return rows
}

// etcdFacts are the setup of B9's failover: etcd's version, the lease TTL
// (B1's G) and the number of candidate processes.
type etcdFacts struct {
	Version    string  `json:"version"`
	TTLS       float64 `json:"ttl_s"`
	Candidates int     `json:"candidates"`
}

// etcdCandidates is how many election candidates B9 runs.
const etcdCandidates = 3

// etcdThroughput is B5's load against etcd: 64 clients alternate granting
// a lease (a raft write) and keeping it alive (answered by the leader).
func etcdThroughput(ctx context.Context, s *Suite, env deploy.Env, nodes int) (throughput, error) {
	c, err := etcd.Start(ctx, env, nodes)
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
	return loadTrials(ctx, s, fmt.Sprintf("B9 etcd %d node(s)", nodes), op)
}

// etcdFailover times etcd election failovers with etcdCandidates
// candidate processes.
func etcdFailover(ctx context.Context, s *Suite, env deploy.Env) ([]float64, error) {
	c, err := etcd.Start(ctx, env, 1)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	cs := &candidates{env: env, self: s.opts.Self, endpoint: c.Endpoints[0], live: map[string]*deploy.Process{}}
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

// candidates are the election candidate processes of B9.
type candidates struct {
	env            deploy.Env
	self, endpoint string
	live           map[string]*deploy.Process
	next           int
}

func (cs *candidates) events(name string) string {
	return filepath.Join(cs.env.Dir, name+".events")
}

func (cs *candidates) start() error {
	cs.next++
	name := fmt.Sprintf("cand-%d", cs.next)
	p, err := deploy.Start(cs.env, name, filepath.Join(cs.env.Dir, name+".out"), cs.self, etcd.CandidateArg,
		"--endpoint", cs.endpoint, "--election", "b9", "--name", name,
		"--ttl", strconv.Itoa(int(failoverG/time.Second)), "--events", cs.events(name))
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
