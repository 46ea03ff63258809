package agentmetrics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// UnixPrefix marks a metrics address that is a unix socket path.
const UnixPrefix = "unix:"

// CheckAddr checks a metrics address without listening: "unix:/abs/path"
// or "HOST:PORT" with a loopback HOST (127.0.0.1, ::1 or localhost). The
// listener has no authentication, so it never listens where another
// machine could reach it; scrape it from the machine (docs/operations.md).
func CheckAddr(addr string) error {
	if path, ok := strings.CutPrefix(addr, UnixPrefix); ok {
		if !filepath.IsAbs(path) {
			return fmt.Errorf("bad metrics address %q: the socket path must be absolute", addr)
		}
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad metrics address %q: want HOST:PORT on a loopback address, or unix:/PATH", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("bad metrics address %q: the metrics listener has no authentication, so it listens on a loopback address or a unix socket only", addr)
	}
	return nil
}

// Listen listens on addr (see CheckAddr). A unix socket's directory is
// made (0700) if it is missing, and must otherwise be a directory of this
// user's that no one else may enter (no group or other permission): only
// this user and root can connect. A stale socket there is replaced; any
// other file is an error.
func Listen(addr string) (net.Listener, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, err
	}
	path, unix := strings.CutPrefix(addr, UnixPrefix)
	if !unix {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("cannot listen for metrics: %w", err)
		}
		return ln, nil
	}
	if err := privateDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("cannot listen for metrics on %s: %w", addr, err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, fmt.Errorf("cannot listen for metrics on %s: %w", addr, err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("cannot listen for metrics: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

// privateDir makes dir (0700) or checks that it is this user's and
// closed to everyone else. It never changes an existing directory's mode:
// the operator chose it, and it may be shared.
func privateDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("directory %s belongs to uid %d, not to this user (%d)", dir, st.Uid, os.Getuid())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("directory %s has mode %04o; the socket's directory must be 0700 (this user only)", dir, perm)
	}
	return nil
}

// removeStaleSocket removes a socket left by an earlier agent.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	return os.Remove(path)
}

// Serve answers GET /metrics on ln until ctx ends (nil) or the listener
// fails. It closes ln.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		srv.Close()
		<-done
		return nil
	case err := <-done:
		return fmt.Errorf("cannot serve metrics: %w", err)
	}
}
