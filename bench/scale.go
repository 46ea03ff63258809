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
)

// The cadence of B6's simulated agents: the leadership tracker's, with
// the default G.
const (
	b6Claim     = agent.DefaultGuarantee + 500*time.Millisecond // G + the tracker's margin
	b6Retry     = 250 * time.Millisecond                        // the tracker's retry interval
	b6WatchWait = 30 * time.Second                              // the tracker's watch wait
)

// b6Size is B6's load.
type b6Size struct {
	apps, watchers int
	window, ramp   time.Duration
}

// runB6 measures the controller at scale: a 3-node controller (`uniter
// controller` processes) serves apps leaders that claim and then extend
// at the tracker's idle cadence (every (G+0.5 s)/2 with G = 30 s, retrying
// every 250 ms), and watchers minions, three per application, each in a
// blocking query on its application's lease as a minion's tracker does.
// Registering the units and ramping the watchers up is setup; then each
// of 3 trials runs the leaders for the window with counters of its own
// and reads every lease back. Each trial reports the leases lost
// (extends refused, or guarantees that lapsed, or a lease not held at the
// end), and the controller processes' RSS and CPU from /proc.
func runB6(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	size := pick(s, b6Size{1000, 3000, 20 * time.Second, 2 * time.Second}, b6Size{10000, 30000, 2 * time.Minute, 10 * time.Second})
	if s.opts.B6 != "" {
		var err error
		if size, err = parseB6Size(s.opts.B6, size.ramp); err != nil {
			return nil, err
		}
	}
	var extra []string
	if deploy.HasFlag(ctx, env.Bin, "--max-blocking", "controller") {
		extra = []string{"--max-blocking", strconv.Itoa(size.watchers)}
	}
	c, err := deploy.StartCluster(ctx, env, 3, extra...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	s.logf("B6: registering %d units", size.apps)
	units, err := registerUnits(ctx, c.Admin, "bsix", size.apps, 64)
	if err != nil {
		return nil, err
	}
	l := &b6Load{size: size, units: units, until: make([]time.Time, len(units))}
	if l.leaders, err = unitClients(units, c.Addresses(), poolClient(256)); err != nil {
		return nil, err
	}
	s.logf("B6: %d watchers ramping up over %v", size.watchers, size.ramp)
	fleets, err := startFleets(s, env, c, size)
	if err != nil {
		return nil, err
	}
	defer fleets.kill()
	if err := sleep(ctx, size.ramp+time.Second); err != nil {
		return nil, err
	}
	n := s.trials(3, 3)
	var trials []b6Trial
	for i := range n {
		s.logf("B6 trial %d/%d: %d leaders for %v", i+1, n, size.apps, size.window)
		t, err := l.trial(ctx, c, fleets)
		if err != nil {
			return b6Rows(size, trials, extra), err
		}
		s.logf("B6 trial %d/%d: %d leases lost, %.0f watcher answers/s", i+1, n, t.lost(), t.watch.answers)
		trials = append(trials, t)
	}
	return b6Rows(size, trials, extra), nil
}

// parseB6Size parses "APPS/WATCHERS/WINDOW".
func parseB6Size(v string, ramp time.Duration) (b6Size, error) {
	f := strings.Split(v, "/")
	if len(f) != 3 {
		return b6Size{}, fmt.Errorf("bad B6 size %q: want APPS/WATCHERS/WINDOW", v)
	}
	apps, err1 := strconv.Atoi(f[0])
	watchers, err2 := strconv.Atoi(f[1])
	window, err3 := time.ParseDuration(f[2])
	if errors.Join(err1, err2, err3) != nil || apps < 1 || watchers < 0 || window <= 0 {
		return b6Size{}, fmt.Errorf("bad B6 size %q: want APPS/WATCHERS/WINDOW", v)
	}
	return b6Size{apps: apps, watchers: watchers, window: window, ramp: ramp}, nil
}

// b6Load is the simulated fleet of leaders. Each keeps its lease from one
// trial to the next, as an agent that runs on would.
type b6Load struct {
	size    b6Size
	units   []loadUnit
	leaders []*client.Client
	// until is each leader's guarantee (zero: it holds no lease and
	// claims first). Leader i's goroutine owns until[i] during a trial.
	until []time.Time
}

// b6Counts are the leaders' counts in one trial's window.
type b6Counts struct {
	claims, claimErrs, extends, extendErrs atomic.Int64
	refused, lapsed                        atomic.Int64
	// expired counts guarantees that ran out in the pause before the
	// trial, before their leader could renew them.
	expired       atomic.Int64
	firstErr      atomic.Value // string
	mu            sync.Mutex
	extendLatency []float64
}

func poolClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     2 * time.Minute,
	}}
}

// b6Trial is what one trial measured.
type b6Trial struct {
	counts    *b6Counts
	notHeld   int // leases not held by their leader at the end
	verifyErr error
	nodes     []b6Node // the controller nodes, in the cluster's order
	// leader0 and leader are the raft leader's id before and after the
	// window ("" if unknown).
	leader0, leader string
	// selfCPU and fleetCPU are the load generators' CPU over the window:
	// the leaders (this harness) and the watcher fleets together.
	selfCPU, fleetCPU float64
	watch             b6Watch
}

// b6Node is one controller node's usage over a trial's window.
type b6Node struct {
	id             string
	sampled        bool
	rss, peak, cpu float64 // MiB at the end, VmHWM MiB, % of a core
}

// trial runs the leaders for one window while sampling the controller and
// fleet processes, then reads every lease back.
func (l *b6Load) trial(ctx context.Context, c *deploy.Cluster, f *fleets) (b6Trial, error) {
	var t b6Trial
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
	for _, n := range c.Nodes {
		use := proc.Summarize(sampler.Samples(n.PID()))
		node := b6Node{id: n.ID, sampled: len(use.RSSMB) > 0, peak: use.PeakMB, cpu: use.CPUPercent}
		if node.sampled {
			node.rss = use.RSSMB[len(use.RSSMB)-1]
		}
		t.nodes = append(t.nodes, node)
	}
	t.selfCPU, t.fleetCPU = proc.CPUPercent(self0, self1), f.cpu(sampler)
	return t, nil
}

// run runs every leader for the window with fresh counts.
func (l *b6Load) run(ctx context.Context) *b6Counts {
	n := &b6Counts{}
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
func (l *b6Load) lead(ctx context.Context, i int, n *b6Counts) {
	u, c, until := l.units[i], l.leaders[i], &l.until[i]
	if !until.IsZero() && time.Now().After(*until) {
		n.expired.Add(1)
		*until = time.Time{}
	}
	if until.IsZero() && !l.claim(ctx, u, c, until, n) {
		return
	}
	for {
		if sleep(ctx, time.Until(until.Add(-b6Claim/2))) != nil {
			return
		}
		if !l.extend(ctx, u, c, until, n) {
			return
		}
	}
}

// claim claims u's lease at a random point of the first renewal period,
// retrying transient failures; it reports whether the leader holds it.
func (l *b6Load) claim(ctx context.Context, u loadUnit, c *client.Client, until *time.Time, n *b6Counts) bool {
	if sleep(ctx, randomPhase(b6Claim/2)) != nil {
		return false
	}
	for {
		t0 := time.Now()
		_, err := c.Claim(ctx, u.app, u.unit, b6Claim)
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			n.claims.Add(1)
			*until = t0.Add(b6Claim)
			return true
		}
		if client.StatusCode(err) == http.StatusConflict {
			n.refused.Add(1)
			return false
		}
		n.claimErrs.Add(1)
		n.firstErr.CompareAndSwap(nil, err.Error())
		if sleep(ctx, b6Retry) != nil {
			return false
		}
	}
}

// extend renews once, retrying transient failures until the guarantee
// lapses; it reports whether the leader still holds its lease. A leader
// that lost it is left with a zero guarantee, to claim in the next trial.
func (l *b6Load) extend(ctx context.Context, u loadUnit, c *client.Client, until *time.Time, n *b6Counts) bool {
	for {
		t0 := time.Now()
		_, err := c.Extend(ctx, u.app, u.unit, b6Claim, 0)
		if ctx.Err() != nil {
			return false
		}
		switch {
		case err == nil:
			n.extends.Add(1)
			n.mu.Lock()
			n.extendLatency = append(n.extendLatency, float64(time.Since(t0))/1e6)
			n.mu.Unlock()
			*until = t0.Add(b6Claim)
			return true
		case client.StatusCode(err) == http.StatusConflict:
			n.refused.Add(1)
			*until = time.Time{}
			return false
		}
		n.extendErrs.Add(1)
		n.firstErr.CompareAndSwap(nil, err.Error())
		if time.Now().Add(b6Retry).After(*until) {
			n.lapsed.Add(1)
			*until = time.Time{}
			return false
		}
		if sleep(ctx, b6Retry) != nil {
			return false
		}
	}
}

// verify counts the applications whose lease its leader no longer holds.
func (l *b6Load) verify(ctx context.Context, admin *client.Client) (int, error) {
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
func (t b6Trial) lost() int {
	n := t.counts
	return max(t.notHeld, int(n.refused.Load()+n.lapsed.Load()+n.expired.Load()))
}

// busiest is the largest of f over the trial's sampled nodes.
func (t b6Trial) busiest(f func(b6Node) float64) float64 {
	var m float64
	for _, n := range t.nodes {
		if n.sampled {
			m = max(m, f(n))
		}
	}
	return m
}

// b6Rows are B6's rows: one value per trial, but extend latency, which is
// over every extend of every trial.
func b6Rows(size b6Size, trials []b6Trial, extra []string) []report.Row {
	if len(trials) == 0 {
		return nil
	}
	var lost, rss, cpu, answers, latency []float64
	for _, t := range trials {
		lost = append(lost, float64(t.lost()))
		rss = append(rss, t.busiest(func(n b6Node) float64 { return n.rss }))
		cpu = append(cpu, t.busiest(func(n b6Node) float64 { return n.cpu }))
		answers = append(answers, t.watch.answers)
		latency = append(latency, t.counts.extendLatency...)
	}
	const name = "scale"
	return []report.Row{
		report.NewRow("B6", name, fmt.Sprintf("leases lost per trial (%d apps, %d watchers, %v)", size.apps, size.watchers, size.window), "leases", lost).
			WithTarget(report.Target{Stat: "max", Op: "<=", Value: 0, Text: "0 in every trial"}).
			WithNote("%s", leasesNote(size, trials)),
		report.NewRow("B6", name, "controller RSS at the end of a trial, largest node", "MiB", rss).
			WithNote("%s", rssNote(trials)),
		report.NewRow("B6", name, "controller CPU over a trial's window, busiest node", "% of a core", cpu).
			WithNote("%s", cpuNote(trials)),
		report.NewRow("B6", name, "extend latency under the load (every extend of every trial)", "ms", latency).WithPercentiles(latency),
		report.NewRow("B6", name, "watcher answers (blocking queries returned)", "answers/s", answers).
			WithNote("%s", watchNote(trials, extra)),
	}
}

// leasesNote is what the leaders did in each trial.
func leasesNote(size b6Size, trials []b6Trial) string {
	var b strings.Builder
	for i, t := range trials {
		n := t.counts
		fmt.Fprintf(&b, "Trial %d: %d claims, %d extends (%.0f/s); %d failed claims and %d failed extends",
			i+1, n.claims.Load(), n.extends.Load(), float64(n.extends.Load())/size.window.Seconds(), n.claimErrs.Load(), n.extendErrs.Load())
		if e, ok := n.firstErr.Load().(string); ok {
			fmt.Fprintf(&b, " (first: %s)", e)
		}
		fmt.Fprintf(&b, "; %d refused, %d lapsed, %d leases not held by their leader at the end", n.refused.Load(), n.lapsed.Load(), t.notHeld)
		if e := n.expired.Load(); e > 0 {
			fmt.Fprintf(&b, "; %d guarantees ran out in the pause before the trial (counted as lost)", e)
		}
		b.WriteString(". ")
		if t.verifyErr != nil {
			fmt.Fprintf(&b, "The leases could not all be read back at the end of trial %d (%v): only refused and lapsed ones are counted. ", i+1, t.verifyErr)
		}
	}
	b.WriteString("Failed claims and extends are retried every 250 ms. Leaders keep their leases from one trial to the next: " +
		"each claims in trial 1 at a random point of its first renewal period, and later trials resume its renewals " +
		"(one that fell due in the pause between trials, while the leases were read back, is sent at once).")
	return b.String()
}

// rssNote is each node's RSS in each trial and the raft leader.
func rssNote(trials []b6Trial) string {
	last := trials[len(trials)-1]
	return fmt.Sprintf("Per node (%s) at the end of %s MiB; peak (VmHWM) per node over the run: %s MiB. %s",
		nodeIDs(last), perTrial(trials, func(n b6Node) float64 { return n.rss }),
		perNode(last, func(n b6Node) float64 { return n.peak }), leaderNote(trials))
}

// cpuNote is each node's CPU in each trial and the load generators'.
func cpuNote(trials []b6Trial) string {
	var self, fleet []float64
	for _, t := range trials {
		self, fleet = append(self, t.selfCPU), append(fleet, t.fleetCPU)
	}
	return fmt.Sprintf("Per node (%s) in %s %%. On the same %d cores, the load generators used %s %% (leaders, in the harness) "+
		"and %s %% (watcher fleets) of a core, trial by trial.",
		nodeIDs(trials[len(trials)-1]), perTrial(trials, func(n b6Node) float64 { return n.cpu }),
		runtime.NumCPU(), joinNums(self), joinNums(fleet))
}

// leaderNote names the raft leader, and every change of it.
func leaderNote(trials []b6Trial) string {
	var changes []string
	prev := trials[0].leader0
	for i, t := range trials {
		if t.leader0 != prev {
			changes = append(changes, fmt.Sprintf("between trials %d and %d (%s → %s)", i, i+1, orUnknown(prev), orUnknown(t.leader0)))
		}
		if t.leader != t.leader0 {
			changes = append(changes, fmt.Sprintf("in trial %d (%s → %s)", i+1, orUnknown(t.leader0), orUnknown(t.leader)))
		}
		prev = t.leader
	}
	if len(changes) == 0 {
		return fmt.Sprintf("The raft leader was %s throughout.", trials[0].leader0)
	}
	return fmt.Sprintf("The raft leader changed %s: the cluster held elections under the load.", strings.Join(changes, ", "))
}

func orUnknown(id string) string {
	if id == "" {
		return "unknown"
	}
	return id
}

// watchNote says what the watcher answers cover, and their failures.
func watchNote(trials []b6Trial, extra []string) string {
	var busy []float64
	var errs []string
	first := ""
	for _, t := range trials {
		busy = append(busy, t.watch.busy)
		errs = append(errs, strconv.FormatInt(t.watch.errs, 10))
		if first == "" {
			first = t.watch.firstErr
		}
	}
	limit := "the controller's default cap on blocking queries (1,024 per node; `uniter controller` has no flag to change it)"
	if len(extra) > 0 {
		limit = "--max-blocking " + extra[1]
	}
	every := countsEvery.Milliseconds()
	note := fmt.Sprintf("One value per trial: each fleet writes its running counts every %d ms, read just before and just after the window, "+
		"so each figure covers its trial's window to within %d ms. Busy (503) answers, after the client's own retries: %s /s; other watch errors: %s",
		every, every, joinNums(busy), strings.Join(errs, ", "))
	if first != "" {
		note += fmt.Sprintf(" (first: %s)", first)
	}
	return note + fmt.Sprintf(". Watchers are capped by %s.", limit)
}

// nodeIDs lists a trial's node ids.
func nodeIDs(t b6Trial) string {
	var ids []string
	for _, n := range t.nodes {
		ids = append(ids, n.id)
	}
	return strings.Join(ids, ", ")
}

// perTrial is f of every node, trial by trial: "trial 1: a, b, c; trial 2: ...".
func perTrial(trials []b6Trial, f func(b6Node) float64) string {
	var parts []string
	for i, t := range trials {
		parts = append(parts, fmt.Sprintf("trial %d: %s", i+1, perNode(t, f)))
	}
	return strings.Join(parts, "; ")
}

// perNode is f of each node of a trial ("–" for a node not sampled).
func perNode(t b6Trial, f func(b6Node) float64) string {
	var vs []string
	for _, n := range t.nodes {
		v := "–"
		if n.sampled {
			v = report.Num(f(n))
		}
		vs = append(vs, v)
	}
	return strings.Join(vs, ", ")
}

func joinNums(xs []float64) string {
	vs := make([]string, len(xs))
	for i, x := range xs {
		vs[i] = report.Num(x)
	}
	return strings.Join(vs, ", ")
}
