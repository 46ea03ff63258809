package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/journal"
	"github.com/uniter-dev/uniter/bench/proc"
	"github.com/uniter-dev/uniter/bench/report"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
)

// B7's storm: this many leadership changes, paced over this long.
const (
	stormChanges = 1000
	stormWindow  = 10 * time.Second
)

// storms is how many storms B7 runs, one after another on the same agent.
const storms = 3

// runFlapStorm (B7) runs flap storms: while a real agent (journal charm, G = 3 s)
// runs, the harness moves the application's lease stormChanges times in
// stormWindow through the API: it revokes whoever holds it (a fake unit with
// its own token, or the real unit through the admin token) and claims it
// for one of two fake units in turn; the real agent's tracker claims too
// whenever it sees the lease vacant. Then it checks that the agent comes
// to rest and that its committed leader flag agrees with the lease, once
// with a fake unit holding it and once after letting the agent take it.
// It does that storms times on the same agent (which also shows growth
// from one storm to the next).
func runFlapStorm(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	a, closeAll, err := startApp(ctx, env, "flap", s.charm("journal"), 1, failoverG, true)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	st, err := newStorm(ctx, a.Cluster, a)
	if err != nil {
		return nil, err
	}
	var trials []stormTrial
	for i := range storms {
		tr, err := st.trial(ctx)
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		s.logf("B7 trial %d/%d: %d leadership changes in %v, %d hooks, final checks %d of 2",
			i+1, storms, tr.changes, tr.took.Round(time.Millisecond), tr.elected+tr.deposed, tr.checks.passed())
		trials = append(trials, tr)
	}
	return stormRows(trials), nil
}

// stormTrial is what one storm measured.
type stormTrial struct {
	changes            int
	took               time.Duration
	elected, deposed   int       // leadership hooks run from the storm's start
	logged             logCounts // the agent's leadership log lines
	before, mid, after proc.Sample
	checks             finalChecks
}

// trial runs one storm in two halves (growth between the middle and the
// end is what a leak would show; the first half warms the heap up) and the
// final checks.
func (st *storm) trial(ctx context.Context) (stormTrial, error) {
	var tr stormTrial
	u := st.app.Units[0]
	pid := u.Agent().PID()
	var err error
	if tr.before, err = proc.Read(pid); err != nil {
		return tr, err
	}
	logBefore, err := leadershipLogCounts(u)
	if err != nil {
		return tr, err
	}
	t0 := journal.Now()
	changes, took, err := st.run(ctx, stormChanges/2)
	if err != nil {
		return tr, err
	}
	if tr.mid, err = proc.Read(pid); err != nil {
		return tr, fmt.Errorf("agent in the storm: %w", err)
	}
	changes2, took2, err := st.run(ctx, stormChanges-changes)
	if err != nil {
		return tr, err
	}
	tr.changes, tr.took = changes+changes2, took+took2
	tr.checks = st.finalChecks(ctx)
	if tr.after, err = proc.Read(pid); err != nil {
		return tr, fmt.Errorf("agent after the storm: %w", err)
	}
	logAfter, err := leadershipLogCounts(u)
	if err != nil {
		return tr, err
	}
	tr.logged = logAfter.sub(logBefore)
	entries, err := journal.Read(st.app.Journal)
	if err != nil {
		return tr, err
	}
	runs := journal.Runs(entries)
	count := func(hook string) int {
		return journal.Count(runs, func(r journal.Run) bool { return r.Hook == hook && r.Start > t0 })
	}
	tr.elected, tr.deposed = count("leader-elected"), count("leader-deposed")
	return tr, nil
}

// stormRows are B7's rows: one value per storm in each. The registry's
// targets take the max or min over storms, so every storm is judged.
func stormRows(trials []stormTrial) []report.Row {
	var changes, hooksOver, hooks, threads, rss, checks []float64
	var facts []stormFacts
	for i, tr := range trials {
		changes = append(changes, float64(tr.changes))
		hooks = append(hooks, float64(tr.elected+tr.deposed))
		hooksOver = append(hooksOver, float64(tr.elected+tr.deposed-tr.changes))
		threads = append(threads, float64(tr.after.Threads-tr.mid.Threads))
		rss = append(rss, proc.MB(tr.after.RSSKB)-proc.MB(tr.mid.RSSKB))
		checks = append(checks, float64(tr.checks.passed()))
		facts = append(facts, tr.facts(i+1))
	}
	all := stormsFacts{Trials: facts}
	return []report.Row{
		newRow("changes", "changes", changes).WithFacts(all),
		newRow("hooks", "hooks", hooks).WithFacts(all),
		newRow("hooks_over_changes", "hooks", hooksOver),
		newRow("threads_growth", "threads", threads).WithFacts(all),
		newRow("rss_growth", "MiB", rss).WithFacts(all),
		newRow("final_state", "checks", checks).WithFacts(all),
	}
}

// stormsFacts are the facts of B7's rows: what each storm did.
type stormsFacts struct {
	Trials []stormFacts `json:"trials"`
}

// stormFacts are one storm's figures: the changes driven and how long they
// took, the hooks the agent ran and the leadership lines it logged, its
// threads, open files and RSS before, in the middle of and after the
// storm, and the final checks.
type stormFacts struct {
	Trial        int         `json:"trial"`
	Changes      int         `json:"changes"`
	TookS        float64     `json:"took_s"`
	PerS         float64     `json:"per_s"`
	Elected      int         `json:"elected"`
	Deposed      int         `json:"deposed"`
	Logged       logCounts   `json:"logged"`
	Threads      [3]int      `json:"threads"`
	OpenFiles    [3]int      `json:"open_files"`
	RSSMiB       [3]float64  `json:"rss_mib"`
	Checks       finalChecks `json:"checks"`
	ChecksPassed int         `json:"checks_passed"`
}

func (tr stormTrial) facts(n int) stormFacts {
	at := [3]proc.Sample{tr.before, tr.mid, tr.after}
	f := stormFacts{Trial: n, Changes: tr.changes, TookS: tr.took.Seconds(), PerS: float64(tr.changes) / tr.took.Seconds(),
		Elected: tr.elected, Deposed: tr.deposed, Logged: tr.logged, Checks: tr.checks, ChecksPassed: tr.checks.passed()}
	for i, p := range at {
		f.Threads[i], f.OpenFiles[i], f.RSSMiB[i] = p.Threads, p.FDs, proc.MB(p.RSSKB)
	}
	return f
}

// storm drives the lease of one application.
type storm struct {
	app   *deploy.App
	admin *client.Client
	fakes []loadUnit
	fake  []*client.Client
}

func newStorm(ctx context.Context, c *deploy.Cluster, a *deploy.App) (*storm, error) {
	// Fake units of the same application, with their own tokens.
	units := make([]loadUnit, 2)
	for i := range units {
		units[i] = loadUnit{app: a.Name, unit: fmt.Sprintf("%s/%d", a.Name, 100+i), token: newToken()}
		if err := c.Admin.RegisterUnit(ctx, units[i].unit, units[i].token, nil); err != nil {
			return nil, fmt.Errorf("cannot register fake unit: %w", err)
		}
	}
	clients, err := unitClients(c.File, units, c.Addresses(), nil)
	if err != nil {
		return nil, err
	}
	return &storm{app: a, admin: c.Admin, fakes: units, fake: clients}, nil
}

// clientFor is the client that may act as unit: its own, or the admin's.
func (st *storm) clientFor(unit string) *client.Client {
	for i, f := range st.fakes {
		if f.unit == unit {
			return st.fake[i]
		}
	}
	return st.admin
}

// current reads the lease.
func (st *storm) current(ctx context.Context) (api.Lease, error) {
	l, _, err := st.admin.WatchLease(ctx, st.app.Name, 0, 0)
	return l, err
}

// run moves the lease until want new terms were made (paced at
// stormChanges per stormWindow) and returns how many and how long it took.
func (st *storm) run(ctx context.Context, want int) (int, time.Duration, error) {
	l, err := st.current(ctx)
	if err != nil {
		return 0, 0, err
	}
	first := l.Term
	start := time.Now()
	interval := stormWindow / stormChanges
	for k := 0; int(l.Term-first) < want; k++ {
		if time.Since(start) > 3*stormWindow {
			break
		}
		if l, err = st.move(ctx, l, st.fakes[k%2]); err != nil {
			return 0, 0, err
		}
		if err := sleep(ctx, time.Until(start.Add(time.Duration(l.Term-first)*interval))); err != nil {
			return 0, 0, err
		}
	}
	return int(l.Term - first), time.Since(start), nil
}

// move revokes l's holder, if any, and claims the lease for to; it
// returns the lease as it now stands (held by to, or by whoever was
// faster).
func (st *storm) move(ctx context.Context, l api.Lease, to loadUnit) (api.Lease, error) {
	if l.Holder != "" {
		err := st.clientFor(l.Holder).Revoke(ctx, st.app.Name, l.Holder, l.Term)
		if err != nil && !errors.Is(err, api.ErrNotHolder) {
			return l, fmt.Errorf("cannot revoke %s: %w", l.Holder, err)
		}
	}
	got, err := st.clientFor(to.unit).Claim(ctx, st.app.Name, to.unit, time.Minute)
	switch {
	case err == nil:
		return got, nil
	case errors.Is(err, api.ErrClaimDenied):
		if got.Term != 0 {
			return got, nil
		}
		return st.current(ctx)
	default:
		return l, fmt.Errorf("cannot claim for %s: %w", to.unit, err)
	}
}

// finalChecks are what the checks after a storm saw: first with a fake
// unit holding the lease (the agent must rest with leader=false), then
// after releasing it (the agent must claim it and commit leader=true).
// An error is "" for a step that went well; a step after one that failed
// did not run.
type finalChecks struct {
	// FakeHolder held term FakeTerm while the agent was at rest.
	FakeHolder string `json:"fake_holder"`
	FakeTerm   uint64 `json:"fake_term"`
	FakeErr    string `json:"fake_err"`
	ReleaseErr string `json:"release_err"`
	// Holder claimed term Term after the release; Agent is the real
	// unit, which should be it.
	Agent    string `json:"agent"`
	Holder   string `json:"holder"`
	Term     uint64 `json:"term"`
	AgentErr string `json:"agent_err"`
}

// passed is how many of the two checks passed.
func (c finalChecks) passed() int {
	switch {
	case c.FakeErr != "":
		return 0
	case c.ReleaseErr != "" || c.AgentErr != "" || c.Holder != c.Agent:
		return 1
	}
	return 2
}

// finalChecks checks the agent comes to rest with its committed leader
// flag agreeing with the lease: first with a fake unit holding it, then
// after releasing it so the agent claims it.
func (st *storm) finalChecks(ctx context.Context) finalChecks {
	c := finalChecks{Agent: st.app.Units[0].Name}
	l, err := st.toFake(ctx)
	if err == nil {
		var s deploy.Settled
		if s, err = st.app.Settle(ctx, 60*time.Second); err == nil {
			c.FakeHolder, c.FakeTerm = s.Leader, s.Term
		}
	}
	if err != nil {
		c.FakeErr = err.Error()
		return c
	}
	if err := st.clientFor(l.Holder).Revoke(ctx, st.app.Name, l.Holder, l.Term); err != nil {
		c.ReleaseErr = err.Error()
		return c
	}
	s, err := st.app.Settle(ctx, 60*time.Second)
	if err != nil {
		c.AgentErr = err.Error()
		return c
	}
	c.Holder, c.Term = s.Leader, s.Term
	return c
}

// toFake moves the lease to the first fake unit, trying again while the
// real agent wins the race for it.
func (st *storm) toFake(ctx context.Context) (api.Lease, error) {
	l, err := st.current(ctx)
	for range 20 {
		if err != nil || l.Holder == st.fakes[0].unit {
			return l, err
		}
		l, err = st.move(ctx, l, st.fakes[0])
	}
	return l, fmt.Errorf("cannot move the lease to %s: the agent keeps winning it", st.fakes[0].unit)
}

// logCounts counts the agent's leadership log lines.
type logCounts struct {
	Gained  int `json:"gained"`
	Lost    int `json:"lost"`
	Flapped int `json:"flapped"`
}

// sub is the lines logged since o.
func (c logCounts) sub(o logCounts) logCounts {
	return logCounts{Gained: c.Gained - o.Gained, Lost: c.Lost - o.Lost, Flapped: c.Flapped - o.Flapped}
}

// leadershipLogCounts counts leadership messages in the unit's agent log
// (rotation would undercount; the storm logs far less than 10 MiB).
func leadershipLogCounts(u *deploy.Unit) (logCounts, error) {
	data, err := os.ReadFile(agent.LogPath(u.Dir))
	if err != nil {
		return logCounts{}, fmt.Errorf("cannot read agent log: %w", err)
	}
	text := string(data)
	return logCounts{
		Gained:  strings.Count(text, `"message":"leadership gained"`),
		Lost:    strings.Count(text, `"message":"leadership lost"`),
		Flapped: strings.Count(text, `"message":"leadership flapped"`),
	}, nil
}
