package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
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
// It reports the leases lost (extends refused, or guarantees that lapsed,
// or a lease not held at the end), and the controller processes' RSS and
// CPU from /proc.
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
	l := &b6Load{size: size, units: units, addrs: c.Addresses()}
	if l.leaders, err = unitClients(units, l.addrs, poolClient(256)); err != nil {
		return nil, err
	}
	s.logf("B6: %d watchers ramping up over %v, then %d leaders for %v", size.watchers, size.ramp, size.apps, size.window)
	fleets, err := startFleets(s, env, c, size)
	if err != nil {
		return nil, err
	}
	defer fleets.kill()
	leader0, err := c.Leader(ctx)
	if err != nil {
		return nil, err
	}
	self0, _ := proc.Read(os.Getpid())
	sampler, err := l.run(ctx, c.PIDs(), fleets)
	if err != nil {
		return nil, err
	}
	self1, _ := proc.Read(os.Getpid())
	counts, err := fleets.stop()
	if err != nil {
		return nil, err
	}
	notHeld, verifyErr := l.verify(ctx, c.Admin)
	leader, _ := c.Leader(ctx)
	usage := b6Usage{sampler: sampler, leader0: leader0, leader: leader, selfCPU: proc.CPUPercent(self0, self1), fleetCPU: fleets.cpu(sampler)}
	rows := l.rows(c, usage, notHeld, counts, extra)
	if verifyErr != nil {
		rows[0] = rows[0].WithNote("The leases could not all be read back at the end (%v): only refused and lapsed ones are counted.", verifyErr)
	}
	return rows, nil
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

// b6Load is the simulated fleet.
type b6Load struct {
	size    b6Size
	units   []loadUnit
	addrs   []string
	leaders []*client.Client

	claims, claimErrs, extends, extendErrs atomic.Int64
	refused, lapsed                        atomic.Int64
	firstErr                               atomic.Value // string
	mu                                     sync.Mutex
	extendLatency                          []float64
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

// run waits for the watchers' ramp, then runs the leaders for the window
// while sampling the controller and fleet processes.
func (l *b6Load) run(ctx context.Context, pids []int, fleets *fleets) (*proc.Sampler, error) {
	if err := sleep(ctx, l.size.ramp+time.Second); err != nil {
		return nil, err
	}
	pids = append(pids, fleets.pids()...)
	sampler := proc.StartSampler(pids, time.Second)
	lctx, stop := context.WithTimeout(ctx, l.size.window)
	defer stop()
	var wg sync.WaitGroup
	for i := range l.leaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.lead(lctx, i)
		}()
	}
	<-lctx.Done()
	sampler.Stop(pids)
	wg.Wait()
	return sampler, ctx.Err()
}

// lead is one leader: claim at a random point of the first renewal
// period, then extend at half the claim, as the tracker does.
func (l *b6Load) lead(ctx context.Context, i int) {
	u, c := l.units[i], l.leaders[i]
	if sleep(ctx, randomPhase(b6Claim/2)) != nil {
		return
	}
	var until time.Time
	for {
		t0 := time.Now()
		_, err := c.Claim(ctx, u.app, u.unit, b6Claim)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			l.claims.Add(1)
			until = t0.Add(b6Claim)
			break
		}
		if client.StatusCode(err) == http.StatusConflict {
			l.refused.Add(1)
			return
		}
		l.claimErrs.Add(1)
		l.firstErr.CompareAndSwap(nil, err.Error())
		if sleep(ctx, b6Retry) != nil {
			return
		}
	}
	for {
		if sleep(ctx, time.Until(until.Add(-b6Claim/2))) != nil {
			return
		}
		ok := l.extend(ctx, u, c, &until)
		if !ok {
			return
		}
	}
}

// extend renews once, retrying transient failures until the guarantee
// lapses; it reports whether the leader still holds its lease.
func (l *b6Load) extend(ctx context.Context, u loadUnit, c *client.Client, until *time.Time) bool {
	for {
		t0 := time.Now()
		_, err := c.Extend(ctx, u.app, u.unit, b6Claim, 0)
		if ctx.Err() != nil {
			return false
		}
		switch {
		case err == nil:
			l.extends.Add(1)
			l.mu.Lock()
			l.extendLatency = append(l.extendLatency, float64(time.Since(t0))/1e6)
			l.mu.Unlock()
			*until = t0.Add(b6Claim)
			return true
		case client.StatusCode(err) == http.StatusConflict:
			l.refused.Add(1)
			return false
		}
		l.extendErrs.Add(1)
		l.firstErr.CompareAndSwap(nil, err.Error())
		if time.Now().Add(b6Retry).After(*until) {
			l.lapsed.Add(1)
			return false
		}
		if sleep(ctx, b6Retry) != nil {
			return false
		}
	}
}

// firstErrNote names the first failure of a claim or extend, if any.
func (l *b6Load) firstErrNote() string {
	if e, ok := l.firstErr.Load().(string); ok {
		return fmt.Sprintf(" (first: %s)", e)
	}
	return ""
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

// b6Usage is what B6 measured of the processes.
type b6Usage struct {
	sampler  *proc.Sampler
	leader0  *deploy.Node // raft leader before the window
	leader   *deploy.Node // and after
	selfCPU  float64      // the harness (the leaders' load)
	fleetCPU float64      // the watcher fleets, together
}

func (l *b6Load) rows(c *deploy.Cluster, u b6Usage, notHeld int, w watchCounts, extra []string) []report.Row {
	lost := float64(max(notHeld, int(l.refused.Load()+l.lapsed.Load())))
	var rss, peak, cpu []float64
	leaderNote := ""
	for _, n := range c.Nodes {
		use := proc.Summarize(u.sampler.Samples(n.PID()))
		if len(use.RSSMB) == 0 {
			continue
		}
		last := use.RSSMB[len(use.RSSMB)-1]
		rss, peak, cpu = append(rss, last), append(peak, use.PeakMB), append(cpu, use.CPUPercent)
		if u.leader != nil && n.ID == u.leader.ID {
			leaderNote = fmt.Sprintf("Raft leader %s: RSS %.0f MiB (peak %.0f), CPU %.0f %%.", n.ID, last, use.PeakMB, use.CPUPercent)
		}
	}
	if u.leader == nil || u.leader.ID != u.leader0.ID {
		leaderNote += fmt.Sprintf(" The raft leader changed during the run (was %s): the cluster held elections under the load.", u.leader0.ID)
	}
	secs := l.size.window.Seconds()
	limit := "the controller's default cap on blocking queries (1,024 per node; `uniter controller` has no flag to change it)"
	if len(extra) > 0 {
		limit = "--max-blocking " + extra[1]
	}
	const name = "scale"
	watchNote := fmt.Sprintf("Busy (503) answers, after the client's own retries: %.0f/s; other watch errors: %d", float64(w.Busy)/secs, w.Errs)
	if w.FirstErr != "" {
		watchNote += fmt.Sprintf(" (first: %s)", w.FirstErr)
	}
	return []report.Row{
		report.NewRow("B6", name, fmt.Sprintf("leases lost (%d apps, %d watchers, %v)", l.size.apps, l.size.watchers, l.size.window), "leases", []float64{lost}).
			WithTarget(report.Target{Stat: "max", Op: "<=", Value: 0, Text: "0"}).
			WithNote("%d claims, %d extends (%.0f/s); %d failed claims and %d failed extends (retried every 250 ms)%s; %d refused, %d lapsed, %d leases not held by their leader at the end.",
				l.claims.Load(), l.extends.Load(), float64(l.extends.Load())/secs, l.claimErrs.Load(), l.extendErrs.Load(), l.firstErrNote(),
				l.refused.Load(), l.lapsed.Load(), notHeld),
		report.NewRow("B6", name, "controller RSS at the end, per node", "MiB", rss).
			WithNote("Peak (VmHWM) per node: %s MiB. %s", joinNums(peak), leaderNote),
		report.NewRow("B6", name, "controller CPU over the window, per node", "% of a core", cpu).
			WithNote("On the same 2 cores, the load generators used %.0f %% (leaders, in the harness) and %.0f %% (watcher fleets) of a core.", u.selfCPU, u.fleetCPU),
		report.NewRow("B6", name, "extend latency under the load", "ms", l.extendLatency).WithPercentiles(l.extendLatency),
		report.NewRow("B6", name, "watcher answers (blocking queries returned)", "answers/s", []float64{float64(w.Returns) / secs}).
			WithNote("%s. Watchers are capped by %s.", watchNote, limit),
	}
}

func joinNums(xs []float64) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ", "
		}
		out += report.Num(x)
	}
	return out
}
