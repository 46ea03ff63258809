package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/report"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/tests/churn"
)

// Setup of B10: the end-to-end churn test's (tests/leadership_test.go).
const (
	soakUnits        = 3
	soakNodes        = 3
	soakG            = 3 * time.Second
	soakRetryInitial = 200 * time.Millisecond
	soakAskEvery     = 10 * time.Millisecond
	// soakStopTimeout lets a long hook (G + 1 s) finish when an agent is
	// stopped.
	soakStopTimeout = 10 * time.Second
)

// runChurnSoak (B10) runs the strengthened leadership churn of the
// end-to-end tests (package tests/churn) over and over for the soak's
// window, on 3 units of the journal charm and a 3-node controller, then
// checks every is-leader answer, hook run and lease change it recorded.
// A step that breaks a promise of its own (a handover slower than a
// second, a failing hook retried without backoff) counts as a violation
// and the soak goes on; a deployment that does not get where a step waits
// for it ends the soak.
func runChurnSoak(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	window := pick(s, 3*time.Minute, 30*time.Minute)
	d, closeAll, err := startSoak(ctx, s, env)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	ch, err := churn.Start(ctx, d, churn.Options{G: soakG, RetryInitial: soakRetryInitial, AskEvery: soakAskEvery,
		Logf: func(format string, args ...any) { s.logf("B10 "+format, args...) }})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var facts soakFacts
	var failure error
	for failure == nil && time.Since(start) < window && ctx.Err() == nil {
		facts.Rounds++
		for _, step := range ch.Steps() {
			for _, e := range leaves(step.Run(ctx)) {
				if !errors.Is(e, churn.ErrViolation) {
					failure = errors.Join(failure, fmt.Errorf("round %d, %s: %w", facts.Rounds, step.Name, e))
					continue
				}
				facts.StepViolations++
				facts.addFirst(fmt.Sprintf("round %d, %s: %v", facts.Rounds, step.Name, e))
				s.logf("B10 round %d, %s: %v", facts.Rounds, step.Name, e)
			}
			if failure != nil || ctx.Err() != nil {
				break
			}
		}
		s.logf("B10 round %d done, %s into the soak", facts.Rounds, time.Since(start).Round(time.Second))
	}
	facts.WindowS = time.Since(start).Round(time.Second).Seconds()
	res, ferr := ch.Finish()
	facts.fill(res)
	for _, e := range res.Errs {
		facts.addFirst(e.Error())
	}
	s.logf("B10: %d true answers checked over %d rounds; %d violations (%d of the checker, %d of the steps)",
		res.Checked, facts.Rounds, facts.StepViolations+res.Violations, res.Violations, facts.StepViolations)
	rows := soakRows(facts)
	return rows, errors.Join(failure, ferr)
}

// leaves are the errors err joins, recursively (err itself if it joins
// none; nothing if nil).
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leaves(e)...)
	}
	return out
}

// soakRows are B10's rows: the true answers checked and the violations.
func soakRows(f soakFacts) []report.Row {
	return []report.Row{
		newRow("answers_checked", "answers", []float64{float64(f.Checked)}).WithFacts(f),
		newRow("violations", "violations", []float64{float64(f.CheckerViolations + f.StepViolations)}).WithFacts(f),
	}
}

// soakFacts are what B10's notes quote.
type soakFacts struct {
	Units      int     `json:"units"`
	Nodes      int     `json:"nodes"`
	GuaranteeS float64 `json:"g_s"`
	AskEveryMS float64 `json:"ask_every_ms"`
	WindowS    float64 `json:"window_s"`
	Rounds     int     `json:"rounds"`
	Answers    int     `json:"answers"`
	True       int     `json:"true"`
	Checked    int     `json:"checked"`
	// Unverified true answers are for terms the lease recorder never saw.
	Unverified        int `json:"unverified"`
	Terms             int `json:"terms"`
	CheckerViolations int `json:"checker_violations"`
	StepViolations    int `json:"step_violations"`
	// First lists the first few violations, in words.
	First []string `json:"first"`
}

// soakFirst is how many violations B10's note quotes.
const soakFirst = 3

func (f *soakFacts) addFirst(s string) {
	if len(f.First) < soakFirst {
		f.First = append(f.First, oneLine(s))
	}
}

func (f *soakFacts) fill(r churn.Result) {
	f.Units, f.Nodes, f.GuaranteeS, f.AskEveryMS = soakUnits, soakNodes, soakG.Seconds(), float64(soakAskEvery.Milliseconds())
	f.Answers, f.True, f.Checked, f.Unverified = r.Answers, r.True, r.Checked, r.Unverified
	f.Terms, f.CheckerViolations = r.Terms, r.Violations
	if f.First == nil {
		f.First = []string{}
	}
}

// startSoak starts B10's deployment: a 3-node controller and 3 units of
// the journal charm with one journal, tuned as the end-to-end churn's
// (each on a machine of its own, update-status every second, failed hooks
// retried after 200 ms); the
// agents are the churn's to start. It returns a func that stops it all.
func startSoak(ctx context.Context, s *Suite, env deploy.Env) (*soakDeployment, func(), error) {
	c, err := deploy.StartCluster(ctx, env, soakNodes)
	if err != nil {
		return nil, nil, err
	}
	a, err := c.AddApp(ctx, "churn", s.charm("journal"), soakUnits, soakG, true)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	closeAll := func() {
		for _, u := range a.Units {
			if p := u.Agent(); p != nil {
				p.Signal(syscall.SIGCONT)
			}
		}
		a.Stop()
		for _, n := range c.Nodes {
			n.Signal(syscall.SIGCONT)
		}
		c.Close()
	}
	for _, u := range a.Units {
		cfg, err := u.Config()
		if err == nil {
			// One machine per unit, as in the end-to-end test: on one
			// machine lock a unit's long hook would hold up the others'.
			cfg.MachineLock = filepath.Join(u.Dir, "machine-lock")
			cfg.UpdateStatusInterval = agent.Duration(time.Second)
			cfg.RetryInitial = agent.Duration(soakRetryInitial)
			cfg.StopTimeout = agent.Duration(soakStopTimeout)
			err = agent.WriteConfig(u.Dir, cfg)
		}
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("cannot tune %s's agent: %w", u.Name, err)
		}
	}
	return &soakDeployment{a: a}, closeAll, nil
}

// soakDeployment is the churn script's view of B10's deployment.
type soakDeployment struct{ a *deploy.App }

func (d *soakDeployment) App() string { return d.a.Name }

func (d *soakDeployment) Units() []string {
	var out []string
	for _, u := range d.a.Units {
		out = append(out, u.Name)
	}
	return out
}

func (d *soakDeployment) unit(name string) (*deploy.Unit, error) {
	if u := d.a.Unit(name); u != nil {
		return u, nil
	}
	return nil, fmt.Errorf("no unit %s", name)
}

func (d *soakDeployment) CharmDir(unit string) string { return d.a.Unit(unit).CharmDir() }
func (d *soakDeployment) AgentDir(unit string) string { return d.a.Unit(unit).Dir }
func (d *soakDeployment) Journal() string             { return d.a.Journal }

func (d *soakDeployment) StartAgent(unit string) error {
	u, err := d.unit(unit)
	if err != nil {
		return err
	}
	return u.StartAgent()
}

func (d *soakDeployment) AgentPID(unit string) int { return d.a.Unit(unit).Agent().PID() }

func (d *soakDeployment) SignalAgent(unit string, sig syscall.Signal) error {
	u, err := d.unit(unit)
	if err != nil {
		return err
	}
	if p := u.Agent(); p != nil && p.Alive() {
		return p.Signal(sig)
	}
	return nil
}

func (d *soakDeployment) StopAgent(unit string, sig syscall.Signal) error {
	u, err := d.unit(unit)
	if err != nil {
		return err
	}
	p := u.Agent()
	if p == nil {
		return nil
	}
	return stopProcess(p, sig)
}

// stopProcess signals p and waits for it to exit (SIGKILL after 45 s),
// returning why it exited.
func stopProcess(p *deploy.Process, sig syscall.Signal) error {
	if p.Alive() {
		p.Signal(sig)
	}
	select {
	case <-p.Exited():
	case <-time.After(45 * time.Second):
		p.Kill()
		return fmt.Errorf("%s did not exit on %v", p.Name, sig)
	}
	return p.Err()
}

func (d *soakDeployment) Nodes() []string {
	var out []string
	for _, n := range d.a.Cluster.Nodes {
		out = append(out, n.ID)
	}
	return out
}

func (d *soakDeployment) node(id string) (*deploy.Node, error) {
	for _, n := range d.a.Cluster.Nodes {
		if n.ID == id {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no controller node %q", id)
}

func (d *soakDeployment) SignalNode(id string, sig syscall.Signal) error {
	n, err := d.node(id)
	if err != nil {
		return err
	}
	return n.Signal(sig)
}

func (d *soakDeployment) StopNode(id string, sig syscall.Signal) error {
	n, err := d.node(id)
	if err != nil {
		return err
	}
	return stopProcess(n.Process, sig)
}

func (d *soakDeployment) StartNode(id string) error {
	n, err := d.node(id)
	if err != nil {
		return err
	}
	return d.a.Cluster.RestartNode(n)
}

func (d *soakDeployment) Admin() *client.Client { return d.a.Cluster.Admin }

func (d *soakDeployment) StepDown(ctx context.Context) error {
	return d.a.Cluster.Admin.RequestStepDown(ctx, d.a.Name)
}
