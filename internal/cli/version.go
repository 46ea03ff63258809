package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// Version is the binary's version, set at build time with
// -ldflags "-X github.com/uniter-dev/uniter/internal/cli.Version=...".
var Version = "0.1.0-dev"

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "uniter %s (%s, %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
