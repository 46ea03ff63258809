// Package toolclient is the client side of the hook tools: what runs each
// time a hook calls is-leader, leader-get and the others. It turns argv
// and the environment into one request to the agent's socket, and copies
// the answer to stdout, stderr and the exit code.
//
// A hook may call tools hundreds of times, and each call is a new
// process, so this package is kept cheap to start: standard library only,
// no package net (the socket is a plain blocking one), no package-level
// work beyond constant tables. It is linked into the small
// uniter-hooktools binary, which the agent's tool symlinks point at, and
// into the uniter binary, which still acts as every tool. The server,
// every tool's parsing and its output live in package
// [github.com/uniter-dev/uniter/hooktools], whose documentation describes
// the wire protocol.
package toolclient

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"
)

// Environment variables the client reads (HOOK-TOOLS.md §1).
const (
	EnvContextID     = "JUJU_CONTEXT_ID"
	EnvSocketAddress = "JUJU_AGENT_SOCKET_ADDRESS"
	EnvSocketNetwork = "JUJU_AGENT_SOCKET_NETWORK"
)

// toolNames lists every hook tool, sorted.
var toolNames = [...]string{
	"action-fail",
	"action-get",
	"action-log",
	"action-set",
	"application-version-set",
	"close-port",
	"config-get",
	"goal-state",
	"is-leader",
	"juju-log",
	"leader-get",
	"leader-set",
	"network-get",
	"open-port",
	"opened-ports",
	"relation-get",
	"relation-ids",
	"relation-list",
	"relation-set",
	"status-get",
	"status-set",
	"unit-get",
}

// DescribeFlag, as the only argument of uniter-hooktools run under its own
// name, makes it print Describe() and exit 0: the agent checks that the
// binary beside it speaks its protocol and has its tools before pointing
// the tool symlinks at it.
const DescribeFlag = "--describe"

// Describe is one line naming this client's protocol version and tools,
// e.g. "uniter-hooktools protocol 1 tools application-version-set,...".
func Describe() string {
	return fmt.Sprintf("uniter-hooktools protocol %d tools %s", ProtocolVersion, strings.Join(toolNames[:], ","))
}

// IsTool reports whether name is the name of a hook tool.
func IsTool(name string) bool {
	_, found := slices.BinarySearch(toolNames[:], name)
	return found
}

// ToolNames returns the names of all hook tools, sorted.
func ToolNames() []string { return slices.Clone(toolNames[:]) }

// Main runs the hook tool named by basename(args[0]) by asking the
// agent's server, and returns the exit code. It reads JUJU_CONTEXT_ID and
// JUJU_AGENT_SOCKET_ADDRESS through getenv (os.Getenv when nil). It reads
// stdin only for `leader-set --file -` and `relation-set --file -` (how
// ops 3 sends relation data), so an interactive stdin never
// blocks it.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if getenv == nil {
		getenv = os.Getenv
	}
	req, err := newRequest(args, stdin, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "ERROR %v\n", err)
		return 1
	}
	resp, err := call(getenv(EnvSocketAddress), req)
	if err != nil {
		fmt.Fprintf(stderr, "ERROR cannot run %s: %v\n", req.Tool, err)
		return 1
	}
	stdout.Write(resp.Stdout)
	stderr.Write(resp.Stderr)
	return resp.Code
}

func newRequest(args []string, stdin io.Reader, getenv func(string) string) (*Request, error) {
	if len(args) == 0 {
		return nil, errors.New("no tool name in arguments")
	}
	tool := filepath.Base(args[0])
	switch {
	case !IsTool(tool):
		return nil, fmt.Errorf("%q is not a hook tool", tool)
	case getenv(EnvContextID) == "":
		return nil, errors.New(EnvContextID + " not set")
	case getenv(EnvSocketAddress) == "":
		return nil, errors.New(EnvSocketAddress + " not set")
	}
	if n := getenv(EnvSocketNetwork); n != "" && n != "unix" {
		return nil, fmt.Errorf("%s %q is not supported (only unix)", EnvSocketNetwork, n)
	}
	req := &Request{Version: ProtocolVersion, ContextID: getenv(EnvContextID), Tool: tool, Args: make([][]byte, len(args)-1)}
	for i, a := range args[1:] {
		req.Args[i] = []byte(a)
	}
	// Best effort: only -o or --file with a relative path need it.
	if cwd, err := os.Getwd(); err == nil && utf8.ValidString(cwd) {
		req.Cwd = cwd
	}
	if wantsStdin(tool, args[1:]) && stdin != nil {
		// One byte over the limit lets the server report the excess.
		data, err := io.ReadAll(io.LimitReader(stdin, DefaultMaxStdinBytes+1))
		if err != nil {
			return nil, fmt.Errorf("cannot read standard input: %w", err)
		}
		req.Stdin = data
	}
	return req, nil
}

// wantsStdin reports whether a call reads stdin: only leader-set and
// relation-set with `--file -` or `--file=-` before any `--`.
func wantsStdin(tool string, args []string) bool {
	if tool != "leader-set" && tool != "relation-set" {
		return false
	}
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "--file=-":
			return true
		case a == "--file" && i+1 < len(args) && args[i+1] == "-":
			return true
		}
	}
	return false
}

// call sends req over a new connection to the unix socket at path and
// returns the server's answer. It uses a plain blocking socket rather
// than package net: a tool makes one call and exits, and skipping the
// network poller's setup and goroutine parking is measurably cheaper.
// If the server refuses the request before reading all of it (too large,
// wrong peer), the write fails but the answer is still waiting to be
// read, so a write error is reported only when no answer follows.
func call(path string, req *Request) (*Response, error) {
	conn, err := dialUnix(path)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	werr := WriteFrame(conn, req)
	var resp Response
	if rerr := ReadFrame(conn, DefaultMaxFrameBytes, &resp); rerr != nil {
		if werr != nil {
			return nil, werr
		}
		if errors.Is(rerr, io.EOF) {
			return nil, ErrNoResponse
		}
		return nil, rerr
	}
	return &resp, nil
}

// dialUnix connects a blocking stream socket to path.
func dialUnix(path string) (*os.File, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dial unix %s: socket: %w", path, err)
	}
	for {
		err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: path})
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("dial unix %s: connect: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}
