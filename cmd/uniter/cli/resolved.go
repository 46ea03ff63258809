package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newResolvedCmd() *cobra.Command {
	var noRetry bool
	cmd := &cobra.Command{
		Use:   "resolved UNIT [--no-retry]",
		Short: "Retry a unit's failed hook now, or with --no-retry mark it done",
		Long: `A unit whose hook failed is in error state and retries it with backoff. resolved retries
it at once; --no-retry commits it as if it had succeeded, and the unit moves on.`,
		Args: wantArgs(1, "UNIT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Resolved(cmd.Context(), args[0], noRetry); err != nil {
				return fmt.Errorf("cannot resolve %s: %w", args[0], err)
			}
			how := "retry its failed hook now"
			if noRetry {
				how = "move on without retrying its failed hook"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "asked %s to %s\n", args[0], how)
			return nil
		},
	}
	cmd.Flags().BoolVar(&noRetry, "no-retry", false, "commit the failed hook as if it had succeeded")
	addClientConfigFlag(cmd)
	return cmd
}
