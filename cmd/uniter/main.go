// Command uniter is the unit agent, its controller and the operator CLI in
// one binary. Invoked through a hook-tool symlink it acts as that tool,
// although the agent points the symlinks at the faster-starting
// uniter-hooktools beside it when that is installed (cmd/uniter-hooktools).
package main

import (
	"os"
	"path/filepath"

	"github.com/uniter-dev/uniter/cmd/uniter/cli"
	"github.com/uniter-dev/uniter/hooktools"
)

func main() {
	// A hook tool is run once per call, many times per hook: dispatch on
	// argv[0] before anything else.
	if hooktools.IsTool(filepath.Base(os.Args[0])) {
		os.Exit(hooktools.ClientMain(os.Args, os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
