package tests

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/agent/agentmetrics"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// notifySocket is a stand-in for systemd's notification socket: a
// unixgram socket whose datagrams (sd_notify states) arrive on msgs.
type notifySocket struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn") // short: a socket path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: filepath.Join(dir, "notify"), msgs: make(chan string, 16)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			select {
			case n.msgs <- string(buf[:k]):
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		conn.Close()
		<-done
		os.RemoveAll(dir)
	})
	return n
}

// env is the environment that points a child at the socket.
func (n *notifySocket) env() []string { return []string{"NOTIFY_SOCKET=" + n.path} }

// next waits for the next state sent, failing after timeout.
func (n *notifySocket) next(t *testing.T, what string, timeout time.Duration) string {
	t.Helper()
	select {
	case m := <-n.msgs:
		return m
	case <-time.After(timeout):
		t.Fatalf("no sd_notify message within %v (waiting for %s)", timeout, what)
		return ""
	}
}

// waitExit waits for p to exit and returns its error.
func waitExit(t *testing.T, p *proc, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.wait:
		p.wait <- err
		return err
	case <-time.After(timeout):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("pid %d did not exit within %v", p.cmd.Process.Pid, timeout)
		return nil
	}
}

// TestControllerNotifiesSystemd: a controller node run with NOTIFY_SOCKET
// says READY=1 once its API answers (probed the moment READY=1 arrives),
// and STOPPING=1 on SIGTERM, before it exits 0.
func TestControllerNotifiesSystemd(t *testing.T) {
	n := listenNotify(t)
	dir, api := filepath.Join(t.TempDir(), "node0"), freePort(t)
	p := startProc(t, filepath.Join(t.TempDir(), "out.log"), n.env(), "controller", "--data-dir", dir,
		"--api-addr", api, "--raft-addr", freePort(t), "--node-id", "node-0")
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	if m := n.next(t, "READY=1", 30*time.Second); m != "READY=1" {
		t.Fatalf("first sd_notify message %q, want READY=1", m)
	}
	if code, body := probe(filepath.Join(dir, "client.yaml"), api, "/v1/health"); code != 200 {
		t.Fatalf("READY=1 arrived, but GET /v1/health answers %d %v", code, body)
	}
	p.signal(syscall.SIGTERM)
	if m := n.next(t, "STOPPING=1", 30*time.Second); m != "STOPPING=1" {
		t.Fatalf("sd_notify message after SIGTERM %q, want STOPPING=1", m)
	}
	if err := waitExit(t, p, 30*time.Second); err != nil {
		t.Fatalf("controller exit: %v", err)
	}
}

// TestAgentNotifiesSystemd: an agent run with NOTIFY_SOCKET says READY=1
// once its hook-tool socket and its metrics socket accept connections
// (dialled the moment READY=1 arrives), and STOPPING=1 as soon as SIGTERM
// arrives, while its running hook still holds it up; then it exits 0.
func TestAgentNotifiesSystemd(t *testing.T) {
	c := startCluster(t, 1)
	u := c.addUnit("journal/0", "journal", func(cfg *agent.Config) { cfg.StopTimeout = agent.Duration(3 * time.Second) })
	if err := os.WriteFile(u.path("charm", "block-install"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	n := listenNotify(t)
	metricsSock := u.path("run", "metrics.sock")
	u.p = startProc(t, u.path("agent.out"), n.env(), "agent", "--agent-dir", u.dir,
		"--metrics-addr", agentmetrics.UnixPrefix+metricsSock)
	if m := n.next(t, "READY=1", 30*time.Second); m != "READY=1" {
		t.Fatalf("first sd_notify message %q, want READY=1", m)
	}
	for _, sock := range []string{agent.SocketPath(u.dir), metricsSock} {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("READY=1 arrived, but %s does not accept: %v", sock, err)
		}
		conn.Close()
	}
	journal := u.path("charm", "journal.log")
	testutil.WaitUntil(t, 30*time.Second, "the install hook to be running", func() bool {
		return count(readJournal(t, journal), "install", "start") == 1
	})
	u.p.signal(syscall.SIGTERM)
	if m := n.next(t, "STOPPING=1", 30*time.Second); m != "STOPPING=1" {
		t.Fatalf("sd_notify message after SIGTERM %q, want STOPPING=1", m)
	}
	if u.p.exited() {
		t.Error("STOPPING=1 came only once the agent had exited, not when it began to stop")
	}
	if err := waitExit(t, u.p, 30*time.Second); err != nil {
		t.Fatalf("agent exit: %v", err)
	}
	select {
	case m := <-n.msgs:
		t.Errorf("unexpected sd_notify message %q after STOPPING=1", m)
	default:
	}
}
