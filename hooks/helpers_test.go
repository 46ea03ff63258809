package hooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

// newRunner returns a Runner on a fake clock, logging JSON to logs, or to
// the test if logs is nil. cfg's Clock and Logger are overwritten.
func newRunner(t *testing.T, cfg hooks.Config, logs *logBuffer) (*hooks.Runner, *clocktest.Clock) {
	t.Helper()
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	cfg.Clock = clk
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t))
	if logs != nil {
		cfg.Logger = zerolog.New(logs)
	}
	if cfg.PassEnv == nil {
		cfg.PassEnv = func(string) (string, bool) { return "", false }
	}
	r, err := hooks.NewRunner(cfg)
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	return r, clk
}

// params returns Params for kind in charmDir.
func params(kind hooks.Kind, charmDir string) hooks.Params {
	return hooks.Params{
		Kind:           kind,
		Unit:           "app/0",
		CharmDir:       charmDir,
		ToolsDir:       "/var/lib/uniter/app-0/tools",
		ContextID:      "app/0-install-0123456789abcdef",
		SocketPath:     "/var/lib/uniter/app-0/run/agent.sock",
		ModelName:      "test",
		ModelUUID:      "6f1c1a8e-1111-4222-8333-944445555666",
		LeadershipTerm: 4,
	}
}

// writeFile writes content to dir/rel with mode, making parent directories.
func writeFile(t *testing.T, dir, rel, content string, mode os.FileMode) {
	t.Helper()
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// writeHook writes an executable bash script to dir/rel.
func writeHook(t *testing.T, dir, rel, body string) {
	t.Helper()
	writeFile(t, dir, rel, "#!/bin/bash\n"+body, 0o755)
}

// readFile returns the content of dir/rel, or "" if it does not exist.
func readFile(t *testing.T, dir, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// runAsync starts r.Run in a goroutine. The test's cleanup cancels the
// run and waits for it, so no goroutine outlives the test.
func runAsync(t *testing.T, ctx context.Context, r *hooks.Runner, p hooks.Params) <-chan error {
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		errc <- r.Run(ctx, p)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return errc
}

// waitErr returns the result of a runAsync, failing the test if it takes
// longer than waitTimeout.
func waitErr(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for Run to return")
		return nil
	}
}

// readPids waits until the hook has written "<pid> <pid>..." to dir/rel
// (atomically, with mv) and returns the pids.
func readPids(t *testing.T, dir, rel string) []int {
	t.Helper()
	waitFor(t, rel, func() bool { return readFile(t, dir, rel) != "" })
	var pids []int
	for _, f := range strings.Fields(readFile(t, dir, rel)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("bad pid in %s: %v", rel, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// processGone reports whether pid no longer runs: it does not exist or is a
// zombie (its parent, possibly an init that never reaps, has not waited).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}

// waitGone waits until every pid is gone.
func waitGone(t *testing.T, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		waitFor(t, fmt.Sprintf("process %d to be gone", pid), func() bool { return processGone(pid) })
	}
}

// logBuffer collects JSON log lines; zerolog writes one event per Write,
// from several goroutines.
type logBuffer struct{ testutil.Buffer }

// records parses every logged event with the given message.
func (l *logBuffer) records(t *testing.T, message string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("bad log line %q: %v", line, err)
		}
		if rec["message"] == message {
			out = append(out, rec)
		}
	}
	return out
}
