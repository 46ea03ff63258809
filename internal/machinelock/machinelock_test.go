package machinelock_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/internal/machinelock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newLock(t *testing.T, path, unit string) *machinelock.Lock {
	t.Helper()
	l, err := machinelock.New(machinelock.Config{Path: path, Unit: unit, Clock: clock.Real})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSecondHolderWaitsAndBothAreLogged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "machine-lock")
	a, b := newLock(t, path, "app/0"), newLock(t, path, "app/1")
	ctx := t.Context()
	releaseA, err := a.Acquire(ctx, "run install hook")
	if err != nil {
		t.Fatal(err)
	}
	gotB := make(chan func(), 1)
	go func() {
		release, err := b.Acquire(ctx, "run start hook")
		if err != nil {
			t.Error(err)
			release = func() {}
		}
		gotB <- release
	}()
	select {
	case <-gotB:
		t.Fatal("second holder acquired the lock while the first held it")
	case <-time.After(100 * time.Millisecond):
	}
	releaseA()
	select {
	case release := <-gotB:
		release()
	case <-time.After(10 * time.Second):
		t.Fatal("second holder never acquired the lock")
	}
	data, err := os.ReadFile(a.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("log has %d lines, want 2:\n%s", len(lines), data)
	}
	re := regexp.MustCompile(`^\S+ unit=(\S+) op="([^"]+)" waited=(\S+) held=(\S+)$`)
	for i, want := range []struct{ unit, op string }{{"app/0", "run install hook"}, {"app/1", "run start hook"}} {
		m := re.FindStringSubmatch(lines[i])
		if m == nil || m[1] != want.unit || m[2] != want.op {
			t.Fatalf("line %d = %q, want unit %s op %q", i, lines[i], want.unit, want.op)
		}
	}
	waited, err := time.ParseDuration(re.FindStringSubmatch(lines[1])[3])
	if err != nil || waited < 100*time.Millisecond {
		t.Fatalf("second holder waited %v (%v), want at least the 100ms the first held it", waited, err)
	}
}

func TestAcquireGivesUpWhenContextEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "machine-lock")
	a, b := newLock(t, path, "app/0"), newLock(t, path, "app/1")
	releaseA, err := a.Acquire(t.Context(), "op")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Acquire(ctx, "op"); err == nil {
		t.Fatal("acquired a held lock")
	}
	releaseA()
	// The abandoned waiter must hand the lock back, not keep it.
	ctx2, cancel2 := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel2()
	release, err := a.Acquire(ctx2, "op")
	if err != nil {
		t.Fatalf("lock stuck after an abandoned wait: %v", err)
	}
	release()
}

// TestLogIsRotated: the hold log never grows past MaxLogBytes; the holds
// before the last rotation are in machine-lock.log.1, and no hold of the
// current file or the rotated one is lost or cut.
func TestLogIsRotated(t *testing.T) {
	dir := t.TempDir()
	const limit = 1000
	l, err := machinelock.New(machinelock.Config{Path: filepath.Join(dir, "machine.lock"), Unit: "db/0", Clock: clock.Real, MaxLogBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	const holds = 40 // ~100 bytes each: about four rotations
	for i := range holds {
		release, err := l.Acquire(t.Context(), fmt.Sprintf("run hook %d", i))
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	cur, err := os.ReadFile(l.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(l.LogPath() + ".1")
	if err != nil {
		t.Fatalf("no rotated log: %v", err)
	}
	if len(cur) > limit || len(old) > limit {
		t.Errorf("log sizes %d and %d, want at most %d each", len(cur), len(old), limit)
	}
	// The two files hold the last holds, in order, each line whole.
	lines := strings.Split(strings.TrimSuffix(string(old)+string(cur), "\n"), "\n")
	if len(lines) < 10 {
		t.Fatalf("only %d holds kept:\n%s%s", len(lines), old, cur)
	}
	first := holds - len(lines)
	for i, line := range lines {
		if want := fmt.Sprintf(`op="run hook %d"`, first+i); !strings.Contains(line, want) || !strings.HasSuffix(line, "s") {
			t.Errorf("line %d = %q, want the hold %s", i, line, want)
		}
	}
}

// lockObserver records what the lock's observer is told.
type lockObserver struct{ calls []string }

func (o *lockObserver) LockWaited(d time.Duration) { o.calls = append(o.calls, "waited "+d.String()) }
func (o *lockObserver) LockHeld(d time.Duration)   { o.calls = append(o.calls, "held "+d.String()) }

// TestObserverSeesWaitAndHold: the wait is reported when the lock is
// taken, the hold on release, both on the lock's clock.
func TestObserverSeesWaitAndHold(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	obs := &lockObserver{}
	l, err := machinelock.New(machinelock.Config{Path: filepath.Join(t.TempDir(), "machine-lock"), Unit: "app/0", Clock: clk, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	release, err := l.Acquire(t.Context(), "run install hook")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"waited 0s"}; !slices.Equal(obs.calls, want) {
		t.Fatalf("after Acquire the observer saw %q, want %q", obs.calls, want)
	}
	clk.Advance(5 * time.Second)
	release()
	if want := []string{"waited 0s", "held 5s"}; !slices.Equal(obs.calls, want) {
		t.Fatalf("after release the observer saw %q, want %q", obs.calls, want)
	}
}
