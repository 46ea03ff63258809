package hooktools

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// validStatus are the statuses a charm may set, in Juju's order.
var validStatus = []string{"maintenance", "blocked", "waiting", "active"}

// errNotLeaderStatus is Juju's wording for application status calls made
// by a non-leader.
var errNotLeaderStatus = errors.New("this unit is not the leader")

var statusSetTool = toolInfo{
	args:    "<maintenance | blocked | waiting | active> [message]",
	summary: "set status information",
	doc: `Sets the workload status of the unit, or with --application the application's
(leader only). The message may be empty. The status is applied at once and
shown by "uniter status"; it is not rolled back if the hook fails.
`,
	new: func() command { return &statusSetCmd{} },
}

type statusSetCmd struct {
	application     bool
	status, message string
}

func (c *statusSetCmd) setFlags(f *flagSet) {
	f.boolVar(&c.application, "set this status for the application to which the unit belongs if the unit is the leader", "application")
}

func (c *statusSetCmd) init(args []string) error {
	if len(args) < 1 {
		return errors.New("invalid args, require <status> [message]")
	}
	if !slices.Contains(validStatus, args[0]) {
		return fmt.Errorf("invalid status %q, expected one of %v", args[0], validStatus)
	}
	c.status = args[0]
	if len(args) > 1 {
		c.message = args[1]
		return checkEmpty(args[2:])
	}
	return nil
}

func (c *statusSetCmd) run(inv *invocation) error {
	if c.application {
		if err := requireLeader(inv); err != nil {
			return err
		}
	}
	s := Status{Application: c.application, Status: c.status, Message: c.message}
	if err := inv.h.backend.SetStatus(inv.ctx, s); err != nil {
		return fmt.Errorf("cannot set status: %w", err)
	}
	return nil
}

// requireLeader refuses application-wide status calls from a unit that
// is not (or, in this hook, no longer) the leader.
func requireLeader(inv *invocation) error {
	ok, err := inv.h.isLeader(inv.ctx)
	if err != nil {
		return fmt.Errorf("cannot determine leadership: %w", err)
	}
	if !ok {
		return errNotLeaderStatus
	}
	return nil
}

var statusGetTool = toolInfo{
	args:    "[--include-data] [--application]",
	summary: "print status information",
	doc: `By default, only the status value is printed. With --include-data, or any
--format but smart, a map with "status", "message" and "status-data" is
printed. --application prints the application's status and every unit's
(leader only), under "application-status".
`,
	new: func() command { return &statusGetCmd{} },
}

type statusGetCmd struct {
	out         output
	includeData bool
	application bool
}

func (c *statusGetCmd) setFlags(f *flagSet) {
	c.out.setFlags(f)
	f.boolVar(&c.includeData, "print all status data", "include-data")
	f.boolVar(&c.application, "print status for all units of this application if this unit is the leader", "application")
}

func (c *statusGetCmd) init(args []string) error { return checkEmpty(args) }

func (c *statusGetCmd) run(inv *invocation) error {
	what := "workload"
	if c.application {
		what = "application"
		if err := requireLeader(inv); err != nil {
			return fmt.Errorf("finding application status: %w", err)
		}
	}
	info, err := inv.h.backend.GetStatus(inv.ctx, c.application)
	if err != nil {
		return fmt.Errorf("finding %s status: %w", what, err)
	}
	if !c.includeData && c.out.format == formatSmart {
		return c.out.write(inv, info.Status)
	}
	if !c.application {
		return c.out.write(inv, statusDetails(info))
	}
	details := statusDetails(info)
	units := make(map[string]any, len(info.Units))
	for name, u := range info.Units {
		units[name] = statusDetails(u)
	}
	details["units"] = units
	return c.out.write(inv, map[string]any{"application-status": details})
}

// statusDetails is one status as status-get prints it. Unlike Juju,
// message and status-data are always there (HOOK-TOOLS.md §4), so
// `status-get --application --format=json` has them too.
func statusDetails(info StatusInfo) map[string]any {
	data := maps.Clone(info.Data)
	if data == nil {
		data = map[string]any{}
	}
	return map[string]any{"status": info.Status, "message": info.Message, "status-data": data}
}

var appVersionSetTool = toolInfo{
	args:    "<new-version>",
	summary: "specify which version of the application is deployed",
	doc: `application-version-set tells uniter which version of the application software
is running: a package version, a Git hash, or another identifier of the
deployed software (not the charm revision). "uniter status" shows it.
`,
	new: func() command { return &appVersionSetCmd{} },
}

type appVersionSetCmd struct{ version string }

func (c *appVersionSetCmd) setFlags(*flagSet) {}

func (c *appVersionSetCmd) init(args []string) error {
	if len(args) < 1 {
		return errors.New("no version specified")
	}
	c.version = args[0]
	return checkEmpty(args[1:])
}

func (c *appVersionSetCmd) run(inv *invocation) error {
	if err := inv.h.backend.SetApplicationVersion(inv.ctx, c.version); err != nil {
		return fmt.Errorf("cannot set application version: %w", err)
	}
	return nil
}
