package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/charm"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
)

type deployOptions struct {
	app       string
	units     int
	agentRoot string
	guarantee time.Duration
}

func newDeployCmd() *cobra.Command {
	var o deployOptions
	cmd := &cobra.Command{
		Use:   "deploy CHARM_DIR [--app NAME] [--units N] [--agents-dir DIR] [--guarantee G]",
		Short: "Add an application to a running controller: register N units of a charm",
		Long: `Register units APP/0 .. APP/N-1 of CHARM_DIR with the controller in the client config, each
with its own agent directory (its copy of the charm, agent.yaml, token), as 'uniter unit add'
does for one unit. The application must be new; add units to an existing one with
'uniter unit add'.

Against the controller of a running 'uniter up' (its client config), the units go under
$UNITER_HOME/up/units/ and 'uniter up' starts and supervises their agents within a second
(and again when it is resumed). Against any other controller, they go under --agents-dir
(default $UNITER_HOME/agents/), and deploy prints the 'uniter agent' command that runs each.
Then connect applications with 'uniter relate'.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &UsageError{fmt.Errorf("want exactly one CHARM_DIR, got %d arguments", len(args))}
			}
			if o.units < 1 || o.units > 50 {
				return &UsageError{fmt.Errorf("--units must be between 1 and 50, got %d", o.units)}
			}
			if o.app != "" && !api.ValidApplicationName(o.app) {
				return &UsageError{fmt.Errorf("invalid application name %q", o.app)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runDeploy(cmd, args[0], o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.app, "app", "", "the application name (default: the charm's name)")
	f.IntVar(&o.units, "units", 1, "how many units to register")
	f.StringVar(&o.agentRoot, "agents-dir", "", "where the units' agent directories go (default $UNITER_HOME/agents; under 'uniter up', its own)")
	f.DurationVar(&o.guarantee, "guarantee", 0, "the leadership guarantee G (default: the deployment's under 'uniter up', else the agent's default)")
	addClientConfigFlag(cmd)
	return cmd
}

// runDeploy registers the units and lays out their agent directories.
func runDeploy(cmd *cobra.Command, charmDir string, o deployOptions) error {
	ctx := cmd.Context()
	abs, err := filepath.Abs(charmDir)
	if err != nil {
		return err
	}
	meta, err := charm.ReadMetadata(abs)
	if err != nil {
		return err
	}
	if o.app == "" {
		o.app = meta.Name
	}
	if !api.ValidApplicationName(o.app) {
		return &UsageError{fmt.Errorf("the charm's name %q is not a valid application name: pass --app", o.app)}
	}
	cf, err := loadClientFile(cmd)
	if err != nil {
		return err
	}
	c, err := client.New(cf.Config())
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ApplicationStatus(ctx, o.app); err == nil {
		return fmt.Errorf("cannot deploy %s: application %q already exists (add units with 'uniter unit add')", abs, o.app)
	} else if !errors.Is(err, api.ErrUnknownApplication) {
		return fmt.Errorf("cannot deploy %s: %w", abs, err)
	}
	dep, underUp, err := upDeploymentOf(cf)
	if err != nil {
		return err
	}
	root := o.agentRoot
	switch {
	case underUp:
		root = filepath.Join(upDir(), "units")
		if o.guarantee == 0 {
			o.guarantee = time.Duration(dep.Guarantee)
		}
	case root == "":
		root = filepath.Join(agent.Home(), "agents")
	}
	app := deployedApp{App: o.app, Charm: abs, Units: o.units}
	for unit, dir := range app.unitDirs(root) {
		err := addUnit(ctx, c, addUnitOptions{Unit: unit, CharmDir: abs, AgentDir: dir,
			Addresses: cf.Controller.Addresses, CA: cf.Controller, Guarantee: o.guarantee})
		if err != nil {
			return fmt.Errorf("cannot deploy %s: %w", unit, err)
		}
	}
	out := cmd.OutOrStdout()
	if underUp {
		// Last, so that `uniter up` finds every unit laid out.
		dep.Apps = append(dep.Apps, app)
		if err := writeDeployment(filepath.Join(upDir(), "deployment.yaml"), dep); err != nil {
			return err
		}
		fmt.Fprintf(out, "deployed %s: %d units of %s; 'uniter up' runs their agents\n", o.app, o.units, abs)
		return nil
	}
	fmt.Fprintf(out, "deployed %s: %d units of %s; start their agents with:\n", o.app, o.units, abs)
	dirs := app.unitDirs(root)
	for _, unit := range slices.Sorted(maps.Keys(dirs)) {
		fmt.Fprintf(out, "  uniter agent --agent-dir %s\n", dirs[unit])
	}
	return nil
}

// upDeploymentOf returns the deployment of `uniter up` in $UNITER_HOME
// and whether cf is the client config of its controller.
func upDeploymentOf(cf client.File) (deployment, bool, error) {
	dep, err := readDeployment(filepath.Join(upDir(), "deployment.yaml"))
	if errors.Is(err, os.ErrNotExist) {
		return deployment{}, false, nil
	} else if err != nil {
		return deployment{}, false, err
	}
	for _, a := range cf.Controller.Addresses {
		if dep.APIAddr != "" && strings.Contains(a, dep.APIAddr) {
			return dep, true, nil
		}
	}
	return deployment{}, false, nil
}

// unitDirs maps each unit of the application to its agent directory
// under root.
func (a deployedApp) unitDirs(root string) map[string]string {
	dirs := make(map[string]string, a.Units)
	for i := range a.Units {
		unit := fmt.Sprintf("%s/%d", a.App, i)
		dirs[unit] = filepath.Join(root, strings.ReplaceAll(unit, "/", "-"))
	}
	return dirs
}

// watchDeployment tells sup about the units `uniter deploy` adds to the
// deployment while `uniter up` runs: it re-reads deployment.yaml every
// second until ctx ends, and hands sup every added unit whose agent
// directory is laid out (sup ignores those it runs already).
func watchDeployment(ctx context.Context, sup *supervisor) {
	path := filepath.Join(upDir(), "deployment.yaml")
	root := filepath.Join(upDir(), "units")
	for {
		select {
		case <-ctx.Done():
			return
		case <-sup.clock.After(time.Second):
		}
		dep, err := readDeployment(path)
		if err != nil {
			continue // being replaced, or damaged: the next read tells
		}
		for _, a := range dep.Apps {
			for unit, dir := range a.unitDirs(root) {
				if _, err := os.Stat(filepath.Join(dir, "agent.yaml")); err == nil {
					sup.add(ctx, unit, dir)
				}
			}
		}
	}
}
