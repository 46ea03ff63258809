package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/tests/churn"
)

// guarantee is G in the leadership end-to-end tests.
const guarantee = 3 * time.Second

// leaderFixture is three units of the journal charm, each on its own
// "machine", on a 3-node controller, recording every hook and is-leader
// answer in one journal.
type leaderFixture struct {
	t       *testing.T
	c       *cluster
	units   []*agentUnit
	journal string
}

// addLeaderUnits is the fixture's cluster and units, their agents not
// started yet.
func addLeaderUnits(t *testing.T, nodes int) *leaderFixture {
	f := &leaderFixture{t: t, c: startCluster(t, nodes)}
	f.journal = filepath.Join(f.c.root, "journal.log")
	for i := range 3 {
		u := f.c.addUnit("journal/"+string(rune('0'+i)), "journal", func(cfg *agent.Config) {
			cfg.UpdateStatusInterval = agent.Duration(time.Second)
			cfg.RetryInitial = agent.Duration(churnRetryInitial)
			cfg.StopTimeout = agent.Duration(10 * time.Second)
		})
		for name, content := range map[string]string{"journal.path": f.journal, "ask-leader": "2"} {
			if err := os.WriteFile(u.path("charm", name), []byte(content+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		f.units = append(f.units, u)
	}
	return f
}

func (f *leaderFixture) entries() []entry { return readJournal(f.t, f.journal) }

func (f *leaderFixture) unit(name string) *agentUnit { return unitNamed(f.t, f.units, name) }

func (f *leaderFixture) leader() (string, uint64) { return f.c.leader("journal") }

// waitLeader waits until a unit other than not leads in a term after
// term, and its leader-elected hook has ended after journal position
// from; it returns the unit.
func (f *leaderFixture) waitLeader(not string, after uint64, from int) string {
	f.t.Helper()
	var who string
	testutil.WaitUntil(f.t, 60*time.Second, "a new leader with leader-elected done", func() bool {
		var term uint64
		who, term = f.leader()
		if who == "" || who == not || term <= after {
			return false
		}
		if f.ended(who, "leader-elected", from) == 0 {
			return false
		}
		// Committed, so that losing it now is a loss of a committed
		// leadership, which leader-deposed must follow.
		st, _, err := operation.NewStateFile(agent.StatePath(f.unit(who).dir)).Read()
		return err == nil && st.Leader && st.LeaderTerm == term && st.Op == nil
	})
	return who
}

// ended counts who's runs of hook that ended after journal position from.
func (f *leaderFixture) ended(who, hook string, from int) int {
	n := 0
	j := f.entries()
	for _, e := range j[min(from, len(j)):] {
		if e.Unit == who && e.Hook == hook && e.Event == "end" {
			n++
		}
	}
	return n
}

// waitEnded waits until who has ended a run of hook after position from.
func (f *leaderFixture) waitEnded(who, hook string, from int) {
	f.t.Helper()
	testutil.WaitUntil(f.t, 60*time.Second, who+" to run "+hook, func() bool { return f.ended(who, hook, from) > 0 })
}

// churnRetryInitial is the agents' retry-initial in the churn.
const churnRetryInitial = 200 * time.Millisecond

// churnDeployment is the churn script's view of a leaderFixture.
type churnDeployment struct{ *leaderFixture }

func (d churnDeployment) App() string { return "journal" }

func (d churnDeployment) Units() []string {
	var out []string
	for _, u := range d.units {
		out = append(out, u.unit)
	}
	return out
}

func (d churnDeployment) CharmDir(unit string) string { return d.unit(unit).path("charm") }
func (d churnDeployment) AgentDir(unit string) string { return d.unit(unit).dir }
func (d churnDeployment) Journal() string             { return d.journal }

func (d churnDeployment) StartAgent(unit string) error {
	d.unit(unit).start()
	return nil
}

func (d churnDeployment) AgentPID(unit string) int { return d.unit(unit).p.cmd.Process.Pid }

func (d churnDeployment) SignalAgent(unit string, sig syscall.Signal) error {
	if u := d.unit(unit); u.p != nil && !u.p.exited() {
		u.p.signal(sig)
	}
	return nil
}

func (d churnDeployment) StopAgent(unit string, sig syscall.Signal) error {
	return d.unit(unit).p.stop(sig)
}

func (d churnDeployment) Nodes() []string {
	var out []string
	for i := range d.c.nodes {
		out = append(out, fmt.Sprintf("node-%d", i))
	}
	return out
}

// node is the index of the node with raft ID id.
func (d churnDeployment) node(id string) (*ctrlNode, int, error) {
	var i int
	if _, err := fmt.Sscanf(id, "node-%d", &i); err != nil || i < 0 || i >= len(d.c.nodes) {
		return nil, 0, fmt.Errorf("no controller node %q", id)
	}
	return d.c.nodes[i], i, nil
}

func (d churnDeployment) SignalNode(id string, sig syscall.Signal) error {
	nd, _, err := d.node(id)
	if err == nil {
		nd.p.signal(sig)
	}
	return err
}

func (d churnDeployment) StopNode(id string, sig syscall.Signal) error {
	nd, _, err := d.node(id)
	if err != nil {
		return err
	}
	return nd.p.stop(sig)
}

func (d churnDeployment) StartNode(id string) error {
	_, i, err := d.node(id)
	if err == nil {
		d.c.start(i)
	}
	return err
}

func (d churnDeployment) Admin() *client.Client { return d.c.client() }

// StepDown is `uniter leadership revoke journal`, the operator's way.
func (d churnDeployment) StepDown(context.Context) error {
	if res := d.c.run("leadership", "revoke", "journal", "--wait", "0"); res.code != 0 {
		return fmt.Errorf("revoke: exit %d: %s", res.code, res.stderr)
	}
	return nil
}

// TestLeadershipChurn runs the churn script of the leadership issues on
// three units and a 3-node controller, with every unit asking is-leader
// twice at the start of every hook and all through long update-status
// hooks, while a recorder follows the lease at the controller; then it
// proves, from every answer, hook run and lease change, that no two
// units were ever leader at once, that every true answer's term was the
// controller's at that moment and held for G, and that leader-deposed
// really ran (churn.Check). Steps that break a promise of their own (a
// handover slower than a second, a failing hook retried without backoff)
// fail on their own; the records are checked whatever happened.
func TestLeadershipChurn(t *testing.T) {
	d := churnDeployment{addLeaderUnits(t, 3)}
	ch, err := churn.Start(t.Context(), d, churn.Options{
		G: guarantee, RetryInitial: churnRetryInitial, AskEvery: churnAskEvery, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range ch.Steps() {
		t.Run(step.Name, func(t *testing.T) {
			if err := step.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("step-down of a pinned application is refused", func(t *testing.T) {
		if res := d.c.run("leadership", "pin", "journal", "--entity", "e2e", "--reason", "test"); res.code != 0 {
			t.Fatalf("pin: exit %d: %s", res.code, res.stderr)
		}
		res := d.c.run("leadership", "revoke", "journal")
		if res.code != 1 || !strings.Contains(res.stderr, "pinned") {
			t.Fatalf("revoke of a pinned application: exit %d, stderr %q; want exit 1 saying it is pinned", res.code, res.stderr)
		}
		if res := d.c.run("leadership", "unpin", "journal", "--entity", "e2e"); res.code != 0 {
			t.Fatalf("unpin: exit %d: %s", res.code, res.stderr)
		}
	})

	res, err := ch.Finish()
	if err != nil {
		t.Error(err)
	}
	t.Logf("checker: %d is-leader answers, %d true; %d true answers checked against the controller's lease history (%d terms, %d failed queries), %d unverified; %d violations",
		res.Answers, res.True, res.Checked, res.Terms, res.RecorderErrors, res.Unverified, res.Violations)
	if res.Answers < 20 {
		t.Fatalf("only %d is-leader answers recorded", res.Answers)
	}
	if res.True == 0 {
		t.Fatal("no unit ever answered is-leader true")
	}
	if res.Checked < churnMinChecked {
		t.Errorf("only %d true answers checked against the lease history; want at least %d", res.Checked, churnMinChecked)
	}
	if res.Unverified != 0 {
		t.Errorf("%d true answers are for terms the lease recorder never saw: the history cannot vouch for them", res.Unverified)
	}
	if err := res.Err(); err != nil {
		t.Fatalf("leadership contract broken:\n%v", err)
	}
	// leader-deposed ran with is-leader false inside it, every time.
	for _, a := range readAnswers(t, d.journal+".leader") {
		if a.Hook == "leader-deposed" && a.Leader {
			t.Fatalf("is-leader true inside leader-deposed: %+v", a)
		}
	}
}

// churnAskEvery spaces the is-leader calls of the churn's long hooks,
// and churnMinChecked is the least number of true answers the churn must
// check: thousands, by the rate, not the duration.
const (
	churnAskEvery   = 10 * time.Millisecond
	churnMinChecked = 1000
)
