package operation_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/operation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Writer that records every state written.
type recorder struct {
	states []operation.State
	failAt int // fail the n-th write (1-based); 0 never
}

func (r *recorder) Write(st operation.State) error {
	if r.failAt == len(r.states)+1 {
		r.failAt = 0
		return errors.New("disk full")
	}
	r.states = append(r.states, st.Clone())
	return nil
}

func (r *recorder) steps() []string {
	var out []string
	for _, st := range r.states {
		if st.Op == nil {
			out = append(out, "none")
			continue
		}
		out = append(out, string(st.Op.Step))
	}
	return out
}

type nopLocker struct{ held, released int }

func (l *nopLocker) Acquire(context.Context, string) (func(), error) {
	l.held++
	return func() { l.released++ }, nil
}

// fakeRunner is a HookRunner returning a scripted error and counting runs.
type fakeRunner struct {
	err  error
	runs []hooks.Kind
}

func (f *fakeRunner) Run(_ context.Context, p hooks.Params) error {
	f.runs = append(f.runs, p.Kind)
	return f.err
}

type fakeContexts struct{ ended int }

func (f *fakeContexts) NewContext(_ context.Context, info operation.HookInfo) (hooks.Params, func(), error) {
	return hooks.Params{Kind: info.Kind}, func() { f.ended++ }, nil
}

func newExecutor(t *testing.T, st operation.State, w operation.Writer, l operation.Locker) *operation.Executor {
	t.Helper()
	x, err := operation.NewExecutor(operation.ExecutorConfig{State: st, Writer: w, Locker: l, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func hookOp(t *testing.T, kind hooks.Kind, r *fakeRunner) operation.Operation {
	return operation.NewRunHook(operation.HookInfo{Kind: kind, Term: 3, ConfigVersion: 5}, operation.HookDeps{
		Runner: r, Contexts: &fakeContexts{}, Clock: clocktest.New(time.Unix(0, 0)), Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
}

func TestExecutorStepsAndCommits(t *testing.T) {
	for _, tc := range []struct {
		name      string
		start     operation.State
		kind      hooks.Kind
		runErr    error
		wantSteps []string
		wantRuns  int
		wantErr   error
		check     func(operation.State) bool
	}{
		{name: "install", kind: hooks.Install, wantSteps: []string{"pending", "done", "none"}, wantRuns: 1,
			check: func(s operation.State) bool { return s.Installed && s.Op == nil }},
		{name: "config-changed records version", kind: hooks.ConfigChanged, wantSteps: []string{"pending", "done", "none"}, wantRuns: 1,
			check: func(s operation.State) bool { return s.ConfigVersion == 5 }},
		{name: "leader-elected records term", kind: hooks.LeaderElected, wantSteps: []string{"pending", "done", "none"}, wantRuns: 1,
			check: func(s operation.State) bool { return s.Leader && s.LeaderTerm == 3 }},
		{name: "missing hook counts as success", kind: hooks.Start, runErr: hooks.ErrMissing, wantSteps: []string{"pending", "done", "none"}, wantRuns: 1,
			check: func(s operation.State) bool { return s.Started }},
		{name: "failure enters error state, stays pending", kind: hooks.Install, runErr: &hooks.ExitError{Kind: hooks.Install, Code: 1},
			wantSteps: []string{"pending", "pending"}, wantRuns: 1, wantErr: operation.ErrHookFailed,
			check: func(s operation.State) bool {
				return !s.Installed && s.Error != nil && s.Error.Attempts == 1 && s.Error.Message == `hook failed: "install"`
			}},
		{name: "second failure counts attempts", kind: hooks.Install, runErr: &hooks.ExitError{Kind: hooks.Install, Code: 1},
			start:     operation.State{Error: &operation.HookError{Hook: hooks.Install, Attempts: 2}},
			wantSteps: []string{"pending", "pending"}, wantRuns: 1, wantErr: operation.ErrHookFailed,
			check: func(s operation.State) bool { return s.Error.Attempts == 3 }},
		{name: "leader-deposed in error state leaves the failed hook's error", kind: hooks.LeaderDeposed,
			start: operation.State{Leader: true, LeaderTerm: 3,
				Op:    &operation.Op{Kind: operation.RunHook, Step: operation.Pending, Hook: operation.HookInfo{Kind: hooks.ConfigChanged, ConfigVersion: 4}},
				Error: &operation.HookError{Hook: hooks.ConfigChanged, Info: operation.HookInfo{Kind: hooks.ConfigChanged, ConfigVersion: 4}, Attempts: 1}},
			wantSteps: []string{"pending", "done", "none"}, wantRuns: 1,
			check: func(s operation.State) bool {
				return !s.Leader && s.Error != nil && s.Error.Info.ConfigVersion == 4 && s.Op == nil
			}},
		{name: "done only commits", kind: hooks.Install,
			start:     operation.State{Op: &operation.Op{Kind: operation.RunHook, Step: operation.Done, Hook: operation.HookInfo{Kind: hooks.Install}}},
			wantSteps: []string{"none"}, wantRuns: 0,
			check: func(s operation.State) bool { return s.Installed }},
		{name: "queued runs", kind: hooks.Install,
			start:     operation.State{Op: &operation.Op{Kind: operation.RunHook, Step: operation.Queued, Hook: operation.HookInfo{Kind: hooks.Install}}},
			wantSteps: []string{"pending", "done", "none"}, wantRuns: 1,
			check: func(s operation.State) bool { return s.Installed }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, l, r := &recorder{}, &nopLocker{}, &fakeRunner{err: tc.runErr}
			x := newExecutor(t, tc.start, w, l)
			err := x.Run(t.Context(), hookOp(t, tc.kind, r))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Run = %v, want %v", err, tc.wantErr)
			}
			if d := cmp.Diff(tc.wantSteps, w.steps()); d != "" {
				t.Errorf("steps written (-want +got):\n%s", d)
			}
			if len(r.runs) != tc.wantRuns {
				t.Errorf("hook ran %d times, want %d", len(r.runs), tc.wantRuns)
			}
			if !tc.check(x.State()) {
				t.Errorf("final state wrong: %+v", x.State())
			}
			if l.held != 1 || l.released != 1 {
				t.Errorf("machine lock held %d released %d, want 1/1", l.held, l.released)
			}
		})
	}
}

func TestExecutorWriteFailureStopsBeforeHook(t *testing.T) {
	w, r := &recorder{failAt: 1}, &fakeRunner{}
	x := newExecutor(t, operation.State{}, w, &nopLocker{})
	err := x.Run(t.Context(), hookOp(t, hooks.Install, r))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Run = %v, want the write error", err)
	}
	if len(r.runs) != 0 {
		t.Fatal("hook ran although its pending state could not be written")
	}
	if x.State().Op != nil {
		t.Fatal("in-memory state moved on although the write failed")
	}
}

func TestSkipOfAFailedHookLeavesErrorState(t *testing.T) {
	w, r := &recorder{}, &fakeRunner{}
	failed := operation.HookInfo{Kind: hooks.LeaderElected, Term: 2}
	start := operation.State{
		Op:    &operation.Op{Kind: operation.RunHook, Step: operation.Pending, Hook: failed},
		Error: &operation.HookError{Hook: hooks.LeaderElected, Info: failed, Attempts: 1},
	}
	x := newExecutor(t, start, w, &nopLocker{})
	op := operation.NewRunHook(failed, operation.HookDeps{
		Runner: r, Contexts: &fakeContexts{}, Clock: clocktest.New(time.Unix(0, 0)), Logger: zerolog.Nop(),
		Check: func(context.Context, operation.HookInfo) error { return operation.ErrSkip },
	})
	if err := x.Run(t.Context(), op); err != nil {
		t.Fatal(err)
	}
	if st := x.State(); st.Error != nil || st.Op != nil || len(r.runs) != 0 {
		t.Fatalf("after skipping a failed leader-elected whose lease is gone: %+v (runs %v)", st, r.runs)
	}
}

func TestSkipDropsOperation(t *testing.T) {
	w, r := &recorder{}, &fakeRunner{}
	x := newExecutor(t, operation.State{}, w, &nopLocker{})
	op := operation.NewRunHook(operation.HookInfo{Kind: hooks.LeaderElected, Term: 2}, operation.HookDeps{
		Runner: r, Contexts: &fakeContexts{}, Clock: clocktest.New(time.Unix(0, 0)), Logger: zerolog.Nop(),
		Check: func(context.Context, operation.HookInfo) error { return operation.ErrSkip },
	})
	if err := x.Run(t.Context(), op); err != nil {
		t.Fatal(err)
	}
	if len(r.runs) != 0 || x.State().Leader {
		t.Fatalf("skipped leader-elected ran (%d) or committed (%v)", len(r.runs), x.State().Leader)
	}
}

// mountTmpfs mounts a small tmpfs for a test that needs a real full or
// read-only filesystem. It needs root, which CI has.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("cannot mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func TestFullAndReadOnlyDisk(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   string
	}{
		{name: "full", want: "no space left", break_: func(t *testing.T, dir string) {
			// Fill the filesystem completely.
			f, err := os.Create(filepath.Join(dir, "filler"))
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4096)
			for {
				if _, err := f.Write(buf); err != nil {
					break
				}
			}
			f.Close()
		}},
		{name: "read-only", want: "read-only file system", break_: func(t *testing.T, dir string) {
			if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
				t.Fatalf("cannot remount read-only: %v: %s", err, out)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := mountTmpfs(t, "256k")
			sf := operation.NewStateFile(filepath.Join(dir, "uniter.yaml"))
			r := &fakeRunner{}
			x := newExecutor(t, operation.State{}, sf, &nopLocker{})
			if err := x.Run(t.Context(), hookOp(t, hooks.Install, r)); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(sf.Path())
			tc.break_(t, dir)
			err := x.Run(t.Context(), hookOp(t, hooks.Start, r))
			if err == nil || !strings.Contains(err.Error(), sf.Path()) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run on a %s disk = %v, want an error naming the file and saying %q", tc.name, err, tc.want)
			}
			if len(r.runs) != 1 {
				t.Fatalf("start hook ran although its state could not be written (runs %v)", r.runs)
			}
			after, _ := os.ReadFile(sf.Path())
			if string(before) != string(after) {
				t.Fatalf("previous state damaged:\n%s\nbecame\n%s", before, after)
			}
			if st, _, err := sf.Read(); err != nil || !st.Installed || st.Started {
				t.Fatalf("state after failure = %+v, %v; want installed, not started", st, err)
			}
		})
	}
}
