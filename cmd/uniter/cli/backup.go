package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/osutil"
)

// newBackupCmd is `uniter controller backup FILE`.
func newBackupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the controller's state to FILE (admin)",
		Long: `Write a consistent copy of the replicated state (leases, terms, pins, settings, config,
units with their token hashes, statuses) to FILE, mode 0600, taken on the raft leader
after a barrier. Restore it with 'uniter controller --restore FILE' on a fresh data
directory; see docs/controller.md.`,
		Args: wantArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			data, err := c.Backup(cmd.Context())
			if err != nil {
				return fmt.Errorf("cannot back up the controller: %w", err)
			}
			if err := osutil.WriteFileAtomic(args[0], data, 0o600); err != nil {
				return fmt.Errorf("cannot write backup: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote a backup of the controller to %s (%d bytes)\n", args[0], len(data))
			return nil
		},
	}
}

// restoreInto restores backup into c, a node that just bootstrapped, once
// it leads.
func restoreInto(cmd *cobra.Command, c *controller.Controller, backup []byte) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	for id, _ := c.Node().Leader(); id == ""; id, _ = c.Node().Leader() {
		select {
		case <-ctx.Done():
			return errors.New("cannot restore: the new node did not become leader")
		case <-clock.Real.After(20 * time.Millisecond):
		}
	}
	if err := c.Restore(ctx, bytes.NewReader(backup)); err != nil {
		return fmt.Errorf("cannot restore: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "restored the controller state from the backup (%d bytes)\n", len(backup))
	return nil
}
