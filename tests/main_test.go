// Package tests holds uniter's end-to-end tests: they build the real binary,
// run real agent processes and real hook processes from testcharms/, and
// kill them with real signals.
package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// uniterBin is the binary built once by TestMain, with uniter-hooktools
// beside it (the agents' tools/ symlinks point there).
var uniterBin string

func TestMain(m *testing.M) {
	if dir := os.Getenv(envAgentDir); dir != "" {
		os.Exit(runTestAgent(dir)) // this process is an agent under test
	}
	tmp, err := os.MkdirTemp("", "uniter-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	uniterBin = filepath.Join(tmp, "uniter")
	// Without -race: a race-enabled binary sleeps 1 s at exit (the race
	// runtime's atexit_sleep_ms), and every hook-tool call is such an exit.
	// This test binary, and the agent processes it runs itself, are
	// race-checked.
	// A directory as -o: each command is built into it under its own name.
	build := exec.CommandContext(context.Background(), "go", "build", "-o", tmp+"/", "../cmd/uniter", "../cmd/uniter-hooktools")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build uniter and uniter-hooktools:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}
