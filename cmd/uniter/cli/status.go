package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/clock"
)

func newStatusCmd() *cobra.Command {
	var format string
	var watch time.Duration
	cmd := &cobra.Command{
		Use:   "status [--format table|json|yaml] [--watch]",
		Short: "Show applications, units, leaders, pins, relations and controller nodes",
		Long: `Show every application with its leader (marked * in the table), term and pins; every
unit with its agent status (allocating idle executing error lost), workload status and
message, application version and opened ports; every relation (provider and requirer endpoints,
interface, type, id, life and the units in its scope); and the controller's nodes with
their raft state.
--format json|yaml prints the stable schema documented in docs/status.md.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch format {
			case "table", "json", "yaml":
			default:
				return &UsageError{fmt.Errorf("--format must be table, json or yaml, got %q", format)}
			}
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			show := func() error {
				st, err := c.Status(cmd.Context())
				if err != nil {
					return err
				}
				return printStatus(cmd.OutOrStdout(), st, format)
			}
			if !cmd.Flags().Changed("watch") {
				return show()
			}
			return watchLoop(cmd.Context(), cmd.OutOrStdout(), watch, show)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table, json or yaml")
	cmd.Flags().DurationVar(&watch, "watch", 2*time.Second, "refresh every interval until interrupted")
	cmd.Flags().Lookup("watch").NoOptDefVal = "2s"
	addClientConfigFlag(cmd)
	return cmd
}

// watchLoop runs show every interval until ctx ends.
func watchLoop(ctx context.Context, out io.Writer, every time.Duration, show func() error) error {
	for {
		fmt.Fprintf(out, "\x1b[H\x1b[2J%s (every %v)\n\n", clock.Real.Now().Format(time.TimeOnly), every)
		if err := show(); err != nil {
			fmt.Fprintf(out, "ERROR %v\n", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-clock.Real.After(every):
		}
	}
}

func printStatus(out io.Writer, st api.Status, format string) error {
	if format == "table" {
		printStatusTable(out, st)
		return nil
	}
	if st.Relations == nil { // a controller from before relations
		st.Relations = []api.RelationStatus{}
	}
	return printData(out, st, format)
}

// printData prints v as indented JSON, or as YAML with the same field
// names.
func printData(out io.Writer, v any, format string) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	var generic any // through JSON, so YAML uses the same field names
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &generic); err != nil {
		return err
	}
	return yaml.NewEncoder(out).Encode(generic)
}

func printStatusTable(out io.Writer, st api.Status) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "APP\tLEADER\tTERM\tVERSION\tSTATUS\tPINNED")
	apps := sortedKeys(st.Applications)
	for _, name := range apps {
		a := st.Applications[name]
		leader := "-"
		if a.Leader != nil {
			leader = *a.Leader
		}
		if a.StepDown {
			leader += " (stepping down)"
		}
		status := "-"
		if a.Status != nil {
			status = strings.TrimSpace(a.Status.Status + " " + a.Status.Message)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", name, leader, a.Term, dash(a.Version), status, pins(a.Pinned))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "UNIT\tAGENT\tWORKLOAD\tVERSION\tPORTS\tMESSAGE")
	for _, name := range apps {
		a := st.Applications[name]
		for _, u := range sortedKeys(a.Units) {
			us := a.Units[u]
			mark := ""
			if us.Leader {
				mark = "*"
			}
			agentStatus := us.Agent.Status
			if us.Agent.Message != "" {
				agentStatus += " (" + us.Agent.Message + ")"
			}
			fmt.Fprintf(w, "%s%s\t%s\t%s\t%s\t%s\t%s\n", u, mark, dash(agentStatus), dash(us.Workload.Status), dash(us.ApplicationVersion),
				dash(strings.Join(us.OpenPorts, ",")), us.Workload.Message)
		}
	}
	fmt.Fprintln(w)
	if len(st.Relations) > 0 {
		w.Flush() // the relations table aligns its own columns
		printRelations(out, st.Relations)
		fmt.Fprintln(out)
	}
	fmt.Fprintln(w, "NODE\tADDRESS\tRAFT\tPROTOCOL")
	for _, n := range st.Controller.Nodes {
		proto := "-"
		if n.ProtoMax > 0 {
			proto = fmt.Sprintf("%d..%d", n.ProtoMin, n.ProtoMax)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", n.ID, n.Address, n.RaftState, proto)
	}
	w.Flush()
	if v := st.Controller.EffectiveVersion; v > 0 { // 0: a controller too old to say
		fmt.Fprintf(out, "\ncontroller protocol version %d\n", v)
	}
	if m := st.Controller.Message; m != "" {
		fmt.Fprintf(out, "\n%s\n", m)
	}
}

func pins(ps []api.PinStatus) string {
	if len(ps) == 0 {
		return "-"
	}
	var out []string
	for _, p := range ps {
		s := p.Entity + ": " + p.Reason
		if p.Until != nil {
			s += " (until " + p.Until.Local().Format(time.TimeOnly) + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
