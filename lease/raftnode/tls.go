package raftnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"
)

// handshakeTimeout bounds the TLS handshake of a raft connection, either
// way: a peer that connects and says nothing holds no goroutine longer.
const handshakeTimeout = 10 * time.Second

// maxHandshakes bounds the handshakes under way at once: a flood of
// connections (a port scan, a misconfigured peer in a loop) waits in the
// kernel's accept queue instead of costing a goroutine each.
const maxHandshakes = 64

// refusalLogEvery spaces the warnings about refused raft connections: the
// first is logged at once, the next no sooner than this, saying how many
// were refused in between.
const refusalLogEvery = time.Minute

// tlsStream is raft's stream layer over mutual TLS: it accepts only
// connections whose client presents a certificate the cluster CA issued
// (the TLS configuration's ClientCAs, RequireAndVerifyClientCert), and
// dials peers presenting this node's certificate and verifying theirs.
// The handshake of an accepted connection completes before raft sees it:
// a connection without a node certificate never reaches raft's decoder.
//
// One goroutine accepts TCP connections; each handshake runs in its own
// goroutine (a slow peer does not hold up the others) and hands a
// finished connection to Accept. Close stops them all and waits for them.
type tlsStream struct {
	ln      net.Listener
	addr    net.Addr // advertised
	cfg     *tls.Config
	log     zerolog.Logger
	conns   chan net.Conn
	slots   chan struct{} // one per handshake under way (maxHandshakes)
	refused refusalLog

	ctx    context.Context // ends at Close: handshakes under way give up
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup
}

var _ raft.StreamLayer = (*tlsStream)(nil)

// listenTLS listens on addr ("host:port", a host peers can dial) for raft
// over mutual TLS with cfg.
func listenTLS(addr string, cfg *tls.Config, log zerolog.Logger) (*tlsStream, error) {
	switch {
	case cfg == nil:
		return nil, errors.New("no TLS configuration for raft")
	case cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil:
		return nil, errors.New("the raft TLS configuration must require and verify client certificates")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok || tcp.IP == nil || tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %s cannot be advertised: give a host peers can dial", addr)
	}
	s := &tlsStream{ln: ln, addr: tcp, cfg: cfg, log: log, conns: make(chan net.Conn),
		slots: make(chan struct{}, maxHandshakes), refused: refusalLog{now: time.Now}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// acceptLoop accepts TCP connections until the listener closes and starts
// a handshake for each.
func (s *tlsStream) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn().Err(err).Msg("cannot accept a raft connection")
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond): // a full file table: do not spin
			}
			continue
		}
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			c.Close()
			return
		}
		s.wg.Add(1)
		go s.handshake(c)
	}
}

// handshake completes the server side of c's TLS handshake and hands the
// connection to Accept, or closes it.
func (s *tlsStream) handshake(c net.Conn) {
	defer s.wg.Done()
	defer func() { <-s.slots }()
	tc := tls.Server(c, s.cfg)
	ctx, cancel := context.WithTimeout(s.ctx, handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if s.ctx.Err() == nil {
			if skipped, ok := s.refused.due(); ok {
				s.log.Warn().Err(err).Str("remote_addr", c.RemoteAddr().String()).Int("refused_since_last", skipped).
					Msg("refused a raft connection: TLS handshake failed (no node certificate of this cluster?)")
			}
		}
		c.Close()
		return
	}
	select {
	case s.conns <- tc:
	case <-s.ctx.Done():
		tc.Close()
	}
}

// Accept returns the next connection whose handshake succeeded.
func (s *tlsStream) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops listening, abandons handshakes under way and waits for
// every goroutine of the stream layer.
func (s *tlsStream) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		err = s.ln.Close()
		s.wg.Wait()
	})
	return err
}

// Addr is the advertised address.
func (s *tlsStream) Addr() net.Addr { return s.addr }

// Dial connects to a peer's raft address and completes the TLS handshake:
// the peer's certificate must be the cluster CA's and name its host.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, fmt.Errorf("bad raft address %q: %w", address, err)
	}
	cfg := s.cfg.Clone()
	cfg.ServerName = host
	if timeout <= 0 || timeout > handshakeTimeout {
		timeout = handshakeTimeout
	}
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	return d.DialContext(ctx, "tcp", string(address))
}

// refusalLog rate-limits the warning about refused connections.
type refusalLog struct {
	now     func() time.Time
	mu      sync.Mutex
	last    time.Time
	skipped int
}

// due reports whether a refusal is to be logged now and, if so, how many
// were not logged since the last warning.
func (r *refusalLog) due() (skipped int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if !r.last.IsZero() && now.Sub(r.last) < refusalLogEvery {
		r.skipped++
		return 0, false
	}
	skipped, r.last, r.skipped = r.skipped, now, 0
	return skipped, true
}
