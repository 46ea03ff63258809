package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/charm"
	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/logging"
	"github.com/uniter-dev/uniter/internal/osutil"
	"github.com/uniter-dev/uniter/internal/version"
)

// deployment is $UNITER_HOME/up/deployment.yaml: what `uniter up` runs, so
// a second `uniter up` resumes the same deployment on the same ports.
type deployment struct {
	Version   int            `yaml:"version"`
	App       string         `yaml:"app"`
	Charm     string         `yaml:"charm"`
	Units     int            `yaml:"units"`
	Guarantee agent.Duration `yaml:"guarantee"`
	APIAddr   string         `yaml:"api-addr"`
	RaftAddr  string         `yaml:"raft-addr"`
	// Apps are the applications `uniter deploy` added beside App.
	Apps []deployedApp `yaml:"apps,omitempty"`
}

// deployedApp is an application `uniter deploy` added to the deployment:
// units App/0 .. App/Units-1 of Charm.
type deployedApp struct {
	App   string `yaml:"app"`
	Charm string `yaml:"charm"`
	Units int    `yaml:"units"`
}

// readDeployment reads deployment.yaml.
func readDeployment(path string) (deployment, error) {
	var dep deployment
	data, err := os.ReadFile(path)
	if err != nil {
		return dep, err
	}
	if err := yaml.Unmarshal(data, &dep); err != nil {
		return dep, fmt.Errorf("cannot read %s: %w", path, err)
	}
	return dep, nil
}

type upOptions struct {
	app       string
	units     int
	guarantee time.Duration
}

func newUpCmd() *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up CHARM_DIR [--app NAME] [--units N] [--guarantee D]",
		Short: "Run a local deployment: an embedded controller and N unit agents",
		Long: `Start an embedded 1-node controller and N unit agents of CHARM_DIR, each with its own
copy of the charm, all under $UNITER_HOME/up/, and write $UNITER_HOME/client.yaml so that
the other commands (status, leadership, config, ...) talk to it. It prints which unit leads
and every hook as it runs, restarts an agent that dies, and on Ctrl-C stops the agents
(they keep their leases) and then the controller. Run it again to resume.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &UsageError{fmt.Errorf("want exactly one CHARM_DIR, got %d arguments", len(args))}
			}
			if o.units < 1 || o.units > 50 {
				return &UsageError{fmt.Errorf("--units must be between 1 and 50, got %d", o.units)}
			}
			if o.guarantee < time.Second {
				return &UsageError{fmt.Errorf("--guarantee must be at least 1s, got %v", o.guarantee)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd.Context(), cmd.OutOrStdout(), args[0], o)
		},
	}
	cmd.Flags().StringVar(&o.app, "app", "", "the application name (default: the charm's name)")
	cmd.Flags().IntVar(&o.units, "units", 3, "how many units to run")
	cmd.Flags().DurationVar(&o.guarantee, "guarantee", agent.DefaultGuarantee, "the leadership guarantee G")
	return cmd
}

func upDir() string { return filepath.Join(agent.Home(), "up") }

func runUp(ctx context.Context, out io.Writer, charmDir string, o upOptions) error {
	dep, err := loadOrCreateDeployment(charmDir, o, out)
	if err != nil {
		return err
	}
	logFile, err := logging.OpenRotating(filepath.Join(upDir(), "controller.log"), 10<<20, 3)
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := logging.New(logging.Options{File: logFile, Level: zerolog.InfoLevel})
	ctrl, err := controller.Start(ctx, controller.NodeConfig{
		DataDir: filepath.Join(upDir(), "controller"), APIAddr: dep.APIAddr, RaftAddr: dep.RaftAddr,
		Clock: clock.Real, Logger: log,
	})
	if err != nil {
		return err
	}
	defer ctrl.Close()
	if err := waitForRaftLeader(ctx, ctrl); err != nil {
		return err
	}
	if err := waitForProtocol(ctx, ctrl); err != nil {
		return err
	}
	cf, err := publishClientFile(ctrl)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "controller  %s (client config %s)\n", ctrl.APIAddr(), filepath.Join(agent.Home(), "client.yaml"))
	c, err := client.New(cf.Config())
	if err != nil {
		return err
	}
	defer c.Close()
	dirs, err := ensureUnits(ctx, c, cf, dep)
	if err != nil {
		return err
	}
	sup := newSupervisor(out, dirs)
	err = sup.run(ctx, func(ctx context.Context) { watchDeployment(ctx, sup) }) // deploy.go
	fmt.Fprintln(out, "stopping the controller")
	return err
}

// waitForRaftLeader waits for the embedded node to elect itself, so that
// the first writes do not race the election.
func waitForRaftLeader(ctx context.Context, ctrl *controller.Controller) error {
	deadline := clock.Real.After(30 * time.Second)
	for {
		if id, _ := ctrl.Node().Leader(); id != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-deadline:
			return errors.New("cannot start controller: no raft leader after 30s")
		case <-clock.Real.After(20 * time.Millisecond):
		}
	}
}

// waitForProtocol waits for the embedded node to raise the cluster to the
// newest protocol it speaks (it does once it has recorded itself as a
// member), so that registration may carry the charm's relation endpoints
// (protocol 4).
func waitForProtocol(ctx context.Context, ctrl *controller.Controller) error {
	_, want, err := version.Protocol()
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if got, err := ctrl.Node().FSM().WaitEffectiveVersion(wctx, want); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("cannot start controller: it still runs protocol %d after 30s, not %d", got, want)
	}
	return nil
}

func loadOrCreateDeployment(charmDir string, o upOptions, out io.Writer) (deployment, error) {
	path := filepath.Join(upDir(), "deployment.yaml")
	dep, err := readDeployment(path)
	if err == nil {
		if o.units > dep.Units {
			dep.Units = o.units
		}
		fmt.Fprintf(out, "resuming %s: %d units of %s\n", dep.App, dep.Units, dep.Charm)
		return dep, writeDeployment(path, dep)
	} else if !errors.Is(err, os.ErrNotExist) {
		return deployment{}, err
	}
	abs, err := filepath.Abs(charmDir)
	if err != nil {
		return deployment{}, err
	}
	meta, err := charm.ReadMetadata(abs)
	if err != nil {
		return deployment{}, err
	}
	if _, err := charm.ReadConfig(abs); err != nil {
		return deployment{}, err
	}
	dep = deployment{Version: 1, App: o.app, Charm: abs, Units: o.units, Guarantee: agent.Duration(o.guarantee)}
	if dep.App == "" {
		dep.App = meta.Name
	}
	if dep.APIAddr, err = freeAddr(); err != nil {
		return deployment{}, err
	}
	if dep.RaftAddr, err = freeAddr(); err != nil {
		return deployment{}, err
	}
	fmt.Fprintf(out, "deploying %s: %d units of %s under %s\n", dep.App, dep.Units, abs, upDir())
	return dep, writeDeployment(path, dep)
}

func writeDeployment(path string, dep deployment) error {
	data, err := yaml.Marshal(dep)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return osutil.WriteFileAtomic(path, data, 0o600)
}

// freeAddr picks a free loopback port, kept for resumes.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// publishClientFile copies the controller's admin client.yaml to
// $UNITER_HOME/client.yaml, where client commands look by default.
func publishClientFile(ctrl *controller.Controller) (client.File, error) {
	path, _ := ctrl.ClientFile()
	f, err := client.ReadFile(path)
	if err != nil {
		return client.File{}, err
	}
	if err := client.WriteFile(filepath.Join(agent.Home(), "client.yaml"), f); err != nil {
		return client.File{}, err
	}
	return f, nil
}

// ensureUnits registers and lays out every unit of the deployment (its
// first application's and those `uniter deploy` added) not yet there.
func ensureUnits(ctx context.Context, c *client.Client, cf client.File, dep deployment) (map[string]string, error) {
	root := filepath.Join(upDir(), "units")
	apps := append([]deployedApp{{App: dep.App, Charm: dep.Charm, Units: dep.Units}}, dep.Apps...)
	dirs := map[string]string{}
	for _, a := range apps {
		for unit, dir := range a.unitDirs(root) {
			dirs[unit] = dir
			if _, err := os.Stat(filepath.Join(dir, "agent.yaml")); err == nil {
				continue
			}
			err := addUnit(ctx, c, addUnitOptions{
				Unit: unit, CharmDir: a.Charm, AgentDir: dir, Addresses: cf.Controller.Addresses, CA: cf.Controller,
				Guarantee: time.Duration(dep.Guarantee),
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return dirs, nil
}

// addUnitOptions describe a unit to register and lay out.
type addUnitOptions struct {
	Unit, CharmDir, AgentDir string
	Addresses                []string
	// CA is where the controller's CA pin comes from (the client
	// config's controller section): agent.yaml gets the same.
	CA        client.FileController
	Guarantee time.Duration
	// Address is the unit's address (agent.yaml address); "" for the
	// host's.
	Address string
}

// addUnit registers a unit with the controller and lays out its agent
// directory: its own copy of the charm and agent.yaml (0600) with a fresh
// token. Running it again for the same directory reuses the token.
func addUnit(ctx context.Context, c *client.Client, o addUnitOptions) error {
	schema, endpoints, err := charmSchema(o.CharmDir)
	if err != nil {
		return err
	}
	actions, err := charmActions(o.CharmDir)
	if err != nil {
		return err
	}
	token, err := unitToken(o.AgentDir, o.Unit)
	if err != nil {
		return err
	}
	if err := copyCharm(o.CharmDir, filepath.Join(o.AgentDir, "charm")); err != nil {
		return err
	}
	// agent.yaml first: if registration fails, running again reuses this
	// token, and the registration is idempotent.
	if err := agent.WriteConfig(o.AgentDir, agent.Config{Unit: o.Unit,
		Controller: agent.Controller{Addresses: o.Addresses, Token: token,
			CACert: o.CA.CACert, CAFingerprint: o.CA.CAFingerprint},
		LeadershipGuarantee: agent.Duration(o.Guarantee), Address: o.Address}); err != nil {
		return err
	}
	return c.Register(ctx, api.RegisterUnitRequest{Unit: o.Unit, Token: token, ConfigSchema: schema, Actions: actions, Endpoints: endpoints})
}
