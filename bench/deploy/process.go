// Package deploy runs the real processes the benchmarks measure: the
// uniter binary built for the run, `uniter controller` nodes (one or a
// cluster), units registered with `uniter unit add` and their
// `uniter agent` processes.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Env is where a benchmark's processes live: the binary, and a directory
// of its own that holds their data, their output and $UNITER_HOME.
type Env struct {
	Bin string
	Dir string
}

// Home is the $UNITER_HOME of every process of env (its machine lock).
func (e Env) Home() string { return filepath.Join(e.Dir, "home") }

// environ is the harness's environment with UNITER_HOME set to Home and
// no client config inherited from the caller.
func (e Env) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "UNITER_HOME=") || strings.HasPrefix(kv, "UNITER_CLIENT_CONFIG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "UNITER_HOME="+e.Home())
}

// Build builds the uniter binary of the module at root into dir, with
// uniter-hooktools beside it (the agents point their tools at it), static
// (CGO_ENABLED=0) as `make build` does, and returns the uniter binary's
// path.
func Build(ctx context.Context, root, dir string) (string, error) {
	// A directory as -o: each command is built into it under its own name.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/uniter", "./cmd/uniter-hooktools")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cannot build uniter: %w\n%s", err, out)
	}
	return filepath.Join(dir, "uniter"), nil
}

// Process is a child process of the harness.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts bin with args in env, its output appended to outPath.
func Start(env Env, name, outPath string, bin string, args ...string) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", name, err)
	}
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env.environ()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("cannot start %s: %w", name, err)
	}
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = cmd.Wait()
		out.Close()
	}()
	return p, nil
}

// PID is the process's id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Alive reports whether the process is still running.
func (p *Process) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to timeout, then kills.
func (p *Process) Stop(timeout time.Duration) {
	if !p.Alive() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
	}
}

// Err is why the process exited (after Exited is closed).
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Poll calls ok every interval until it returns true, an error, or
// timeout passes (then the last error, or one naming what).
func Poll(ctx context.Context, what string, timeout, interval time.Duration, ok func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		done, err := ok()
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("cannot %s within %v: %w", what, timeout, last)
			}
			return fmt.Errorf("cannot %s within %v: %w", what, timeout, context.Cause(ctx))
		case <-time.After(interval):
		}
	}
}

// HasFlag reports whether `bin args... --help` mentions flag.
func HasFlag(ctx context.Context, bin, flag string, args ...string) bool {
	out, err := exec.CommandContext(ctx, bin, append(args, "--help")...).CombinedOutput()
	return err == nil && strings.Contains(string(out), flag)
}

// errExited is the error of a process that died while awaited.
var errExited = errors.New("process exited")
