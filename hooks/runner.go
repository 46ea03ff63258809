package hooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/internal/clock"
)

// Defaults for the zero values of Config's durations.
const (
	DefaultTimeout   = time.Hour
	DefaultPipeDrain = 2 * time.Second
)

// Config configures a Runner.
type Config struct {
	// Logger receives hook output and debug events; its zero value
	// discards everything.
	Logger zerolog.Logger
	// Clock arms the hook timeout. Required.
	Clock clock.Clock
	// Timeout bounds one hook run; DefaultTimeout when zero.
	Timeout time.Duration
	// PipeDrain is how long Run waits for stdout and stderr to close after
	// the hook process has exited (a background child may hold them);
	// DefaultPipeDrain when zero. It is real time: os/exec measures it.
	PipeDrain time.Duration
	// PassEnv looks up the agent's LANG, LC_ALL, TZ and proxy variables;
	// os.LookupEnv when nil.
	PassEnv func(string) (string, bool)
}

// Runner runs hook processes. It keeps no per-hook state, so one Runner
// may serve concurrent calls to Run.
type Runner struct {
	log     zerolog.Logger
	clock   clock.Clock
	timeout time.Duration
	drain   time.Duration
	passEnv func(string) (string, bool)
}

// NewRunner validates cfg, fills in defaults and returns a Runner.
func NewRunner(cfg Config) (*Runner, error) {
	switch {
	case cfg.Clock == nil:
		return nil, errors.New("cannot create hook runner: clock is nil")
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("cannot create hook runner: negative timeout %v", cfg.Timeout)
	case cfg.PipeDrain < 0:
		return nil, fmt.Errorf("cannot create hook runner: negative pipe drain %v", cfg.PipeDrain)
	}
	r := &Runner{log: cfg.Logger, clock: cfg.Clock, timeout: cfg.Timeout, drain: cfg.PipeDrain, passEnv: cfg.PassEnv}
	if r.timeout == 0 {
		r.timeout = DefaultTimeout
	}
	if r.drain == 0 {
		r.drain = DefaultPipeDrain
	}
	if r.passEnv == nil {
		r.passEnv = os.LookupEnv
	}
	return r, nil
}

// Run runs the hook p describes and waits for it. It returns nil if the
// hook exited 0; ErrMissing if the charm has no handler for it;
// ErrNotExecutable (wrapped) if the handler cannot be executed; an
// *ExitError if it failed on its own; an error matching ErrTimeout if
// Config.Timeout expired; and, if ctx ended first, an error wrapping
// ctx.Err() and its cause. On timeout or cancellation the hook's whole
// process group is killed with SIGKILL. Children the hook leaves running
// after it exits are not killed (Juju leaves daemons alone), but Run waits
// no more than Config.PipeDrain for them to release its output.
func (r *Runner) Run(ctx context.Context, p Params) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("cannot run hook %q: %w", string(p.Kind), err)
	}
	path, err := findHandler(p.CharmDir, p.Kind)
	if err != nil {
		return fmt.Errorf("cannot run hook %q: %w", string(p.Kind), err)
	}
	log := r.log.With().Str("unit", p.Unit).Str("hook", string(p.Kind)).Logger()
	return r.run(ctx, process{
		what: fmt.Sprintf("hook %q", string(p.Kind)), kind: p.Kind, path: path, args: []string{path},
		dir: p.CharmDir, env: Environ(p, r.passEnv), timeout: r.timeout, log: log,
	})
}

// process is one charm process to run: a hook, an action or a command.
type process struct {
	// what names it in errors: `hook "install"`, `action "greet"`.
	what string
	// kind is the Kind an *ExitError carries.
	kind Kind
	// path is run with argv args (args[0] as given, never resolved).
	path string
	args []string
	dir  string
	env  []string
	// timeout bounds the run.
	timeout time.Duration
	log     zerolog.Logger
	// stdout and stderr, if set, also receive the process's output.
	stdout, stderr io.Writer
}

// run runs proc in its own process group and waits for it.
func (r *Runner) run(ctx context.Context, proc process) error {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stdout := newLogWriter(proc.log, "stdout", zerolog.DebugLevel)
	stderr := newLogWriter(proc.log, "stderr", zerolog.WarnLevel)
	cmd := r.command(runCtx, proc, stdout, stderr)
	if err := cmd.Start(); err != nil {
		return startError(ctx, proc.what, err)
	}
	proc.log.Debug().Str("path", proc.path).Int("pid", cmd.Process.Pid).Msg("started hook process")
	stopTimer := r.armTimeout(proc.what, proc.timeout, cancel)
	waitErr := cmd.Wait()
	stopTimer()
	stdout.Flush()
	stderr.Flush()
	return r.result(ctx, runCtx, proc, cmd.ProcessState, waitErr)
}

// command builds the process: fresh environment, its working directory,
// own process group, group killed on cancellation.
func (r *Runner) command(ctx context.Context, proc process, stdout, stderr *lineWriter) *exec.Cmd {
	cmd := exec.CommandContext(ctx, proc.path)
	cmd.Args = proc.args // argv[0] as given, never resolved
	cmd.Dir = proc.dir
	cmd.Env = proc.env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if proc.stdout != nil {
		cmd.Stdout = io.MultiWriter(stdout, proc.stdout)
	}
	if proc.stderr != nil {
		cmd.Stderr = io.MultiWriter(stderr, proc.stderr)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = r.drain
	return cmd
}

// armTimeout cancels the hook's context with a timeoutError once the
// timeout has elapsed on the Runner's clock. The returned stop disarms it
// and returns only when its goroutine has ended.
func (r *Runner) armTimeout(what string, timeout time.Duration, cancel context.CancelCauseFunc) (stop func()) {
	timer := r.clock.NewTimer(timeout)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-timer.Chan():
			cancel(&timeoutError{what: what, after: timeout})
		case <-done:
		}
	}()
	return func() {
		timer.Stop()
		close(done)
		<-exited
	}
}

// killGroup sends SIGKILL to the process group led by proc, unless proc
// has already been waited for (then its group id may be reused).
func killGroup(proc *os.Process) error {
	if err := proc.Signal(syscall.Signal(0)); errors.Is(err, os.ErrProcessDone) {
		return os.ErrProcessDone
	}
	err := syscall.Kill(-proc.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// startError explains why the process could not start.
func startError(ctx context.Context, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return cancelError(ctx, what)
	case errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cannot run %s: %w: %w", what, ErrNotExecutable, err)
	}
	return fmt.Errorf("cannot start %s: %w", what, err)
}

// result turns the end of the hook process into Run's error.
func (r *Runner) result(ctx, runCtx context.Context, proc process, state *os.ProcessState, waitErr error) error {
	if state != nil && state.Success() {
		// It finished on its own; a cancellation racing with its exit
		// does not undo what it did.
		if errors.Is(waitErr, exec.ErrWaitDelay) {
			proc.log.Debug().Dur("pipe_drain", r.drain).Msg("hook left its output open after exiting")
		}
		return nil
	}
	if runCtx.Err() != nil {
		var timeout *timeoutError
		if errors.As(context.Cause(runCtx), &timeout) {
			return timeout
		}
		return cancelError(ctx, proc.what)
	}
	if state == nil {
		return fmt.Errorf("cannot run %s: %w", proc.what, waitErr)
	}
	return exitError(proc.kind, state)
}

// cancelError reports that ctx ended the hook, wrapping ctx.Err() and its
// cause when they differ.
func cancelError(ctx context.Context, what string) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause == nil || cause == err {
		return fmt.Errorf("cannot run %s: %w", what, err)
	}
	return fmt.Errorf("cannot run %s: %w: %w", what, err, cause)
}

// exitError describes an unsuccessful exit.
func exitError(kind Kind, state *os.ProcessState) *ExitError {
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &ExitError{Kind: kind, Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return &ExitError{Kind: kind, Code: state.ExitCode()}
}
