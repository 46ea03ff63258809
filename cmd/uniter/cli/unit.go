package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/charm"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
)

func newUnitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "unit",
		Short: "Add or remove application units",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return &UsageError{errors.New("missing subcommand: add or remove")}
		},
	}
	addClientConfigFlag(cmd)
	cmd.AddCommand(newUnitAddCmd(), newUnitRemoveCmd())
	return cmd
}

type unitAddOptions struct {
	charmDir, agentDir string
	guarantee          time.Duration
	addrs              []string
	address            string
}

func newUnitAddCmd() *cobra.Command {
	var o unitAddOptions
	cmd := &cobra.Command{
		Use:   "add APP/N --charm DIR --agent-dir D [--guarantee G] [--address IP] [--controller-addr A]...",
		Short: "Register a unit with the controller and prepare its agent directory (admin)",
		Long: `Register APP/N with the controller (with the admin token of the client config) and
prepare its agent directory: a copy of the charm in D/charm and D/agent.yaml (mode
0600) with the unit, the controller addresses and a new unit token. The charm's
config.yaml options become the application's config schema, its actions.yaml the
application's actions ('uniter actions APP' lists them), and its metadata.yaml relation
endpoints (provides, requires, peers) the application's endpoints: every peers endpoint
gets its peer relation with the first unit (actions and endpoints need controller protocol 4).
--address sets the unit's address, what network-get and unit-get answer (default: the
host's primary address, found when the agent starts).

Running it again for the same unit and directory reuses the token and the charm
copy, so an interrupted 'unit add' can simply be repeated. Start the agent with
'uniter agent --agent-dir D'.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runUnitAdd(cmd, args[0], o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.charmDir, "charm", "", "the charm directory")
	f.StringVar(&o.agentDir, "agent-dir", "", "the unit's agent directory (created)")
	f.DurationVar(&o.guarantee, "guarantee", 0, "leadership guarantee G (default 30s)")
	f.StringSliceVar(&o.addrs, "controller-addr", nil, "controller API address for the agent (default: every member of the cluster)")
	f.StringVar(&o.address, "address", "", "the unit's IP address for network-get and unit-get (default: the host's primary address)")
	return cmd
}

func checkUnitArg(unit string) error {
	if _, _, err := api.SplitUnit(unit); err != nil {
		return &UsageError{fmt.Errorf("bad unit name %q: want APP/N", unit)}
	}
	return nil
}

func (o unitAddOptions) check() error {
	switch {
	case o.charmDir == "":
		return &UsageError{errors.New("--charm is required")}
	case o.agentDir == "":
		return &UsageError{errors.New("--agent-dir is required")}
	case o.guarantee < 0:
		return &UsageError{errors.New("--guarantee must not be negative")}
	}
	if _, err := netip.ParseAddr(o.address); o.address != "" && err != nil {
		return &UsageError{fmt.Errorf("--address must be an IP address, got %q", o.address)}
	}
	charmAbs, err1 := filepath.Abs(o.charmDir)
	agentAbs, err2 := filepath.Abs(o.agentDir)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if rel, err := filepath.Rel(charmAbs, agentAbs); err == nil && !strings.HasPrefix(rel, "..") {
		return &UsageError{errors.New("--agent-dir must not be inside the charm directory")}
	}
	return nil
}

func runUnitAdd(cmd *cobra.Command, unit string, o unitAddOptions) error {
	if err := checkUnitArg(unit); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
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
	addrs := o.addrs
	if len(addrs) == 0 {
		// Every member's address, so that the agent rides out the loss
		// of any one node; the client config's if the cluster cannot say.
		addrs = cf.Controller.Addresses
		path, _ := clientConfigPath(cmd)
		if members := refreshClientFile(cmd.Context(), c, path, cf); len(members) > 0 {
			addrs = members
		}
	}
	err = addUnit(cmd.Context(), c, addUnitOptions{Unit: unit, CharmDir: o.charmDir, AgentDir: o.agentDir,
		Addresses: addrs, CA: cf.Controller, Guarantee: o.guarantee, Address: o.address})
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "registered unit %s; start its agent with: uniter agent --agent-dir %s\n", unit, o.agentDir)
	return nil
}

// unitToken is the token of an earlier `unit add` of the same unit into
// agentDir, or a new one (32 random bytes, hex).
func unitToken(agentDir, unit string) (string, error) {
	cfg, err := agent.ReadConfig(agentDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", err
	case cfg.Unit != unit:
		return "", fmt.Errorf("cannot add unit %s: agent directory %s belongs to unit %s", unit, agentDir, cfg.Unit)
	case cfg.Controller.Token != "":
		return cfg.Controller.Token, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cannot make unit token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// charmSchema reads the charm's config.yaml options as the API's schema
// (defaults in their string form), and its metadata.yaml relation
// endpoints (provides, requires, peers). A charm without config.yaml has
// an empty schema; one without endpoints an empty (non-nil) set, which
// the controller records as "this charm has none".
func charmSchema(dir string) (map[string]api.Option, map[string]api.Endpoint, error) {
	meta, err := charm.ReadMetadata(dir)
	if err != nil {
		return nil, nil, err
	}
	endpoints := make(map[string]api.Endpoint, len(meta.Endpoints))
	for name, e := range meta.Endpoints {
		endpoints[name] = api.Endpoint{Role: e.Role, Interface: e.Interface}
	}
	cfg, err := charm.ReadConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]api.Option, len(cfg.Options))
	for name, o := range cfg.Options {
		opt := api.Option{Type: o.Type, Description: o.Description}
		if o.Default != nil {
			d := formatDefault(o.Default)
			opt.Default = &d
		}
		out[name] = opt
	}
	return out, endpoints, nil
}

// charmActions reads the charm's actions.yaml as the API's action specs
// (each schema as JSON). A charm without one has no actions.
func charmActions(dir string) (map[string]api.ActionSpec, error) {
	actions, err := charm.ReadActions(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]api.ActionSpec, len(actions))
	for name, a := range actions {
		schema, err := json.Marshal(a.Schema)
		if err != nil {
			return nil, fmt.Errorf("cannot encode the schema of action %s: %w", name, err)
		}
		out[name] = api.ActionSpec{Description: a.Description, Schema: schema}
	}
	return out, nil
}

func formatDefault(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		return fmt.Sprint(x)
	}
}

// copyCharm copies the charm to dst with cp -a semantics (modes, symlinks
// as symlinks, modification times), into a temporary directory renamed
// into place, so dst is either absent or complete. An existing dst (the
// unit's own copy, which charms write state into) is kept.
func copyCharm(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("cannot copy charm: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".charm.tmp-")
	if err != nil {
		return fmt.Errorf("cannot copy charm: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := copyTree(src, tmp); err != nil {
		return fmt.Errorf("cannot copy charm %s: %w", src, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("cannot copy charm: %w", err)
	}
	return nil
}

// copyTree copies the contents of the directory src into the existing
// directory dst.
func copyTree(src, dst string) error {
	var dirs []string // fixed up last: a read-only directory must be filled first
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			dirs = append(dirs, path)
			if rel == "." {
				return nil
			}
			return os.Mkdir(to, 0o700)
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case mode.IsRegular():
			return copyFile(path, to, info)
		default:
			return fmt.Errorf("%s: unsupported file type %v", path, mode.Type())
		}
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		info, err := os.Stat(dirs[i])
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, dirs[i])
		to := filepath.Join(dst, rel)
		if err := os.Chmod(to, info.Mode().Perm()); err != nil {
			return err
		}
		if err := os.Chtimes(to, info.ModTime(), info.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string, info fs.FileInfo) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(info.Mode().Perm()); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(to, info.ModTime(), info.ModTime())
}

type unitRemoveOptions struct {
	wait  time.Duration
	force bool
}

func newUnitRemoveCmd() *cobra.Command {
	var o unitRemoveOptions
	cmd := &cobra.Command{
		Use:   "remove APP/N [--wait D] [--force]",
		Short: "Remove a unit: it steps down, stops and deregisters (admin)",
		Long: `Mark APP/N dying. Its agent steps down if it is the leader (leader-deposed, then the
lease is released), runs its teardown and deregisters the unit. The command waits up
to --wait for the unit to be gone (0: do not wait). --force deregisters the unit at
once instead, releasing its lease (refused while the lease is pinned).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runUnitRemove(cmd, args[0], o) },
	}
	cmd.Flags().DurationVar(&o.wait, "wait", 5*time.Minute, "how long to wait for the unit's agent to deregister it")
	cmd.Flags().BoolVar(&o.force, "force", false, "deregister the unit now, without waiting for its agent")
	return cmd
}

func runUnitRemove(cmd *cobra.Command, unit string, o unitRemoveOptions) error {
	if err := checkUnitArg(unit); err != nil {
		return err
	}
	if o.wait < 0 {
		return &UsageError{errors.New("--wait must not be negative")}
	}
	c, err := loadClient(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := cmd.Context()
	if err := c.RemoveUnit(ctx, unit); err != nil {
		return err
	}
	if o.force {
		if err := c.DeregisterUnit(ctx, unit); err != nil && !errors.Is(err, api.ErrUnknownUnit) {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "removed unit %s\n", unit)
		return nil
	}
	if o.wait == 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "unit %s is dying; its agent deregisters it when done\n", unit)
		return nil
	}
	return waitUnitGone(cmd, c, unit, o.wait)
}

// waitUnitGone watches the unit until it is deregistered or wait passes.
func waitUnitGone(cmd *cobra.Command, c *client.Client, unit string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), wait)
	defer cancel()
	var index uint64
	for {
		_, idx, err := c.WatchUnit(ctx, unit, index, wait)
		switch {
		case errors.Is(err, api.ErrUnknownUnit):
			fmt.Fprintf(cmd.OutOrStdout(), "removed unit %s\n", unit)
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("unit %s is dying but its agent has not deregistered it within %v (see 'uniter status'; --force deregisters it now)", unit, wait)
		case err != nil:
			return err
		}
		index = idx
	}
}
