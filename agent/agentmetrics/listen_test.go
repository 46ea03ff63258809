package agentmetrics_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uniter-dev/uniter/agent/agentmetrics"
)

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want string // "" when good, else a part of the error
	}{
		{addr: "127.0.0.1:9100"},
		{addr: "[::1]:9100"},
		{addr: "localhost:9100"},
		{addr: "127.0.0.2:0"},
		{addr: "unix:/run/uniter/app-0/metrics.sock"},
		{addr: "0.0.0.0:9100", want: "loopback address or a unix socket only"},
		{addr: "10.0.0.5:9100", want: "no authentication"},
		{addr: ":9100", want: "loopback"},
		{addr: "example.com:9100", want: "loopback"},
		{addr: "9100", want: "want HOST:PORT"},
		{addr: "unix:metrics.sock", want: "must be absolute"},
		{addr: "unix:", want: "must be absolute"},
	} {
		err := agentmetrics.CheckAddr(tc.addr)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckAddr(%q) = %v, want nil", tc.addr, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckAddr(%q) = %v, want an error with %q", tc.addr, err, tc.want)
		}
	}
}

// TestListenUnixNeedsAPrivateDirectory: a missing directory is made 0700;
// an existing one open to others is refused, its mode untouched; a stale
// socket is replaced and any other file refused.
func TestListenUnixNeedsAPrivateDirectory(t *testing.T) {
	base, err := os.MkdirTemp("", "am")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })

	made := filepath.Join(base, "new", "metrics.sock")
	ln, err := agentmetrics.Listen("unix:" + made)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Dir(made)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made directory: %v, mode %v; want 0700", err, fi.Mode().Perm())
	}
	// A socket left behind (as by a killed agent) is replaced.
	stale := filepath.Join(base, "stale")
	if err := os.Mkdir(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	first, err := agentmetrics.Listen("unix:" + filepath.Join(stale, "m.sock"))
	if err != nil {
		t.Fatal(err)
	}
	// Keep the file, as a process that died would.
	if ul, ok := first.(interface{ SetUnlinkOnClose(bool) }); ok {
		ul.SetUnlinkOnClose(false)
	}
	first.Close()
	second, err := agentmetrics.Listen("unix:" + filepath.Join(stale, "m.sock"))
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	second.Close()
	ln.Close()

	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o755) // whatever the umask
	if _, err := agentmetrics.Listen("unix:" + filepath.Join(open, "m.sock")); err == nil || !strings.Contains(err.Error(), "0700") {
		t.Fatalf("Listen in a 0755 directory = %v, want a refusal naming 0700", err)
	}
	if fi, _ := os.Stat(open); fi.Mode().Perm() != 0o755 {
		t.Fatalf("Listen changed the mode of %s to %v", open, fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(open, "m.sock")); err == nil {
		t.Fatal("a socket was made in the refused directory")
	}

	file := filepath.Join(stale, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := agentmetrics.Listen("unix:" + file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file = %v, want a refusal", err)
	}
	if data, _ := os.ReadFile(file); string(data) != "keep" {
		t.Fatal("Listen removed a regular file")
	}
}

func TestListenTCPOnLoopback(t *testing.T) {
	ln, err := agentmetrics.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := agentmetrics.Listen("0.0.0.0:0"); err == nil {
		t.Fatal("Listen on every interface succeeded")
	}
}
