package tests

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/pki"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// firstBytes records the first bytes read from a connection.
type firstBytes struct {
	net.Conn
	first []byte
}

func (c *firstBytes) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if len(c.first) == 0 && n > 0 {
		c.first = append([]byte(nil), p[:n]...)
	}
	return n, err
}

// adminFile reads the cluster's admin client config.
func (c *cluster) adminFile() client.File {
	c.t.Helper()
	f, err := client.ReadFile(c.clientFile)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

// pinnedTLS is a TLS client configuration trusting the cluster CA only.
func (c *cluster) pinnedTLS() *tls.Config {
	c.t.Helper()
	f := c.adminFile()
	tc, err := pki.Pin{CACert: []byte(f.Controller.CACert)}.ClientConfig()
	if err != nil {
		c.t.Fatal(err)
	}
	return tc
}

// nodeTLS is a raft client configuration with node i's certificate (read
// from its data directory), trusting the cluster CA.
func (c *cluster) nodeTLS(i int) *tls.Config {
	c.t.Helper()
	dir := filepath.Join(c.nodes[i].dir, "tls")
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"))
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(c.adminFile().Controller.CACert))
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13}
}

// serial dials addr with cfg and returns the serial of the certificate
// the server presents on this fresh connection.
func serial(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	cfg = cfg.Clone()
	cfg.ServerName, _, _ = net.SplitHostPort(addr)
	d := tls.Dialer{Config: cfg}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// TestTLSEverywhere: a three-node cluster joins and fails over over TLS;
// its API is TLS only (a plain HTTP request carrying the admin token is
// refused, and the first bytes it answers a ClientHello with are a TLS
// handshake record); a TLS client that does not pin the cluster CA is
// refused; the raft port completes no handshake without a node
// certificate of the cluster, and nothing reaches raft's decoder.
func TestTLSEverywhere(t *testing.T) {
	c := startCluster(t, 3)                // the joins: each node's certificate signed through the join
	c.addUnit("journal/0", "journal", nil) // registers the application
	f := c.adminFile()
	api := c.nodes[1].api

	// Plain HTTP with the admin token: Go's "HTTP request to an HTTPS
	// server" 400, never routed.
	conn, err := net.DialTimeout("tcp", api, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /v1/status HTTP/1.1\r\nHost: "+api+"\r\nAuthorization: Bearer "+f.Token+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 == 2 || strings.Contains(string(body), "applications") {
			t.Errorf("plain HTTP to the API answered %d %q", resp.StatusCode, body)
		}
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
			t.Errorf("plain HTTP to the API answered %d %q, want 400 naming HTTPS", resp.StatusCode, body)
		}
	}
	conn.Close()
	// The CLI cannot be pointed at plain HTTP either.
	plain := filepath.Join(t.TempDir(), "plain.yaml")
	writeClientFile(t, plain, "http://"+api, f.Token, f.Controller.CAFingerprint)
	if res := runUniter(t, "status", "--client-config", plain); res.code != 1 || !strings.Contains(res.stderr, "HTTPS only") {
		t.Errorf("status over http://: exit %d, stderr %q", res.code, res.stderr)
	}

	// What the API sends first on a connection is a TLS record.
	raw, err := net.DialTimeout("tcp", api, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rec := &firstBytes{Conn: raw}
	tc := tls.Client(rec, &tls.Config{ServerName: "127.0.0.1", RootCAs: c.pinnedTLS().RootCAs})
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake with the pinned CA: %v", err)
	}
	tc.Close()
	if len(rec.first) == 0 || rec.first[0] != 0x16 {
		t.Errorf("the API's first bytes are %q, want a TLS handshake record (0x16)", rec.first)
	}

	// A TLS client that does not pin the cluster CA: another CA, or the
	// system's roots.
	other, err := pki.NewCA("another CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]client.Config{
		"another CA":   {Addresses: []string{api}, Token: f.Token, CACert: other.CertPEM()},
		"system roots": {Addresses: []string{api}, Token: f.Token, HTTPClient: &http.Client{}},
	} {
		cl, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.Status(t.Context())
		cl.Close()
		if err == nil || !strings.Contains(err.Error(), "x509") {
			t.Errorf("%s: status = %v, want a certificate verification failure", name, err)
		}
	}
	// The fingerprint alone is enough to pin.
	fpOnly := filepath.Join(t.TempDir(), "fp.yaml")
	writeClientFile(t, fpOnly, api, f.Token, f.Controller.CAFingerprint)
	if res := runUniter(t, "status", "--client-config", fpOnly); res.code != 0 {
		t.Errorf("status pinning the fingerprint only: exit %d, stderr %q", res.code, res.stderr)
	}

	// The raft port: plain TCP, TLS without a client certificate, and a
	// certificate of another CA all fail; a node certificate succeeds.
	raftAddr := c.nodes[1].raft
	pc, err := net.DialTimeout("tcp", raftAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pc.SetDeadline(time.Now().Add(15 * time.Second))
	pc.Write([]byte{0x00, 0x81, 0xa4, 'T', 'e', 'r', 'm', 0x01}) // an AppendEntries header, in clear
	if data, err := io.ReadAll(pc); len(data) > 0 && data[0] != 0x15 {
		t.Errorf("raft answered plain TCP with %q (%v)", data, err)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("raft kept a plain TCP connection open")
	}
	pc.Close()
	foreignCert, foreignKey, err := other.Issue("intruder", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tls.X509KeyPair(foreignCert, foreignKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := c.pinnedTLS().RootCAs
	for name, cfg := range map[string]*tls.Config{
		"no client certificate":    {RootCAs: roots, ServerName: "127.0.0.1"},
		"another CA's certificate": {RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{foreign}},
	} {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", raftAddr, cfg)
		if err != nil {
			continue // refused in the handshake
		}
		conn.SetDeadline(time.Now().Add(15 * time.Second))
		conn.Write([]byte{0x00})
		if data, err := io.ReadAll(conn); err == nil || len(data) > 0 {
			t.Errorf("raft with %s: the connection stayed usable (read %q, %v)", name, data, err)
		}
		conn.Close()
	}
	if s := serial(t, raftAddr, c.nodeTLS(0)); s == "" {
		t.Error("raft with a node certificate: no handshake")
	}
	// The refusals are warned about once a minute: the first one is
	// logged, the two after it are counted for the next warning.
	testutil.WaitUntil(t, 15*time.Second, "node 1 to log the refused raft connections", func() bool {
		out, _ := os.ReadFile(c.nodes[1].logPath())
		return strings.Count(string(out), "refused a raft connection") == 1
	})
	for i, nd := range c.nodes {
		out, _ := os.ReadFile(nd.logPath())
		for _, bad := range []string{"unknown rpc type", "failed to decode incoming command"} {
			if strings.Contains(string(out), bad) {
				t.Errorf("node %d: a connection reached raft's decoder (%q)", i, bad)
			}
		}
	}

	// A failover over TLS: the new leader serves writes.
	dead := c.raftLeader()
	c.nodes[dead].p.stop(syscall.SIGKILL)
	testutil.WaitUntil(t, 30*time.Second, "a new raft leader", func() bool { i := c.raftLeader(); return i >= 0 && i != dead })
	if res := c.run("config", "set", "journal", "count=7"); res.code != 0 {
		t.Fatalf("a write after the failover: exit %d, stderr %s", res.code, res.stderr)
	}
}

// TestRotateCerts: `uniter controller rotate-certs` gives every node a
// new certificate, seen on fresh API and raft connections, while a
// connection opened before goes on; the cluster keeps serving and the
// agent's leadership does not move.
func TestRotateCerts(t *testing.T) {
	c := startCluster(t, 3)
	units := []*agentUnit{c.addUnit("journal/0", "journal", nil), c.addUnit("journal/1", "journal", nil)}
	for _, u := range units {
		u.start()
	}
	holder, term := c.waitElected(units)
	marks := map[string]int{}
	for _, u := range units {
		marks[u.unit] = len(readJournal(t, u.path("charm", "journal.log")))
	}
	pinned, node := c.pinnedTLS(), c.nodeTLS(0)
	before := map[string]string{}
	for _, nd := range c.nodes {
		before[nd.api] = serial(t, nd.api, pinned)
		before[nd.raft] = serial(t, nd.raft, node)
	}
	// A connection opened before the rotation, kept alive.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: pinned, MaxIdleConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	health := func() (*http.Response, error) {
		resp, err := hc.Get("https://" + c.nodes[0].api + "/v1/health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	if _, err := health(); err != nil {
		t.Fatal(err)
	}

	res := c.run("controller", "rotate-certs")
	if res.code != 0 || strings.Count(res.stdout, "new certificate serial") != 3 {
		t.Fatalf("rotate-certs: exit %d\nstdout %s\nstderr %s", res.code, res.stdout, res.stderr)
	}
	for _, nd := range c.nodes {
		for _, addr := range []string{nd.api, nd.raft} {
			cfg := pinned
			if addr == nd.raft {
				cfg = node // node 0's own certificate, rotated too: still the cluster CA's
			}
			if s := serial(t, addr, cfg); s == before[addr] {
				t.Errorf("%s presents serial %s after rotate-certs, as before", addr, s)
			}
		}
	}
	resp, err := health()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the connection opened before the rotation: %v", err)
	}
	if got := resp.TLS.PeerCertificates[0].SerialNumber.Text(16); got != before[c.nodes[0].api] {
		t.Errorf("the kept-alive connection presents %s, want the old %s (a new connection was made)", got, before[c.nodes[0].api])
	}
	// The cluster keeps serving, leadership unmoved.
	if res := c.run("config", "set", "journal", "count=3"); res.code != 0 {
		t.Fatalf("a write after rotate-certs: exit %d, stderr %s", res.code, res.stderr)
	}
	dead := c.raftLeader()
	c.nodes[dead].p.stop(syscall.SIGTERM) // raft between the others runs on the new certificates
	testutil.WaitUntil(t, 30*time.Second, "a new raft leader", func() bool { i := c.raftLeader(); return i >= 0 && i != dead })
	if res := c.run("config", "set", "journal", "count=4"); res.code != 0 {
		t.Fatalf("a write after a failover on the new certificates: exit %d, stderr %s", res.code, res.stderr)
	}
	if h, tm := c.leader("journal"); h != holder || tm != term {
		t.Errorf("the lease is %s term %d after rotate-certs, want %s term %d", h, tm, holder, term)
	}
	for _, u := range units {
		for _, e := range readJournal(t, u.path("charm", "journal.log"))[marks[u.unit]:] {
			if e.Hook == "leader-elected" || e.Hook == "leader-deposed" {
				t.Errorf("%s ran %s %s during rotate-certs", u.unit, e.Hook, e.Event)
			}
		}
	}
}
