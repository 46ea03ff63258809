package cli

import (
	"context"
	"errors"
	"fmt"
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
			return RunAgent(cmd.Context(), AgentOptions{AgentDir: agentDir, Remote: controllerRemote})
		},
	}
	cmd.Flags().StringVar(&agentDir, "agent-dir", "", "the unit's agent directory (holds agent.yaml)")
	return cmd
}

// AgentOptions configure RunAgent.
type AgentOptions struct {
	AgentDir string
	// Remote connects the agent to its remote state.
	Remote func(ctx context.Context, cfg agent.Config, log zerolog.Logger) (agent.RemoteState, error)
	// WrapStateWriter is passed to agent.Deps (fault injection in tests).
	WrapStateWriter func(operation.Writer) operation.Writer
}

// RunAgent runs one unit agent until ctx ends or the unit is removed. It
// reads agent.yaml and the state file before it connects anywhere, so a
// bad file stops it at once.
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
	a, err := agent.Open(agent.Deps{AgentDir: o.AgentDir, Config: cfg, Clock: clock.Real, Logger: log, WrapStateWriter: o.WrapStateWriter})
	if err != nil {
		log.Error().Err(err).Msg("cannot start agent")
		return err
	}
	remote, err := o.Remote(ctx, cfg, log)
	if err != nil {
		return err
	}
	err = a.Run(ctx, remote)
	if errors.Is(err, agent.ErrTerminated) {
		return nil
	}
	return err
}

// controllerRemote connects to the controller named in agent.yaml.
func controllerRemote(_ context.Context, cfg agent.Config, _ zerolog.Logger) (agent.RemoteState, error) {
	if len(cfg.Controller.Addresses) == 0 {
		return nil, fmt.Errorf("cannot connect to controller: agent.yaml of %s lists no controller addresses", cfg.Unit)
	}
	return nil, fmt.Errorf("cannot connect to controller at %v: the controller API is not available in this build yet", cfg.Controller.Addresses)
}
