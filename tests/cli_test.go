package tests

import (
	"bytes"
	"errors"
	"os/exec"
	"testing"
)

type result struct {
	code           int
	stdout, stderr string
}

// runUniter runs the built binary with args.
func runUniter(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), uniterBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}
