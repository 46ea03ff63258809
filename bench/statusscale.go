package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/report"
	"github.com/uniter-dev/uniter/controller/client"
)

// statusReadFor is how long B6b reads at least: a renewal period and a
// second, so that every leader's extend falls among the reads.
const statusReadFor = scaleClaim/2 + time.Second

// statusTarget is B6b's target on one application's status, in ms (its
// row in the registry quotes it): the facts count the reads over it.
const statusTarget = 10

// statusSize is B6b's load.
type statusSize struct {
	apps, units, leaders, samples int
	// workers is how many registrations are in flight.
	workers int
}

// runStatusScale (B6b) measures one application's status in a large
// state: a 3-node controller (`uniter controller` processes) with apps
// applications and units units in all (registered through the API, as
// `uniter unit add` does, workers at a time), leaders of them claiming and
// extending at the tracker's idle cadence as in B6, and one admin client
// reading GET /v1/applications/{app}/status (what a hook's status-get
// sends) of a random application, one read after another for a renewal
// period (at least samples reads), spread over the three nodes (every
// node answers it from its own state). At the end every leader's lease
// is read back.
func runStatusScale(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	size := pick(s, statusSize{apps: 3000, units: 10000, leaders: 300, samples: 3000, workers: 128},
		statusSize{apps: 30000, units: 100000, leaders: 2000, samples: 10000, workers: 128})
	c, err := deploy.StartCluster(ctx, env, 3)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	s.logf("B6b: registering %d units of %d applications, %d at a time", size.units, size.apps, size.workers)
	reg, err := registerSpread(ctx, s, "B6b", c.Admin, "bsixb", size)
	if err != nil {
		return nil, err
	}
	s.logf("B6b: registered in %v (%.0f units/s)", reg.took.Round(time.Second), reg.perS())
	l := &scaleLoad{size: scaleSize{apps: size.leaders, window: 24 * time.Hour},
		units: reg.leaders, until: make([]time.Time, size.leaders)}
	pool, err := poolClient(c.File, 64)
	if err != nil {
		return nil, err
	}
	if l.leaders, err = unitClients(c.File, reg.leaders, c.Addresses(), pool); err != nil {
		return nil, err
	}
	readers, err := nodeClients(c)
	if err != nil {
		return nil, err
	}
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	var counts *scaleCounts
	done := make(chan struct{})
	go func() {
		defer close(done)
		counts = l.run(lctx)
	}()
	// Every leader claims at a random point of its first renewal period.
	s.logf("B6b: %d leaders claiming", size.leaders)
	if err := sleep(ctx, scaleClaim/2+time.Second); err != nil {
		return nil, err
	}
	s.logf("B6b: reads of one application's status for %v, at least %d", statusReadFor, size.samples)
	t0 := time.Now()
	latency, slowestAt, readErrs, firstErr := readStatuses(ctx, readers, size, t0.Add(statusReadFor))
	took := time.Since(t0)
	stop()
	<-done
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	notHeld, verifyErr := l.verify(ctx, c.Admin)
	t := statusTrial{counts: counts, notHeld: notHeld, verifyErr: verifyErr, readErrs: readErrs, firstErr: firstErr,
		reads: len(latency), readS: took.Seconds(), slowestAtS: slowestAt.Seconds()}
	return statusRows(size, reg, t, latency), nil
}

// registered is what B6b's registration did.
type registered struct {
	units int
	took  time.Duration
	// leaders are unit 0 of the first applications, one per leader.
	leaders []loadUnit
	// unitsOf is each application's unit count, by application index.
	unitsOf []int
	// all are every unit, in the order registered (unit 0 of every
	// application, then unit 1, and so on).
	all []loadUnit
}

func (r registered) perS() float64 { return float64(r.units) / r.took.Seconds() }

// spread is how many units application i of size gets: units/apps each,
// the first units%apps one more.
func (size statusSize) spread(i int) int {
	n := size.units / size.apps
	if i < size.units%size.apps {
		n++
	}
	return n
}

// registerSpread registers size.units units over size.apps applications
// "<prefix>-a<i>" (unit names "<app>/<n>", each with its own token),
// size.workers registrations in flight, logging progress under label
// (the benchmark's id).
func registerSpread(ctx context.Context, s *Suite, label string, admin *client.Client, prefix string, size statusSize) (registered, error) {
	reg := registered{units: size.units, unitsOf: make([]int, size.apps), all: make([]loadUnit, 0, size.units)}
	type job struct{ unit, token string }
	next := make(chan job)
	errs := make(chan error, size.workers)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range size.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				if err := admin.RegisterUnit(ctx, j.unit, j.token, nil); err != nil {
					errs <- fmt.Errorf("cannot register unit %s: %w", j.unit, err)
					return
				}
				if n := done.Add(1); n%20000 == 0 {
					s.logf("%s: %d units registered", label, n)
				}
			}
		}()
	}
	t0 := time.Now()
	var err error
	// Unit n of every application before unit n+1 of any, so that the
	// state grows evenly.
feed:
	for n := 0; ; n++ {
		more := false
		for i := range size.apps {
			if n >= size.spread(i) {
				continue
			}
			more = true
			app := fmt.Sprintf("%s-a%d", prefix, i)
			j := job{unit: fmt.Sprintf("%s/%d", app, n), token: newToken()}
			u := loadUnit{app: app, unit: j.unit, token: j.token}
			if n == 0 && i < size.leaders {
				reg.leaders = append(reg.leaders, u)
			}
			reg.all = append(reg.all, u)
			reg.unitsOf[i]++
			select {
			case next <- j:
			case err = <-errs:
				break feed
			}
		}
		if !more {
			break
		}
	}
	close(next)
	wg.Wait()
	reg.took = time.Since(t0)
	if err != nil {
		return reg, err
	}
	select {
	case err := <-errs:
		return reg, err
	default:
	}
	return reg, nil
}

// nodeClients are admin clients, one per node, each knowing only its node.
func nodeClients(c *deploy.Cluster) ([]*client.Client, error) {
	var out []*client.Client
	for _, addr := range c.Addresses() {
		cfg := c.File.Config()
		cfg.Addresses = []string{addr}
		cl, err := client.New(cfg)
		if err != nil {
			return nil, err
		}
		out = append(out, cl)
	}
	return out, nil
}

// readStatuses reads the status of a random application, one read at a
// time, node after node, until it has read size.samples times and it is
// past until; it returns each read's latency in ms, when the slowest
// started (from the first), the failed reads and the first failure.
func readStatuses(ctx context.Context, readers []*client.Client, size statusSize, until time.Time) (latency []float64, slowestAt time.Duration, errs int, first string) {
	start, slowest := time.Now(), time.Duration(0)
	for i := 0; i < size.samples || time.Now().Before(until); i++ {
		app := fmt.Sprintf("bsixb-a%d", rand.IntN(size.apps))
		t0 := time.Now()
		st, err := readers[i%len(readers)].ApplicationStatus(ctx, app)
		d := time.Since(t0)
		if ctx.Err() != nil {
			return latency, slowestAt, errs, first
		}
		if d > slowest {
			slowest, slowestAt = d, t0.Sub(start)
		}
		if err == nil && len(st.Units) == 0 {
			err = fmt.Errorf("status of %s lists no units", app)
		}
		if err != nil {
			errs++
			if first == "" {
				first = err.Error()
			}
			continue
		}
		latency = append(latency, msOf(d))
	}
	return latency, slowestAt, errs, first
}

// statusTrial is what B6b measured besides the latencies.
type statusTrial struct {
	counts    *scaleCounts
	notHeld   int
	verifyErr error
	readErrs  int
	firstErr  string
	reads     int
	readS     float64
	// slowestAtS is when the slowest read started, in s from the first.
	slowestAtS float64
}

// lost is the leases lost: refused, lapsed, or not held at the end.
func (t statusTrial) lost() int {
	n := t.counts
	return max(t.notHeld, int(n.refused.Load()+n.lapsed.Load()))
}

// statusFacts are the facts of B6b's rows.
type statusFacts struct {
	Apps        int     `json:"apps"`
	Units       int     `json:"units"`
	Leaders     int     `json:"leaders"`
	Workers     int     `json:"workers"`
	RegisterS   float64 `json:"register_s"`
	RegisterPer float64 `json:"register_per_s"`
	MinUnits    int     `json:"min_units"`
	MaxUnits    int     `json:"max_units"`
	Reads       int     `json:"reads"`
	ReadS       float64 `json:"read_s"`
	ReadErrs    int     `json:"read_errs"`
	OverTarget  int     `json:"over_target"`
	SlowestAtS  float64 `json:"slowest_at_s"`
	FirstErr    string  `json:"first_err"`
	Claims      int64   `json:"claims"`
	Extends     int64   `json:"extends"`
	ClaimErrs   int64   `json:"claim_errs"`
	ExtendErrs  int64   `json:"extend_errs"`
	LeaseErr    string  `json:"lease_err"`
	Refused     int64   `json:"refused"`
	Lapsed      int64   `json:"lapsed"`
	NotHeld     int     `json:"not_held"`
	VerifyErr   string  `json:"verify_err"`
}

// statusRows are B6b's rows: leases lost, the latency of one
// application's status (every read), and the registration rate.
func statusRows(size statusSize, reg registered, t statusTrial, latency []float64) []report.Row {
	f := statusFacts{Apps: size.apps, Units: reg.units, Leaders: size.leaders, Workers: size.workers,
		RegisterS: reg.took.Seconds(), RegisterPer: reg.perS(),
		MinUnits: size.spread(size.apps - 1), MaxUnits: size.spread(0),
		Reads: t.reads, ReadS: t.readS, ReadErrs: t.readErrs, FirstErr: t.firstErr, NotHeld: t.notHeld,
		SlowestAtS: t.slowestAtS}
	for _, ms := range latency {
		if ms > statusTarget {
			f.OverTarget++
		}
	}
	if n := t.counts; n != nil {
		f.Claims, f.Extends, f.ClaimErrs, f.ExtendErrs = n.claims.Load(), n.extends.Load(), n.claimErrs.Load(), n.extendErrs.Load()
		f.Refused, f.Lapsed = n.refused.Load(), n.lapsed.Load()
		if e, ok := n.firstErr.Load().(string); ok {
			f.LeaseErr = e
		}
	}
	if t.verifyErr != nil {
		f.VerifyErr = t.verifyErr.Error()
	}
	rows := []report.Row{newRow("leases_lost", "leases", []float64{float64(t.lost())}).WithFacts(f)}
	if len(latency) > 0 {
		rows = append(rows, newRow("app_status_latency", "ms", latency).WithPercentiles(latency).WithFacts(f))
	}
	return append(rows, newRow("register_rate", "units/s", []float64{reg.perS()}).WithFacts(f))
}
