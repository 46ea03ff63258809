package cli

import (
	"testing"

	"github.com/spf13/cobra"
)

// TestCompletionsNameRealCommands: every command completions names
// exists and takes its completion; a renamed command fails here.
func TestCompletionsNameRealCommands(t *testing.T) {
	root := NewRoot()
	found := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		_, first := completions[c.CommandPath()]
		_, every := everyArgCompletions[c.CommandPath()]
		if first || every {
			found[c.CommandPath()] = c.ValidArgsFunction != nil
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for _, m := range []map[string]func(*cobra.Command) []string{completions, everyArgCompletions} {
		for path := range m {
			if !found[path] {
				t.Errorf("completion for %q: no such command, or it has no completion", path)
			}
		}
	}
}
