package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/uniter-dev/uniter/charm"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
)

// defaultRunWait is how long `uniter run` waits for its action by
// default: long enough for an action of a live unit, short enough that a
// unit whose agent never picks the action up (stopped, or busy in a long
// hook) gives the operator a clear answer rather than a hung terminal.
const defaultRunWait = 5 * time.Minute

type runOptions struct {
	paramsFile string
	stringArgs bool
	wait       time.Duration
	background bool
	format     string
}

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run UNIT|APP/leader ACTION [KEY[.KEY...]=VALUE ...] [--params FILE] [--wait D] [--background]",
		Short: "Run a charm action on a unit, and print its results",
		Long: `Queue ACTION (from the charm's actions.yaml, see 'uniter actions APP') on UNIT, or on
the application's leader with APP/leader (resolved when the controller queues it; the
output says which unit it picked), wait for it and print its results as YAML.

Params come from --params FILE (a YAML map) and from KEY=VALUE arguments, which win; a
dotted key sets a nested value (file.kind=xz). Values are read as YAML (n=3 is a number,
flag=true a boolean, KEY= an empty string) unless --string-args. The controller checks them against the action's
schema and refuses the action, queueing nothing, if they do not fit.

Progress messages (action-log) are printed to stderr as they arrive. The command exits 1
if the action failed, was aborted or cancelled, or did not finish within --wait (it then
stays queued or running: 'uniter show-operation ID' follows it, 'uniter cancel ID' drops
it while pending). --background only queues it and prints its id.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return &UsageError{fmt.Errorf("want UNIT|APP/leader ACTION [KEY=VALUE ...], got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runAction(cmd, args, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.paramsFile, "params", "", "a YAML file of params (KEY=VALUE arguments override it)")
	f.BoolVar(&o.stringArgs, "string-args", false, "take KEY=VALUE values as strings, not YAML")
	f.DurationVar(&o.wait, "wait", defaultRunWait, "how long to wait for the action to finish")
	f.BoolVar(&o.background, "background", false, "queue the action, print its id and return")
	f.StringVar(&o.format, "format", "yaml", "results format: yaml or json")
	addClientConfigFlag(cmd)
	return cmd
}

func (o runOptions) check(cmd *cobra.Command) error {
	switch {
	case o.wait <= 0:
		return &UsageError{errors.New("--wait must be positive")}
	case o.background && cmd.Flags().Changed("wait"):
		return &UsageError{errors.New("--background and --wait cannot be used together")}
	case o.format != "yaml" && o.format != "json":
		return &UsageError{fmt.Errorf("unknown --format %q (want yaml or json)", o.format)}
	}
	return nil
}

// checkTarget checks a UNIT|APP/leader argument.
func checkTarget(target string) error {
	if app, ok := strings.CutSuffix(target, "/leader"); ok && api.ValidApplicationName(app) {
		return nil
	}
	if _, _, err := api.SplitUnit(target); err != nil {
		return &UsageError{fmt.Errorf("bad unit %q: want APP/N or APP/leader", target)}
	}
	return nil
}

func runAction(cmd *cobra.Command, args []string, o runOptions) error {
	target, action := args[0], args[1]
	if err := checkTarget(target); err != nil {
		return err
	}
	if err := o.check(cmd); err != nil {
		return err
	}
	params, err := actionParams(o.paramsFile, args[2:], o.stringArgs)
	if err != nil {
		return err
	}
	c, err := loadClient(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	op, index, err := c.EnqueueAction(cmd.Context(), target, action, params)
	if err != nil {
		return fmt.Errorf("cannot run %s on %s: %w", action, target, err)
	}
	if o.background {
		fmt.Fprintf(cmd.OutOrStdout(), "Scheduled operation %s on %s.\nCheck its status with 'uniter show-operation %s'.\n",
			op.ID, describeUnit(op.Unit, target), op.ID)
		return nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Running operation %s on %s.\n", op.ID, describeUnit(op.Unit, target))
	done, err := followOperation(cmd.Context(), c, op, below(index), o.wait, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	if err := printResults(cmd.OutOrStdout(), done.Results, o.format); err != nil {
		return err
	}
	return finalError(done)
}

// below is the index to wait from for an operation written at index: one
// less, so that a node that has not applied the write yet waits for it.
func below(index uint64) uint64 {
	if index == 0 {
		return 0
	}
	return index - 1
}

// describeUnit names the unit an operation went to, and why, when the
// operator asked for the leader.
func describeUnit(unit, target string) string {
	if app, ok := strings.CutSuffix(target, "/leader"); ok {
		return fmt.Sprintf("%s (the leader of %s)", unit, app)
	}
	return unit
}

// finalError is the error of an operation that did not complete.
func finalError(o api.Operation) error {
	switch o.Status {
	case api.OperationCompleted:
		return nil
	case api.OperationCancelled:
		return fmt.Errorf("operation %s was cancelled", o.ID)
	}
	msg := o.Message
	if msg == "" {
		msg = "no message"
	}
	return fmt.Errorf("operation %s %s on %s: %s", o.ID, o.Status, o.Unit, msg)
}

// followOperation waits up to wait for op to finish, printing its log
// messages to log as they come. index is one below the index the enqueue
// answered, so the first query waits for a node that has the operation.
func followOperation(ctx context.Context, c *client.Client, op api.Operation, index uint64, wait time.Duration, log io.Writer) (api.Operation, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	printed := 0
	for {
		got, next, err := c.WatchOperation(ctx, op.ID, index, wait)
		if ctx.Err() != nil {
			return api.Operation{}, stillQueued(op, wait)
		}
		if err != nil {
			return api.Operation{}, fmt.Errorf("cannot follow operation %s: %w", op.ID, err)
		}
		for ; printed < len(got.Log); printed++ {
			m := got.Log[printed]
			fmt.Fprintf(log, "%s %s\n", m.Time.UTC().Format(time.RFC3339), m.Message)
		}
		if got.Finished() {
			return got, nil
		}
		op, index = got, next
	}
}

// stillQueued is the error of an operation that did not finish in time.
func stillQueued(op api.Operation, wait time.Duration) error {
	if op.Status == api.OperationRunning {
		return fmt.Errorf("operation %s is still running on %s after %v; it goes on ('uniter show-operation %s --wait 10m' waits for it)",
			op.ID, op.Unit, wait, op.ID)
	}
	return fmt.Errorf("operation %s is still pending on %s after %v: the unit's agent has not started it (is it running, or busy with a long hook?); "+
		"it stays queued ('uniter show-operation %s' follows it, 'uniter cancel %s' drops it)", op.ID, op.Unit, wait, op.ID, op.ID)
}

// printResults prints an operation's results (a JSON object) as YAML or
// JSON; nothing for none.
func printResults(out io.Writer, raw json.RawMessage, format string) error {
	if len(raw) == 0 {
		return nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return fmt.Errorf("cannot decode results: %w", err)
	}
	return printValue(out, v, format)
}

func printValue(out io.Writer, v any, format string) error {
	if format == "json" {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", data)
		return err
	}
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = out.Write(data)
	return err
}

// decodeJSON decodes a JSON value with its numbers as int64 when they are
// integers (YAML then prints them as numbers, not quoted strings).
func decodeJSON(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		if n, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// paramKeyRule is the rule for each part of a KEY.KEY=VALUE argument:
// Juju's, plus underscores, which Python charms use in param names.
var paramKeyRule = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?$`)

// actionParams reads the params file (if any) and applies the KEY=VALUE
// arguments over it. A malformed argument is a usage error; a file that
// cannot be read or is not a YAML map is a runtime error.
func actionParams(file string, args []string, stringArgs bool) (map[string]any, error) {
	params := map[string]any{}
	if file != "" {
		var err error
		if params, err = readParamsFile(file); err != nil {
			return nil, err
		}
	}
	for _, arg := range args {
		key, raw, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, &UsageError{fmt.Errorf("argument %q must be of the form key...=value", arg)}
		}
		path := strings.Split(key, ".")
		for _, k := range path {
			if !paramKeyRule.MatchString(k) {
				return nil, &UsageError{fmt.Errorf("key %q must start and end with lowercase alphanumeric, "+
					"and contain only lowercase alphanumeric, hyphens, underscores and periods", k)}
			}
		}
		var value any = raw
		if !stringArgs {
			if err := yaml.Unmarshal([]byte(raw), &value); err != nil {
				return nil, &UsageError{fmt.Errorf("value of %q is not valid YAML (use --string-args for plain strings): %v", key, err)}
			}
			clean, err := charm.Cleanse(value)
			if err != nil {
				return nil, &UsageError{fmt.Errorf("value of %q: %v", key, err)}
			}
			value = clean
		}
		setPath(params, path, value)
	}
	return params, nil
}

// setPath sets params[a][b]...=value, making (or replacing with) maps on
// the way.
func setPath(params map[string]any, path []string, value any) {
	for _, k := range path[:len(path)-1] {
		next, ok := params[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			params[k] = next
		}
		params = next
	}
	params[path[len(path)-1]] = value
}

func readParamsFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read params file: %w", err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("cannot read params file %s: %w", path, err)
	}
	if doc == nil {
		return map[string]any{}, nil
	}
	clean, err := charm.Cleanse(doc)
	if err != nil {
		return nil, fmt.Errorf("cannot read params file %s: %w", path, err)
	}
	m, ok := clean.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("cannot read params file %s: not a YAML map", path)
	}
	return maps.Clone(m), nil
}
