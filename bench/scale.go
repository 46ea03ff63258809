package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/proc"
	"github.com/uniter-dev/uniter/bench/report"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/pki"
)

// The cadence of B6's simulated agents: the leadership tracker's, with
// the default G, and the agent's unit watch (agent/stream.go).
const (
	scaleClaim         = agent.DefaultGuarantee + 500*time.Millisecond // G + the tracker's margin
	scaleRetry         = 250 * time.Millisecond                        // the tracker's retry interval
	scaleWatchWait     = 30 * time.Second                              // the unit watch's wait
	agentWatchRetry    = 500 * time.Millisecond                        // its first pause after an error
	agentWatchMaxRetry = 5 * time.Second                               // its longest
)

// scaleSize is B6's load.
type scaleSize struct {
	apps, watchers int
	window, ramp   time.Duration
}

// runScale (B6) measures the controller at scale: a 3-node controller (`uniter
// controller` processes) holds max(apps, watchers) registered units spread
// over apps applications (three each at the full size), each with its own
// token. Unit 0 of every application is a leader that claims and then
// extends at the tracker's idle cadence (every (G+0.5 s)/2 with G = 30 s,
// retrying every 250 ms), and the first watchers units are agents, each in
// the one blocking query a unit agent parks: its unit's watch, which
// carries the lease, so every extend wakes its application's agents.
// Registering the units and ramping the watchers up is setup; then each
// of 3 trials runs the leaders for the window with counters of its own
// and reads every lease back. Each trial reports the leases lost
// (extends refused, or guarantees that lapsed, or a lease not held at the
// end), the controller processes' RSS and CPU from /proc, and the RSS
// the watchers cost: every node's growth from before the watchers started
// to the trial's end, added up, per watcher.
func runScale(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	// The full size ramps its agents up over a minute: 30,000 TLS
	// handshakes in 10 s on the machine's two cores (clients and nodes
	// together) were still going when trial 1 began and starved raft into
	// an election; agents do not all connect in the same seconds.
	size := pick(s, scaleSize{1000, 3000, 20 * time.Second, 2 * time.Second}, scaleSize{10000, 30000, 2 * time.Minute, time.Minute})
	if s.opts.B6 != "" {
		var err error
		if size, err = parseScaleSize(s.opts.B6, size.ramp); err != nil {
			return nil, err
		}
	}
	var extra []string
	maxBlocking := 0
	if deploy.HasFlag(ctx, env.Bin, "--max-blocking", "controller") {
		maxBlocking = size.watchers
		extra = []string{"--max-blocking", strconv.Itoa(maxBlocking)}
	}
	c, err := deploy.StartCluster(ctx, env, 3, extra...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	spread := statusSize{apps: size.apps, units: max(size.apps, size.watchers), leaders: size.apps, workers: 128}
	s.logf("B6: registering %d units of %d applications", spread.units, spread.apps)
	reg, err := registerSpread(ctx, s, "B6", c.Admin, "bsix", spread)
	if err != nil {
		return nil, err
	}
	units := reg.leaders
	l := &scaleLoad{size: size, units: units, until: make([]time.Time, len(units)), base: nodeRSS(c)}
	pool, err := poolClient(c.File, 256)
	if err != nil {
		return nil, err
	}
	if l.leaders, err = unitClients(c.File, units, c.Addresses(), pool); err != nil {
		return nil, err
	}
	s.logf("B6: %d watchers ramping up over %v", size.watchers, size.ramp)
	fleets, err := startFleets(s, env, c, size, reg.all)
	if err != nil {
		return nil, err
	}
	defer fleets.kill()
	if err := sleep(ctx, size.ramp+time.Second); err != nil {
		return nil, err
	}
	n := s.trials(3, 3)
	var trials []scaleTrial
	for i := range n {
		s.logf("B6 trial %d/%d: %d leaders for %v", i+1, n, size.apps, size.window)
		t, err := l.trial(ctx, c, fleets)
		if err != nil {
			return scaleRows(size, trials, maxBlocking), err
		}
		s.logf("B6 trial %d/%d: %d leases lost, %.0f watcher answers/s", i+1, n, t.lost(), t.watch.answers)
		trials = append(trials, t)
	}
	return scaleRows(size, trials, maxBlocking), nil
}

// parseScaleSize parses "APPS/WATCHERS/WINDOW".
func parseScaleSize(v string, ramp time.Duration) (scaleSize, error) {
	f := strings.Split(v, "/")
	if len(f) != 3 {
		return scaleSize{}, fmt.Errorf("bad B6 size %q: want APPS/WATCHERS/WINDOW", v)
	}
	apps, err1 := strconv.Atoi(f[0])
	watchers, err2 := strconv.Atoi(f[1])
	window, err3 := time.ParseDuration(f[2])
	if errors.Join(err1, err2, err3) != nil || apps < 1 || watchers < 0 || window <= 0 {
		return scaleSize{}, fmt.Errorf("bad B6 size %q: want APPS/WATCHERS/WINDOW", v)
	}
	return scaleSize{apps: apps, watchers: watchers, window: window, ramp: ramp}, nil
}

// scaleLoad is the simulated fleet of leaders. Each keeps its lease from one
// trial to the next, as an agent that runs on would.
type scaleLoad struct {
	size    scaleSize
	units   []loadUnit
	leaders []*client.Client
	// until is each leader's guarantee (zero: it holds no lease and
	// claims first). Leader i's goroutine owns until[i] during a trial.
	until []time.Time
	// base is each node's RSS (MiB, the cluster's order; -1 if not read)
	// with every unit registered, before the watchers started.
	base []float64
}

// nodeRSS is each node's RSS now, in MiB (-1 for one not read).
func nodeRSS(c *deploy.Cluster) []float64 {
	out := make([]float64, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = -1
		if p, err := proc.Read(n.PID()); err == nil {
			out[i] = proc.MB(p.RSSKB)
		}
	}
	return out
}

// scaleCounts are the leaders' counts in one trial's window.
type scaleCounts struct {
	claims, claimErrs, extends, extendErrs atomic.Int64
	refused, lapsed                        atomic.Int64
	// expired counts guarantees that ran out in the pause before the
	// trial, before their leader could renew them.
	expired       atomic.Int64
	firstErr      atomic.Value // string
	mu            sync.Mutex
	extendLatency []float64
}

// poolClient is an HTTPS client with conns idle connections per node,
// trusting the CA that f pins.
func poolClient(f client.File, conns int) (*http.Client, error) {
	pin := pki.Pin{CACert: []byte(f.Controller.CACert), Fingerprint: f.Controller.CAFingerprint}
	dialTLS, err := pin.DialTLSContext(&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialTLSContext:      dialTLS,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     2 * time.Minute,
	}}, nil
}

// scaleTrial is what one trial measured.
type scaleTrial struct {
	counts    *scaleCounts
	notHeld   int // leases not held by their leader at the end
	verifyErr error
	nodes     []scaleNode // the controller nodes, in the cluster's order
	// leader0 and leader are the raft leader's id before and after the
	// window ("" if unknown).
	leader0, leader string
	// selfCPU and fleetCPU are the load generators' CPU over the window:
	// the leaders (this harness) and the watcher fleets together.
	selfCPU, fleetCPU float64
	watch             watchRates
}

// scaleNode is one controller node's usage over a trial's window.
type scaleNode struct {
	id             string
	sampled        bool
	rss, peak, cpu float64 // MiB at the end, VmHWM MiB, % of a core
	// base is the node's RSS before the watchers started (MiB; -1 if
	// not read).
	base float64
}

// trial runs the leaders for one window while sampling the controller and
// fleet processes, then reads every lease back.
func (l *scaleLoad) trial(ctx context.Context, c *deploy.Cluster, f *fleets) (scaleTrial, error) {
	var t scaleTrial
	leader0, err := c.Leader(ctx)
	if err != nil {
		return t, err
	}
	t.leader0 = leader0.ID
	before, err := f.counts()
	if err != nil {
		return t, err
	}
	pids := append(c.PIDs(), f.pids()...)
	sampler := proc.StartSampler(pids, time.Second)
	self0, _ := proc.Read(os.Getpid())
	t.counts = l.run(ctx)
	self1, _ := proc.Read(os.Getpid())
	sampler.Stop(pids)
	if err := ctx.Err(); err != nil {
		return t, err
	}
	after, err := f.counts()
	if err != nil {
		return t, err
	}
	t.watch = watchDelta(before, after)
	t.notHeld, t.verifyErr = l.verify(ctx, c.Admin)
	if leader, err := c.Leader(ctx); err == nil {
		t.leader = leader.ID
	}
	for i, n := range c.Nodes {
		use := proc.Summarize(sampler.Samples(n.PID()))
		node := scaleNode{id: n.ID, sampled: len(use.RSSMB) > 0, peak: use.PeakMB, cpu: use.CPUPercent, base: -1}
		if i < len(l.base) {
			node.base = l.base[i]
		}
		if node.sampled {
			node.rss = use.RSSMB[len(use.RSSMB)-1]
		}
		t.nodes = append(t.nodes, node)
	}
	t.selfCPU, t.fleetCPU = proc.CPUPercent(self0, self1), f.cpu(sampler)
	return t, nil
}

// run runs every leader for the window with fresh counts.
func (l *scaleLoad) run(ctx context.Context) *scaleCounts {
	n := &scaleCounts{}
	lctx, stop := context.WithTimeout(ctx, l.size.window)
	defer stop()
	var wg sync.WaitGroup
	for i := range l.leaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.lead(lctx, i, n)
		}()
	}
	wg.Wait()
	return n
}

// lead is leader i for one window. A leader that holds no lease claims at
// a random point of its first renewal period; then (and from the start,
// if it still holds its lease from the last trial) it extends at half the
// claim, as the tracker does: at once if that fell due in the pause
// between trials.
func (l *scaleLoad) lead(ctx context.Context, i int, n *scaleCounts) {
	u, c, until := l.units[i], l.leaders[i], &l.until[i]
	if !until.IsZero() && time.Now().After(*until) {
		n.expired.Add(1)
		*until = time.Time{}
	}
	if until.IsZero() && !l.claim(ctx, u, c, until, n) {
		return
	}
	for {
		if sleep(ctx, time.Until(until.Add(-scaleClaim/2))) != nil {
			return
		}
		if !l.extend(ctx, u, c, until, n) {
			return
		}
	}
}

// claim claims u's lease at a random point of the first renewal period,
// retrying transient failures; it reports whether the leader holds it.
func (l *scaleLoad) claim(ctx context.Context, u loadUnit, c *client.Client, until *time.Time, n *scaleCounts) bool {
	if sleep(ctx, randomPhase(scaleClaim/2)) != nil {
		return false
	}
	for {
		t0 := time.Now()
		_, err := c.Claim(ctx, u.app, u.unit, scaleClaim)
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			n.claims.Add(1)
			*until = t0.Add(scaleClaim)
			return true
		}
		if client.StatusCode(err) == http.StatusConflict {
			n.refused.Add(1)
			return false
		}
		n.claimErrs.Add(1)
		n.firstErr.CompareAndSwap(nil, err.Error())
		if sleep(ctx, scaleRetry) != nil {
			return false
		}
	}
}

// extend renews once, retrying transient failures until the guarantee
// lapses; it reports whether the leader still holds its lease. A leader
// that lost it is left with a zero guarantee, to claim in the next trial.
func (l *scaleLoad) extend(ctx context.Context, u loadUnit, c *client.Client, until *time.Time, n *scaleCounts) bool {
	for {
		t0 := time.Now()
		_, err := c.Extend(ctx, u.app, u.unit, scaleClaim, 0)
		if ctx.Err() != nil {
			return false
		}
		switch {
		case err == nil:
			n.extends.Add(1)
			n.mu.Lock()
			n.extendLatency = append(n.extendLatency, float64(time.Since(t0))/1e6)
			n.mu.Unlock()
			*until = t0.Add(scaleClaim)
			return true
		case client.StatusCode(err) == http.StatusConflict:
			n.refused.Add(1)
			*until = time.Time{}
			return false
		}
		n.extendErrs.Add(1)
		n.firstErr.CompareAndSwap(nil, err.Error())
		if time.Now().Add(scaleRetry).After(*until) {
			n.lapsed.Add(1)
			*until = time.Time{}
			return false
		}
		if sleep(ctx, scaleRetry) != nil {
			return false
		}
	}
}

// verify counts the applications whose lease its leader no longer holds.
func (l *scaleLoad) verify(ctx context.Context, admin *client.Client) (int, error) {
	var notHeld atomic.Int64
	next := make(chan loadUnit)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range next {
				ls, _, err := admin.WatchLease(ctx, u.app, 0, 0)
				if err != nil {
					select {
					case errs <- fmt.Errorf("cannot read lease of %s: %w", u.app, err):
					default:
					}
					continue
				}
				if ls.Holder != u.unit {
					notHeld.Add(1)
				}
			}
		}()
	}
	for _, u := range l.units {
		next <- u
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return int(notHeld.Load()), nil
}

// lost is the trial's leases lost: refused, lapsed (in the window or in
// the pause before it), or not held at the end, whichever is most.
func (t scaleTrial) lost() int {
	n := t.counts
	return max(t.notHeld, int(n.refused.Load()+n.lapsed.Load()+n.expired.Load()))
}

// busiest is the largest of f over the trial's sampled nodes.
func (t scaleTrial) busiest(f func(scaleNode) float64) float64 {
	var m float64
	for _, n := range t.nodes {
		if n.sampled {
			m = max(m, f(n))
		}
	}
	return m
}

// perWatcher is the RSS the watchers cost in the trial, in KiB per
// watcher: every node's growth from its base to the trial's end, added
// up, over watchers (ok false if a node was not read, or no watchers).
func (t scaleTrial) perWatcher(watchers int) (kib float64, ok bool) {
	if watchers <= 0 || len(t.nodes) == 0 {
		return 0, false
	}
	var sum float64
	for _, n := range t.nodes {
		if !n.sampled || n.base < 0 {
			return 0, false
		}
		sum += n.rss - n.base
	}
	return sum * 1024 / float64(watchers), true
}

// scaleRows are B6's rows: one value per trial, but extend latency, which
// is over every extend of every trial. maxBlocking is the controller's
// --max-blocking (0: it has no such flag).
func scaleRows(size scaleSize, trials []scaleTrial, maxBlocking int) []report.Row {
	if len(trials) == 0 {
		return nil
	}
	var lost, rss, perW, cpu, answers, latency []float64
	for _, t := range trials {
		lost = append(lost, float64(t.lost()))
		rss = append(rss, t.busiest(func(n scaleNode) float64 { return n.rss }))
		if kib, ok := t.perWatcher(size.watchers); ok {
			perW = append(perW, kib)
		}
		cpu = append(cpu, t.busiest(func(n scaleNode) float64 { return n.cpu }))
		answers = append(answers, t.watch.answers)
		latency = append(latency, t.counts.extendLatency...)
	}
	rows := []report.Row{
		newRow("leases_lost", "leases", lost).WithFacts(leasesFacts(size, trials)),
		newRow("controller_rss", "MiB", rss).WithFacts(rssFacts(trials)),
	}
	if len(perW) > 0 {
		rows = append(rows, newRow("rss_per_watcher", "KiB", perW).WithFacts(perWatcherFacts(size, trials)))
	}
	return append(rows,
		newRow("controller_cpu", "% of a core", cpu).WithFacts(cpuFacts(trials)),
		newRow("extend_latency", "ms", latency).WithPercentiles(latency),
		newRow("watcher_answers", "answers/s", answers).WithFacts(watchFacts(trials, maxBlocking)),
	)
}

// scalePerWatcher are the facts of B6's RSS-per-watcher row: each node's
// RSS before the watchers started (MiB, in the order of Nodes; null if
// not read) and the watchers over the three nodes.
type scalePerWatcher struct {
	Nodes    []string   `json:"nodes"`
	BaseMiB  []*float64 `json:"base_mib"`
	Watchers int        `json:"watchers"`
	Units    int        `json:"units"`
}

func perWatcherFacts(size scaleSize, trials []scaleTrial) scalePerWatcher {
	t := trials[len(trials)-1]
	f := scalePerWatcher{Nodes: nodeIDs(trials), Watchers: size.watchers, Units: max(size.apps, size.watchers)}
	for _, n := range t.nodes {
		var v *float64
		if n.base >= 0 {
			b := n.base
			v = &b
		}
		f.BaseMiB = append(f.BaseMiB, v)
	}
	return f
}

// scaleLeases are the facts of B6's leases-lost row: the load, and what
// the leaders did in each trial.
type scaleLeases struct {
	Apps     int               `json:"apps"`
	Watchers int               `json:"watchers"`
	WindowS  float64           `json:"window_s"`
	RetryMS  float64           `json:"retry_ms"`
	Trials   []scaleLeaseTrial `json:"trials"`
}

// scaleLeaseTrial is what the leaders did in one trial.
type scaleLeaseTrial struct {
	Trial       int     `json:"trial"`
	Claims      int64   `json:"claims"`
	Extends     int64   `json:"extends"`
	ExtendsPerS float64 `json:"extends_per_s"`
	ClaimErrs   int64   `json:"claim_errs"`
	ExtendErrs  int64   `json:"extend_errs"`
	FirstErr    string  `json:"first_err"`
	Refused     int64   `json:"refused"`
	Lapsed      int64   `json:"lapsed"`
	// Expired counts guarantees that ran out in the pause before the
	// trial; NotHeld, leases not held by their leader at its end.
	Expired int64 `json:"expired"`
	NotHeld int   `json:"not_held"`
	// VerifyErr is why the leases could not all be read back ("": they
	// were).
	VerifyErr string `json:"verify_err"`
}

func leasesFacts(size scaleSize, trials []scaleTrial) scaleLeases {
	f := scaleLeases{Apps: size.apps, Watchers: size.watchers, WindowS: size.window.Seconds(), RetryMS: msOf(scaleRetry)}
	for i, t := range trials {
		n := t.counts
		lt := scaleLeaseTrial{Trial: i + 1, Claims: n.claims.Load(), Extends: n.extends.Load(),
			ExtendsPerS: float64(n.extends.Load()) / size.window.Seconds(),
			ClaimErrs:   n.claimErrs.Load(), ExtendErrs: n.extendErrs.Load(),
			Refused: n.refused.Load(), Lapsed: n.lapsed.Load(), Expired: n.expired.Load(), NotHeld: t.notHeld}
		if e, ok := n.firstErr.Load().(string); ok {
			lt.FirstErr = e
		}
		if t.verifyErr != nil {
			lt.VerifyErr = t.verifyErr.Error()
		}
		f.Trials = append(f.Trials, lt)
	}
	return f
}

// scaleRSS are the facts of B6's RSS row: each node's RSS at the end of
// each trial and its peak (VmHWM) over the run, in the order of Nodes
// (null for a node not sampled), and the raft leader at the start and
// every change of it since.
type scaleRSS struct {
	Nodes         []string         `json:"nodes"`
	Trials        []scaleNodeTrial `json:"trials"`
	PeakMiB       []*float64       `json:"peak_mib"`
	Leader        string           `json:"leader"`
	LeaderChanges []leaderChange   `json:"leader_changes"`
}

// scaleCPU are the facts of B6's CPU row: each node's CPU in each trial,
// and the load generators' (the leaders, in this harness, and the watcher
// fleets), all in % of a core, on a machine of Cores cores.
type scaleCPU struct {
	Nodes  []string        `json:"nodes"`
	Cores  int             `json:"cores"`
	Trials []scaleCPUTrial `json:"trials"`
}

// scaleNodeTrial is each node's figure in one trial.
type scaleNodeTrial struct {
	Trial  int        `json:"trial"`
	Values []*float64 `json:"values"`
}

type scaleCPUTrial struct {
	scaleNodeTrial
	HarnessCPU float64 `json:"harness_cpu"`
	FleetsCPU  float64 `json:"fleets_cpu"`
}

// leaderChange is one change of the raft leader: in a trial (InTrial) or
// between two (AfterTrial and NextTrial); "" is a leader not known.
type leaderChange struct {
	InTrial    int    `json:"in_trial"`
	AfterTrial int    `json:"after_trial"`
	NextTrial  int    `json:"next_trial"`
	From       string `json:"from"`
	To         string `json:"to"`
}

// perNode is f of each of a trial's nodes (nil for one not sampled).
func perNode(t scaleTrial, f func(scaleNode) float64) []*float64 {
	out := make([]*float64, len(t.nodes))
	for i, n := range t.nodes {
		if n.sampled {
			v := f(n)
			out[i] = &v
		}
	}
	return out
}

// nodeIDs are the ids of the last trial's nodes.
func nodeIDs(trials []scaleTrial) []string {
	var ids []string
	for _, n := range trials[len(trials)-1].nodes {
		ids = append(ids, n.id)
	}
	return ids
}

func rssFacts(trials []scaleTrial) scaleRSS {
	f := scaleRSS{Nodes: nodeIDs(trials), Leader: trials[0].leader0, LeaderChanges: leaderChanges(trials),
		PeakMiB: perNode(trials[len(trials)-1], func(n scaleNode) float64 { return n.peak })}
	for i, t := range trials {
		f.Trials = append(f.Trials, scaleNodeTrial{Trial: i + 1, Values: perNode(t, func(n scaleNode) float64 { return n.rss })})
	}
	return f
}

func cpuFacts(trials []scaleTrial) scaleCPU {
	f := scaleCPU{Nodes: nodeIDs(trials), Cores: runtime.NumCPU()}
	for i, t := range trials {
		f.Trials = append(f.Trials, scaleCPUTrial{
			scaleNodeTrial{Trial: i + 1, Values: perNode(t, func(n scaleNode) float64 { return n.cpu })},
			t.selfCPU, t.fleetCPU})
	}
	return f
}

// leaderChanges are the changes of the raft leader over the trials.
func leaderChanges(trials []scaleTrial) []leaderChange {
	changes := []leaderChange{}
	prev := trials[0].leader0
	for i, t := range trials {
		if t.leader0 != prev {
			changes = append(changes, leaderChange{AfterTrial: i, NextTrial: i + 1, From: prev, To: t.leader0})
		}
		if t.leader != t.leader0 {
			changes = append(changes, leaderChange{InTrial: i + 1, From: t.leader0, To: t.leader})
		}
		prev = t.leader
	}
	return changes
}

// scaleWatch are the facts of B6's watcher row: how the counts are read,
// the cap on blocking queries (0: the controller's default), and the
// watchers' failures in each trial.
type scaleWatch struct {
	CountsEveryMS float64           `json:"counts_every_ms"`
	MaxBlocking   int               `json:"max_blocking"`
	Trials        []scaleWatchTrial `json:"trials"`
	// FirstErr is the first watch error other than busy ("": none).
	FirstErr string `json:"first_err"`
}

// scaleWatchTrial is the watchers' failures in one trial: busy (503)
// answers per second, after the client's own retries, and other errors.
type scaleWatchTrial struct {
	Trial    int     `json:"trial"`
	BusyPerS float64 `json:"busy_per_s"`
	Errs     int64   `json:"errs"`
}

func watchFacts(trials []scaleTrial, maxBlocking int) scaleWatch {
	f := scaleWatch{CountsEveryMS: msOf(countsEvery), MaxBlocking: maxBlocking}
	for i, t := range trials {
		f.Trials = append(f.Trials, scaleWatchTrial{Trial: i + 1, BusyPerS: t.watch.busy, Errs: t.watch.errs})
		if f.FirstErr == "" {
			f.FirstErr = t.watch.firstErr
		}
	}
	return f
}
