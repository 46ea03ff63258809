package operation_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/operation"
)

// fakeWork is an OperationWork with scripted answers that counts calls.
type fakeWork struct {
	startErr, runErr, finishErr error
	result                      operation.OperationResult
	starts, runs                int
	finished                    []operation.OperationResult
}

func (f *fakeWork) Start(context.Context) error { f.starts++; return f.startErr }

func (f *fakeWork) Run(context.Context) (operation.OperationResult, error) {
	f.runs++
	return f.result, f.runErr
}

func (f *fakeWork) Finish(_ context.Context, res operation.OperationResult) error {
	if f.finishErr != nil {
		return f.finishErr
	}
	f.finished = append(f.finished, res)
	return nil
}

var greet = operation.OperationInfo{ID: "12", Action: "greet"}

func actionOp(w *fakeWork) operation.Operation {
	return operation.NewRunOperation(operation.RunAction, greet, w, zerolog.Nop())
}

func TestRunOperationSteps(t *testing.T) {
	failedHook := operation.HookInfo{Kind: hooks.ConfigChanged, ConfigVersion: 4}
	inError := operation.State{Installed: true,
		Op:    &operation.Op{Kind: operation.RunHook, Step: operation.Pending, Hook: failedHook},
		Error: &operation.HookError{Hook: hooks.ConfigChanged, Info: failedHook, Attempts: 2}}
	completed := operation.OperationResult{Status: operation.StatusCompleted, Results: `{"greeting":"hi"}`}
	failed := operation.OperationResult{Status: operation.StatusFailed, Message: "exit status 1"}
	for _, tc := range []struct {
		name         string
		start        operation.State
		work         fakeWork
		wantErr      string
		wantSteps    []string
		wantStarts   int
		wantRuns     int
		wantFinished []operation.OperationResult
		check        func(t *testing.T, st operation.State)
	}{
		{name: "completes", work: fakeWork{result: completed}, wantSteps: []string{"pending", "done", "none"},
			wantStarts: 1, wantRuns: 1, wantFinished: []operation.OperationResult{completed}},
		{name: "a failed action leaves the error state as it was", start: inError, work: fakeWork{result: failed},
			wantSteps: []string{"pending", "done", "none"}, wantStarts: 1, wantRuns: 1, wantFinished: []operation.OperationResult{failed},
			check: func(t *testing.T, st operation.State) {
				if st.Error == nil || st.Error.Attempts != 2 || st.Error.Info != failedHook || st.Op != nil {
					t.Errorf("error state after the action: %+v, op %+v", st.Error, st.Op)
				}
			}},
		{name: "cancelled before it started", work: fakeWork{startErr: operation.ErrSkip}, wantSteps: []string{"none"},
			wantStarts: 1},
		{name: "controller refuses the start", work: fakeWork{startErr: errors.New("no route")}, wantErr: "cannot start operation 12: no route",
			wantStarts: 1},
		{name: "interrupted run stays pending", work: fakeWork{runErr: context.Canceled}, wantErr: "cannot run operation 12",
			wantSteps: []string{"pending"}, wantStarts: 1, wantRuns: 1,
			check: func(t *testing.T, st operation.State) {
				if st.Op == nil || st.Op.Kind != operation.RunAction || st.Op.Step != operation.Pending || st.Op.Operation.ID != "12" {
					t.Errorf("state after an interrupted run: %+v", st.Op)
				}
			}},
		{name: "result kept until reported", work: fakeWork{result: completed, finishErr: errors.New("controller down")},
			wantErr: "cannot report operation 12: controller down", wantSteps: []string{"pending", "done"}, wantStarts: 1, wantRuns: 1,
			check: func(t *testing.T, st operation.State) {
				if st.Op == nil || st.Op.Step != operation.Done || *st.Op.Operation.Result != completed {
					t.Errorf("state after a failed report: %+v", st.Op)
				}
			}},
		{name: "done only reports", start: operation.State{Op: &operation.Op{Kind: operation.RunAction, Step: operation.Done,
			Operation: &operation.OperationInfo{ID: "12", Action: "greet", Result: &failed}}},
			wantSteps: []string{"none"}, wantFinished: []operation.OperationResult{failed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, l := &recorder{}, &nopLocker{}
			x := newExecutor(t, tc.start, w, l)
			err := x.Run(t.Context(), actionOp(&tc.work))
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Run = %v, want %q", err, tc.wantErr)
			}
			if started := strings.HasPrefix(tc.wantErr, "cannot start"); errors.Is(err, operation.ErrStart) != started {
				t.Errorf("Run = %v: matches ErrStart %v, want %v", err, !started, started)
			}
			if d := cmp.Diff(tc.wantSteps, w.steps()); d != "" {
				t.Errorf("steps written (-want +got):\n%s", d)
			}
			if tc.work.starts != tc.wantStarts || tc.work.runs != tc.wantRuns {
				t.Errorf("started %d ran %d, want %d %d", tc.work.starts, tc.work.runs, tc.wantStarts, tc.wantRuns)
			}
			if d := cmp.Diff(tc.wantFinished, tc.work.finished); d != "" {
				t.Errorf("reported (-want +got):\n%s", d)
			}
			if l.held != 1 || l.released != 1 {
				t.Errorf("machine lock held %d released %d, want 1/1", l.held, l.released)
			}
			if tc.check != nil {
				tc.check(t, x.State())
			}
		})
	}
}

func TestRunOperationStateFileRoundTrip(t *testing.T) {
	f := operation.NewStateFile(filepath.Join(t.TempDir(), "uniter.yaml"))
	for _, op := range []*operation.Op{
		{Kind: operation.RunAction, Step: operation.Pending, Operation: &operation.OperationInfo{ID: "3", Action: "greet"}},
		{Kind: operation.RunExec, Step: operation.Done, Operation: &operation.OperationInfo{ID: "4",
			Result: &operation.OperationResult{Status: operation.StatusCompleted, Results: `{"return-code":0,"stdout":"True\n"}`}}},
	} {
		want := operation.State{Version: operation.CurrentVersion, Installed: true, Op: op}
		if err := f.Write(want); err != nil {
			t.Fatal(err)
		}
		got, _, err := f.Read()
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("round trip (-want +got):\n%s", d)
		}
	}
	for _, bad := range []struct {
		op   operation.Op
		want string
	}{
		{operation.Op{Kind: operation.RunAction, Step: operation.Pending}, "without its operation"},
		{operation.Op{Kind: operation.RunAction, Step: operation.Pending, Operation: &operation.OperationInfo{ID: "07", Action: "a"}}, "invalid id"},
		{operation.Op{Kind: operation.RunAction, Step: operation.Pending, Operation: &operation.OperationInfo{ID: "7"}}, "no action"},
		{operation.Op{Kind: operation.RunExec, Step: operation.Done, Operation: &operation.OperationInfo{ID: "7"}}, "done without a result"},
		{operation.Op{Kind: operation.RunExec, Step: operation.Done, Operation: &operation.OperationInfo{ID: "7",
			Result: &operation.OperationResult{Status: "fine"}}}, "unknown status"},
	} {
		op := bad.op
		if err := f.Write(operation.State{Op: &op}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Write(%+v) = %v, want %q", bad.op, err, bad.want)
		}
	}
}
