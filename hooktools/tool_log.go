package hooktools

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
)

var jujuLogTool = toolInfo{
	args:    "<message>",
	summary: "write a message to the juju log",
	doc: `juju-log writes its arguments, joined by spaces, to the agent's log with the
unit, the hook and the level: DEBUG, INFO, WARNING, ERROR, CRITICAL or TRACE
(any case; WARN is WARNING; anything else is INFO). Multi-line messages are
kept whole in one log entry.
`,
	new: func() command { return &jujuLogCmd{} },
}

type jujuLogCmd struct {
	debug   bool
	level   string
	format  string // deprecated and ignored, as in Juju
	message string
}

func (c *jujuLogCmd) setFlags(f *flagSet) {
	f.boolVar(&c.debug, "log at debug level", "debug")
	f.stringVar(&c.level, "INFO", "Send log message at the given level", nil, "l", "log-level")
	f.stringVar(&c.format, "", "deprecated format flag", nil, "format")
}

func (c *jujuLogCmd) init(args []string) error {
	if len(args) == 0 {
		return errors.New("no message specified")
	}
	c.message = strings.Join(args, " ")
	return nil
}

func (c *jujuLogCmd) run(inv *invocation) error {
	if c.format != "" {
		fmt.Fprintf(&inv.stderr, "--format flag deprecated for command %q\n", "juju-log")
	}
	level := "DEBUG"
	if !c.debug {
		level = c.level
	}
	name, zl := logLevel(level)
	inv.log.WithLevel(zl).
		Str("unit", inv.h.unit).
		Str("hook", inv.h.hook).
		Str("juju_level", name).
		Msg(c.message)
	return nil
}

// logLevel maps a juju-log level to its canonical lower-case name and the
// zerolog level it is logged at. CRITICAL is logged as an error (zerolog's
// fatal and panic levels mean something else); juju_level keeps it apart.
func logLevel(s string) (string, zerolog.Level) {
	switch strings.ToUpper(s) {
	case "TRACE":
		return "trace", zerolog.TraceLevel
	case "DEBUG":
		return "debug", zerolog.DebugLevel
	case "WARNING", "WARN":
		return "warning", zerolog.WarnLevel
	case "ERROR":
		return "error", zerolog.ErrorLevel
	case "CRITICAL":
		return "critical", zerolog.ErrorLevel
	default:
		return "info", zerolog.InfoLevel
	}
}
