package hooktools

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// actionKeyRule is Juju's rule for each part of an action-set key.
var actionKeyRule = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`)

// reservedActionKeys are the result keys the agent fills in itself from
// the action's output.
var reservedActionKeys = []string{"stdout", "stdout-encoding", "stderr", "stderr-encoding"}

var actionGetTool = toolInfo{
	args:    "[<key>[.<key>.<key>...]]",
	summary: "get action parameters",
	doc: `action-get prints the value of the parameter at the given key, serialized as
YAML; a dotted key recurses into the params map. Without a key it prints every
param. A key that is not there prints nothing (null with --format=json).
`,
	new: func() command { return &actionGetCmd{} },
}

type actionGetCmd struct {
	out  output
	keys []string
}

func (c *actionGetCmd) setFlags(f *flagSet) { c.out.setFlags(f) }

func (c *actionGetCmd) init(args []string) error {
	if len(args) == 0 {
		return nil
	}
	c.keys = strings.Split(args[0], ".")
	return checkEmpty(args[1:])
}

func (c *actionGetCmd) run(inv *invocation) error {
	a := inv.h.action
	if a == nil {
		return errNotAction
	}
	v, _ := a.get(c.keys)
	return c.out.write(inv, v)
}

var actionSetTool = toolInfo{
	args:    "<key>=<value> [<key>=<value> ...]",
	summary: "set action results",
	doc: `action-set adds the given values to the results map of the action, returned to
the operator when it completes. A dotted key nests (foo.bar=2 sets bar under
foo); later values win. Keys must start and end with lowercase alphanumeric,
and contain only lowercase alphanumeric, hyphens and periods. stdout, stderr,
stdout-encoding and stderr-encoding are reserved: the agent sets them from the
action's output.
`,
	new: func() command { return &actionSetCmd{} },
}

type actionSetCmd struct {
	pairs []actionPair
}

type actionPair struct {
	keys  []string
	value string
}

func (c *actionSetCmd) setFlags(*flagSet) {}

func (c *actionSetCmd) init(args []string) error {
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			return fmt.Errorf("argument %q must be of the form key...=value", arg)
		}
		keys := strings.Split(k, ".")
		for _, key := range keys {
			if !actionKeyRule.MatchString(key) {
				return fmt.Errorf("key %q must start and end with lowercase alphanumeric, "+
					"and contain only lowercase alphanumeric, hyphens and periods", key)
			}
			if slices.Contains(reservedActionKeys, key) {
				return fmt.Errorf("cannot set reserved action key %q", key)
			}
		}
		c.pairs = append(c.pairs, actionPair{keys: keys, value: v})
	}
	return nil
}

func (c *actionSetCmd) run(inv *invocation) error {
	a := inv.h.action
	if a == nil {
		return errNotAction
	}
	for _, p := range c.pairs {
		a.set(p.keys, p.value)
	}
	return nil
}

var actionLogTool = toolInfo{
	args:    "<message>",
	summary: "record a progress message for the current action",
	doc: `action-log sends its arguments, joined by spaces, to the controller as a
progress message of the running action, stamped with the controller's time.
'uniter run' prints them as they arrive; 'uniter show-operation' lists them.
`,
	new: func() command { return &actionLogCmd{} },
}

type actionLogCmd struct{ message string }

func (c *actionLogCmd) setFlags(*flagSet) {}

func (c *actionLogCmd) init(args []string) error {
	if len(args) == 0 {
		return errors.New("no message specified")
	}
	c.message = strings.Join(args, " ")
	return nil
}

func (c *actionLogCmd) run(inv *invocation) error {
	a := inv.h.action
	if a == nil {
		return errNotAction
	}
	if a.logger == nil {
		return errors.New("cannot log action message: no controller")
	}
	if err := a.logger.LogAction(inv.ctx, c.message); err != nil {
		return fmt.Errorf("cannot log action message: %w", err)
	}
	return nil
}

var actionFailTool = toolInfo{
	args:    "[\"<failure message>\"]",
	summary: "set action fail status with message",
	doc: `action-fail marks the running action failed, with the message given (by default
"` + DefaultFailMessage + `").
The action's process goes on, and its results are kept; the unit is not put in
error state.
`,
	new: func() command { return &actionFailCmd{} },
}

type actionFailCmd struct{ message string }

func (c *actionFailCmd) setFlags(*flagSet) {}

func (c *actionFailCmd) init(args []string) error {
	c.message = DefaultFailMessage
	if len(args) == 0 {
		return nil
	}
	c.message = args[0]
	return checkEmpty(args[1:])
}

func (c *actionFailCmd) run(inv *invocation) error {
	a := inv.h.action
	if a == nil {
		return errNotAction
	}
	a.fail(c.message)
	return nil
}
