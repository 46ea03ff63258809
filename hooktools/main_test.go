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

// uniterBin is the real uniter binary, built once by TestMain into a
// directory other users can read (the peer-credential tests run it as
// nobody).
var uniterBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hooktools-bin-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot make binary directory:", err)
		os.Exit(1)
	}
	uniterBin = filepath.Join(dir, "uniter")
	build := exec.CommandContext(context.Background(), "go", "build", "-o", uniterBin, "../cmd/uniter")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build uniter:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}
