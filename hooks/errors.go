package hooks

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

var (
	// ErrMissing means the charm has no handler for the hook: neither an
	// executable dispatch nor hooks/<kind>. Callers log
	// "skipped hook (missing)" and treat the hook as having succeeded.
	ErrMissing = errors.New("hooks: hook missing")

	// ErrNotExecutable means a handler exists but cannot be executed
	// (no execute bit, not a regular file, a dangling symlink, or the
	// kernel refused it, e.g. a script without a #! line). The error's
	// text names the file.
	ErrNotExecutable = errors.New("hooks: handler not executable")

	// ErrTimeout means the hook ran longer than Config.Timeout and its
	// process group was killed.
	ErrTimeout = errors.New("hooks: timed out")
)

// ExitError reports a hook process that ended unsuccessfully on its own
// (not because Run killed it). Match it with errors.As.
type ExitError struct {
	// Kind is the hook that failed; empty for an action or a command.
	Kind Kind
	// Code is the exit status, or 128+signal if a signal killed the
	// process (the shell convention).
	Code int
	// Signal is the signal that killed the process, or 0 if it exited.
	Signal syscall.Signal
}

// Error reports the hook and its exit status.
func (e *ExitError) Error() string {
	if e.Kind == "" { // an action or a command
		if e.Signal != 0 {
			return fmt.Sprintf("killed by signal %d (%v)", int(e.Signal), e.Signal)
		}
		return fmt.Sprintf("exit status %d", e.Code)
	}
	if e.Signal != 0 {
		return fmt.Sprintf("hook %q was killed by signal %d (%v)", string(e.Kind), int(e.Signal), e.Signal)
	}
	return fmt.Sprintf("hook %q exited with code %d", string(e.Kind), e.Code)
}

// timeoutError is returned when Config.Timeout expired; it matches
// ErrTimeout.
type timeoutError struct {
	what  string // `hook "install"`
	after time.Duration
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("cannot run %s: timed out after %v", e.what, e.after)
}

func (e *timeoutError) Is(target error) bool { return target == ErrTimeout }
