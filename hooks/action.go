package hooks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxCapturedBytes bounds each stream of an action's or a command's output
// kept for its results; what comes after is still logged, line by line,
// like hook output, but not kept.
const MaxCapturedBytes = 16 << 10

// Action describes one run of a charm action (HOOK-TOOLS.md §6): the
// charm's executable dispatch with JUJU_DISPATCH_PATH=actions/<name>,
// else actions/<name> run by that path, in the charm directory, with the
// hook environment plus JUJU_ACTION_NAME, JUJU_ACTION_UUID and
// JUJU_ACTION_TAG, and JUJU_HOOK_NAME empty (as Juju leaves it).
type Action struct {
	// Params is the environment; its Kind is not used.
	Params
	// Name is the action's name (actions.yaml); ID its operation id,
	// which becomes JUJU_ACTION_UUID.
	Name, ID string
}

// Command describes one exec: a command line run by a shell in a hook
// context, with the hook environment but no hook or dispatch path.
type Command struct {
	// Params is the environment; its Kind is not used.
	Params
	// Command is run by /bin/bash -c (/bin/sh -c where there is no bash,
	// which is what Juju's exec runs it with).
	Command string
	// ID names the exec in logs.
	ID string
	// Timeout bounds the run; the Runner's hook timeout when zero.
	Timeout time.Duration
}

// Output is what an action or a command wrote, each stream kept up to
// MaxCapturedBytes; Truncated says a stream went on beyond that.
type Output struct {
	Stdout, Stderr                   []byte
	StdoutTruncated, StderrTruncated bool
}

// actionNameRE is Juju's rule for action names (charm.ValidActionName):
// a path component, never "." or "..".
var actionNameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`)

// RunAction runs action a and waits for it. Its errors are Run's: nil
// for exit 0, ErrMissing when the charm has neither dispatch nor
// actions/<name>, an *ExitError (Kind empty) for a failure, ErrTimeout
// after the hook timeout, a cancellation when ctx ends. Output is what
// the action printed, whatever the error.
func (r *Runner) RunAction(ctx context.Context, a Action) (Output, error) {
	what := fmt.Sprintf("action %q", a.Name)
	if !actionNameRE.MatchString(a.Name) {
		return Output{}, fmt.Errorf("cannot run %s: invalid action name", what)
	}
	if err := a.validateEnv(); err != nil {
		return Output{}, fmt.Errorf("cannot run %s: %w", what, err)
	}
	path, err := findHandlerIn(a.CharmDir, "actions", a.Name)
	if err != nil {
		return Output{}, fmt.Errorf("cannot run %s: %w", what, err)
	}
	env := setEnv(Environ(a.Params, r.passEnv), map[string]string{
		"JUJU_HOOK_NAME":     "",
		"JUJU_DISPATCH_PATH": "actions/" + a.Name,
		"JUJU_ACTION_NAME":   a.Name,
		"JUJU_ACTION_UUID":   a.ID,
		"JUJU_ACTION_TAG":    "action-" + a.ID,
	})
	log := r.log.With().Str("unit", a.Unit).Str("action", a.Name).Str("operation", a.ID).Logger()
	out := newCapture()
	err = r.run(ctx, process{what: what, path: path, args: []string{path}, dir: a.CharmDir, env: env,
		timeout: r.timeout, log: log, stdout: out.stdout, stderr: out.stderr})
	return out.output(), err
}

// RunCommand runs the exec c and waits for it, as RunAction does; its
// exit status is in an *ExitError.
func (r *Runner) RunCommand(ctx context.Context, c Command) (Output, error) {
	const what = "command"
	if c.Command == "" {
		return Output{}, fmt.Errorf("cannot run %s: empty command", what)
	}
	if err := c.validateEnv(); err != nil {
		return Output{}, fmt.Errorf("cannot run %s: %w", what, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = r.timeout
	}
	env := slices.DeleteFunc(setEnv(Environ(c.Params, r.passEnv), map[string]string{"JUJU_HOOK_NAME": ""}),
		func(kv string) bool { return strings.HasPrefix(kv, "JUJU_DISPATCH_PATH=") })
	shell := shellPath()
	log := r.log.With().Str("unit", c.Unit).Str("exec", c.ID).Logger()
	out := newCapture()
	err := r.run(ctx, process{what: what, path: shell, args: []string{shell, "-c", c.Command}, dir: c.CharmDir,
		env: env, timeout: timeout, log: log, stdout: out.stdout, stderr: out.stderr})
	return out.output(), err
}

// shellPath is the shell an exec runs in: bash, as in Juju, else sh.
func shellPath() string {
	if fi, err := os.Stat("/bin/bash"); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return "/bin/bash"
	}
	return "/bin/sh"
}

// setEnv sets the variables of vars in the sorted environment env,
// replacing any already there, and sorts it again.
func setEnv(env []string, vars map[string]string) []string {
	env = slices.DeleteFunc(env, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		_, ok := vars[k]
		return ok
	})
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// capture keeps the first MaxCapturedBytes of each stream.
type capture struct {
	stdout, stderr *boundedBuffer
}

func newCapture() capture {
	return capture{stdout: &boundedBuffer{max: MaxCapturedBytes}, stderr: &boundedBuffer{max: MaxCapturedBytes}}
}

func (c capture) output() Output {
	o := Output{}
	o.Stdout, o.StdoutTruncated = c.stdout.bytes()
	o.Stderr, o.StderrTruncated = c.stderr.bytes()
	return o
}

// boundedBuffer is an io.Writer keeping the first max bytes written to
// it; it never fails. os/exec may write to it from its copying goroutine
// while bytes is called after Wait, hence the lock.
type boundedBuffer struct {
	mu        sync.Mutex
	max       int
	buf       []byte
	truncated bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if len(p) > room {
		b.truncated = true
		b.buf = append(b.buf, p[:max(room, 0)]...)
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *boundedBuffer) bytes() ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.buf), b.truncated
}

// ExitCode returns the exit status an error of RunAction or RunCommand
// carries (128+signal for a killed process), and whether it carries one.
func ExitCode(err error) (int, bool) {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code, true
	}
	return 0, err == nil
}
