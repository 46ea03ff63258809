package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Get or set an application's config",
		Args:  noArgs,
	}
	addClientConfigFlag(cmd)
	cmd.AddCommand(newConfigGetCmd(), newConfigSetCmd())
	return cmd
}

func newConfigGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get APP [KEY]",
		Short: "Print the application's config (defaults from the charm's config.yaml included)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return &UsageError{fmt.Errorf("want APP [KEY], got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			cfg, err := c.Config(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			values := map[string]string{}
			for k, o := range cfg.Schema {
				if o.Default != nil {
					values[k] = *o.Default
				}
			}
			for k, v := range cfg.Values {
				values[k] = v
			}
			if len(args) == 2 {
				v, ok := values[args[1]]
				if _, known := cfg.Schema[args[1]]; !ok && !known && cfg.Schema != nil {
					return fmt.Errorf("%s has no config option %q", args[0], args[1])
				}
				fmt.Fprintln(cmd.OutOrStdout(), v)
				return nil
			}
			out, err := yaml.Marshal(values)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
}

func newConfigSetCmd() *cobra.Command {
	var ifVersion uint64
	cmd := &cobra.Command{
		Use:   "set APP KEY=VALUE...",
		Short: "Change config; config-changed runs on every unit",
		Long: `Set config options (KEY= resets one to its default). Unknown keys and values that do not
match the option's type in the charm's config.yaml are refused, and nothing is changed.
--if-version N applies the change only if the config is still at version N (needs
controller protocol 2: every controller node upgraded).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return &UsageError{fmt.Errorf("want APP KEY=VALUE..., got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			changes := map[string]string{}
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return &UsageError{fmt.Errorf("expected KEY=VALUE, got %q", kv)}
				}
				changes[k] = v
			}
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if cmd.Flags().Changed("if-version") {
				err = c.SetConfigIf(cmd.Context(), args[0], changes, ifVersion)
			} else {
				err = c.SetConfig(cmd.Context(), args[0], changes)
			}
			if err != nil {
				return fmt.Errorf("cannot set config of %s: %w", args[0], err)
			}
			keys := make([]string, 0, len(changes))
			for k := range changes {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			fmt.Fprintf(cmd.OutOrStdout(), "set %s on %s\n", strings.Join(keys, ", "), args[0])
			return nil
		},
	}
	cmd.Flags().Uint64Var(&ifVersion, "if-version", 0, "apply only if the config is at this version (compare-and-set)")
	return cmd
}
