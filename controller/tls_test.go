package controller_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/pki"
)

// presented is the serial of the certificate addr presents on a fresh
// TLS connection (trusting the test CAs).
func presented(t *testing.T, addr string) string {
	t.Helper()
	cfg := testTLS()
	cfg.ServerName, _, _ = net.SplitHostPort(addr)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// TestJoinedNodesShareTheCA: the nodes that joined hold the bootstrap
// node's CA (certificate and key) and a certificate it issued for their
// hosts; every TLS file is 0600 in a 0700 directory.
func TestJoinedNodesShareTheCA(t *testing.T) {
	nodes, _, dirs := startCluster(t)
	ca, err := pki.ParseCert(nodes[0].CACert())
	if err != nil {
		t.Fatal(err)
	}
	key0, err := os.ReadFile(filepath.Join(dirs[0], controller.TLSDir, controller.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		if string(n.CACert()) != string(nodes[0].CACert()) {
			t.Errorf("node %d has another CA", i)
		}
		if key, err := os.ReadFile(filepath.Join(dirs[i], controller.TLSDir, controller.CAKeyFile)); err != nil || string(key) != string(key0) {
			t.Errorf("node %d's CA key differs (%v)", i, err)
		}
		certPEM, err := os.ReadFile(filepath.Join(dirs[i], controller.TLSDir, controller.NodeCertFile))
		if err != nil {
			t.Fatal(err)
		}
		cert, err := pki.ParseCert(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.CheckSignatureFrom(ca); err != nil || cert.Subject.CommonName != n.Node().ID() {
			t.Errorf("node %d: certificate %v not the CA's for its ID (%v)", i, cert.Subject, err)
		}
		if !pki.Covers(cert, []string{"127.0.0.1", "localhost"}) {
			t.Errorf("node %d: certificate names %v %v", i, cert.DNSNames, cert.IPAddresses)
		}
		dir := filepath.Join(dirs[i], controller.TLSDir)
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("node %d: %s mode %v (%v)", i, dir, fi.Mode(), err)
		}
		for _, f := range []string{controller.CACertFile, controller.CAKeyFile, controller.NodeCertFile, controller.NodeKeyFile} {
			if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("node %d: %s mode %v (%v)", i, f, fi.Mode(), err)
			}
		}
	}
}

// TestAPIRefusesPlainHTTP: a plain HTTP request with the admin token gets
// Go's 400 for HTTP on an HTTPS port, from the TLS layer: it is never
// routed, so nothing is answered or logged as an API request.
func TestAPIRefusesPlainHTTP(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	conn, err := net.DialTimeout("tcp", c.APIAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+admin+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") || strings.Contains(string(body), "controller") {
		t.Fatalf("plain HTTP answered %d %q, want Go's 400 for HTTP to HTTPS", resp.StatusCode, body)
	}
}

// TestAPIOffersHTTP2OnlyWhenAsked: a node serves HTTP/1.1 to every
// client, and HTTP/2 only with NodeConfig.HTTP2.
func TestAPIOffersHTTP2OnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		http2 bool
	}{{"off by default", false}, {"on", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c, admin := bootstrap(t, nodeOpts{http2: tc.http2})
			for _, h2 := range []bool{false, true} {
				var protos http.Protocols
				protos.SetHTTP1(!h2)
				protos.SetHTTP2(h2)
				tr := &http.Transport{TLSClientConfig: testTLS(), Protocols: &protos}
				defer tr.CloseIdleConnections()
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+c.APIAddr()+"/v1/status", nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+admin)
				resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
				if h2 && !tc.http2 {
					if err == nil {
						resp.Body.Close()
						t.Fatalf("an HTTP/2-only client got %s from a node without HTTP2", resp.Proto)
					}
					continue
				}
				if err != nil {
					t.Fatalf("h2=%v: %v", h2, err)
				}
				resp.Body.Close()
				if want := map[bool]int{false: 1, true: 2}[h2]; resp.StatusCode != http.StatusOK || resp.ProtoMajor != want {
					t.Errorf("h2=%v: %d over %s, want 200 over HTTP/%d", h2, resp.StatusCode, resp.Proto, want)
				}
			}
		})
	}
}

// TestCertificateEndpoints: signing a certificate request and rotating a
// node's certificate are admin only; a bad request changes nothing;
// rotation changes what the node presents on a fresh connection.
func TestCertificateEndpoints(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	seed(t, c.APIAddr(), admin)
	raw := newRaw(t, c.APIAddr())
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "node-9", []string{"10.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	body := func(id string, csr []byte) string {
		data, _ := json.Marshal(api.CertificateRequest{ID: id, CSR: string(csr)})
		return string(data)
	}
	for _, tc := range []struct {
		name, token, body string
		status            int
	}{
		{"a unit", tokDB0, body("node-9", csr), http.StatusForbidden},
		{"no token", "", body("node-9", csr), http.StatusUnauthorized},
		{"another name than the request's", admin, body("node-8", csr), http.StatusBadRequest},
		{"not a request", admin, body("node-9", []byte("junk")), http.StatusBadRequest},
		{"a bad id", admin, body("a b", csr), http.StatusBadRequest},
	} {
		if r := raw.json("POST", "/v1/cluster/certificates", tc.token, tc.body); r.status != tc.status {
			t.Errorf("sign, %s: %d %s, want %d", tc.name, r.status, r.body, tc.status)
		}
	}
	r := raw.json("POST", "/v1/cluster/certificates", admin, body("node-9", csr))
	if r.status != http.StatusOK {
		t.Fatalf("sign: %d %s", r.status, r.body)
	}
	var ans api.CertificateResponse
	mustJSON(t, r.body, &ans)
	cert, err := pki.ParseCert([]byte(ans.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA([]byte(ans.CACert), []byte(ans.CAKey))
	if err != nil {
		t.Fatal(err)
	}
	if cert.CheckSignatureFrom(ca.Cert) != nil || cert.Subject.CommonName != "node-9" || !pki.Covers(cert, []string{"10.0.0.9"}) ||
		ans.CACert != string(c.CACert()) {
		t.Errorf("signed %v for %v, CA %v", cert.Subject, cert.IPAddresses, ca.Cert.Subject)
	}

	before := presented(t, c.APIAddr())
	if r := raw.json("POST", "/v1/node/certificate/rotate", tokDB0, ""); r.status != http.StatusForbidden {
		t.Errorf("rotate as a unit: %d %s", r.status, r.body)
	}
	if got := presented(t, c.APIAddr()); got != before {
		t.Fatalf("a refused rotation changed the certificate")
	}
	r = raw.json("POST", "/v1/node/certificate/rotate", admin, "")
	if r.status != http.StatusOK {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	var nc api.NodeCertificate
	mustJSON(t, r.body, &nc)
	if nc.ID != c.Node().ID() || nc.Serial == before || nc.Serial != presented(t, c.APIAddr()) || nc.Serial != c.Certificate().Serial {
		t.Errorf("rotated to %+v; the node presents %s (was %s)", nc, presented(t, c.APIAddr()), before)
	}
	// The node still serves.
	if _, err := newClient(t, admin, c.APIAddr()).Status(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestRestartOnAnotherHostReissues: a node restarted on an address its
// certificate does not name issues itself one that does (with the CA it
// holds), and keeps the CA.
func TestRestartOnAnotherHostReissues(t *testing.T) {
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	} else {
		ln.Close()
	}
	dir := t.TempDir()
	c, _ := bootstrap(t, nodeOpts{dataDir: dir})
	ca, first := string(c.CACert()), c.Certificate()
	closeNode(t, c)
	cfg := nodeConfig(t, nodeOpts{dataDir: dir})
	cfg.APIAddr = "127.0.0.2:0"
	again, err := controller.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeNode(t, again) })
	got := again.Certificate()
	if string(again.CACert()) != ca || got.Serial == first.Serial {
		t.Fatalf("after the move: CA kept %v, certificate %+v (was %+v)", string(again.CACert()) == ca, got, first)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, controller.TLSDir, controller.NodeCertFile))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCert(certPEM)
	if err != nil || !pki.Covers(cert, []string{"127.0.0.2", "127.0.0.1"}) {
		t.Errorf("the stored certificate names %v (%v)", cert.IPAddresses, err)
	}
	if s := presented(t, again.APIAddr()); s != got.Serial {
		t.Errorf("the API presents %s, want the new %s", s, got.Serial)
	}
}
