package hooktools_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// uniterBin is the real uniter binary and toolsBin the small
// uniter-hooktools beside it, built once by TestMain into a directory
// other users can read (the peer-credential tests run them as nobody).
var uniterBin, toolsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hooktools-bin-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot make binary directory:", err)
		os.Exit(1)
	}
	uniterBin, toolsBin = filepath.Join(dir, "uniter"), filepath.Join(dir, "uniter-hooktools")
	// A directory as -o: each command is built into it under its own name.
	build := exec.CommandContext(context.Background(), "go", "build", "-o", dir+"/", "../cmd/uniter", "../cmd/uniter-hooktools")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build uniter and uniter-hooktools:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}
