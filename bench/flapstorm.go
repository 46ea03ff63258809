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
	b7Changes = 1000
	b7Window  = 10 * time.Second
)

// b7Trials is how many storms B7 runs, one after another on the same agent.
const b7Trials = 3

// runB7 runs flap storms: while a real agent (journal charm, G = 3 s)
// runs, the harness moves the application's lease b7Changes times in
// b7Window through the API: it revokes whoever holds it (a fake unit with
// its own token, or the real unit through the admin token) and claims it
// for one of two fake units in turn; the real agent's tracker claims too
// whenever it sees the lease vacant. Then it checks that the agent comes
// to rest and that its committed leader flag agrees with the lease, once
// with a fake unit holding it and once after letting the agent take it.
// It does that b7Trials times on the same agent (which also shows growth
// from one storm to the next).
func runB7(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	a, closeAll, err := startApp(ctx, env, "flap", s.charm("journal"), 1, failoverG, true)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	st, err := newStorm(ctx, a.Cluster, a)
	if err != nil {
		return nil, err
	}
	var trials []b7Trial
	for i := range b7Trials {
		tr, err := st.trial(ctx)
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		s.logf("B7 trial %d/%d: %d leadership changes in %v, %d hooks, final checks %d of 2",
			i+1, b7Trials, tr.changes, tr.took.Round(time.Millisecond), tr.elected+tr.deposed, tr.checks)
		trials = append(trials, tr)
	}
	return b7Rows(trials), nil
}

// b7Trial is what one storm measured.
type b7Trial struct {
	changes            int
	took               time.Duration
	elected, deposed   int    // leadership hooks run from the storm's start
	observed           string // the agent's leadership log lines
	before, mid, after proc.Sample
	checks             int
	checkNote          string
}

// trial runs one storm in two halves (growth between the middle and the
// end is what a leak would show; the first half warms the heap up) and the
// final checks.
func (st *storm) trial(ctx context.Context) (b7Trial, error) {
	var tr b7Trial
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
	changes, took, err := st.run(ctx, b7Changes/2)
	if err != nil {
		return tr, err
	}
	if tr.mid, err = proc.Read(pid); err != nil {
		return tr, fmt.Errorf("agent in the storm: %w", err)
	}
	changes2, took2, err := st.run(ctx, b7Changes-changes)
	if err != nil {
		return tr, err
	}
	tr.changes, tr.took = changes+changes2, took+took2
	tr.checks, tr.checkNote = st.finalChecks(ctx)
	if tr.after, err = proc.Read(pid); err != nil {
		return tr, fmt.Errorf("agent after the storm: %w", err)
	}
	logAfter, err := leadershipLogCounts(u)
	if err != nil {
		return tr, err
	}
	tr.observed = logAfter.sub(logBefore)
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

// b7Rows are B7's rows: one value per trial in each. The hooks target is
// judged trial by trial (hooks run ≤ changes driven in the same storm).
func b7Rows(trials []b7Trial) []report.Row {
	var changes, hooksOver, hooks, threads, rss, checks []float64
	var changesNote, hooksNote, threadsNote, rssNote, checkNotes []string
	for i, tr := range trials {
		n := i + 1
		changes = append(changes, float64(tr.changes))
		hooks = append(hooks, float64(tr.elected+tr.deposed))
		hooksOver = append(hooksOver, float64(tr.elected+tr.deposed-tr.changes))
		threads = append(threads, float64(tr.after.Threads-tr.mid.Threads))
		rss = append(rss, proc.MB(tr.after.RSSKB)-proc.MB(tr.mid.RSSKB))
		checks = append(checks, float64(tr.checks))
		changesNote = append(changesNote, fmt.Sprintf("trial %d: %d in %v (%.0f/s)", n, tr.changes, tr.took.Round(time.Millisecond), float64(tr.changes)/tr.took.Seconds()))
		hooksNote = append(hooksNote, fmt.Sprintf("trial %d: leader-elected %d, leader-deposed %d; the agent logged %s", n, tr.elected, tr.deposed, tr.observed))
		threadsNote = append(threadsNote, fmt.Sprintf("trial %d: threads %d → %d → %d, open files %d → %d → %d", n,
			tr.before.Threads, tr.mid.Threads, tr.after.Threads, tr.before.FDs, tr.mid.FDs, tr.after.FDs))
		rssNote = append(rssNote, fmt.Sprintf("trial %d: %.1f → %.1f → %.1f MiB", n, proc.MB(tr.before.RSSKB), proc.MB(tr.mid.RSSKB), proc.MB(tr.after.RSSKB)))
		checkNotes = append(checkNotes, fmt.Sprintf("trial %d: %s", n, tr.checkNote))
	}
	const name = "flap storm"
	return []report.Row{
		report.NewRow("B7", name, "leadership changes driven", "changes", changes).
			WithNote("Per storm, through the API: revoke the holder, claim for one of two fake units; the real agent claims whenever it sees the lease vacant. %s.", strings.Join(changesNote, "; ")),
		report.NewRow("B7", name, "leadership hooks run by the agent (leader-elected + leader-deposed)", "hooks", hooks).
			WithNote("%s (during each storm and its settling checks).", strings.Join(hooksNote, "; ")),
		report.NewRow("B7", name, "leadership hooks run minus changes driven, per storm", "hooks", hooksOver).
			WithTarget(report.Target{Stat: "max", Op: "<=", Value: 0, Text: "≤ 0 (hooks ≤ changes)"}),
		report.NewRow("B7", name, "agent threads: end − middle of the storm", "threads", threads).
			WithTarget(report.Target{Stat: "max", Op: "<=", Value: 1, Text: "flat (≤ +1)"}).
			WithNote("Before → middle → after: %s (the agent's goroutines are not visible from outside, and no code was added to it).", strings.Join(threadsNote, "; ")),
		report.NewRow("B7", name, "agent RSS: end − middle of the storm", "MiB", rss).
			WithTarget(report.Target{Stat: "max", Op: "<=", Value: 1, Text: "flat (≤ +1 MiB)"}).
			WithNote("RSS before → middle → after: %s (the first storm's first half warms the heap up).", strings.Join(rssNote, "; ")),
		report.NewRow("B7", name, "final state right (agent at rest, committed leader flag = lease), of 2 checks", "checks", checks).
			WithTarget(report.Target{Stat: "min", Op: ">=", Value: 2, Text: "2 of 2"}).
			WithNote("%s", strings.Join(checkNotes, "; ")),
	}
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
	clients, err := unitClients(units, c.Addresses(), nil)
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
// b7Changes per b7Window) and returns how many and how long it took.
func (st *storm) run(ctx context.Context, want int) (int, time.Duration, error) {
	l, err := st.current(ctx)
	if err != nil {
		return 0, 0, err
	}
	first := l.Term
	start := time.Now()
	interval := b7Window / b7Changes
	for k := 0; int(l.Term-first) < want; k++ {
		if time.Since(start) > 3*b7Window {
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

// finalChecks checks the agent comes to rest with its committed leader
// flag agreeing with the lease: first with a fake unit holding it, then
// after releasing it so the agent claims it. It returns how many of the
// two checks passed and what happened.
func (st *storm) finalChecks(ctx context.Context) (int, string) {
	var notes []string
	passed := 0
	l, err := st.toFake(ctx)
	if err == nil {
		var s deploy.Settled
		if s, err = st.app.Settle(ctx, 60*time.Second); err == nil {
			passed++
			notes = append(notes, fmt.Sprintf("held by fake %s (term %d): agent at rest with leader=false", s.Leader, s.Term))
		}
	}
	if err != nil {
		return passed, fmt.Sprintf("fake-holder check failed: %v", err)
	}
	real := st.app.Units[0].Name
	if err := st.clientFor(l.Holder).Revoke(ctx, st.app.Name, l.Holder, l.Term); err != nil {
		return passed, strings.Join(append(notes, fmt.Sprintf("cannot release the lease: %v", err)), "; ")
	}
	s, err := st.app.Settle(ctx, 60*time.Second)
	switch {
	case err != nil:
		notes = append(notes, fmt.Sprintf("agent-holder check failed: %v", err))
	case s.Leader != real:
		notes = append(notes, fmt.Sprintf("agent-holder check failed: %s took the lease", s.Leader))
	default:
		passed++
		notes = append(notes, fmt.Sprintf("released: %s claimed term %d and committed leader=true for it", real, s.Term))
	}
	return passed, strings.Join(notes, "; ")
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
type logCounts struct{ gained, lost, flapped int }

func (c logCounts) sub(o logCounts) string {
	return fmt.Sprintf("%d `leadership gained`, %d `leadership lost`, %d `leadership flapped`",
		c.gained-o.gained, c.lost-o.lost, c.flapped-o.flapped)
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
		gained:  strings.Count(text, `"message":"leadership gained"`),
		lost:    strings.Count(text, `"message":"leadership lost"`),
		flapped: strings.Count(text, `"message":"leadership flapped"`),
	}, nil
}
