package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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
// config. Callers Close it when done.
func loadClient(cmd *cobra.Command) (*client.Client, error) {
	f, err := loadClientFile(cmd)
	if err != nil {
		return nil, err
	}
	return client.New(f.Config())
}
