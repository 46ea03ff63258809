package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/bench/journal"
	"github.com/uniter-dev/uniter/operation"
)

// App is an application of n units, each with its own agent directory
// and copy of the charm, registered with `uniter unit add`. With the
// journal charm every unit writes one shared journal.
type App struct {
	Cluster *Cluster
	Name    string
	// Journal is the shared journal ("" for a charm without one).
	Journal string
	Units   []*Unit
}

// Unit is one unit and its `uniter agent` process (when started).
type Unit struct {
	Name, Dir string
	env       Env
	agent     *Process
}

// AddApp registers n units of app running charmDir with guarantee G (0:
// the default). If journaled, every unit's journal.path names one file.
func (c *Cluster) AddApp(ctx context.Context, app, charmDir string, n int, g time.Duration, journaled bool) (*App, error) {
	a := &App{Cluster: c, Name: app}
	if journaled {
		a.Journal = filepath.Join(c.env.Dir, app+"-journal.log")
	}
	for i := range n {
		u := &Unit{Name: fmt.Sprintf("%s/%d", app, i), Dir: filepath.Join(c.env.Dir, "units", fmt.Sprintf("%s-%d", app, i)), env: c.env}
		args := []string{"unit", "add", u.Name, "--charm", charmDir, "--agent-dir", u.Dir, "--client-config", c.FilePath}
		if g > 0 {
			args = append(args, "--guarantee", g.String())
		}
		cmd := exec.CommandContext(ctx, c.env.Bin, args...)
		cmd.Env = c.env.environ()
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("cannot add unit %s: %w: %s", u.Name, err, strings.TrimSpace(string(out)))
		}
		if journaled {
			if err := os.WriteFile(filepath.Join(u.CharmDir(), "journal.path"), []byte(a.Journal+"\n"), 0o644); err != nil {
				return nil, fmt.Errorf("cannot point %s at the shared journal: %w", u.Name, err)
			}
		}
		a.Units = append(a.Units, u)
	}
	return a, nil
}

// CharmDir is the unit's copy of the charm.
func (u *Unit) CharmDir() string { return filepath.Join(u.Dir, "charm") }

// Config reads the unit's agent.yaml.
func (u *Unit) Config() (agent.Config, error) { return agent.ReadConfig(u.Dir) }

// State reads the unit's committed operation state.
func (u *Unit) State() (operation.State, error) {
	st, _, err := operation.NewStateFile(agent.StatePath(u.Dir)).Read()
	return st, err
}

// StartAgent starts the unit's `uniter agent` process.
func (u *Unit) StartAgent() error {
	p, err := Start(u.env, u.Name, filepath.Join(u.Dir, "agent.out"), u.env.Bin, "agent", "--agent-dir", u.Dir)
	if err != nil {
		return err
	}
	u.agent = p
	return nil
}

// Agent is the unit's agent process (nil before StartAgent).
func (u *Unit) Agent() *Process { return u.agent }

// Start starts every unit's agent.
func (a *App) Start() error {
	for _, u := range a.Units {
		if err := u.StartAgent(); err != nil {
			return err
		}
	}
	return nil
}

// Unit returns the unit called name.
func (a *App) Unit(name string) *Unit {
	for _, u := range a.Units {
		if u.Name == name {
			return u
		}
	}
	return nil
}

// Stop stops every running agent (SIGTERM: they keep their leases).
func (a *App) Stop() {
	for _, u := range a.Units {
		if u.agent != nil {
			u.agent.Stop(45 * time.Second)
		}
	}
}

// Settled is the application at rest.
type Settled struct {
	Leader string
	Term   uint64
}

// quiet is how long the journal must have been still for Settle.
const quiet = 300 * time.Millisecond

// Settle waits until the application is at rest: it has a leader, every
// agent is alive and reports idle, no hook runs (and none started for a
// moment), and every unit's committed leader flag agrees with the lease.
func (a *App) Settle(ctx context.Context, timeout time.Duration) (Settled, error) {
	var s Settled
	err := Poll(ctx, "settle "+a.Name, timeout, 50*time.Millisecond, func() (bool, error) {
		var err error
		s, err = a.settled(ctx)
		return err == nil, err
	})
	return s, err
}

var errBusy = errors.New("not at rest")

func (a *App) settled(ctx context.Context) (Settled, error) {
	st, err := a.Cluster.Admin.Status(ctx)
	if err != nil {
		return Settled{}, err
	}
	app, ok := st.Applications[a.Name]
	if !ok || app.Leader == nil {
		return Settled{}, fmt.Errorf("%w: no leader", errBusy)
	}
	s := Settled{Leader: *app.Leader, Term: app.Term}
	for _, u := range a.Units {
		if u.agent == nil || !u.agent.Alive() {
			return Settled{}, fmt.Errorf("%w: agent of %s is not running", errBusy, u.Name)
		}
		if got := app.Units[u.Name].Agent.Status; got != agent.StatusIdle {
			return Settled{}, fmt.Errorf("%w: %s is %s", errBusy, u.Name, got)
		}
		local, err := u.State()
		if err != nil {
			return Settled{}, err
		}
		leads := u.Name == s.Leader
		if local.Leader != leads || (leads && local.LeaderTerm != s.Term) || local.Op != nil {
			return Settled{}, fmt.Errorf("%w: %s has leader=%v term %d", errBusy, u.Name, local.Leader, local.LeaderTerm)
		}
	}
	if a.Journal != "" {
		entries, err := journal.Read(a.Journal)
		if err != nil {
			return Settled{}, err
		}
		if journal.Running(journal.Runs(entries)) {
			return Settled{}, fmt.Errorf("%w: a hook is running", errBusy)
		}
		if n := len(entries); n > 0 && journal.Now()-entries[n-1].NS < int64(quiet) {
			return Settled{}, fmt.Errorf("%w: a hook just ran", errBusy)
		}
	}
	return s, nil
}
