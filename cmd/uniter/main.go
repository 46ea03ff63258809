// Command uniter is the unit agent, its controller and the operator CLI in
// one binary. Invoked through a hook-tool symlink it acts as that tool.
package main

import (
	"os"

	"github.com/uniter-dev/uniter/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
