package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/operation"
	"github.com/uniter-dev/uniter/remotestate"
)

// fakeOpsAPI is an OperationAPI answering from ops by id, failing the
// first failFinish finishes with finishErr.
type fakeOpsAPI struct {
	mu         sync.Mutex
	ops        map[string]api.Operation
	startErr   error
	abortErr   error
	finishErrs []error // returned by the next finishes, in order
	finishes   []string
	aborts     []string
}

func (f *fakeOpsAPI) StartOperation(_ context.Context, id string) (api.Operation, error) {
	if f.startErr != nil {
		return api.Operation{}, f.startErr
	}
	return f.ops[id], nil
}

func (f *fakeOpsAPI) LogOperation(context.Context, string, int, string) error { return nil }

func (f *fakeOpsAPI) FinishOperation(_ context.Context, id, status, message string, results map[string]any) (api.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.finishErrs) > 0 {
		err := f.finishErrs[0]
		f.finishErrs = f.finishErrs[1:]
		if err != nil {
			return api.Operation{}, err
		}
	}
	r, _ := json.Marshal(results)
	f.finishes = append(f.finishes, fmt.Sprintf("%s %s %q %s", id, status, message, r))
	return api.Operation{}, nil
}

func (f *fakeOpsAPI) AbortOperation(_ context.Context, id, message string) (api.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.abortErr != nil {
		return api.Operation{}, f.abortErr
	}
	f.aborts = append(f.aborts, id+" "+message)
	return api.Operation{}, nil
}

// fakeProcs answers RunAction and RunCommand with out and err, and
// records what it was asked to run.
type fakeProcs struct {
	out   hooks.Output
	err   error
	asked []string
}

func (f *fakeProcs) RunAction(_ context.Context, a hooks.Action) (hooks.Output, error) {
	f.asked = append(f.asked, "action "+a.Name+" "+a.ID)
	return f.out, f.err
}

func (f *fakeProcs) RunCommand(_ context.Context, c hooks.Command) (hooks.Output, error) {
	f.asked = append(f.asked, fmt.Sprintf("command %q %v", c.Command, c.Timeout))
	return f.out, f.err
}

func newTestOps(a *fakeOpsAPI, p *fakeProcs) *controllerOps {
	cfg := Config{Unit: "app/0", CharmDir: "/charm"}
	return &controllerOps{api: a, runner: p, unit: "app/0", clock: clocktest.New(time.Unix(0, 0)), log: zerolog.Nop(),
		contexts: &hookContexts{agentDir: "/agent", cfg: cfg, app: "app"}}
}

// runOp runs operation ref to its end through an executor.
func runOp(t *testing.T, o *controllerOps, ref remotestate.Operation) (operation.State, error) {
	t.Helper()
	x, err := operation.NewExecutor(operation.ExecutorConfig{Writer: discard{}, Locker: noLock{}, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	err = x.Run(t.Context(), o.New(ref, operation.HookInfo{}))
	return x.State(), err
}

type discard struct{}

func (discard) Write(operation.State) error { return nil }

type noLock struct{}

func (noLock) Acquire(context.Context, string) (func(), error) { return func() {}, nil }

func TestOperationResults(t *testing.T) {
	greet := api.Operation{ID: "4", Kind: api.OperationAction, Action: "greet", Params: json.RawMessage(`{"name":"x"}`)}
	exec := api.Operation{ID: "5", Kind: api.OperationExec, Command: "is-leader", Timeout: "2s"}
	big := strings.Repeat("x", hooks.MaxCapturedBytes)
	ctrl := string(rune(1))
	for _, tc := range []struct {
		name      string
		op        api.Operation
		out       hooks.Output
		err       error
		wantAsked string
		want      string
	}{
		{name: "action exits 0", op: greet, out: hooks.Output{Stdout: []byte("hi\n")},
			wantAsked: "action greet 4", want: `4 completed "" {"return-code":0,"stdout":"hi\n"}`},
		{name: "action exits 3", op: greet, out: hooks.Output{Stderr: []byte("oops\n")}, err: &hooks.ExitError{Code: 3},
			wantAsked: "action greet 4", want: `4 failed "exit status 3" {"return-code":3,"stderr":"oops\n"}`},
		{name: "action missing", op: greet, err: fmt.Errorf("cannot run: %w", hooks.ErrMissing),
			wantAsked: "action greet 4", want: `4 failed "action not implemented on unit \"app/0\"" {}`},
		{name: "action timed out", op: greet, err: errors.New("cannot run action \"greet\": timed out after 1h0m0s"),
			wantAsked: "action greet 4", want: `4 failed "cannot run action \"greet\": timed out after 1h0m0s" {}`},
		{name: "binary output is base64", op: greet, out: hooks.Output{Stdout: []byte{0xff, 0xfe}},
			wantAsked: "action greet 4", want: `4 completed "" {"return-code":0,"stdout":"//4=","stdout-encoding":"base64"}`},
		{name: "exec exits 1: completed", op: exec, out: hooks.Output{Stdout: []byte("False\n")}, err: &hooks.ExitError{Code: 1},
			wantAsked: `command "is-leader" 2s`, want: `5 completed "" {"return-code":1,"stdout":"False\n"}`},
		{name: "exec timed out: failed", op: exec, out: hooks.Output{Stdout: []byte("partial")}, err: errors.New("cannot run command: timed out after 2s"),
			wantAsked: `command "is-leader" 2s`, want: `5 failed "cannot run command: timed out after 2s" {"stdout":"partial"}`},
		{name: "output cut to fit the results", op: exec,
			out:       hooks.Output{Stdout: []byte(strings.Repeat(ctrl, hooks.MaxCapturedBytes)), Stderr: []byte(big)},
			wantAsked: `command "is-leader" 2s`,
			want:      `5 completed "" {"return-code":0,"stderr":"` + big[:8192] + `","stdout":"` + strings.Repeat(`\u0001`, 8192) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &fakeOpsAPI{ops: map[string]api.Operation{tc.op.ID: tc.op}}
			p := &fakeProcs{out: tc.out, err: tc.err}
			ref := remotestate.Operation{ID: tc.op.ID, Kind: tc.op.Kind, Action: tc.op.Action, Status: "pending"}
			st, err := runOp(t, newTestOps(a, p), ref)
			if err != nil || st.Op != nil {
				t.Fatalf("Run = %v, state op %+v", err, st.Op)
			}
			if d := cmp.Diff([]string{tc.wantAsked}, p.asked); d != "" {
				t.Errorf("ran (-want +got):\n%s", d)
			}
			if len(a.finishes) != 1 || a.finishes[0] != tc.want {
				got := strings.Join(a.finishes, "\n")
				t.Errorf("finished:\n%.300s\nwant\n%.300s", got, tc.want)
			}
		})
	}
}

func TestOperationReportsToTheController(t *testing.T) {
	greet := api.Operation{ID: "4", Kind: api.OperationAction, Action: "greet"}
	ref := remotestate.Operation{ID: "4", Kind: "action", Action: "greet", Status: "pending"}

	// Cancelled before the agent started it: skipped, nothing runs.
	a, p := &fakeOpsAPI{ops: map[string]api.Operation{"4": greet}, startErr: fmt.Errorf("cannot start: %w", api.ErrOperationStatus)}, &fakeProcs{}
	if _, err := runOp(t, newTestOps(a, p), ref); err != nil || len(p.asked) != 0 || len(a.finishes) != 0 {
		t.Errorf("cancelled operation: %v, ran %v, finished %v", err, p.asked, a.finishes)
	}
	// An unreachable controller at the start: ErrStart, nothing recorded.
	a.startErr = client.ErrUnreachable
	if st, err := runOp(t, newTestOps(a, p), ref); !errors.Is(err, operation.ErrStart) || st.Op != nil {
		t.Errorf("unreachable at start: %v, state %+v", err, st.Op)
	}
	// Results the controller refuses as too large: failed without them.
	a = &fakeOpsAPI{ops: map[string]api.Operation{"4": greet}, finishErrs: []error{fmt.Errorf("results: %w", api.ErrLimitExceeded)}}
	if _, err := runOp(t, newTestOps(a, &fakeProcs{}), ref); err != nil {
		t.Fatal(err)
	}
	if want := []string{`4 failed "results refused by the controller: results: api: over a state limit" null`}; !cmp.Equal(want, a.finishes) {
		t.Errorf("finishes %q, want %q", a.finishes, want)
	}
	// A finish that cannot reach the controller is retried on the clock.
	a = &fakeOpsAPI{ops: map[string]api.Operation{"4": greet}, finishErrs: []error{client.ErrUnreachable, client.ErrUnavailable}}
	o := newTestOps(a, &fakeProcs{})
	clk := o.clock.(*clocktest.Clock)
	done := make(chan error, 1)
	go func() { _, err := runOp(t, o, ref); done <- err }()
	for _, d := range []time.Duration{time.Second, 2 * time.Second} {
		if err := clk.WaitForWaiters(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		clk.Advance(d)
	}
	if err := <-done; err != nil || len(a.finishes) != 1 {
		t.Errorf("retried finish: %v, finishes %v", err, a.finishes)
	}
	// Abort of an operation already ended is not an error.
	a = &fakeOpsAPI{abortErr: fmt.Errorf("abort: %w", api.ErrOperationStatus)}
	if err := newTestOps(a, &fakeProcs{}).Abort(t.Context(), ref, AbortMessage); err != nil {
		t.Errorf("abort of an ended operation: %v", err)
	}
	a.abortErr = nil
	if err := newTestOps(a, &fakeProcs{}).Abort(t.Context(), ref, AbortMessage); err != nil || len(a.aborts) != 1 {
		t.Errorf("abort: %v %v", err, a.aborts)
	}
}
