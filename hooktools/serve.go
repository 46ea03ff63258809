package hooktools

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"

	"github.com/uniter-dev/uniter/hooktools/toolclient"
)

// callInfo is what serve logs about one request.
type callInfo struct {
	tool       string
	h          *hookState
	args       []string
	stdinBytes int
}

// serve answers one connection: one request, one response.
func (s *Server) serve(conn *net.UnixConn) {
	defer s.untrack(conn)
	start := s.clock.Now()
	resp, c := s.handle(conn)
	if resp == nil {
		return
	}
	conn.SetWriteDeadline(s.clock.Now().Add(s.limits.IOTimeout))
	if err := toolclient.WriteFrame(conn, resp); err != nil {
		s.log.Debug().Err(err).Str("tool", c.tool).Msg("cannot answer hook tool call")
	}
	if c.h == nil {
		return
	}
	s.log.Debug().
		Str("tool", c.tool).Str("unit", c.h.unit).Str("hook", c.h.hook).
		Int("exit_code", resp.Code).Dur("duration", s.clock.Now().Sub(start)).
		Msg("hook tool call")
	// Arguments and stdin may hold secrets: trace only.
	s.log.Trace().
		Str("tool", c.tool).Strs("args", c.args).Int("stdin_bytes", c.stdinBytes).
		Msg("hook tool arguments")
}

// handle reads, checks and runs one request. It returns nil when there is
// nobody to answer (the client sent nothing at all).
func (s *Server) handle(conn *net.UnixConn) (*toolclient.Response, callInfo) {
	if resp := s.checkPeer(conn); resp != nil {
		return resp, callInfo{}
	}
	var req toolclient.Request
	if err := toolclient.ReadFrame(conn, s.limits.MaxFrameBytes, &req); err != nil {
		return s.badFrame(err), callInfo{}
	}
	c := callInfo{tool: req.Tool, stdinBytes: len(req.Stdin)}
	if resp := s.checkRequest(&req); resp != nil {
		return resp, c
	}
	c.args = requestArgs(&req)
	c.h = s.lookup(req.ContextID)
	if c.h == nil {
		s.log.Warn().Str("tool", req.Tool).Msg("hook tool call with wrong context id")
		return errorResponse("bad request: wrong context ID"), c
	}
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	inv := &invocation{ctx: s.ctx, h: c.h, cwd: req.Cwd, stdin: req.Stdin, log: s.log, obs: s.obs}
	code := runTool(inv, req.Tool, c.args)
	return &toolclient.Response{Stdout: inv.stdout.Bytes(), Stderr: inv.stderr.Bytes(), Code: code}, c
}

// checkPeer refuses a peer whose uid is not allowed (the server's own,
// normally): the socket directory's mode is the first guard, this the
// second.
func (s *Server) checkPeer(conn *net.UnixConn) *toolclient.Response {
	uid, err := peerUID(conn)
	if err != nil {
		s.log.Error().Err(err).Msg("cannot read hook tool peer credentials")
		return errorResponse("permission denied")
	}
	if !slices.Contains(s.allowed, uid) {
		s.log.Warn().Uint32("peer_uid", uid).Msg("hook tool call refused: wrong user")
		return errorResponse("permission denied")
	}
	return nil
}

// badFrame answers a request that could not be read.
func (s *Server) badFrame(err error) *toolclient.Response {
	var tooLarge *toolclient.FrameTooLargeError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		s.log.Warn().Uint64("bytes", tooLarge.Size).Msg("hook tool call refused: request too large")
		return errorResponse("request too large: " + tooLarge.Error())
	case errors.Is(err, io.EOF):
		s.log.Debug().Msg("hook tool connection closed without a request")
		return nil
	case errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		s.log.Warn().Msg("hook tool call refused: timed out reading the request")
		return errorResponse("bad request: timed out reading the request")
	default:
		s.log.Warn().Err(err).Msg("hook tool call refused: malformed request")
		return errorResponse("bad request: " + err.Error())
	}
}

// checkRequest enforces the protocol version and the size limits.
func (s *Server) checkRequest(req *toolclient.Request) *toolclient.Response {
	if req.Version != toolclient.ProtocolVersion {
		return errorResponse(fmt.Sprintf("bad request: unsupported protocol version %d (want %d)", req.Version, toolclient.ProtocolVersion))
	}
	if !IsTool(req.Tool) {
		return errorResponse(fmt.Sprintf("bad request: unknown hook tool %q", req.Tool))
	}
	var n int64
	for _, a := range req.Args {
		n += int64(len(a))
	}
	var msg string
	switch {
	case n > s.limits.MaxArgsBytes:
		msg = fmt.Sprintf("arguments of %d bytes exceed the limit of %d bytes", n, s.limits.MaxArgsBytes)
	case int64(len(req.Stdin)) > s.limits.MaxStdinBytes:
		msg = fmt.Sprintf("standard input of %d bytes exceeds the limit of %d bytes", len(req.Stdin), s.limits.MaxStdinBytes)
	default:
		return nil
	}
	s.log.Warn().Str("tool", req.Tool).Msg("hook tool call refused: request too large")
	return errorResponse("request too large: " + msg)
}

// requestArgs returns the request's arguments as strings.
func requestArgs(req *toolclient.Request) []string {
	out := make([]string, len(req.Args))
	for i, a := range req.Args {
		out[i] = string(a)
	}
	return out
}

func errorResponse(msg string) *toolclient.Response {
	return &toolclient.Response{Stderr: []byte("ERROR " + msg + "\n"), Code: exitError}
}
