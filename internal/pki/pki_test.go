package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/pki"
)

var now = time.Now()

func newCA(t *testing.T, name string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestCARoundTripAndFingerprint(t *testing.T) {
	ca := newCA(t, "test CA")
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != "test CA" {
		t.Fatalf("CA certificate %+v", ca.Cert.Subject)
	}
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := pki.LoadCA(ca.CertPEM(), key)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Cert.Equal(ca.Cert) || back.Fingerprint() != ca.Fingerprint() {
		t.Error("LoadCA does not give back the CA")
	}
	fp := ca.Fingerprint()
	if !strings.HasPrefix(fp, "sha256:") || len(fp) != len("sha256:")+64 {
		t.Errorf("fingerprint %q", fp)
	}
	otherKey, _ := newCA(t, "other").KeyPEM()
	if _, err := pki.LoadCA(ca.CertPEM(), otherKey); err == nil {
		t.Error("LoadCA accepted another CA's key")
	}
	leaf, leafKey, err := ca.Issue("n", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadCA(leaf, leafKey); err == nil {
		t.Error("LoadCA accepted a certificate that is not a CA's")
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"sha256:" + hex, "sha256:" + hex, true},
		{hex, "sha256:" + hex, true},
		{"SHA256:" + strings.ToUpper(hex), "sha256:" + hex, true},
		{"sha256:" + strings.Repeat("AB:", 31) + "AB", "sha256:" + hex, true},
		{"sha256:abc", "", false},
		{"sha256:" + strings.Repeat("zz", 32), "", false},
		{"", "", false},
	} {
		got, err := pki.NormalizeFingerprint(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v", tc.in, got, err)
		}
	}
}

// TestIssueAndSignCSR: a certificate issued directly or from a CSR chains
// to the CA, names exactly its hosts, and serves both as a TLS server and
// a TLS client.
func TestIssueAndSignCSR(t *testing.T) {
	ca := newCA(t, "test CA")
	hosts := []string{"node-1.example", "10.0.0.1", "::1"}
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "node-1", hosts)
	if err != nil {
		t.Fatal(err)
	}
	fromCSR, err := ca.SignCSR(csr, "node-1", now)
	if err != nil {
		t.Fatal(err)
	}
	direct, _, err := ca.Issue("node-1", hosts, now)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for name, certPEM := range map[string][]byte{"from a CSR": fromCSR, "issued": direct} {
		cert, err := pki.ParseCert(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: h, CurrentTime: now,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("%s: not valid for %s: %v", name, h, err)
			}
		}
		if cert.VerifyHostname("10.0.0.2") == nil || cert.VerifyHostname("other.example") == nil {
			t.Errorf("%s: valid for a host it was not issued for", name)
		}
		if !pki.Covers(cert, hosts) || pki.Covers(cert, append(hosts, "10.0.0.2")) {
			t.Errorf("%s: Covers is wrong", name)
		}
		if cert.Subject.CommonName != "node-1" || cert.IsCA {
			t.Errorf("%s: subject %v, CA %v", name, cert.Subject, cert.IsCA)
		}
	}
}

func TestSignCSRRefuses(t *testing.T) {
	ca := newCA(t, "test CA")
	key, _ := pki.NewKey()
	csr, err := pki.NewCSR(key, "node-1", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csr)
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-5] ^= 0xff // in the signature
	for _, tc := range []struct {
		name string
		csr  []byte
		cn   string
	}{
		{"another name", csr, "node-2"},
		{"not PEM", []byte("hello"), "node-1"},
		{"a certificate, not a request", ca.CertPEM(), "node-1"},
		{"a bad signature", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}), "node-1"},
	} {
		if _, err := ca.SignCSR(tc.csr, tc.cn, now); err == nil {
			t.Errorf("%s: signed", tc.name)
		}
	}
}

// serve runs a TLS server with cfg on loopback that answers "ok" to each
// connection, and returns its address.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if c.(*tls.Conn).Handshake() == nil {
				io.WriteString(c, "ok")
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// dial connects with cfg and reads the server's "ok"; the error is the
// handshake's or the read's.
func dial(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func keypair(t *testing.T, ca *pki.CA, hosts ...string) *pki.Keypair {
	t.Helper()
	cert, key, err := ca.Issue("node", hosts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var kp pki.Keypair
	if err := kp.Set(cert, key, ca.Cert); err != nil {
		t.Fatal(err)
	}
	return &kp
}

// TestPinClientConfig: a client trusts a server of the pinned CA, by
// certificate or fingerprint, and nothing else.
func TestPinClientConfig(t *testing.T) {
	ca, other := newCA(t, "cluster"), newCA(t, "other")
	addr := serve(t, keypair(t, ca, "127.0.0.1").ServerConfig())
	wrongHost := serve(t, keypair(t, ca, "10.9.9.9").ServerConfig())
	for _, tc := range []struct {
		name       string
		pin        pki.Pin
		addr       string
		ok, trusts bool
	}{
		{"the CA certificate", pki.Pin{CACert: ca.CertPEM()}, addr, true, true},
		{"its fingerprint", pki.Pin{Fingerprint: ca.Fingerprint()}, addr, true, true},
		{"both", pki.Pin{CACert: ca.CertPEM(), Fingerprint: ca.Fingerprint()}, addr, true, true},
		{"a bundle holding it", pki.Pin{CACert: append(other.CertPEM(), ca.CertPEM()...)}, addr, true, true},
		{"another CA", pki.Pin{CACert: other.CertPEM()}, addr, false, false},
		{"another fingerprint", pki.Pin{Fingerprint: other.Fingerprint()}, addr, false, false},
		{"the CA, a certificate for another host", pki.Pin{CACert: ca.CertPEM()}, wrongHost, false, true},
		{"the fingerprint, a certificate for another host", pki.Pin{Fingerprint: ca.Fingerprint()}, wrongHost, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, how := range []string{"ClientConfigFor", "DialTLSContext"} {
				var err error
				if how == "ClientConfigFor" {
					var cfg *tls.Config
					if cfg, err = tc.pin.ClientConfigFor("127.0.0.1"); err != nil {
						t.Fatal(err)
					}
					_, err = dial(tc.addr, cfg)
				} else {
					dialTLS, derr := tc.pin.DialTLSContext(&net.Dialer{Timeout: 5 * time.Second})
					if derr != nil {
						t.Fatal(derr)
					}
					var c net.Conn
					if c, err = dialTLS(t.Context(), "tcp", tc.addr); err == nil {
						c.Close()
					}
				}
				if (err == nil) != tc.ok {
					t.Errorf("%s: dial: %v, want ok=%v", how, err, tc.ok)
				}
			}
			if tc.pin.Trusts(ca.Cert) != tc.trusts {
				t.Errorf("Trusts(the CA) = %v", !tc.trusts)
			}
		})
	}
	// ClientConfig, not bound to a name, cannot check an IP address
	// against a fingerprint pin (no SNI): it refuses rather than skip it.
	unbound, err := pki.Pin{Fingerprint: ca.Fingerprint()}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(wrongHost, unbound); err == nil {
		t.Error("a fingerprint pin without a server name accepted a certificate for another host")
	}
	for name, pin := range map[string]pki.Pin{
		"nothing":                      {},
		"a fingerprint not the cert's": {CACert: ca.CertPEM(), Fingerprint: other.Fingerprint()},
		"not PEM":                      {CACert: []byte("nope")},
		"a bad fingerprint":            {Fingerprint: "sha256:12"},
	} {
		if _, err := pin.ClientConfig(); err == nil {
			t.Errorf("ClientConfig with %s succeeded", name)
		}
	}
	if (pki.Pin{CACert: ca.CertPEM()}).Trusts(other.Cert) || (pki.Pin{Fingerprint: ca.Fingerprint()}).Trusts(other.Cert) {
		t.Error("a pin trusts another CA")
	}
}

// TestMutualConfig: a mutual-TLS server accepts only clients with a
// certificate of its CA.
func TestMutualConfig(t *testing.T) {
	ca, other := newCA(t, "cluster"), newCA(t, "other")
	addr := serve(t, keypair(t, ca, "127.0.0.1").MutualConfig(ca.Cert))
	peer := keypair(t, ca, "127.0.0.1").MutualConfig(ca.Cert)
	peer.ServerName = "127.0.0.1"
	if _, err := dial(addr, peer); err != nil {
		t.Fatalf("a peer of the cluster: %v", err)
	}
	foreign := keypair(t, other, "127.0.0.1").MutualConfig(other.Cert)
	foreign.RootCAs = peer.RootCAs // it trusts the server; only its own certificate is wrong
	foreign.ServerName = "127.0.0.1"
	if _, err := dial(addr, foreign); err == nil {
		t.Error("a client with another CA's certificate was accepted")
	}
	none := &tls.Config{RootCAs: peer.RootCAs, ServerName: "127.0.0.1"}
	if _, err := dial(addr, none); err == nil {
		t.Error("a client with no certificate was accepted")
	}
}

// TestKeypairSetReplacesForNewHandshakes: after Set, new handshakes get
// the new certificate; a connection made before keeps working.
func TestKeypairSetReplacesForNewHandshakes(t *testing.T) {
	ca := newCA(t, "cluster")
	kp := keypair(t, ca, "127.0.0.1")
	old := kp.Leaf().SerialNumber
	ln, err := tls.Listen("tcp", "127.0.0.1:0", kp.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go c.(*tls.Conn).Handshake()
			accepted <- c
		}
	}()
	cfg, _ := pki.Pin{CACert: ca.CertPEM()}.ClientConfig()
	first, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	srv1 := <-accepted
	defer srv1.Close()
	if err := first.Handshake(); err != nil {
		t.Fatal(err)
	}
	cert, key, _ := ca.Issue("node", []string{"127.0.0.1"}, time.Now())
	if err := kp.Set(cert, key, ca.Cert); err != nil {
		t.Fatal(err)
	}
	second, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	srv2 := <-accepted
	defer srv2.Close()
	if err := second.Handshake(); err != nil {
		t.Fatal(err)
	}
	if got := second.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(old) == 0 {
		t.Error("a handshake after Set presents the old certificate")
	}
	if got := first.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(old) != 0 {
		t.Error("the first connection's certificate changed")
	}
	// The first connection still carries data.
	go io.WriteString(srv1, "still here")
	buf := make([]byte, len("still here"))
	first.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(first, buf); err != nil || string(buf) != "still here" {
		t.Errorf("the connection made before Set: %q, %v", buf, err)
	}
}
