package cli

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/version"
	"github.com/uniter-dev/uniter/operation"
)

// versionInfo is `uniter version --format json`.
type versionInfo struct {
	Version     string `json:"version"`
	Commit      string `json:"commit"`
	Go          string `json:"go"`
	Platform    string `json:"platform"`
	ProtocolMin uint64 `json:"protocol_min"`
	ProtocolMax uint64 `json:"protocol_max"`
	StateFile   int    `json:"state_file_version"`
	AgentConfig int    `json:"agent_config_version"`
}

// The binary's version and protocol range are set at build time, e.g.
// -ldflags "-X github.com/uniter-dev/uniter/internal/version.Version=1.2.0"
// (see package internal/version and make release).
func newVersionCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [--format text|json]",
		Short: "Print the version of this binary and the protocol versions it speaks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lo, hi, err := version.Protocol()
			if err != nil {
				return err
			}
			v := versionInfo{Version: version.Version, Commit: version.Revision(), Go: runtime.Version(),
				Platform: runtime.GOOS + "/" + runtime.GOARCH, ProtocolMin: lo, ProtocolMax: hi,
				StateFile: operation.CurrentVersion, AgentConfig: agent.ConfigVersion}
			out := cmd.OutOrStdout()
			switch format {
			case "json":
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			case "text", "":
				fmt.Fprintf(out, "uniter %s (commit %s, %s, %s)\n", v.Version, v.Commit, v.Go, v.Platform)
				fmt.Fprintf(out, "controller protocol: %d..%d\n", lo, hi)
				fmt.Fprintf(out, "agent files: state/uniter.yaml version %d, agent.yaml version %d\n", v.StateFile, v.AgentConfig)
				return nil
			}
			return &UsageError{fmt.Errorf("unknown format %q: want text or json", format)}
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}
