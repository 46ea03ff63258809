package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller/client"
)

// Client configuration of the operator commands (DESIGN.md §5): the
// --client-config flag, else $UNITER_CLIENT_CONFIG, else
// $UNITER_HOME/client.yaml.
const (
	clientConfigFlag = "client-config"
	// ClientConfigEnv names the client config when the flag is not given.
	ClientConfigEnv = "UNITER_CLIENT_CONFIG"
)

// addClientConfigFlag gives cmd and its subcommands the --client-config
// flag (a persistent flag: put it on a group command, or on the root).
func addClientConfigFlag(cmd *cobra.Command) {
	cmd.PersistentFlags().String(clientConfigFlag, "",
		"the controller client config (default $"+ClientConfigEnv+", else $UNITER_HOME/client.yaml)")
}

// clientConfigPath resolves which client.yaml a command uses, and whether
// it was named explicitly (flag or environment).
func clientConfigPath(cmd *cobra.Command) (path string, explicit bool) {
	if f := cmd.Flag(clientConfigFlag); f != nil && f.Value.String() != "" {
		return f.Value.String(), true
	}
	if p := os.Getenv(ClientConfigEnv); p != "" {
		return p, true
	}
	return filepath.Join(agent.Home(), "client.yaml"), false
}

// loadClientFile reads the client.yaml the command should use.
func loadClientFile(cmd *cobra.Command) (client.File, error) {
	path, explicit := clientConfigPath(cmd)
	f, err := client.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return client.File{}, fmt.Errorf("cannot find a controller: no %s (start one with `uniter controller` or `uniter up`, then pass --%s or set %s)",
			path, clientConfigFlag, ClientConfigEnv)
	}
	return f, err
}

// loadClient returns a controller client from the command's client
// config, with the config's addresses brought up to date with the
// cluster's members (refreshClientFile). Callers Close it when done.
func loadClient(cmd *cobra.Command) (*client.Client, error) {
	f, err := loadClientFile(cmd)
	if err != nil {
		return nil, err
	}
	c, err := client.New(f.Config())
	if err != nil {
		return nil, err
	}
	path, _ := clientConfigPath(cmd)
	refreshClientFile(cmd.Context(), c, path, f)
	return c, nil
}

// refreshTimeout bounds the member look-up of refreshClientFile.
const refreshTimeout = 2 * time.Second

// refreshClientFile asks the controller for its members' API addresses
// and, when they differ from the file's, points c at them and rewrites
// the file (atomically, 0600), so that a client config written when the
// cluster had one node keeps working after that node is gone. Any failure
// leaves both as they were: the command's own call reports an unreachable
// controller better than this look-up could.
// It returns the members' addresses, or nil if the controller did not say.
func refreshClientFile(ctx context.Context, c *client.Client, path string, f client.File) []string {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	addrs, err := c.MemberAddresses(ctx)
	if err != nil || len(addrs) == 0 {
		return nil
	}
	if client.SameAddresses(addrs, f.Controller.Addresses) || c.SetAddresses(addrs) != nil {
		return addrs
	}
	f.Controller.Addresses = addrs
	client.WriteFile(path, f)
	return addrs
}
