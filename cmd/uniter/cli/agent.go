package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/agent/agentmetrics"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/logging"
	"github.com/uniter-dev/uniter/operation"
)

func newAgentCmd() *cobra.Command {
	var agentDir, metricsAddr string
	cmd := &cobra.Command{
		Use:   "agent --agent-dir DIR [--metrics-addr ADDR]",
		Short: "Run one unit agent",
		Long: `Run the unit agent whose agent.yaml is in DIR. It runs the charm's hooks one at a
time and stops on SIGTERM or SIGINT, letting a running hook finish first.

With --metrics-addr (or metrics-addr in agent.yaml; the flag wins) the agent serves
Prometheus metrics at GET /metrics on ADDR: unix:/PATH, a socket in a directory only
this user may enter (made 0700 if missing), or HOST:PORT on a loopback address. The
listener has no authentication, so it never listens on another interface. Started by
systemd as a Type=notify service, the agent says READY=1 once its workers are up and
STOPPING=1 when it begins to stop.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if agentDir == "" {
				return &UsageError{errors.New("--agent-dir is required")}
			}
			if metricsAddr != "" {
				if err := agentmetrics.CheckAddr(metricsAddr); err != nil {
					return &UsageError{fmt.Errorf("--metrics-addr: %w", err)}
				}
			}
			return RunAgent(cmd.Context(), AgentOptions{AgentDir: agentDir, MetricsAddr: metricsAddr, NotifySystemd: true})
		},
	}
	cmd.Flags().StringVar(&agentDir, "agent-dir", "", "the unit's agent directory (holds agent.yaml)")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics on unix:/PATH or a loopback HOST:PORT (default: agent.yaml's metrics-addr, else none)")
	return cmd
}

// AgentOptions configure RunAgent.
type AgentOptions struct {
	AgentDir string
	// MetricsAddr, if set, replaces agent.yaml's metrics-addr.
	MetricsAddr string
	// NotifySystemd tells systemd when the agent is ready and stopping
	// (sd_notify; nothing happens without $NOTIFY_SOCKET).
	NotifySystemd bool
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
	if o.MetricsAddr != "" {
		cfg.MetricsAddr = o.MetricsAddr
	}
	logFile, err := logging.OpenRotating(agent.LogPath(o.AgentDir), 10<<20, 3)
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := logging.New(logging.Options{File: logFile, Console: os.Stderr, Level: zerolog.DebugLevel})
	d := agent.Deps{AgentDir: o.AgentDir, Config: cfg, Clock: clock.Real, Logger: log,
		WrapStateWriter: o.WrapStateWriter, Connect: o.Connect}
	if o.NotifySystemd {
		d.Notifier = systemdNotifier{log: log}
	}
	return agent.Run(ctx, d)
}
