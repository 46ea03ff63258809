package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/controller/client"
)

// completionTimeout bounds the controller call a completion makes: a
// shell waits for it on every Tab.
const completionTimeout = 2 * time.Second

// completions names, by command path, what each command's first argument
// is, for `uniter completion bash|zsh|fish` (cobra's) to complete it from
// the controller's status.
var completions = map[string]func(cmd *cobra.Command) []string{
	"uniter leadership show":   applicationNames,
	"uniter leadership pin":    applicationNames,
	"uniter leadership unpin":  applicationNames,
	"uniter leadership revoke": applicationNames,
	"uniter config get":        applicationNames,
	"uniter config set":        applicationNames,
	"uniter resolved":          unitNames,
	"uniter logs":              unitNames,
	"uniter unit remove":       unitNames,
	"uniter actions":           applicationNames,
	"uniter run":               unitNames,
	"uniter relations":         applicationNames,
}

// everyArgCompletions are completions for commands whose every
// positional argument is of one kind (the two endpoints of relate and
// remove-relation: application names, to which the user adds
// ":ENDPOINT").
var everyArgCompletions = map[string]func(cmd *cobra.Command) []string{
	"uniter relate":          applicationNames,
	"uniter remove-relation": applicationNames,
}

// addCompletions gives every command of completions its first argument's
// completion, and walks the whole tree so that a renamed command fails
// TestCompletionsNameRealCommands rather than silently losing it.
func addCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		names, first := completions[c.CommandPath()]
		every, all := everyArgCompletions[c.CommandPath()]
		if all {
			names = every
		}
		if first || all {
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 && !all {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				var out []cobra.Completion
				for _, n := range names(cmd) {
					if strings.HasPrefix(n, toComplete) {
						out = append(out, n)
					}
				}
				return out, cobra.ShellCompDirectiveNoFileComp
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completionStatus reads the controller's status for a completion, or
// nothing: a completion never prints an error or rewrites client.yaml.
func completionStatus(cmd *cobra.Command) (apps map[string][]string) {
	f, err := loadClientFile(cmd)
	if err != nil {
		return nil
	}
	c, err := client.New(f.Config())
	if err != nil {
		return nil
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return nil
	}
	apps = map[string][]string{}
	for name, a := range st.Applications {
		for unit := range a.Units {
			apps[name] = append(apps[name], unit)
		}
	}
	return apps
}

func applicationNames(cmd *cobra.Command) []string {
	var out []string
	for name := range completionStatus(cmd) {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func unitNames(cmd *cobra.Command) []string {
	var out []string
	for _, units := range completionStatus(cmd) {
		out = append(out, units...)
	}
	slices.Sort(out)
	return out
}
