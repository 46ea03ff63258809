package toolclient_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/hooktools/toolclient"
)

// result is what a tool printed and returned.
type result struct {
	Stdout, Stderr string
	Code           int
}

func runMain(stdin io.Reader, env map[string]string, argv ...string) result {
	var out, errOut bytes.Buffer
	code := toolclient.Main(argv, stdin, &out, &errOut, func(k string) string { return env[k] })
	return result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

// socketPath is a path for a unix socket, short enough for sun_path.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

// fakeServer answers the calls of one test on a unix socket: answer gets
// each decoded request and returns the response, or nil to close the
// connection without answering.
type fakeServer struct {
	sock string
	reqs chan toolclient.Request
}

func startFake(t *testing.T, answer func(req toolclient.Request) *toolclient.Response) *fakeServer {
	t.Helper()
	f := &fakeServer{sock: socketPath(t), reqs: make(chan toolclient.Request, 16)}
	l, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			var req toolclient.Request
			if err := toolclient.ReadFrame(conn, toolclient.DefaultMaxFrameBytes, &req); err != nil {
				t.Errorf("fake server: %v", err)
			}
			f.reqs <- req
			if resp := answer(req); resp != nil {
				toolclient.WriteFrame(conn, resp)
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return f
}

func (f *fakeServer) env() map[string]string {
	return map[string]string{
		toolclient.EnvContextID:     "ctx-1",
		toolclient.EnvSocketAddress: f.sock,
		toolclient.EnvSocketNetwork: "unix",
	}
}

func TestMainRoundTrip(t *testing.T) {
	f := startFake(t, func(req toolclient.Request) *toolclient.Response {
		return &toolclient.Response{Stdout: []byte("out:" + req.Tool), Stderr: []byte("err\n"), Code: 7}
	})
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		argv  []string
		stdin string
		want  toolclient.Request
	}{{
		name: "no arguments",
		argv: []string{"/agent/tools/is-leader"},
		want: toolclient.Request{Version: toolclient.ProtocolVersion, ContextID: "ctx-1", Tool: "is-leader", Args: [][]byte{}, Cwd: cwd},
	}, {
		name: "arguments are bytes, not UTF-8",
		argv: []string{"leader-set", "k=\xff\xfe", "--format=json"},
		want: toolclient.Request{Version: 1, ContextID: "ctx-1", Tool: "leader-set", Args: [][]byte{[]byte("k=\xff\xfe"), []byte("--format=json")}, Cwd: cwd},
	}, {
		name:  "leader-set --file - sends stdin",
		argv:  []string{"leader-set", "--file", "-"},
		stdin: "a: b\n",
		want:  toolclient.Request{Version: 1, ContextID: "ctx-1", Tool: "leader-set", Args: [][]byte{[]byte("--file"), []byte("-")}, Cwd: cwd, Stdin: []byte("a: b\n")},
	}, {
		name:  "other tools do not",
		argv:  []string{"juju-log", "-"},
		stdin: "never read",
		want:  toolclient.Request{Version: 1, ContextID: "ctx-1", Tool: "juju-log", Args: [][]byte{[]byte("-")}, Cwd: cwd},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runMain(strings.NewReader(tt.stdin), f.env(), tt.argv...)
			if want := (result{Stdout: "out:" + tt.want.Tool, Stderr: "err\n", Code: 7}); got != want {
				t.Errorf("Main = %+v, want %+v", got, want)
			}
			if diff := cmp.Diff(tt.want, <-f.reqs); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMainNoAnswer(t *testing.T) {
	f := startFake(t, func(toolclient.Request) *toolclient.Response { return nil })
	got := runMain(nil, f.env(), "is-leader")
	want := result{Stderr: "ERROR cannot run is-leader: hooktools: the agent closed the connection without answering\n", Code: 1}
	if got != want {
		t.Errorf("Main = %+v, want %+v", got, want)
	}
}

func TestMainErrors(t *testing.T) {
	sock := socketPath(t)
	tests := []struct {
		name string
		argv []string
		env  map[string]string
		want string
	}{
		{"no context", []string{"is-leader"}, map[string]string{toolclient.EnvSocketAddress: sock}, "ERROR JUJU_CONTEXT_ID not set\n"},
		{"no socket", []string{"is-leader"}, map[string]string{toolclient.EnvContextID: "x"}, "ERROR JUJU_AGENT_SOCKET_ADDRESS not set\n"},
		{"tcp", []string{"is-leader"}, map[string]string{toolclient.EnvContextID: "x", toolclient.EnvSocketAddress: sock, toolclient.EnvSocketNetwork: "tcp"}, "ERROR JUJU_AGENT_SOCKET_NETWORK \"tcp\" is not supported (only unix)\n"},
		{"not a tool", []string{"/usr/bin/uniter"}, nil, "ERROR \"uniter\" is not a hook tool\n"},
		{"no argv", nil, nil, "ERROR no tool name in arguments\n"},
		{"agent down", []string{"/x/tools/is-leader"}, map[string]string{toolclient.EnvContextID: "x", toolclient.EnvSocketAddress: sock}, "ERROR cannot run is-leader: dial unix " + sock + ": connect: no such file or directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(result{Stderr: tt.want, Code: 1}, runMain(nil, tt.env, tt.argv...)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWantsStdin(t *testing.T) {
	tests := []struct {
		tool string
		args string
		want bool
	}{
		{"leader-set", "--file -", true},
		{"leader-set", "--file=-", true},
		{"leader-set", "a=b --file -", true},
		{"leader-set", "a=b", false},
		{"leader-set", "--file f", false},
		{"leader-set", "--file f -", false},
		{"leader-set", "-- --file -", false},
		{"leader-set", "--file", false},
		{"relation-set", "-r db:3 --app --file -", true},
		{"relation-set", "--file=-", true},
		{"relation-set", "a=b", false},
		{"config-get", "--file -", false},
		{"juju-log", "-", false},
	}
	for _, tt := range tests {
		if got := toolclient.WantsStdin(tt.tool, strings.Fields(tt.args)); got != tt.want {
			t.Errorf("wantsStdin(%s %s) = %v, want %v", tt.tool, tt.args, got, tt.want)
		}
	}
}

func TestToolNames(t *testing.T) {
	want := []string{"action-fail", "action-get", "action-log", "action-set", "application-version-set", "close-port", "config-get", "goal-state",
		"is-leader", "juju-log", "leader-get", "leader-set", "network-get", "open-port", "opened-ports", "relation-get", "relation-ids",
		"relation-list", "relation-set", "status-get", "status-set", "unit-get"}
	if diff := cmp.Diff(want, toolclient.ToolNames()); diff != "" {
		t.Errorf("ToolNames (-want +got):\n%s", diff)
	}
	for _, name := range want {
		if !toolclient.IsTool(name) {
			t.Errorf("IsTool(%q) = false", name)
		}
	}
	for _, name := range []string{"", "uniter", "uniter-hooktools", "action-do", "is-leader "} {
		if toolclient.IsTool(name) {
			t.Errorf("IsTool(%q) = true", name)
		}
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	in := toolclient.Response{Stdout: []byte("\xff"), Code: 2}
	if err := toolclient.WriteFrame(&buf, in); err != nil {
		t.Fatal(err)
	}
	if buf.Len() < toolclient.FrameHeaderSize {
		t.Fatalf("frame of %d bytes", buf.Len())
	}
	raw := buf.Bytes()
	var out toolclient.Response
	if err := toolclient.ReadFrame(bytes.NewReader(raw), toolclient.DefaultMaxFrameBytes, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	body := int64(len(raw) - toolclient.FrameHeaderSize)
	err := toolclient.ReadFrame(bytes.NewReader(raw), body-1, &out)
	var tooLarge *toolclient.FrameTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Size != uint64(body) || tooLarge.Limit != uint64(body-1) {
		t.Errorf("over the limit: %v", err)
	}
	if err := toolclient.ReadFrame(bytes.NewReader(raw), body, &out); err != nil {
		t.Errorf("exactly at the limit: %v", err)
	}
	err = toolclient.ReadFrame(bytes.NewReader(raw[:len(raw)-1]), body, &out)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short body: %v", err)
	}
	if err := toolclient.ReadFrame(bytes.NewReader(nil), body, &out); !errors.Is(err, io.EOF) {
		t.Errorf("nothing: %v, want io.EOF (the client reports ErrNoResponse)", err)
	}
}

// TestDependencies keeps the client, and the binary made of it, cheap to
// start: standard library only, and none of the heavy corners of it.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	self := "github.com/uniter-dev/uniter/hooktools/toolclient"
	cmd := "github.com/uniter-dev/uniter/cmd/uniter-hooktools"
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", self, cmd).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := map[string]bool{"net": true, "net/http": true, "regexp": true, "os/user": true, "crypto/tls": true}
	seen := 0
	for line := range strings.Lines(string(out)) {
		path, std, _ := strings.Cut(strings.TrimSpace(line), " ")
		seen++
		switch {
		case path == self || path == cmd:
		case std != "true":
			t.Errorf("depends on %s, which is not in the standard library", path)
		case forbidden[path]:
			t.Errorf("depends on %s", path)
		}
	}
	if seen < 10 {
		t.Fatalf("go list printed %d packages:\n%s", seen, out)
	}
}
