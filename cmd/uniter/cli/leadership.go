package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/internal/clock"
)

func newLeadershipCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "leadership",
		Short: "Show, pin, unpin or hand over an application's leadership",
		Args:  noArgs,
	}
	addClientConfigFlag(cmd)
	cmd.AddCommand(newLeadershipShowCmd(), newLeadershipPinCmd(), newLeadershipUnpinCmd(), newLeadershipRevokeCmd())
	return cmd
}

// wantArgs wants n positional arguments, named in the usage error.
func wantArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &UsageError{fmt.Errorf("want %s, got %d arguments", names, len(args))}
		}
		return nil
	}
}

func newLeadershipShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show APP",
		Short: "Show the application's lease: leader, term, expiry, pins",
		Args:  wantArgs(1, "APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			l, _, err := c.WatchLease(cmd.Context(), args[0], 0, 0)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			holder := l.Holder
			if holder == "" {
				holder = "none (vacant)"
			}
			fmt.Fprintf(out, "application: %s\nleader:      %s\nterm:        %d\n", args[0], holder, l.Term)
			if l.Holder != "" {
				fmt.Fprintf(out, "duration:    %v\nexpiry:      %s (controller time)\n", l.Duration, l.Expiry.Format(time.RFC3339))
			}
			if l.StepDown {
				fmt.Fprintln(out, "step-down:   requested")
			}
			for _, p := range l.Pins {
				until := "until unpinned"
				if p.Until != nil {
					until = "until " + p.Until.Format(time.RFC3339)
				}
				fmt.Fprintf(out, "pinned by:   %s (%s) since %s, %s\n", p.Entity, p.Reason, p.Since.Format(time.RFC3339), until)
			}
			return nil
		},
	}
}

func newLeadershipPinCmd() *cobra.Command {
	var entity, reason string
	var dur time.Duration
	cmd := &cobra.Command{
		Use:   "pin APP --entity E --reason R [--for D]",
		Short: "Freeze the application's leadership: the lease neither expires nor moves",
		Long: `Pin the application's current leader. While any pin remains, the lease never expires
and no other unit can take it; the leader keeps renewing. Pins are keyed by entity (for
example the upgrade job that placed them); --for makes a pin lift itself.`,
		Args: wantArgs(1, "APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if entity == "" || strings.TrimSpace(reason) == "" {
				return &UsageError{errors.New("--entity and --reason are required")}
			}
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Pin(cmd.Context(), args[0], entity, reason, dur); err != nil {
				return fmt.Errorf("cannot pin leadership of %s: %w", args[0], err)
			}
			msg := "until unpinned"
			if dur > 0 {
				msg = "until " + clock.Real.Now().Add(dur).Format(time.TimeOnly)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pinned leadership of %s for %s, %s\n", args[0], entity, msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&entity, "entity", "", "who pins (pins are keyed by entity)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, shown in status")
	cmd.Flags().DurationVar(&dur, "for", 0, "lift the pin by itself after this long")
	return cmd
}

func newLeadershipUnpinCmd() *cobra.Command {
	var entity string
	cmd := &cobra.Command{
		Use:   "unpin APP --entity E",
		Short: "Remove an entity's pin; the last unpin restores normal expiry",
		Args:  wantArgs(1, "APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if entity == "" {
				return &UsageError{errors.New("--entity is required")}
			}
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Unpin(cmd.Context(), args[0], entity); err != nil {
				return fmt.Errorf("cannot unpin leadership of %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "unpinned leadership of %s for %s\n", args[0], entity)
			return nil
		},
	}
	cmd.Flags().StringVar(&entity, "entity", "", "whose pin to remove")
	return cmd
}

func newLeadershipRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke APP",
		Short: "Ask the leader to step down: it runs leader-deposed, then releases the lease",
		Long: `Ask the application's leader to step down. It stops answering is-leader true, runs
leader-deposed after its current hook, then releases the lease, and another unit is
elected at once. Refused while the leadership is pinned.`,
		Args: wantArgs(1, "APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.RequestStepDown(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("cannot revoke leadership of %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "asked the leader of %s to step down\n", args[0])
			return nil
		},
	}
}
