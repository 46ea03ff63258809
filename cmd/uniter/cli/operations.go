package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
)

func checkFormat(format string, allowed ...string) error {
	if !slices.Contains(allowed, format) {
		return &UsageError{fmt.Errorf("unknown --format %q (want %s)", format, strings.Join(allowed, ", "))}
	}
	return nil
}

func newActionsCmd() *cobra.Command {
	var schema bool
	var format string
	cmd := &cobra.Command{
		Use:   "actions APP [--schema] [--format table|yaml|json]",
		Short: "List the actions of an application's charm, with their descriptions",
		Long: `List the actions the application's units registered from their charm's actions.yaml.
--schema prints each action's params schema (JSON Schema, as Juju builds it) as YAML, or
JSON with --format json.`,
		Args: wantArgs(1, "APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "table", "yaml", "json"); err != nil {
				return err
			}
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			actions, err := c.Actions(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("cannot list the actions of %s: %w", args[0], err)
			}
			return printActions(cmd.OutOrStdout(), args[0], actions, schema, format)
		},
	}
	cmd.Flags().BoolVar(&schema, "schema", false, "print each action's full params schema")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table, yaml or json")
	addClientConfigFlag(cmd)
	return cmd
}

func printActions(out io.Writer, app string, actions map[string]api.ActionSpec, schema bool, format string) error {
	names := sortedKeys(actions)
	switch {
	case schema:
		if format == "table" {
			format = "yaml"
		}
		all := map[string]any{}
		for _, name := range names {
			v, err := decodeJSON(actions[name].Schema)
			if err != nil {
				return fmt.Errorf("cannot decode the schema of action %s: %w", name, err)
			}
			all[name] = v
		}
		return printValue(out, all, format)
	case format != "table":
		all := map[string]string{}
		for _, name := range names {
			all[name] = actions[name].Description
		}
		return printValue(out, all, format)
	case len(names) == 0:
		fmt.Fprintf(out, "No actions defined for %s.\n", app)
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Action\tDescription")
	for _, name := range names {
		desc, _, _ := strings.Cut(strings.TrimSpace(actions[name].Description), "\n")
		fmt.Fprintf(tw, "%s\t%s\n", name, desc)
	}
	return tw.Flush()
}

// operationView is an operation as show-operation prints it.
type operationView struct {
	ID      string            `yaml:"id" json:"id"`
	Unit    string            `yaml:"unit" json:"unit"`
	Kind    string            `yaml:"kind" json:"kind"`
	Action  string            `yaml:"action,omitempty" json:"action,omitempty"`
	Params  any               `yaml:"params,omitempty" json:"params,omitempty"`
	Command string            `yaml:"command,omitempty" json:"command,omitempty"`
	Timeout string            `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Status  string            `yaml:"status" json:"status"`
	Message string            `yaml:"message,omitempty" json:"message,omitempty"`
	Results any               `yaml:"results,omitempty" json:"results,omitempty"`
	Log     []string          `yaml:"log,omitempty" json:"log,omitempty"`
	Timing  map[string]string `yaml:"timing" json:"timing"`
}

func viewOf(o api.Operation) (operationView, error) {
	v := operationView{ID: o.ID, Unit: o.Unit, Kind: o.Kind, Action: o.Action, Command: o.Command, Timeout: o.Timeout,
		Status: o.Status, Message: o.Message, Timing: map[string]string{"enqueued": stamp(&o.Enqueued)}}
	for _, f := range []struct {
		raw json.RawMessage
		dst *any
	}{{o.Params, &v.Params}, {o.Results, &v.Results}} {
		if len(f.raw) == 0 {
			continue
		}
		d, err := decodeJSON(f.raw)
		if err != nil {
			return v, fmt.Errorf("cannot decode operation %s: %w", o.ID, err)
		}
		*f.dst = d
	}
	for _, m := range o.Log {
		v.Log = append(v.Log, m.Time.UTC().Format(time.RFC3339)+" "+m.Message)
	}
	if o.Started != nil {
		v.Timing["started"] = stamp(o.Started)
	}
	if o.Completed != nil {
		v.Timing["completed"] = stamp(o.Completed)
	}
	return v, nil
}

func stamp(t *time.Time) string { return t.UTC().Format(time.RFC3339) }

func newShowOperationCmd() *cobra.Command {
	var wait time.Duration
	var format string
	cmd := &cobra.Command{
		Use:   "show-operation ID [--wait D] [--format yaml|json]",
		Short: "Show an operation: its params, status, results, log and times",
		Long: `Show an action or exec operation. --wait D waits up to D for it to finish first (and
exits 1 if it did not).`,
		Args: wantArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "yaml", "json"); err != nil {
				return err
			}
			if wait < 0 {
				return &UsageError{errors.New("--wait must not be negative")}
			}
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			o, err := c.Operation(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("cannot show operation %s: %w", args[0], err)
			}
			var waitErr error
			if wait > 0 && !o.Finished() {
				done, err := followOperation(cmd.Context(), c, o, 0, wait, io.Discard)
				if err == nil {
					o = done
				} else {
					waitErr = err // show it as it stands, then fail
					if o, err = c.Operation(cmd.Context(), args[0]); err != nil {
						return fmt.Errorf("cannot show operation %s: %w", args[0], err)
					}
				}
			}
			v, err := viewOf(o)
			if err != nil {
				return err
			}
			if err := printValue(cmd.OutOrStdout(), v, format); err != nil {
				return err
			}
			return waitErr
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for the operation to finish")
	cmd.Flags().StringVar(&format, "format", "yaml", "output format: yaml or json")
	addClientConfigFlag(cmd)
	return cmd
}

func newOperationsCmd() *cobra.Command {
	var f client.OperationFilter
	var statuses []string
	var format string
	cmd := &cobra.Command{
		Use:   "operations [--app APP] [--unit UNIT] [--status S[,S...]] [--format table|yaml|json]",
		Short: "List actions and execs, oldest first",
		Long: `List the operations the controller keeps: every pending and running one, and the last
1,000 finished. Statuses: ` + strings.Join(api.OperationStatuses, ", ") + `.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, "table", "yaml", "json"); err != nil {
				return err
			}
			for _, st := range statuses {
				if !slices.Contains(api.OperationStatuses, st) {
					return &UsageError{fmt.Errorf("unknown status %q (want %s)", st, strings.Join(api.OperationStatuses, ", "))}
				}
			}
			f.Statuses = statuses
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ops, err := c.Operations(cmd.Context(), f)
			if err != nil {
				return fmt.Errorf("cannot list operations: %w", err)
			}
			return printOperations(cmd.OutOrStdout(), ops, format)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.App, "app", "", "only this application's operations")
	fl.StringVar(&f.Unit, "unit", "", "only this unit's operations")
	fl.StringSliceVar(&statuses, "status", nil, "only operations with these statuses")
	fl.StringVar(&format, "format", "table", "output format: table, yaml or json")
	addClientConfigFlag(cmd)
	return cmd
}

func printOperations(out io.Writer, ops []api.Operation, format string) error {
	if format != "table" {
		views := []operationView{}
		for _, o := range ops {
			v, err := viewOf(o)
			if err != nil {
				return err
			}
			views = append(views, v)
		}
		return printValue(out, views, format)
	}
	if len(ops) == 0 {
		fmt.Fprintln(out, "No operations.")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tStatus\tUnit\tOperation\tEnqueued\tCompleted")
	for _, o := range ops {
		what := o.Action
		if o.Kind == api.OperationExec {
			what = "exec: " + o.Command
			if len(what) > 40 {
				what = what[:37] + "..."
			}
		}
		completed := "-"
		if o.Completed != nil {
			completed = stamp(o.Completed)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, o.Status, o.Unit, what, stamp(&o.Enqueued), completed)
	}
	return tw.Flush()
}

func newCancelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cancel ID...",
		Short: "Cancel pending operations (a running one cannot be cancelled)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &UsageError{errors.New("want ID..., got no arguments")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			var errs []error
			for _, id := range args {
				if _, err := c.CancelOperation(cmd.Context(), id); err != nil {
					errs = append(errs, fmt.Errorf("cannot cancel operation %s: %w", id, err))
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "cancelled operation %s\n", id)
			}
			return errors.Join(errs...)
		},
	}
	addClientConfigFlag(cmd)
	return cmd
}

type execOptions struct {
	units, apps []string
	timeout     time.Duration
	format      string
}

func newExecCmd() *cobra.Command {
	var o execOptions
	cmd := &cobra.Command{
		Use:   "exec (--unit UNIT|APP/leader ... | --app APP ...) [--timeout D] -- COMMAND...",
		Short: "Run a command in a hook context on units, and print each one's output",
		Long: `Run COMMAND (its words joined by spaces, run by a shell) on each unit given, in a hook
context: the hook tools are on PATH and answer as in a hook (is-leader included). --app
runs it on every unit of the application, --unit on one unit (APP/leader: the
application's leader). Each unit's agent runs it between its hooks; --timeout bounds both
how long each command may run and how long exec waits for them all. Prints, per unit, the
command's exit code, stdout and stderr as YAML; exits 1 unless every unit ran it and it
exited 0.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &UsageError{errors.New("no command given (put it after --)")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runExec(cmd, strings.Join(args, " "), o) },
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.units, "unit", nil, "a unit to run the command on (APP/N or APP/leader); repeat or separate with commas")
	f.StringSliceVar(&o.apps, "app", nil, "an application on all of whose units to run the command; repeat or separate with commas")
	f.DurationVar(&o.timeout, "timeout", api.DefaultExecTimeout, "how long the command may run, and exec waits")
	f.StringVar(&o.format, "format", "yaml", "output format: yaml or json")
	addClientConfigFlag(cmd)
	return cmd
}

func (o execOptions) check() error {
	switch {
	case len(o.units) == 0 && len(o.apps) == 0:
		return &UsageError{errors.New("give --unit or --app")}
	case o.timeout <= 0:
		return &UsageError{errors.New("--timeout must be positive")}
	}
	for _, u := range o.units {
		if err := checkTarget(u); err != nil {
			return err
		}
	}
	for _, a := range o.apps {
		if !api.ValidApplicationName(a) {
			return &UsageError{fmt.Errorf("bad application name %q", a)}
		}
	}
	return checkFormat(o.format, "yaml", "json")
}

// execResult is one unit's part of exec's output.
type execResult struct {
	ID       string `yaml:"id,omitempty" json:"id,omitempty"`
	Status   string `yaml:"status" json:"status"`
	ExitCode *int64 `yaml:"exit-code,omitempty" json:"exit-code,omitempty"`
	Stdout   string `yaml:"stdout" json:"stdout"`
	Stderr   string `yaml:"stderr" json:"stderr"`
	Message  string `yaml:"message,omitempty" json:"message,omitempty"`
}

func (r execResult) ok() bool {
	return r.Status == api.OperationCompleted && r.ExitCode != nil && *r.ExitCode == 0
}

func runExec(cmd *cobra.Command, command string, o execOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	c, err := loadClient(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := cmd.Context()
	targets, err := execTargets(ctx, c, o)
	if err != nil {
		return err
	}
	deadline, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	results := map[string]execResult{}
	type queued struct {
		op    api.Operation
		index uint64
	}
	var ops []queued
	for _, t := range targets {
		op, index, err := c.EnqueueExec(ctx, t, command, o.timeout)
		if err != nil {
			results[t] = execResult{Status: "error", Message: err.Error()}
			continue
		}
		ops = append(ops, queued{op, index})
	}
	for _, q := range ops {
		results[q.op.Unit] = waitExec(deadline, c, q.op, q.index, o.timeout)
	}
	if err := printValue(cmd.OutOrStdout(), results, o.format); err != nil {
		return err
	}
	var failed []string
	for _, unit := range sortedKeys(results) {
		if !results[unit].ok() {
			failed = append(failed, unit)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("the command did not succeed on %d of %d units: %s", len(failed), len(results), strings.Join(failed, ", "))
	}
	return nil
}

// execTargets lists the units exec runs on: those given, and every unit
// of the applications given, each once.
func execTargets(ctx context.Context, c *client.Client, o execOptions) ([]string, error) {
	targets := slices.Clone(o.units)
	if len(o.apps) > 0 {
		st, err := c.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("cannot list the units of %s: %w", strings.Join(o.apps, ", "), err)
		}
		for _, app := range o.apps {
			a, ok := st.Applications[app]
			if !ok || len(a.Units) == 0 {
				return nil, fmt.Errorf("application %q has no units", app)
			}
			targets = append(targets, sortedKeys(a.Units)...)
		}
	}
	slices.Sort(targets)
	return slices.Compact(targets), nil
}

// waitExec waits (until ctx ends) for one exec and reads its output.
func waitExec(ctx context.Context, c *client.Client, op api.Operation, index uint64, timeout time.Duration) execResult {
	after := below(index)
	for !op.Finished() {
		got, next, err := c.WatchOperation(ctx, op.ID, after, timeout)
		if ctx.Err() != nil {
			return execResult{ID: op.ID, Status: op.Status, Message: fmt.Sprintf("did not finish within %v", timeout)}
		}
		if err != nil {
			return execResult{ID: op.ID, Status: op.Status, Message: err.Error()}
		}
		op, after = got, next
	}
	r := execResult{ID: op.ID, Status: op.Status, Message: op.Message}
	if len(op.Results) == 0 {
		return r
	}
	v, err := decodeJSON(op.Results)
	res, ok := v.(map[string]any)
	if err != nil || !ok {
		r.Message = "cannot decode the results"
		return r
	}
	if code, ok := res[api.ResultReturnCode].(int64); ok {
		r.ExitCode = &code
	}
	r.Stdout, r.Stderr = output(res, api.ResultStdout, api.ResultStdoutEncoding), output(res, api.ResultStderr, api.ResultStderrEncoding)
	return r
}

// output is one stream of an exec's results, decoded if base64.
func output(res map[string]any, key, encodingKey string) string {
	s, _ := res[key].(string)
	if enc, _ := res[encodingKey].(string); enc == "base64" {
		if data, err := base64.StdEncoding.DecodeString(s); err == nil {
			return string(data)
		}
	}
	return s
}
