package hooktools_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/hooktools/hooktoolstest"
	"github.com/uniter-dev/uniter/internal/clock"
)

const wrongID = "ERROR bad request: wrong context ID\n"

func TestWrongContextID(t *testing.T) {
	srv := startServer(t, serverOpts{})
	valid := srv.register(t, nil)
	for _, id := range []string{"", "0", strings.Repeat("0", 32), valid.id[:31], valid.id + "0", strings.ToUpper(valid.id)} {
		got := runClient(nil, map[string]string{hooktools.EnvContextID: id + "x", hooktools.EnvSocketAddress: srv.sock}, "is-leader")
		if diff := cmp.Diff(result{Stderr: wrongID, Code: 1}, got); diff != "" {
			t.Errorf("id %q (-want +got):\n%s", id+"x", diff)
		}
		if strings.Contains(got.Stdout+got.Stderr, valid.id) {
			t.Errorf("the valid id was echoed: %+v", got)
		}
	}
	if strings.Contains(srv.logs.String(), valid.id) {
		t.Error("the valid context id was logged")
	}
}

func TestStaleContextID(t *testing.T) {
	srv := startServer(t, serverOpts{})
	h := srv.register(t, nil)
	if got := h.run(t, nil, "is-leader"); got != ok("True\n") {
		t.Fatalf("before done: %+v", got)
	}
	h.done()
	h.done() // idempotent
	for _, args := range [][]string{{"is-leader"}, {"leader-get"}, {"juju-log", "x"}, {"is-leader", "--help"}} {
		if diff := cmp.Diff(result{Stderr: wrongID, Code: 1}, h.run(t, nil, args...)); diff != "" {
			t.Errorf("%q after done (-want +got):\n%s", args, diff)
		}
	}
	if n := len(h.backend.Calls()); n != 1 {
		t.Errorf("backend saw %d calls, want 1 (none after done)", n)
	}
}

func TestContextIDs(t *testing.T) {
	srv := startServer(t, serverOpts{})
	seen := map[string]bool{}
	for range 100 {
		h := srv.register(t, nil)
		if len(h.id) < 32 || strings.Trim(h.id, "0123456789abcdef") != "" {
			t.Fatalf("id %q is not ≥128 bits of hex", h.id)
		}
		if seen[h.id] {
			t.Fatalf("id %q repeated", h.id)
		}
		seen[h.id] = true
	}
}

func TestRegisterErrors(t *testing.T) {
	srv := startServer(t, serverOpts{})
	b := hooktoolstest.NewBackend(true)
	for name, hc := range map[string]*hooktools.HookContext{
		"nil":        nil,
		"no backend": {Unit: "a/0"},
		"no unit":    {Backend: b},
	} {
		if _, _, err := srv.Register(hc); err == nil || !strings.HasPrefix(err.Error(), "cannot register hook context: ") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Register(defaultContext(b)); err == nil {
		t.Error("Register after Close succeeded")
	}
}

func TestSnapshotIsolation(t *testing.T) {
	srv := startServer(t, serverOpts{})
	hc := defaultContext(hooktoolstest.NewBackend(true))
	h1 := srv.register(t, hc)
	hc.Config["name"] = "changed by the agent" // after Register: must not show
	hc.LeaderSettings["a"] = "changed"
	if got := h1.run(t, nil, "config-get", "name"); got != ok("hello\n") {
		t.Errorf("config-get name = %+v, want the snapshot", got)
	}
	if got := h1.run(t, nil, "leader-set", "a=2"); got != ok("") {
		t.Fatalf("leader-set = %+v", got)
	}
	h2 := srv.register(t, defaultContext(hooktoolstest.NewBackend(true)))
	if got := h2.run(t, nil, "leader-get", "a"); got != ok("1\n") {
		t.Errorf("another hook's leader-get a = %+v, want its own snapshot", got)
	}
	if got := h1.run(t, nil, "leader-get", "a"); got != ok("2\n") {
		t.Errorf("leader-get a = %+v, want the hook's own write", got)
	}
}

func TestStickyIsLeader(t *testing.T) {
	srv := startServer(t, serverOpts{})
	h := srv.register(t, nil)
	h.backend.ScriptIsLeader(true, false, true)
	var got []string
	for range 4 {
		got = append(got, h.run(t, nil, "is-leader").Stdout)
	}
	if diff := cmp.Diff([]string{"True\n", "False\n", "False\n", "False\n"}, got); diff != "" {
		t.Errorf("is-leader answers (-want +got):\n%s", diff)
	}
	if n := len(h.backend.Calls()); n != 2 {
		t.Errorf("backend asked %d times, want 2 (never after false)", n)
	}
	if got := h.run(t, nil, "status-set", "--application", "active"); got != runErr("this unit is not the leader") {
		t.Errorf("status-set --application after false = %+v", got)
	}
	// A new hook asks afresh.
	h2 := srv.register(t, defaultContext(h.backend))
	if got := h2.run(t, nil, "is-leader").Stdout; got != "True\n" {
		t.Errorf("next hook's is-leader = %q", got)
	}
}

func TestStickyAfterErrorAndFencing(t *testing.T) {
	srv := startServer(t, serverOpts{})
	h := srv.register(t, nil)
	h.backend.FailWith("IsLeader", errors.New("no answer"))
	if got := h.run(t, nil, "is-leader"); got.Code != 1 {
		t.Fatalf("is-leader with a failing backend = %+v", got)
	}
	h.backend.FailWith("IsLeader", nil)
	if got := h.run(t, nil, "is-leader").Stdout; got != "False\n" {
		t.Errorf("is-leader after an error = %q, want False", got)
	}

	h2 := srv.register(t, nil)
	h2.backend.SetLeader(false)
	if got := h2.run(t, nil, "leader-set", "k=v"); got.Code != 1 {
		t.Fatalf("fenced leader-set = %+v", got)
	}
	h2.backend.SetLeader(true)
	if got := h2.run(t, nil, "is-leader").Stdout; got != "False\n" {
		t.Errorf("is-leader after a fenced leader-set = %q, want False", got)
	}
}

func TestLeaderSetThenGet(t *testing.T) {
	srv := startServer(t, serverOpts{})
	h := srv.register(t, nil)
	for _, args := range [][]string{{"leader-set", "x=1"}, {"leader-set", "x=2", "b="}} {
		if got := h.run(t, nil, args...); got != ok("") {
			t.Fatalf("%q = %+v", args, got)
		}
	}
	if got := h.run(t, nil, "leader-get", "x"); got != ok("2\n") {
		t.Errorf("leader-get x = %+v", got)
	}
	if got := h.run(t, nil, "leader-get", "--format=json"); got != ok(`{"a":"1","x":"2"}`+"\n") {
		t.Errorf("leader-get = %+v", got)
	}
	if diff := cmp.Diff(map[string]string{"x": "2"}, h.backend.Settings()); diff != "" {
		t.Errorf("controller settings (-want +got):\n%s", diff)
	}
}

// TestBinaryArguments checks arguments that are not UTF-8 arrive intact
// (argv may hold any bytes; JSON strings would mangle them).
func TestBinaryArguments(t *testing.T) {
	srv := startServer(t, serverOpts{})
	h := srv.register(t, nil)
	value := "\xff\xfe\x00ok"
	if got := h.run(t, nil, "leader-set", "bin="+value); got != ok("") {
		t.Fatalf("leader-set = %+v", got)
	}
	if got := h.run(t, nil, "leader-get", "bin"); got != ok(value+"\n") {
		t.Errorf("leader-get bin = %q, want %q", got.Stdout, value+"\n")
	}
	if diff := cmp.Diff(map[string]string{"bin": value}, h.backend.Settings()); diff != "" {
		t.Errorf("controller settings (-want +got):\n%s", diff)
	}
}

func TestSocketDirectory(t *testing.T) {
	base := shortTempDir(t)
	dir := filepath.Join(base, "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, serverOpts{dir: base})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode = %v, want 0700", fi.Mode().Perm())
	}
	// A nested directory that did not exist is created 0700 too.
	nested := filepath.Join(shortTempDir(t), "a", "b")
	srv2 := startServer(t, serverOpts{dir: nested})
	if fi, err := os.Stat(filepath.Dir(srv2.sock)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("new socket directory: %v, %v", fi.Mode(), err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(srv.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
}

func TestStaleSocket(t *testing.T) {
	base := shortTempDir(t)
	path := filepath.Join(base, "run", "agent.sock")
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // a crashed agent's socket
	srv := startServer(t, serverOpts{dir: base})
	if got := srv.register(t, nil).run(t, nil, "is-leader"); got != ok("True\n") {
		t.Errorf("is-leader = %+v", got)
	}

	notSocket := filepath.Join(shortTempDir(t), "agent.sock")
	if err := os.WriteFile(notSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = hooktools.NewServer(hooktools.ServerConfig{SocketPath: notSocket, Clock: clock.Real})
	if err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("NewServer over a regular file: %v", err)
	}
}

func TestNewServerConfigErrors(t *testing.T) {
	dir := shortTempDir(t)
	for name, cfg := range map[string]hooktools.ServerConfig{
		"no path":        {Clock: clock.Real},
		"relative path":  {SocketPath: "run/agent.sock", Clock: clock.Real},
		"no clock":       {SocketPath: filepath.Join(dir, "s")},
		"negative limit": {SocketPath: filepath.Join(dir, "s"), Clock: clock.Real, Limits: hooktools.Limits{MaxArgsBytes: -1}},
	} {
		if _, err := hooktools.NewServer(cfg); err == nil || !strings.HasPrefix(err.Error(), "cannot start hook-tool server: ") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// rawCall writes raw bytes to the server and returns its decoded answer.
func rawCall(t *testing.T, sock string, data []byte) result {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write(data) // may fail if the server answers first
	conn.(*net.UnixConn).CloseWrite()
	return readAnswer(t, conn)
}

// readAnswer reads and decodes one response frame.
func readAnswer(t *testing.T, conn net.Conn) result {
	t.Helper()
	var hdr [hooktools.FrameHeaderSize]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Stdout, Stderr []byte
		Code           int
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	return result{Stdout: string(resp.Stdout), Stderr: string(resp.Stderr), Code: resp.Code}
}

func frame(body []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	return append(out, body...)
}

func header(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func TestMalformedFrames(t *testing.T) {
	srv := startServer(t, serverOpts{})
	h := srv.register(t, nil)
	req := func(v int, id, tool string) []byte {
		b, _ := json.Marshal(map[string]any{"v": v, "context_id": id, "tool": tool, "args": []string{}})
		return frame(b)
	}
	tests := []struct {
		name string
		data []byte
		want string // stderr prefix
	}{
		{"short header", []byte{0, 0}, "ERROR bad request: cannot read frame header: unexpected EOF"},
		{"short body", append(header(10), "abc"...), "ERROR bad request: cannot read frame: got 3 of 10 bytes: unexpected EOF"},
		{"not json", frame([]byte("hello")), "ERROR bad request: cannot decode frame: invalid character"},
		{"wrong json type", frame([]byte(`{"args": "x"}`)), "ERROR bad request: cannot decode frame: json: cannot unmarshal"},
		{"empty body", frame(nil), "ERROR bad request: cannot decode frame: unexpected end of JSON input"},
		{"old protocol", req(0, h.id, "is-leader"), "ERROR bad request: unsupported protocol version 0 (want 1)"},
		{"unknown tool", req(hooktools.ProtocolVersion, h.id, "action-do"), `ERROR bad request: unknown hook tool "action-do"`},
		{"frame too large", header(hooktools.DefaultMaxFrameBytes + 1), "ERROR request too large: frame of 33554433 bytes exceeds the limit of 33554432 bytes"},
		{"frame max header", header(1<<32 - 1), "ERROR request too large: frame of 4294967295 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rawCall(t, srv.sock, tt.data)
			if got.Code != 1 || got.Stdout != "" || !strings.HasPrefix(got.Stderr, tt.want) {
				t.Errorf("got %+v, want exit 1 and stderr starting %q", got, tt.want)
			}
			if got := h.run(t, nil, "is-leader"); got != ok("True\n") {
				t.Errorf("server stopped serving: %+v", got)
			}
		})
	}
}

func TestOversizedArgs(t *testing.T) {
	srv := startServer(t, serverOpts{})
	h := srv.register(t, nil)
	big := strings.Repeat("x", hooktools.DefaultMaxArgsBytes/2)
	got := h.run(t, nil, "juju-log", big, big, "y")
	want := runErr(fmt.Sprintf("request too large: arguments of %d bytes exceed the limit of %d bytes", hooktools.DefaultMaxArgsBytes+1, hooktools.DefaultMaxArgsBytes))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := h.run(t, nil, "juju-log", big, big); got != ok("") {
		t.Errorf("exactly at the limit: %+v", got)
	}
	// Past the frame limit: the server answers without reading it all.
	huge := strings.Repeat("y", hooktools.DefaultMaxFrameBytes/4)
	got = h.run(t, nil, "juju-log", huge, huge, huge, huge)
	if got.Code != 1 || !strings.HasPrefix(got.Stderr, "ERROR request too large: frame of ") {
		t.Errorf("frame over the limit: %+v", got)
	}
	if got := h.run(t, nil, "is-leader"); got != ok("True\n") {
		t.Errorf("server stopped serving: %+v", got)
	}
}

func TestOversizedStdin(t *testing.T) {
	srv := startServer(t, serverOpts{})
	h := srv.register(t, nil)
	over := strings.NewReader("k: " + strings.Repeat("v", hooktools.DefaultMaxStdinBytes))
	got := h.run(t, over, "leader-set", "--file", "-")
	want := runErr(fmt.Sprintf("request too large: standard input of %d bytes exceeds the limit of %d bytes", hooktools.DefaultMaxStdinBytes+1, hooktools.DefaultMaxStdinBytes))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := len(h.backend.Calls()); n != 0 {
		t.Errorf("backend called %d times", n)
	}
	if got := h.run(t, strings.NewReader("k: v\n"), "leader-set", "--file", "-"); got != ok("") {
		t.Errorf("server stopped serving: %+v", got)
	}
}

// blockingReader fails the test if a tool reads stdin it should not.
type blockingReader struct{ t *testing.T }

func (r blockingReader) Read([]byte) (int, error) {
	r.t.Error("the client read stdin")
	return 0, io.EOF
}

func TestClientReadsStdinOnlyForLeaderSetFile(t *testing.T) {
	srv := startServer(t, serverOpts{})
	h := srv.register(t, nil)
	for _, args := range [][]string{
		{"is-leader"}, {"leader-set", "a=b"}, {"juju-log", "-"}, {"leader-get", "-"},
		{"leader-set", "--", "--file", "-"}, {"leader-set", "--file", "f", "-"}, {"config-get", "--file", "-"},
	} {
		h.run(t, blockingReader{t}, args...)
	}
}

func TestIdleClientTimesOut(t *testing.T) {
	srv := startServer(t, serverOpts{limits: hooktools.Limits{IOTimeout: 100 * time.Millisecond}})
	conn, err := net.Dial("unix", srv.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	conn.Write(header(100)) // promise a body, never send it
	if diff := cmp.Diff(runErr("bad request: timed out reading the request"), readAnswer(t, conn)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("connection not closed after the answer: %d, %v", n, err)
	}
}

func TestCloseWithIdleClient(t *testing.T) {
	srv := startServer(t, serverOpts{})
	conn, err := net.Dial("unix", srv.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := srv.register(t, nil)
	if got := h.run(t, nil, "is-leader"); got != ok("True\n") { // the idle conn is accepted by now
		t.Fatal(got)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close with an idle client: %v", err)
	}
}

// blockingBackend's IsLeader waits for its context to end.
type blockingBackend struct {
	*hooktoolstest.Backend
	entered chan struct{}
}

func (b *blockingBackend) IsLeader(ctx context.Context) (bool, error) {
	close(b.entered)
	<-ctx.Done()
	return false, ctx.Err()
}

func TestCloseEndsCallsInFlight(t *testing.T) {
	srv := startServer(t, serverOpts{})
	b := &blockingBackend{Backend: hooktoolstest.NewBackend(true), entered: make(chan struct{})}
	h := srv.register(t, defaultContext(b))
	var wg sync.WaitGroup
	var got result
	wg.Go(func() { got = h.run(t, nil, "is-leader") })
	select {
	case <-b.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the call never reached the backend")
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	if diff := cmp.Diff(runErr("leadership status unknown: context canceled"), got); diff != "" {
		t.Errorf("call in flight (-want +got):\n%s", diff)
	}
}

func TestConcurrentCalls(t *testing.T) {
	srv := startServer(t, serverOpts{})
	h := srv.register(t, nil)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			args := []string{"is-leader"}
			if i%2 == 1 {
				args = []string{"leader-set", fmt.Sprintf("k%d=v", i)}
			}
			if got := h.run(t, nil, args...); got.Code != 0 {
				t.Errorf("%q = %+v", args, got)
			}
		})
	}
	wg.Wait()
	if n := len(h.backend.Settings()); n != 16 {
		t.Errorf("%d settings written, want 16", n)
	}
}

// TestArgumentsNeverLoggedAboveTrace runs calls carrying a secret in
// every place a tool takes input, with the logger at debug, and checks
// the secret is nowhere in the log; at trace it must appear, which shows
// the test can see it.
func TestArgumentsNeverLoggedAboveTrace(t *testing.T) {
	const secret = "S3CRET-d0g"
	calls := [][]string{
		{"leader-set", "password=" + secret},
		{"leader-set", secret},
		{"leader-set", "--file", "/nonexistent/" + secret},
		{"leader-get", secret},
		{"leader-get", "--format=json", secret + "=x"},
		{"config-get", secret},
		{"config-get", "--" + secret},
		{"status-set", "active", secret},
		{"status-set", secret},
		{"status-get", secret},
		{"application-version-set", secret},
		{"is-leader", "--format=" + secret},
		{"is-leader", "-o", "/nonexistent/" + secret},
	}
	run := func(level zerolog.Level) string {
		srv := startServer(t, serverOpts{level: level})
		h := srv.register(t, nil)
		for _, args := range calls {
			h.run(t, nil, args...)
		}
		h.run(t, strings.NewReader("token: "+secret+"\n"), "leader-set", "--file", "-")
		return srv.logs.String()
	}
	if logs := run(zerolog.DebugLevel); strings.Contains(logs, secret) {
		t.Errorf("a tool argument was logged at debug:\n%s", logs)
	}
	if logs := run(zerolog.TraceLevel); !strings.Contains(logs, secret) {
		t.Errorf("trace log lacks the arguments; this test cannot see a leak:\n%s", logs)
	}
}
