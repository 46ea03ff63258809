package hooktools

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/uniter-dev/uniter/internal/clock"
)

// Limits bound what one tool call may cost the server. Zero fields take
// the defaults.
type Limits struct {
	// MaxArgsBytes bounds the total size of a call's arguments
	// (DefaultMaxArgsBytes, 1 MiB).
	MaxArgsBytes int64
	// MaxStdinBytes bounds the stdin a call sends (DefaultMaxStdinBytes,
	// 16 MiB).
	MaxStdinBytes int64
	// MaxFrameBytes bounds one request frame (DefaultMaxFrameBytes,
	// 32 MiB).
	MaxFrameBytes int64
	// IOTimeout bounds reading a request and, separately, writing its
	// response, so an idle or stuck client cannot pin a goroutine
	// (DefaultIOTimeout).
	IOTimeout time.Duration
	// CloseTimeout bounds how long Close waits for calls in flight
	// (DefaultCloseTimeout).
	CloseTimeout time.Duration
}

// Default timeouts; see Limits.
const (
	DefaultIOTimeout    = 30 * time.Second
	DefaultCloseTimeout = 5 * time.Second
)

func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxArgsBytes, DefaultMaxArgsBytes)
	def(&l.MaxStdinBytes, DefaultMaxStdinBytes)
	def(&l.MaxFrameBytes, DefaultMaxFrameBytes)
	if l.IOTimeout == 0 {
		l.IOTimeout = DefaultIOTimeout
	}
	if l.CloseTimeout == 0 {
		l.CloseTimeout = DefaultCloseTimeout
	}
	return l
}

// ServerConfig configures NewServer.
type ServerConfig struct {
	// SocketPath is where the server listens (JUJU_AGENT_SOCKET_ADDRESS).
	// Its directory is created if needed and always made mode 0700.
	SocketPath string
	// Logger receives the server's events and juju-log messages; its zero
	// value discards everything. The server adds the unit and hook fields
	// to each call's entries itself, so give it a logger without them.
	Logger zerolog.Logger
	// Clock sets the connection deadlines and times calls. Required.
	Clock clock.Clock
	// Limits bound each call; zero fields take the defaults.
	Limits Limits
	// Observer, if set, is told every answer is-leader gives.
	Observer Observer

	// allowedUIDs replaces the server's own uid as the peers it serves;
	// set only by tests (export_test.go).
	allowedUIDs []uint32
}

// Observer is told what the hook tools answer. It is called while a
// tool call is served: its methods must return at once.
type Observer interface {
	// IsLeaderAnswered is told each answer is-leader printed (an
	// is-leader that failed printed none).
	IsLeaderAnswered(leader bool)
}

type nopObserver struct{}

func (nopObserver) IsLeaderAnswered(bool) {}

// Server serves hook-tool calls on a unix socket. It accepts in one
// goroutine and serves each connection in its own.
type Server struct {
	log     zerolog.Logger
	clock   clock.Clock
	limits  Limits
	path    string
	allowed []uint32
	ln      *net.UnixListener
	obs     Observer

	ctx    context.Context // ends when Close starts
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection

	mu       sync.Mutex
	closed   bool
	contexts map[string]*hookState
	conns    map[net.Conn]struct{}
}

// NewServer validates cfg, prepares the socket's directory (mode 0700),
// removes a stale socket file, listens and starts accepting.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cannot start hook-tool server: %w", err)
	}
	ln, err := listen(cfg.SocketPath)
	if err != nil {
		return nil, fmt.Errorf("cannot start hook-tool server: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		log: cfg.Logger, clock: cfg.Clock, limits: cfg.Limits.withDefaults(),
		path: cfg.SocketPath, allowed: cfg.allowedUIDs, ln: ln, obs: cfg.Observer,
		ctx: ctx, cancel: cancel,
		contexts: map[string]*hookState{}, conns: map[net.Conn]struct{}{},
	}
	if s.allowed == nil {
		s.allowed = []uint32{uint32(os.Getuid())}
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	s.wg.Add(1)
	go s.acceptLoop()
	s.log.Debug().Str("socket", s.path).Msg("hook-tool server started")
	return s, nil
}

func (cfg *ServerConfig) validate() error {
	l := cfg.Limits
	switch {
	case cfg.SocketPath == "":
		return errors.New("socket path is empty")
	case !filepath.IsAbs(cfg.SocketPath):
		return fmt.Errorf("socket path %q is not absolute", cfg.SocketPath)
	case cfg.Clock == nil:
		return errors.New("clock is nil")
	case l.MaxArgsBytes < 0 || l.MaxStdinBytes < 0 || l.MaxFrameBytes < 0 || l.IOTimeout < 0 || l.CloseTimeout < 0:
		return errors.New("negative limit")
	case l.MaxFrameBytes > 1<<32-1:
		return fmt.Errorf("frame limit %d does not fit the 4-byte frame header", l.MaxFrameBytes)
	}
	return nil
}

// listen makes the socket's directory private and listens on a fresh
// socket there.
func listen(path string) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// MkdirAll keeps an existing directory's mode: force it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

// removeStaleSocket removes a socket left by a previous agent; any other
// kind of file there is an error rather than something to delete.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode()&os.ModeSocket == 0:
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	return os.Remove(path)
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting, ends calls in flight (a call still reading its
// request is cut off; a call being served sees its context end and
// answers) and waits for them for at most Limits.CloseTimeout. Registered contexts are dropped.
// Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.contexts = map[string]*hookState{}
	// Calls still reading their request end now; calls being served see
	// s.ctx end and answer.
	for c := range s.conns {
		c.SetReadDeadline(s.clock.Now())
	}
	s.mu.Unlock()
	s.cancel()
	err := s.ln.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-s.clock.After(s.limits.CloseTimeout):
		return fmt.Errorf("cannot close hook-tool server: calls still running after %v", s.limits.CloseTimeout)
	}
	if err != nil {
		return fmt.Errorf("cannot close hook-tool server: %w", err)
	}
	s.log.Debug().Str("socket", s.path).Msg("hook-tool server stopped")
	return nil
}

// acceptLoop accepts until Close. An accept error other than the
// listener closing (running out of file descriptors, say) is retried
// with a backoff of 5 ms doubling to 1 s, so the server outlives it.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error().Err(err).Dur("retry_in", backoff).Msg("cannot accept hook tool connection")
			select {
			case <-s.clock.After(backoff):
				continue
			case <-s.ctx.Done():
				return
			}
		}
		backoff = 0
		if !s.track(conn) {
			conn.Close()
			return
		}
		go s.serve(conn)
	}
}

// track registers a new connection and arms its read deadline, under the
// lock so that Close's deadline always wins; false once Close has begun.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	c.SetReadDeadline(s.clock.Now().Add(s.limits.IOTimeout))
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
	s.wg.Done()
}

// peerUID returns the uid of the process at the other end of c.
func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, credErr
	}
	return cred.Uid, nil
}
