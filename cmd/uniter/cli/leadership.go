package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
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
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "revoke APP [--wait D]",
		Short: "Hand the leadership over: the leader steps down and another unit takes it",
		Long: `Ask the application's leader to step down. It stops answering is-leader true, runs
leader-deposed after its current hook (a leader in error state on an uncommitted
leader-elected has nothing to depose and lets go at once; a failing leader-deposed does not
hold the lease), then releases the lease, and another alive unit takes it: the unit that
stepped down may not take it back for one lease duration while another could.

The command waits up to --wait for the lease to move and says what happened: who leads
now, or that the lease is released and not yet claimed, or that the application has no other
unit to take it (the lease then comes back), or that the leader has not stepped down yet.
--wait 0 returns once the request is recorded. Refused while the leadership is pinned.`,
		Args: wantArgs(1, "APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			app := args[0]
			l, index, err := c.StepDown(cmd.Context(), app)
			if err != nil {
				return fmt.Errorf("cannot revoke leadership of %s: %w", app, err)
			}
			if wait <= 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "asked %s, the leader of %s, to step down\n", l.Holder, app)
				return nil
			}
			return waitHandOver(cmd.Context(), c, cmd.OutOrStdout(), app, l, index, wait)
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Second, "how long to wait for the leadership to move (0: do not wait)")
	return cmd
}

// waitHandOver follows app's lease for up to wait after old's holder was
// asked to step down (at raft index index) and says what happened.
func waitHandOver(ctx context.Context, c *client.Client, out io.Writer, app string, old api.Lease, index uint64, wait time.Duration) error {
	others := -1 // unknown
	if st, err := c.ApplicationStatus(ctx, app); err == nil {
		others = 0
		for name, u := range st.Units {
			if name != old.Holder && u.Life != api.LifeDying {
				others++
			}
		}
	}
	deadline := clock.Real.Now().Add(wait)
	released := false
	for {
		left := deadline.Sub(clock.Real.Now())
		if left <= 0 {
			break
		}
		l, next, err := c.WatchLease(ctx, app, index, left)
		if err != nil {
			return fmt.Errorf("asked %s, the leader of %s, to step down, but cannot follow the lease: %w", old.Holder, app, err)
		}
		index = next
		switch {
		case l.Holder != "" && l.Holder != old.Holder:
			fmt.Fprintf(out, "leadership of %s moved from %s to %s (term %d)\n", app, old.Holder, l.Holder, l.Term)
			return nil
		case l.Holder == old.Holder && l.Term != old.Term:
			why := "no other unit claimed it"
			if others == 0 {
				why = "it is the application's only alive unit"
			}
			fmt.Fprintf(out, "%s stepped down and took leadership of %s back (term %d): %s\n", old.Holder, app, l.Term, why)
			return nil
		case l.Holder == "":
			released = true
			if others == 0 {
				fmt.Fprintf(out, "%s released leadership of %s; it is the application's only alive unit, so it will take the lease back\n", old.Holder, app)
				return nil
			}
		}
	}
	if released {
		fmt.Fprintf(out, "%s released leadership of %s; no other unit has claimed it yet\n", old.Holder, app)
		return nil
	}
	fmt.Fprintf(out, "asked %s, the leader of %s, to step down; it has not yet (it does after its current hook; see uniter status)\n", old.Holder, app)
	return nil
}
