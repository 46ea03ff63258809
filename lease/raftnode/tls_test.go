package raftnode_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/internal/pki"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease/raftnode"
)

// loggedNode opens a bootstrapped node whose log also goes to the
// returned buffer, and waits for it to lead.
func loggedNode(t *testing.T) (*raftnode.Node, *testutil.Buffer) {
	t.Helper()
	var log testutil.Buffer
	cfg := nodeConfig(t, "node-1", t.TempDir(), true)
	cfg.Logger = zerolog.New(zerolog.MultiLevelWriter(&log, zerolog.NewTestWriter(t)))
	n := openNode(t, cfg)
	waitLeader(t, n)
	return n, &log
}

// readAll reads what the peer answers on c until it closes c, and the
// error that ended it (the deadline fails the read otherwise).
func readAll(t *testing.T, c net.Conn) ([]byte, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(testWait))
	return io.ReadAll(c)
}

// refusedInLog waits for the node's log to say it refused a connection,
// and checks that nothing reached raft's decoder.
func refusedInLog(t *testing.T, log *testutil.Buffer) {
	t.Helper()
	testutil.WaitUntil(t, testWait, "the node to log the refused connection", func() bool {
		return strings.Contains(log.String(), "refused a raft connection")
	})
	for _, bad := range []string{"failed to decode incoming command", "unknown rpc type"} {
		if strings.Contains(log.String(), bad) {
			t.Errorf("a connection without a node certificate reached raft's decoder: the log says %q", bad)
		}
	}
}

// TestRaftRefusesPlainTCP: raft bytes sent over plain TCP are never read
// as raft RPCs: the connection is closed without an answer.
func TestRaftRefusesPlainTCP(t *testing.T) {
	n, log := loggedNode(t)
	c, err := net.Dial("tcp", n.RaftAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// rpcAppendEntries (0) then a msgpack map: what an old, plain-TCP peer
	// would send first.
	if _, err := c.Write([]byte{0x00, 0x81, 0xa4, 'T', 'e', 'r', 'm', 0x01}); err != nil {
		t.Fatal(err)
	}
	data, err := readAll(t, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the node kept a plain TCP connection open (read %q)", data)
	}
	if len(data) > 0 && data[0] != 0x15 { // 0x15: a TLS alert record, if any
		t.Errorf("the node answered plain TCP with %q, want nothing or a TLS alert", data)
	}
	refusedInLog(t, log)
}

// TestRaftRefusesWithoutClusterCertificate: TLS clients with no client
// certificate, or one another CA issued, cannot complete a handshake.
func TestRaftRefusesWithoutClusterCertificate(t *testing.T) {
	n, log := loggedNode(t)
	other, err := pki.NewCA("another CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreign := nodeTLS(t, other)
	foreign.RootCAs = nodeTLS(t, mustCA(t)).RootCAs // trusts the node: only the client side is wrong
	noCert := &tls.Config{RootCAs: foreign.RootCAs, MinVersion: tls.VersionTLS13}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"no client certificate", noCert},
		{"a certificate of another CA", foreign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg.Clone()
			cfg.ServerName = "127.0.0.1"
			c, err := tls.Dial("tcp", n.RaftAddr(), cfg)
			if err != nil {
				return // refused in the handshake itself
			}
			defer c.Close()
			// TLS 1.3: the server checks the client's certificate after the
			// client thinks it is done; the refusal arrives on the next read.
			c.Write([]byte{0x00})
			if data, err := readAll(t, c); err == nil || len(data) > 0 {
				t.Fatalf("the node accepted the connection (read %q, %v)", data, err)
			}
		})
	}
	refusedInLog(t, log)
}

// TestRaftAcceptsClusterCertificate: a client with a certificate of the
// cluster CA completes the handshake (the refusals above are not a
// broken listener).
func TestRaftAcceptsClusterCertificate(t *testing.T) {
	n, log := loggedNode(t)
	cfg := nodeTLS(t, mustCA(t))
	cfg.ServerName = "127.0.0.1"
	c, err := tls.Dial("tcp", n.RaftAddr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "refused a raft connection") {
		t.Errorf("the node refused a cluster certificate: %s", log.String())
	}
}

// TestRaftBoundsHandshakes: connections that never finish a handshake
// hold at most maxHandshakes (64) handshake slots; a cluster peer behind
// them waits, and gets through once they go. The refusals they cause are
// logged once, not once each.
func TestRaftBoundsHandshakes(t *testing.T) {
	n, log := loggedNode(t)
	var idle []net.Conn
	for range 64 {
		c, err := net.Dial("tcp", n.RaftAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	cfg := nodeTLS(t, mustCA(t))
	cfg.ServerName = "127.0.0.1"
	dial := func(timeout time.Duration) error {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", n.RaftAddr())
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(time.Second); err == nil {
		t.Fatal("a 65th handshake was served while 64 idle connections held every slot")
	}
	for _, c := range idle {
		c.Close()
	}
	testutil.WaitUntil(t, 10*time.Second, "a handshake once the idle connections closed", func() bool { return dial(2*time.Second) == nil })
	refusedInLog(t, log)
	if got := strings.Count(log.String(), "refused a raft connection"); got != 1 {
		t.Errorf("%d refusal warnings for 65 refused connections within a minute, want 1:\n%s", got, log.String())
	}
}
