package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/version"
	"github.com/uniter-dev/uniter/operation"
)

// The binary's version and protocol range are set at build time, e.g.
// -ldflags "-X github.com/uniter-dev/uniter/internal/version.Version=1.2.0"
// (see package internal/version).
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary and the protocol versions it speaks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lo, hi, err := version.Protocol()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "uniter %s (%s, %s/%s)\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(out, "controller protocol: %d..%d\n", lo, hi)
			fmt.Fprintf(out, "agent files: state/uniter.yaml version %d, agent.yaml version %d\n",
				operation.CurrentVersion, agent.ConfigVersion)
			return nil
		},
	}
}
