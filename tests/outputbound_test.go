package tests

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/testutil"
)

// rotationBound is the largest size each file under $UNITER_HOME may
// reach: its rotation bound plus one write (a write is never split), or,
// for the files that are not logs, a bound far below the hook's output.
func rotationBound(path string) int64 {
	const slack = 64 << 10
	base := filepath.Base(path)
	switch {
	case strings.HasPrefix(base, "agent.log"), strings.HasPrefix(base, "controller.log"):
		return 10<<20 + slack
	case strings.HasPrefix(base, "agent.out"):
		return 4<<20 + slack
	case strings.HasPrefix(base, "machine-lock.log"):
		return 1<<20 + slack
	}
	return 8 << 20
}

// TestUpBoundsEveryFileAgainstAFloodingHook: under `uniter up`, a hook
// printing 50 MB grows no file under $UNITER_HOME past its rotation
// bound, and the output did go through the agent (its log rotated).
func TestUpBoundsEveryFileAgainstAFloodingHook(t *testing.T) {
	charm := t.TempDir()
	if err := os.CopyFS(charm, os.DirFS(filepath.Join("..", "testcharms", "journal"))); err != nil {
		t.Fatal(err)
	}
	const noise = 50 << 20
	if err := os.WriteFile(filepath.Join(charm, "noise-install"), []byte(strconv.Itoa(noise)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	u := &upRun{t: t, home: t.TempDir(), charm: charm}
	u.p = startProc(t, filepath.Join(u.home, "up.out"), u.env(), "up", u.charm, "--units", "1")
	t.Cleanup(func() {
		u.p.stop(syscall.SIGTERM)
		if t.Failed() {
			out, _ := os.ReadFile(filepath.Join(u.home, "up.out"))
			t.Logf("up output:\n%s", tail(string(out), 4000))
		}
	})
	unit := "journal/0"
	testutil.WaitUntil(t, 3*time.Minute, "install to end on "+unit, func() bool {
		return count(u.journal(unit), "install", "end") == 1
	})

	var total int64
	err := filepath.WalkDir(u.home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSocket != 0 {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a state file's temporary copy, renamed meanwhile
		}
		if err != nil {
			return err
		}
		total += fi.Size()
		if bound := rotationBound(path); fi.Size() > bound {
			t.Errorf("%s is %d bytes, past its bound of %d", path, fi.Size(), bound)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(u.unitDir(unit), "log")
	if _, err := os.Stat(filepath.Join(logDir, "agent.log.1")); err != nil {
		t.Errorf("agent.log never rotated (%v): the hook's output did not reach the agent's log", err)
	}
	if _, err := os.Stat(filepath.Join(u.unitDir(unit), "agent.out.1")); err != nil {
		t.Errorf("agent.out never rotated (%v)", err)
	}
	t.Logf("after a %d MiB flood: %d MiB on disk under UNITER_HOME", noise>>20, total>>20)
}
