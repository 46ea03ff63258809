package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/clock"
)

func newLogsCmd() *cobra.Command {
	var follow bool
	var level, agentDir string
	cmd := &cobra.Command{
		Use:   "logs UNIT [-f] [--level L]",
		Short: "Print a unit agent's log, readably",
		Long: `Pretty-print the JSON log of UNIT's agent (<agent-dir>/log/agent.log). The agent
directory is --agent-dir, else the one ` + "`uniter up`" + ` made under $UNITER_HOME/up/units/.
--level shows only lines at or above trace, debug, info, warn or error; -f keeps following.`,
		Args: wantArgs(1, "UNIT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			min, err := zerolog.ParseLevel(level)
			if err != nil || level == "" {
				return &UsageError{fmt.Errorf("--level must be trace, debug, info, warn or error, got %q", level)}
			}
			if _, _, err := agent.SplitUnit(args[0]); err != nil {
				return &UsageError{err}
			}
			if agentDir == "" {
				agentDir = filepath.Join(upDir(), "units", strings.ReplaceAll(args[0], "/", "-"))
			}
			path := agent.LogPath(agentDir)
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("cannot read the log of %s: %w", args[0], err)
			}
			return printLog(cmd.Context(), cmd.OutOrStdout(), path, min, follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().StringVar(&level, "level", "debug", "the least level shown")
	cmd.Flags().StringVar(&agentDir, "agent-dir", "", "the unit's agent directory")
	return cmd
}

func printLog(ctx context.Context, out io.Writer, path string, min zerolog.Level, follow bool) error {
	var offset int64
	var partial []byte
	for {
		data, next, err := readFrom(path, offset)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		offset = next
		partial = append(partial, data...)
		for i := indexByte(partial, '\n'); i >= 0; i = indexByte(partial, '\n') {
			printLogLine(out, partial[:i], min)
			partial = partial[i+1:]
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-clock.Real.After(200 * time.Millisecond):
		}
	}
}

// printLogLine prints one JSON log line as `time LEVEL message k=v...`.
func printLogLine(out io.Writer, line []byte, min zerolog.Level) {
	var fields map[string]any
	if json.Unmarshal(line, &fields) != nil {
		fmt.Fprintf(out, "%s\n", line)
		return
	}
	lvl, _ := fields["level"].(string)
	if l, err := zerolog.ParseLevel(lvl); err == nil && l < min {
		return
	}
	ts, _ := fields["time"].(string)
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		ts = t.Local().Format("15:04:05.000")
	}
	msg, _ := fields["message"].(string)
	delete(fields, "level")
	delete(fields, "time")
	delete(fields, "message")
	keys := sortedKeys(fields)
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-5s %s", ts, strings.ToUpper(lvl), msg)
	for _, k := range keys {
		v := fields[k]
		if s, ok := v.(string); ok && strings.ContainsAny(s, " \n\t\"") {
			v = fmt.Sprintf("%q", s)
		}
		fmt.Fprintf(&b, " %s=%v", k, v)
	}
	fmt.Fprintln(out, b.String())
}
