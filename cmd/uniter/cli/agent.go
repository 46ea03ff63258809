package cli

import (
	"context"
	"errors"
	"os"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/logging"
	"github.com/uniter-dev/uniter/operation"
)

func newAgentCmd() *cobra.Command {
	var agentDir string
	cmd := &cobra.Command{
		Use:   "agent --agent-dir DIR",
		Short: "Run one unit agent",
		Long: `Run the unit agent whose agent.yaml is in DIR. It runs the charm's hooks one at a
time and stops on SIGTERM or SIGINT, letting a running hook finish first.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if agentDir == "" {
				return &UsageError{errors.New("--agent-dir is required")}
			}
			return RunAgent(cmd.Context(), AgentOptions{AgentDir: agentDir})
		},
	}
	cmd.Flags().StringVar(&agentDir, "agent-dir", "", "the unit's agent directory (holds agent.yaml)")
	return cmd
}

// AgentOptions configure RunAgent.
type AgentOptions struct {
	AgentDir string
	// Connect, if set, replaces the connection to the controller: tests
	// feed the agent a remote state of their own (see agent.Deps).
	Connect func(ctx context.Context) (agent.Sources, error)
	// WrapStateWriter is passed to agent.Deps (fault injection in tests).
	WrapStateWriter func(operation.Writer) operation.Writer
}

// RunAgent runs one unit agent until ctx ends or the unit is removed: it
// reads agent.yaml, opens the agent's log and hands over to agent.Run.
func RunAgent(ctx context.Context, o AgentOptions) error {
	cfg, err := agent.ReadConfig(o.AgentDir)
	if err != nil {
		return err
	}
	logFile, err := logging.OpenRotating(agent.LogPath(o.AgentDir), 10<<20, 3)
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := logging.New(logging.Options{File: logFile, Console: os.Stderr, Level: zerolog.DebugLevel})
	return agent.Run(ctx, agent.Deps{AgentDir: o.AgentDir, Config: cfg, Clock: clock.Real, Logger: log,
		WrapStateWriter: o.WrapStateWriter, Connect: o.Connect})
}
