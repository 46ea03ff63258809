package hooktools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
)

// invocation is one tool call being served.
type invocation struct {
	ctx    context.Context
	h      *hookState
	cwd    string
	stdin  []byte
	stdout bytes.Buffer
	stderr bytes.Buffer
	// log receives juju-log messages.
	log zerolog.Logger
	// obs is told the answers given (never nil).
	obs Observer
}

// command is one hook tool: flags, then positional arguments (usage
// errors, exit 2), then the work (runtime errors, exit 1).
type command interface {
	setFlags(f *flagSet)
	init(args []string) error
	run(inv *invocation) error
}

// toolInfo describes a tool for its usage text and makes its command.
type toolInfo struct {
	args    string // positional part of the usage line
	summary string
	doc     string
	new     func() command
}

// tools are the hook tools by name; the keys are exactly ToolNames().
var tools = map[string]toolInfo{
	"is-leader":               isLeaderTool,
	"leader-get":              leaderGetTool,
	"leader-set":              leaderSetTool,
	"config-get":              configGetTool,
	"status-set":              statusSetTool,
	"status-get":              statusGetTool,
	"juju-log":                jujuLogTool,
	"application-version-set": appVersionSetTool,
	"relation-ids":            relationIDsTool,
	"relation-list":           relationListTool,
	"relation-get":            relationGetTool,
	"relation-set":            relationSetTool,
	"goal-state":              goalStateTool,
	"network-get":             networkGetTool,
	"unit-get":                unitGetTool,
	"open-port":               openPortTool,
	"close-port":              closePortTool,
	"opened-ports":            openedPortsTool,
	"action-get":              actionGetTool,
	"action-set":              actionSetTool,
	"action-log":              actionLogTool,
	"action-fail":             actionFailTool,
}

// Exit codes of the tools (HOOK-TOOLS.md §3).
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// runTool runs tool name with args and returns its exit code; its output
// is in inv.stdout and inv.stderr.
func runTool(inv *invocation, name string, args []string) int {
	t, ok := tools[name]
	if !ok {
		fmt.Fprintf(&inv.stderr, "ERROR unknown hook tool %q\n", name)
		return exitError
	}
	cmd := t.new()
	fs := newFlagSet()
	cmd.setFlags(fs)
	pos, err := fs.parse(args)
	switch {
	case errors.Is(err, errHelp):
		inv.stdout.WriteString(t.usage(name, fs))
		return exitOK
	case err != nil:
		fmt.Fprintf(&inv.stderr, "ERROR %v\n\n%s", err, t.usage(name, fs))
		return exitUsage
	}
	if err := cmd.init(pos); err != nil {
		fmt.Fprintf(&inv.stderr, "ERROR %v\n", err)
		return exitUsage
	}
	if err := cmd.run(inv); err != nil {
		fmt.Fprintf(&inv.stderr, "ERROR %v\n", err)
		if ue := (*usageError)(nil); errors.As(err, &ue) {
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

// usage renders the text --help prints.
func (t toolInfo) usage(name string, fs *flagSet) string {
	var b strings.Builder
	b.WriteString("Usage: " + name)
	if len(fs.defs) > 0 {
		b.WriteString(" [options]")
	}
	if t.args != "" {
		b.WriteString(" " + t.args)
	}
	b.WriteString("\n\nSummary:\n" + t.summary + "\n")
	if len(fs.defs) > 0 {
		b.WriteString("\nOptions:\n" + fs.usage())
	}
	if t.doc != "" {
		b.WriteString("\nDetails:\n" + t.doc)
	}
	return b.String()
}

// checkEmpty refuses leftover positional arguments, in Juju's words.
func checkEmpty(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unrecognized args: %q", args)
	}
	return nil
}
