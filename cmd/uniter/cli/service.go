package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/osutil"
)

// serviceStopMargin is added to an agent's stop-timeout for systemd's
// TimeoutStopSec: the agent lets a running hook finish for stop-timeout,
// then kills it and exits; systemd must not SIGKILL it first.
const serviceStopMargin = 30 * time.Second

// unitTemplate is the systemd unit of a controller node or a unit agent.
// KillMode=mixed sends SIGTERM to the uniter process alone (an agent
// keeps its lease on SIGTERM, DESIGN.md §4.4 rule 6, and stops its own
// hook's process group), then SIGKILL to whatever is left at the timeout.
// Type=notify: systemd counts the service started when uniter says
// READY=1 (an agent once its workers are up, a controller once its API
// serves), not when the process merely exists.
var unitTemplate = template.Must(template.New("unit").Parse(`# Written by 'uniter install-service'; see docs/operations.md ("Running under systemd").
[Unit]
Description={{.Description}}
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
ExecStart={{.ExecStart}}
Restart=on-failure
RestartSec=5s
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec={{.TimeoutStop}}
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`))

type serviceUnit struct {
	Description string
	ExecStart   string
	TimeoutStop string
}

type serviceOptions struct {
	unitDir string
	print   bool
}

func newInstallServiceCmd() *cobra.Command {
	var o serviceOptions
	cmd := &cobra.Command{
		Use:   "install-service",
		Short: "Write a systemd unit that runs a controller node or a unit agent",
		Long: `Write a systemd unit file that runs this uniter binary as a controller node or as
one unit's agent, with Type=notify (started once uniter says it is ready),
Restart=on-failure and KillMode=mixed (SIGTERM to uniter alone: an agent keeps its
lease across a restart). Then run
  systemctl daemon-reload && systemctl enable --now NAME`,
	}
	cmd.PersistentFlags().StringVar(&o.unitDir, "unit-dir", "/etc/systemd/system", "directory to write the unit file into")
	cmd.PersistentFlags().BoolVar(&o.print, "print", false, "print the unit file instead of writing it")

	var agentDir string
	agentCmd := &cobra.Command{
		Use:   "agent --agent-dir DIR",
		Short: "Write uniter-agent-APP-N.service for the unit agent in DIR",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if agentDir == "" {
				return &UsageError{fmt.Errorf("--agent-dir is required")}
			}
			dir, err := filepath.Abs(agentDir)
			if err != nil {
				return err
			}
			cfg, err := agent.ReadConfig(dir)
			if err != nil {
				return err
			}
			name := "uniter-agent-" + strings.ReplaceAll(cfg.Unit, "/", "-") + ".service"
			u := serviceUnit{Description: "uniter unit agent for " + cfg.Unit,
				TimeoutStop: seconds(time.Duration(cfg.StopTimeout) + serviceStopMargin)}
			return writeUnit(cmd, o, name, u, "agent", "--agent-dir", dir)
		},
	}
	agentCmd.Flags().StringVar(&agentDir, "agent-dir", "", "the unit's agent directory (made by 'uniter unit add')")

	controllerCmd := &cobra.Command{
		Use:   "controller [-- CONTROLLER FLAGS...]",
		Short: "Write uniter-controller.service running 'uniter controller' with the flags given after --",
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 0 && len(args) > 0 {
				return &UsageError{fmt.Errorf("put the controller's flags after --: uniter install-service controller -- --data-dir D")}
			}
			u := serviceUnit{Description: "uniter controller node", TimeoutStop: seconds(serviceStopMargin)}
			return writeUnit(cmd, o, "uniter-controller.service", u, append([]string{"controller"}, args...)...)
		},
	}
	cmd.AddCommand(agentCmd, controllerCmd)
	return cmd
}

// writeUnit renders the unit running this binary with args and writes it
// (0644: it holds no secret) or prints it.
func writeUnit(cmd *cobra.Command, o serviceOptions, name string, u serviceUnit, args ...string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the uniter binary: %w", err)
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return fmt.Errorf("cannot find the uniter binary: %w", err)
	}
	words := []string{systemdQuote(self)}
	for _, a := range args {
		words = append(words, systemdQuote(a))
	}
	u.ExecStart = strings.Join(words, " ")
	var buf bytes.Buffer
	if err := unitTemplate.Execute(&buf, u); err != nil {
		return err
	}
	if o.print {
		_, err := cmd.OutOrStdout().Write(buf.Bytes())
		return err
	}
	path := filepath.Join(o.unitDir, name)
	if err := osutil.WriteFileAtomic(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s; start it with: systemctl daemon-reload && systemctl enable --now %s\n", path, name)
	return nil
}

// systemdQuote quotes a word of ExecStart when it needs it (systemd's
// rules: double quotes, with backslash escapes; % doubled).
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;$") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `$$`)
	return `"` + r.Replace(s) + `"`
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
}
