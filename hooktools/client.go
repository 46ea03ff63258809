package hooktools

import (
	"io"

	"github.com/uniter-dev/uniter/hooktools/toolclient"
)

// The client lives in package toolclient, which the small uniter-hooktools
// binary links without the server's dependencies; these are its names as
// the server and existing callers know them.

// Environment variables the client reads (HOOK-TOOLS.md §1).
const (
	EnvContextID     = toolclient.EnvContextID
	EnvSocketAddress = toolclient.EnvSocketAddress
	EnvSocketNetwork = toolclient.EnvSocketNetwork
)

// Default limits; see Limits.
const (
	DefaultMaxArgsBytes  = toolclient.DefaultMaxArgsBytes
	DefaultMaxStdinBytes = toolclient.DefaultMaxStdinBytes
	DefaultMaxFrameBytes = toolclient.DefaultMaxFrameBytes
)

// IsTool reports whether name is the name of a hook tool.
func IsTool(name string) bool { return toolclient.IsTool(name) }

// ToolNames returns the names of all hook tools, sorted.
func ToolNames() []string { return toolclient.ToolNames() }

// ClientMain runs the hook tool named by basename(args[0]) by asking the
// agent's server, and returns the exit code: it is [toolclient.Main].
func ClientMain(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	return toolclient.Main(args, stdin, stdout, stderr, getenv)
}
