// Package cli is uniter's command tree (cobra): the operator commands, the
// agent and controller daemons, and the mapping of errors to exit codes
// (0 ok, 1 runtime error, 2 usage error).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes of every uniter command.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// UsageError is a mistake in how a command was called: exit code 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Main runs the CLI for args and returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRoot()
	root.SetArgs(args[1:])
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "ERROR %v\n\n%s", err, cmd.UsageString())
		return ExitUsage
	}
	fmt.Fprintf(stderr, "ERROR %v\n", err)
	return ExitError
}

// NewRoot returns the root `uniter` command with every subcommand.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "uniter",
		Short: "Run charm hooks for application units, with leadership you can trust",
		Long: `uniter runs charm hooks for one application unit, the way Juju's unit agent does,
with leases kept in a controller replicated with raft.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{err} })
	root.AddCommand(newVersionCmd(), newAgentCmd(), newUpCmd(), newStatusCmd(), newLeadershipCmd(), newConfigCmd(), newResolvedCmd(), newLogsCmd())
	root.AddCommand(newControllerCmd(), newUnitCmd())                                                                      // controller API: controller.go, unit.go, clientconfig.go
	root.AddCommand(newRelateCmd(), newRemoveRelationCmd(), newRelationsCmd())                                             // relations.go
	root.AddCommand(newDeployCmd())                                                                                        // deploy.go: more applications
	root.AddCommand(newInstallServiceCmd())                                                                                // service.go: systemd units
	root.AddCommand(newRunCmd(), newActionsCmd(), newShowOperationCmd(), newOperationsCmd(), newCancelCmd(), newExecCmd()) // run.go, operations.go
	strictGroups(root)
	addCompletions(root) // completion.go: application and unit names from the controller
	return root
}

// strictGroups makes every command that only groups others print its help
// when called bare, and refuse an unknown subcommand with a usage error
// (cobra would print the help and exit 0).
func strictGroups(cmd *cobra.Command) {
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = noArgs
		cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	for _, c := range cmd.Commands() {
		strictGroups(c)
	}
}

// noArgs refuses positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &UsageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
	}
	return nil
}
