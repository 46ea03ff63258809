// Command uniter-hooktools is the hook tools (is-leader, leader-get and the
// others) and nothing else: the agent's tools/ symlinks point at it, and it
// acts as the tool named by basename(argv[0]).
//
// It exists because a hook pays for one process start per tool call. The
// uniter binary acts as every tool as well, but starting it costs about
// 2.3 ms before any work (the package initialisers of raft, net/http, YAML
// and the loggers, and page faults in 15 MB), against about 0.9 ms for an
// empty Go binary. This one links only package toolclient, the standard
// library client. A symlink to the uniter binary keeps working: the agent
// falls back to it when this binary is not installed beside uniter, or
// when `uniter-hooktools --describe` does not name the agent's protocol
// and tools (another release).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/uniter-dev/uniter/hooktools/toolclient"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == toolclient.DescribeFlag && !toolclient.IsTool(filepath.Base(os.Args[0])) {
		fmt.Println(toolclient.Describe())
		os.Exit(0)
	}
	if len(os.Args) == 0 || !toolclient.IsTool(filepath.Base(os.Args[0])) {
		fmt.Fprintf(os.Stderr, "usage: run uniter-hooktools through a symlink named after a hook tool: %s\n",
			strings.Join(toolclient.ToolNames(), ", "))
		os.Exit(2)
	}
	os.Exit(toolclient.Main(os.Args, os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
