package churn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/lease/raftnode"
	"github.com/uniter-dev/uniter/operation"
)

// Deployment is what the churn script drives: units of the journal charm
// (testcharms/journal), all writing one journal, each run by a real
// `uniter agent` process, on a controller of real `uniter controller`
// nodes. The end-to-end tests and the B10 soak each implement it over
// their own process harness.
type Deployment interface {
	// App is the application; Units its units.
	App() string
	Units() []string
	// CharmDir is the unit's copy of the charm, AgentDir its agent
	// directory (the state file is there).
	CharmDir(unit string) string
	AgentDir(unit string) string
	// Journal is the shared journal; the answers are in Journal()+".leader".
	Journal() string
	// StartAgent starts the unit's agent; AgentPID is its process id.
	StartAgent(unit string) error
	AgentPID(unit string) int
	// SignalAgent signals the unit's agent; StopAgent signals it and
	// waits for it to exit (the error of an unclean exit).
	SignalAgent(unit string, sig syscall.Signal) error
	StopAgent(unit string, sig syscall.Signal) error
	// Nodes are the controller nodes' raft IDs.
	Nodes() []string
	// SignalNode signals a node; StopNode signals it and waits for its
	// exit; StartNode starts it again on its data directory.
	SignalNode(id string, sig syscall.Signal) error
	StopNode(id string, sig syscall.Signal) error
	StartNode(id string) error
	// Admin is an admin client over every node.
	Admin() *client.Client
	// StepDown asks the application's leader to step down, as
	// `uniter leadership revoke APP` does.
	StepDown(ctx context.Context) error
}

// Options tune the churn.
type Options struct {
	// G is the units' guarantee.
	G time.Duration
	// RetryInitial is the agents' retry-initial: a failed hook is retried
	// no sooner than this.
	RetryInitial time.Duration
	// AskEvery spaces the is-leader calls of a long hook (default 100 ms).
	AskEvery time.Duration
	// RaftPause is how long the raft leader is stopped (default: less
	// than raft's heartbeat and election timeouts, so no election).
	RaftPause time.Duration
	// Clock times the disturbances (clock.Real if nil).
	Clock clock.Clock
	// Logf receives progress lines (none if nil).
	Logf func(format string, args ...any)
}

// Handover is rule 6 of DESIGN.md §4.4: a successor's leader-elected
// starts within a second of the old leader's leader-deposed.
const Handover = time.Second

// longHook is the hook the churn makes long: it runs every
// update-status-interval on every unit. (Not config-changed: in a config
// storm a minion's config-changed is what its leader-elected waits for.)
const longHook = "update-status"

// waitFor bounds every wait for the deployment to reach a state.
const waitFor = 60 * time.Second

// ErrViolation marks an error of a script step that is a broken promise
// of the leadership contract (a handover too slow, a failing hook retried
// without backoff), as opposed to a deployment that did not get where the
// script waited for it to.
var ErrViolation = errors.New("leadership contract broken")

func violation(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrViolation, fmt.Sprintf(format, args...))
}

// Churn runs the churn script on a deployment: each step is one
// disturbance; Finish stops the agents and checks every record.
type Churn struct {
	d    Deployment
	opts Options
	rec  *Recorder
	// mode is the long hooks' mode: "all" or "leader".
	mode string
}

// Start writes the charm's knobs into every unit (ask is-leader twice at
// the start of every hook; long update-status hooks on every unit),
// starts recording the lease at the controller and starts every agent. It
// returns once a unit leads with its leader-elected committed.
func Start(ctx context.Context, d Deployment, opts Options) (*Churn, error) {
	if opts.AskEvery <= 0 {
		opts.AskEvery = 100 * time.Millisecond
	}
	if opts.RaftPause <= 0 {
		opts.RaftPause = min(raftnode.DefaultHeartbeatTimeout, raftnode.DefaultElectionTimeout) * 4 / 5
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	c := &Churn{d: d, opts: opts}
	for _, u := range d.Units() {
		if err := c.knob(u, "ask-leader", "2"); err != nil {
			return nil, err
		}
	}
	if err := c.setLong("all"); err != nil {
		return nil, err
	}
	c.rec = Record(d.Admin(), d.App(), opts.Clock)
	for _, u := range d.Units() {
		if err := d.StartAgent(u); err != nil {
			c.rec.Stop()
			return nil, err
		}
	}
	if _, _, err := c.settle(ctx); err != nil {
		c.rec.Stop()
		return nil, err
	}
	return c, nil
}

// Result is what Finish found.
type Result struct {
	Report
	// Terms is how many terms the lease recorder saw; RecorderErrors how
	// many of its queries failed (a node killed, an election).
	Terms, RecorderErrors int
}

// Finish stops every agent (SIGTERM: they keep their leases), stops the
// lease recorder and checks every answer, hook run and lease change.
func (c *Churn) Finish() (Result, error) {
	var errs []error
	for _, u := range c.d.Units() {
		c.d.SignalAgent(u, syscall.SIGCONT) // a step that failed may have left one stopped
		if err := c.d.StopAgent(u, syscall.SIGTERM); err != nil && !killed(err) {
			errs = append(errs, fmt.Errorf("cannot stop %s cleanly: %w", u, err))
		}
	}
	hist, rerrs := c.rec.Stop()
	if err := hist.WriteFile(c.d.Journal() + ".lease"); err != nil {
		errs = append(errs, err)
	}
	answers, err := ReadAnswers(c.d.Journal() + ".leader")
	if err != nil {
		return Result{}, err
	}
	entries, err := c.entries()
	if err != nil {
		return Result{}, err
	}
	res := Result{Report: Check(answers, Runs(entries), hist, c.opts.G), Terms: len(hist.terms()), RecorderErrors: rerrs}
	return res, errors.Join(errs...)
}

// Step is one disturbance of the script.
type Step struct {
	Name string
	Run  func(context.Context) error
}

// Steps is the whole script, in order: the end-to-end test runs it once,
// the B10 soak over and over.
func (c *Churn) Steps() []Step {
	return []Step{
		{"SIGKILL of the leader", c.KillLeader},
		{"SIGSTOP of the leader past its lease", c.StopLeaderPastLease},
		{"SIGTERM and restart keep leadership", c.RestartKeepsLeadership},
		{"raft leader of the controller killed", c.KillRaftLeader},
		{"step-down hands over without waiting for expiry", c.StepDown},
		{"step-downs during a config-change storm", func(ctx context.Context) error { return c.StepDownsInConfigStorm(ctx, stormRounds) }},
		{"leader-deposed failing twice is retried with backoff", c.FailingDeposed},
		{"SIGTERM and restart while a step-down is pending", c.RestartDuringStepDown},
		{"SIGSTOP of the raft leader within its election timeout", func(ctx context.Context) error { return c.PauseRaftLeader(ctx, raftPauses) }},
	}
}

// stormRounds is how many step-downs a config storm sees, and raftPauses
// how many times the raft leader is paused.
const (
	stormRounds = 6
	raftPauses  = 6
)

// KillLeader SIGKILLs the leader's agent (every unit in long hooks, so
// the successor may be in one too): a successor leads once the lease
// expires; the restarted old leader learns it lost and runs leader-deposed.
func (c *Churn) KillLeader(ctx context.Context) error {
	if err := c.setLong("all"); err != nil {
		return err
	}
	old, term, err := c.settle(ctx)
	if err != nil {
		return err
	}
	if err := c.d.StopAgent(old, syscall.SIGKILL); err != nil && !killed(err) {
		return err
	}
	mark := c.mark()
	if _, err := c.waitLeader(ctx, old, term, mark); err != nil {
		return err
	}
	if err := c.d.StartAgent(old); err != nil {
		return err
	}
	return c.waitEnded(ctx, old, "leader-deposed", mark)
}

// StopLeaderPastLease SIGSTOPs the leader's agent until a successor leads
// (its hook, asking is-leader all along, keeps running), then SIGCONTs
// it: it must answer false and run leader-deposed.
func (c *Churn) StopLeaderPastLease(ctx context.Context) error {
	if err := c.setLong("all"); err != nil {
		return err
	}
	old, term, err := c.settle(ctx)
	if err != nil {
		return err
	}
	if err := c.d.SignalAgent(old, syscall.SIGSTOP); err != nil {
		return err
	}
	mark := c.mark()
	_, err = c.waitLeader(ctx, old, term, mark)
	if cerr := c.d.SignalAgent(old, syscall.SIGCONT); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return c.waitEnded(ctx, old, "leader-deposed", mark)
}

// RestartKeepsLeadership SIGTERMs the leader's agent and restarts it
// within the lease: it stays leader and no leadership hook runs anywhere.
func (c *Churn) RestartKeepsLeadership(ctx context.Context) error {
	leader, term, err := c.settle(ctx)
	if err != nil {
		return err
	}
	if err := c.d.StopAgent(leader, syscall.SIGTERM); err != nil {
		return fmt.Errorf("agent did not stop cleanly: %w", err)
	}
	mark := c.mark()
	if err := c.d.StartAgent(leader); err != nil {
		return err
	}
	// Two update-status hooks of the restarted leader prove it is back
	// at work; no leadership hook may have run anywhere.
	err = c.poll(ctx, "the restarted leader to work", func() (bool, error) {
		n, err := c.ended(leader, "update-status", mark)
		return n >= 2, err
	})
	if err != nil {
		return err
	}
	hooks, err := c.leadershipHooksSince(mark)
	if err != nil {
		return err
	}
	if len(hooks) != 0 {
		return violation("leadership hooks ran after a restart within the lease: %+v", hooks)
	}
	if who, tm, err := c.leader(ctx); err != nil || who != leader || tm != term {
		return violation("leadership moved on restart: %s term %d (%v), was %s term %d", who, tm, err, leader, term)
	}
	return nil
}

// KillRaftLeader SIGKILLs the controller's raft leader: another node
// leads, the application's leader goes on running hooks, and the node
// comes back.
func (c *Churn) KillRaftLeader(ctx context.Context) error {
	leader, _, err := c.settle(ctx)
	if err != nil {
		return err
	}
	id, err := c.waitRaftLeader(ctx)
	if err != nil {
		return err
	}
	mark := c.mark()
	if err := c.d.StopNode(id, syscall.SIGKILL); err != nil && !killed(err) {
		return err
	}
	err = c.poll(ctx, "a new raft leader", func() (bool, error) {
		j, err := c.raftLeader(ctx)
		return err == nil && j != id, nil
	})
	if err != nil {
		return err
	}
	err = c.poll(ctx, "hooks to go on", func() (bool, error) {
		n, err := c.ended(leader, "update-status", mark)
		return n >= 1, err
	})
	if err != nil {
		return err
	}
	if err := c.d.StartNode(id); err != nil {
		return err
	}
	return c.poll(ctx, "the old node back", func() (bool, error) {
		nodes, err := c.d.Admin().Nodes(ctx)
		return err == nil && len(nodes) == len(c.d.Nodes()), nil
	})
}

// StepDown asks the leader to step down (what `uniter leadership revoke`
// sends): the successor's leader-elected must start within Handover of
// the old leader's leader-deposed ending.
func (c *Churn) StepDown(ctx context.Context) error {
	if err := c.leaderOnlyLong(ctx); err != nil {
		return err
	}
	_, _, err := c.handover(ctx, nil)
	return err
}

// StepDownsInConfigStorm makes rounds step-downs, each in a storm of
// config changes (stormWriters clients, each every 10 ms) that starts
// just before the request and stops as soon as the controller shows the
// new holder: every change moves the application's modify index, so a
// minion's watch can answer "vacant" from before its own claim applied
// (the stale watch answer of issue 14's finding 1), and once the storm is
// over nothing answers the watch again until the lease changes. Every
// handover must still be within Handover.
func (c *Churn) StepDownsInConfigStorm(ctx context.Context, rounds int) error {
	if err := c.leaderOnlyLong(ctx); err != nil {
		return err
	}
	var errs []error
	changes := 0
	for range rounds {
		n, err := c.stormHandover(ctx)
		changes += n
		if err != nil {
			errs = append(errs, err)
			if !errors.Is(err, ErrViolation) {
				break
			}
		}
	}
	c.opts.Logf("config storms: %d changes in %d step-downs", changes, rounds)
	return errors.Join(errs...)
}

// stormHandover is one step-down of StepDownsInConfigStorm; it returns
// how many config changes its storm made.
func (c *Churn) stormHandover(ctx context.Context) (int, error) {
	old, term, err := c.settle(ctx)
	if err != nil {
		return 0, err
	}
	if err := c.candidateReady(ctx, old); err != nil {
		return 0, err
	}
	mark := c.mark()
	stop := c.configStorm(ctx, 10*time.Millisecond)
	type stormEnd struct {
		n   int
		err error
	}
	ended := make(chan stormEnd, 1)
	watchCtx, giveUp := context.WithCancel(ctx)
	defer giveUp()
	go func() {
		// Until a new term is held (or the handover gave up).
		c.poll(watchCtx, "a new holder", func() (bool, error) {
			who, tm, err := c.leader(watchCtx)
			return err == nil && who != "" && tm > term, err
		})
		n, err := stop()
		ended <- stormEnd{n, err}
	}()
	var next string
	err = c.d.StepDown(ctx)
	if err == nil {
		next, err = c.waitLeader(ctx, old, term, mark)
	} else {
		err = fmt.Errorf("cannot request step-down: %w", err)
	}
	if err != nil {
		giveUp()
	}
	storm := <-ended
	if err != nil {
		return storm.n, err
	}
	return storm.n, errors.Join(storm.err, c.checkHandover(old, next, mark))
}

// FailingDeposed makes the leader's leader-deposed fail twice, then
// succeed, and asks it to step down: the failed hook is retried with the
// agent's error backoff (no sooner than RetryInitial after it failed),
// is-leader stays false throughout (the checker's rule 2), and the
// successor leads within Handover of the old leader's last leader-deposed
// before it.
func (c *Churn) FailingDeposed(ctx context.Context) error {
	if err := c.leaderOnlyLong(ctx); err != nil {
		return err
	}
	var old string
	var mark int
	prepare := func(leader string, m int) error {
		old, mark = leader, m
		os.Remove(filepath.Join(c.d.CharmDir(leader), "fail-leader-deposed.failed"))
		return c.knob(leader, "fail-leader-deposed", "2")
	}
	_, _, herr := c.handover(ctx, prepare)
	if old == "" {
		return herr
	}
	err := c.poll(ctx, old+"'s leader-deposed to succeed", func() (bool, error) {
		n, err := c.ended(old, "leader-deposed", mark)
		return n >= 1, err
	})
	os.Remove(filepath.Join(c.d.CharmDir(old), "fail-leader-deposed"))
	if err != nil {
		return errors.Join(herr, err)
	}
	runs, err := c.runsSince(mark)
	if err != nil {
		return errors.Join(herr, err)
	}
	var deposed []Run
	for _, r := range runs {
		if r.Unit == old && r.Hook == "leader-deposed" {
			deposed = append(deposed, r)
		}
	}
	if len(deposed) < 3 || !deposed[0].Failed || !deposed[1].Failed || deposed[2].Failed {
		return errors.Join(herr, fmt.Errorf("%s's leader-deposed runs %+v: want two failures, then a success", old, deposed))
	}
	for i := 1; i < len(deposed); i++ {
		prev := deposed[i-1]
		if gap := time.Duration(deposed[i].Start - prev.End); prev.Failed && gap < c.opts.RetryInitial {
			herr = errors.Join(herr, violation("%s's failed leader-deposed was retried %v after it failed: the error backoff is %v",
				old, gap, c.opts.RetryInitial))
		}
	}
	return herr
}

// RestartDuringStepDown SIGTERMs the leader's agent while its step-down
// is pending (requested, leader-deposed not yet run) and restarts it: the
// restarted agent runs leader-deposed and must hand over within Handover,
// not wait for the lease to expire (issue 14's finding 3).
func (c *Churn) RestartDuringStepDown(ctx context.Context) error {
	if err := c.leaderOnlyLong(ctx); err != nil {
		return err
	}
	old, term, err := c.settle(ctx)
	if err != nil {
		return err
	}
	if err := c.candidateReady(ctx, old); err != nil {
		return err
	}
	mark := c.mark()
	block := filepath.Join(c.d.CharmDir(old), "block-"+longHook)
	if err := os.WriteFile(block, nil, 0o644); err != nil {
		return err
	}
	defer os.Remove(block)
	// The leader's update-status (the one running, or the next) holds at
	// its end, so the step-down stays pending: leader-deposed cannot run
	// before it ends.
	since := Now() - (c.opts.G + 2*time.Second).Nanoseconds() // older: an agent killed under it
	err = c.poll(ctx, old+"'s "+longHook+" to run", func() (bool, error) {
		entries, err := c.entries()
		for _, r := range Runs(entries) {
			if r.Unit == old && r.Hook == longHook && r.End == 0 && r.Start > since {
				return true, err
			}
		}
		return false, err
	})
	if err != nil {
		return err
	}
	if err := c.d.StepDown(ctx); err != nil {
		return fmt.Errorf("cannot request step-down: %w", err)
	}
	err = c.poll(ctx, "the step-down to be recorded", func() (bool, error) {
		l, _, err := c.d.Admin().WatchLease(ctx, c.d.App(), 0, 0)
		return err == nil && l.Holder == old && l.Term == term && l.StepDown, nil
	})
	if err != nil {
		return err
	}
	pid := c.d.AgentPID(old)
	if err := c.d.SignalAgent(old, syscall.SIGTERM); err != nil {
		return err
	}
	if err := c.poll(ctx, old+"'s agent to take SIGTERM", func() (bool, error) { return signalTaken(pid, syscall.SIGTERM) }); err != nil {
		return err
	}
	os.Remove(block) // the hook ends; the stopping agent runs nothing more
	if err := c.d.StopAgent(old, syscall.SIGTERM); err != nil {
		return fmt.Errorf("agent did not stop cleanly: %w", err)
	}
	restart := c.mark()
	if runs, err := c.runsSince(mark); err != nil {
		return err
	} else if slicesContainsRun(runs, old, "leader-deposed") {
		return fmt.Errorf("%s ran leader-deposed before it stopped: the step-down was not pending at the restart", old)
	}
	if err := c.d.StartAgent(old); err != nil {
		return err
	}
	// The successor may be the old leader itself, if the lease was never
	// released and expired: then no other unit may have been out of its
	// hold-off, and the handover took a lease's life, not a second.
	next, err := c.waitLeader(ctx, "", term, restart)
	if err != nil {
		return err
	}
	return c.checkHandover(old, next, restart)
}

// PauseRaftLeader SIGSTOPs the controller's raft leader times, each for
// RaftPause (shorter than raft's timeouts, so no election: a GC pause, a
// VM steal), at random points of the agents' extends (the leader's long
// hook asks is-leader every AskEvery, which extends whenever less than G
// is left), then lets the deployment go on.
func (c *Churn) PauseRaftLeader(ctx context.Context, times int) error {
	if err := c.leaderOnlyLong(ctx); err != nil {
		return err
	}
	leader, _, err := c.settle(ctx)
	if err != nil {
		return err
	}
	mark := c.mark()
	changed := 0
	for range times {
		id, err := c.waitRaftLeader(ctx)
		if err != nil {
			return err
		}
		if err := c.d.SignalNode(id, syscall.SIGSTOP); err != nil {
			return err
		}
		c.wait(ctx, c.opts.RaftPause)
		if err := c.d.SignalNode(id, syscall.SIGCONT); err != nil {
			return err
		}
		c.wait(ctx, time.Duration(200+rand.IntN(1000))*time.Millisecond)
		if next, err := c.waitRaftLeader(ctx); err != nil {
			return err
		} else if next != id {
			changed++
		}
	}
	c.opts.Logf("raft leader paused %d times for %v: %d times another node led after", times, c.opts.RaftPause, changed)
	return c.poll(ctx, "hooks to go on", func() (bool, error) {
		n, err := c.ended(leader, longHook, mark)
		return n >= 1, err
	})
}

// waitRaftLeader waits until a node leads (an election may be under way).
func (c *Churn) waitRaftLeader(ctx context.Context) (string, error) {
	var id string
	err := c.poll(ctx, "a raft leader", func() (bool, error) {
		var err error
		id, err = c.raftLeader(ctx)
		return err == nil, err
	})
	return id, err
}

// handover asks the current leader to step down (after prepare, if not
// nil, had its way with the leader and the journal mark) and checks the
// handover: it returns the old and new leader.
func (c *Churn) handover(ctx context.Context, prepare func(leader string, mark int) error) (string, string, error) {
	old, term, err := c.settle(ctx)
	if err != nil {
		return "", "", err
	}
	if err := c.candidateReady(ctx, old); err != nil {
		return "", "", err
	}
	mark := c.mark()
	if prepare != nil {
		if err := prepare(old, mark); err != nil {
			return "", "", err
		}
	}
	if err := c.d.StepDown(ctx); err != nil {
		return "", "", fmt.Errorf("cannot request step-down: %w", err)
	}
	next, err := c.waitLeader(ctx, old, term, mark)
	if err != nil {
		return old, "", err
	}
	return old, next, c.checkHandover(old, next, mark)
}

// candidateReady waits until a unit other than leader is free to claim
// at once: a unit that resigned holds off claiming for a claim duration
// (G + 0.5 s), so one whose last leader-deposed ended less than G + 1 s
// ago cannot be a step-down's successor within Handover (B2 spaces its
// trials the same way). Without one, a handover would wait for a
// hold-off by design, not by a fault.
func (c *Churn) candidateReady(ctx context.Context, leader string) error {
	holdOff := (c.opts.G + time.Second).Nanoseconds()
	return c.poll(ctx, "a unit out of its claim hold-off", func() (bool, error) {
		entries, err := c.entries()
		last := map[string]int64{}
		for _, r := range Runs(entries) {
			if r.Hook == "leader-deposed" {
				last[r.Unit] = max(last[r.Unit], r.End, r.Start)
			}
		}
		now := Now()
		for _, u := range c.d.Units() {
			if u != leader && now-last[u] > holdOff {
				return true, err
			}
		}
		return false, err
	})
}

// checkHandover: after journal position mark, next's first leader-elected
// after old's leader-deposed began started within Handover of the end of
// old's last leader-deposed before it (or of the hook next was running
// then).
func (c *Churn) checkHandover(old, next string, mark int) error {
	runs, err := c.runsSince(mark)
	if err != nil {
		return err
	}
	var elected, deposedStart int64
	for _, r := range runs {
		if r.Unit == old && r.Hook == "leader-deposed" && deposedStart == 0 {
			deposedStart = r.Start
		}
		// The successor's leader-elected, after old's leader-deposed
		// began (old itself may be the successor).
		if r.Unit == next && r.Hook == "leader-elected" && deposedStart != 0 {
			elected = r.Start
			break
		}
	}
	var deposedEnd int64
	for _, r := range runs {
		if r.Unit == old && r.Hook == "leader-deposed" && r.End != 0 && r.End <= elected {
			deposedEnd = max(deposedEnd, r.End)
		}
	}
	if elected == 0 || deposedEnd == 0 {
		return violation("no leader-deposed of %s ended before the leader-elected of %s: %+v", old, next, runs)
	}
	// Hooks of a unit run one at a time: a hook the successor was already
	// running when leader-deposed ended must end first, however long the
	// charm (or a loaded machine) takes over it. The handover is timed
	// from the later of the two ends; a hook the successor started after
	// leader-deposed ended, instead of leader-elected, counts against it.
	from := deposedEnd
	all, err := c.entries()
	if err != nil {
		return err
	}
	for _, r := range Runs(all) {
		if r.Unit == next && r.Start < deposedEnd && r.End > from && r.End <= elected {
			from = r.End
		}
	}
	gap := time.Duration(elected - from)
	how := fmt.Sprintf("%s's leader-elected started %v after %s's leader-deposed ended", next, time.Duration(elected-deposedEnd), old)
	if from != deposedEnd {
		how += fmt.Sprintf(", %v after the hook %s was running then", gap, next)
	}
	c.opts.Logf("handover: %s", how)
	if gap >= Handover {
		return violation("%s; rule 6 wants it within %v", how, Handover)
	}
	return nil
}

// configStorm changes the application's config from stormWriters
// writers, each every period, until stop, which returns how many changes
// went through and the first failure (stop may be called again).
func (c *Churn) configStorm(ctx context.Context, period time.Duration) (stop func() (int, error)) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var n int
	var first error
	for w := range stormWriters {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				value := fmt.Sprintf("storm-%d-%d", w, i)
				err := c.d.Admin().SetConfig(ctx, c.d.App(), map[string]string{"message": value})
				mu.Lock()
				if err == nil {
					n++
				} else if first == nil && ctx.Err() == nil {
					first = fmt.Errorf("cannot change config: %w", err)
				}
				mu.Unlock()
				c.wait(ctx, period)
			}
		})
	}
	return func() (int, error) {
		cancel()
		wg.Wait() // a second call finds them gone
		mu.Lock()
		defer mu.Unlock()
		return n, first
	}
}

// stormWriters is how many clients change the config at once in a storm.
const stormWriters = 3

// setLong makes every unit's longHook a long hook in mode ("all":
// every unit; "leader": only while the unit answers true).
func (c *Churn) setLong(mode string) error {
	if c.mode == mode {
		return nil
	}
	secs := (c.opts.G + time.Second).Seconds()
	content := fmt.Sprintf("%g %d %s", secs, c.opts.AskEvery.Milliseconds(), mode)
	for _, u := range c.d.Units() {
		if err := c.knob(u, "long-"+longHook, content); err != nil {
			return err
		}
	}
	c.mode = mode
	return nil
}

// leaderOnlyLong switches the long hooks to the leader only, and waits
// until no minion is still in a long hook: a step-down's successor must
// be free to run leader-elected at once.
func (c *Churn) leaderOnlyLong(ctx context.Context) error {
	if c.mode == "leader" {
		return nil
	}
	if err := c.setLong("leader"); err != nil {
		return err
	}
	since := Now()
	long := (c.opts.G + 2*time.Second).Nanoseconds()
	return c.poll(ctx, "the long hooks to end", func() (bool, error) {
		entries, err := c.entries()
		for _, r := range Runs(entries) {
			// A run older than a long hook is an agent killed under it.
			if r.Hook == longHook && r.End == 0 && r.Start > since-long {
				return false, err
			}
		}
		return true, err
	})
}

// knob writes a knob file into unit's charm directory.
func (c *Churn) knob(unit, name, content string) error {
	return os.WriteFile(filepath.Join(c.d.CharmDir(unit), name), []byte(content+"\n"), 0o644)
}

// settle waits for the current leader with its leadership committed.
func (c *Churn) settle(ctx context.Context) (string, uint64, error) {
	who, err := c.waitLeader(ctx, "", 0, 0)
	if err != nil {
		return "", 0, err
	}
	_, term, err := c.leader(ctx)
	return who, term, err
}

// waitLeader waits until a unit other than not leads in a term after
// after, its leader-elected hook has ended after journal position from,
// and its state file has the leadership committed; it returns the unit.
func (c *Churn) waitLeader(ctx context.Context, not string, after uint64, from int) (string, error) {
	var who string
	err := c.poll(ctx, "a new leader with leader-elected done", func() (bool, error) {
		var term uint64
		var err error
		who, term, err = c.leader(ctx)
		if err != nil || who == "" || who == not || term <= after {
			return false, nil
		}
		if n, err := c.ended(who, "leader-elected", from); n == 0 {
			return false, err
		}
		// Committed, so that losing it now is a loss of a committed
		// leadership, which leader-deposed must follow. Another hook may
		// be running: the long ones leave few moments with none.
		st, _, err := operation.NewStateFile(agent.StatePath(c.d.AgentDir(who))).Read()
		leaderHook := st.Op != nil && strings.HasPrefix(string(st.Op.Hook.Kind), "leader-")
		return err == nil && st.Leader && st.LeaderTerm == term && !leaderHook, nil
	})
	return who, err
}

// leader asks the controller who holds the lease, and in which term.
func (c *Churn) leader(ctx context.Context) (string, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, _, err := c.d.Admin().WatchLease(ctx, c.d.App(), 0, 0)
	return l.Holder, l.Term, err
}

// raftLeader is the raft leader's ID.
func (c *Churn) raftLeader(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	nodes, err := c.d.Admin().Nodes(ctx)
	if err != nil {
		return "", fmt.Errorf("cannot find the raft leader: %w", err)
	}
	for _, n := range nodes {
		if n.RaftState == "leader" {
			return n.ID, nil
		}
	}
	return "", errors.New("cannot find the raft leader: none leads")
}

// mark is the journal's length now.
func (c *Churn) mark() int {
	entries, _ := c.entries()
	return len(entries)
}

func (c *Churn) entries() ([]Entry, error) { return ReadJournal(c.d.Journal()) }

// runsSince pairs the journal's lines after position mark into runs.
func (c *Churn) runsSince(mark int) ([]Run, error) {
	entries, err := c.entries()
	return Runs(entries[min(mark, len(entries)):]), err
}

// ended counts who's runs of hook that ended after journal position from.
func (c *Churn) ended(who, hook string, from int) (int, error) {
	entries, err := c.entries()
	n := 0
	for _, e := range entries[min(from, len(entries)):] {
		if e.Unit == who && e.Hook == hook && e.Event == "end" {
			n++
		}
	}
	return n, err
}

func (c *Churn) waitEnded(ctx context.Context, who, hook string, from int) error {
	return c.poll(ctx, who+" to run "+hook, func() (bool, error) {
		n, err := c.ended(who, hook, from)
		return n > 0, err
	})
}

// leadershipHooksSince lists leadership hooks started after position mark.
func (c *Churn) leadershipHooksSince(mark int) ([]Entry, error) {
	entries, err := c.entries()
	var out []Entry
	for _, e := range entries[min(mark, len(entries)):] {
		if e.Event == "start" && strings.HasPrefix(e.Hook, "leader-") && e.Hook != "leader-settings-changed" {
			out = append(out, e)
		}
	}
	return out, err
}

// poll calls cond every 5 ms until it is true, ctx ends or waitFor
// passes; the error names what it waited for (and cond's last error).
func (c *Churn) poll(ctx context.Context, what string, cond func() (bool, error)) error {
	deadline := c.opts.Clock.Now().Add(waitFor)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if ctx.Err() != nil || c.opts.Clock.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s (last error: %v)", waitFor, what, err)
		}
		c.wait(ctx, 5*time.Millisecond)
	}
}

// wait lets d pass on the clock, or ctx end.
func (c *Churn) wait(ctx context.Context, d time.Duration) {
	select {
	case <-c.opts.Clock.After(d):
	case <-ctx.Done():
	}
}

// signalTaken reports whether sig is no longer pending for process pid
// (/proc/PID/status SigPnd and ShdPnd): the process has received it.
func signalTaken(pid int, sig syscall.Signal) (bool, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "SigPnd" && k != "ShdPnd") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return false, fmt.Errorf("cannot read %s of process %d: %w", k, pid, err)
		}
		if mask&(1<<(sig-1)) != 0 {
			return false, nil
		}
	}
	return true, nil
}

// killed reports whether err is a process's exit by SIGKILL.
func killed(err error) bool { return err != nil && strings.Contains(err.Error(), "signal: killed") }

func slicesContainsRun(runs []Run, unit, hook string) bool {
	for _, r := range runs {
		if r.Unit == unit && r.Hook == hook {
			return true
		}
	}
	return false
}
