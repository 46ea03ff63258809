package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
)

// Pin is what a client trusts: a CA's certificate (PEM, one or more), or
// the SHA-256 fingerprint of the CA's certificate, which the server then
// sends in its chain. With both, the fingerprint must be one of the PEM
// certificates'.
type Pin struct {
	CACert      []byte
	Fingerprint string
}

// Empty reports whether the pin trusts nothing.
func (p Pin) Empty() bool { return len(p.CACert) == 0 && p.Fingerprint == "" }

// Trusts reports whether ca is the pinned CA (by fingerprint, and among
// the pinned certificates if there are any).
func (p Pin) Trusts(ca *x509.Certificate) bool {
	if p.Empty() {
		return false
	}
	if p.Fingerprint != "" {
		if fp, err := NormalizeFingerprint(p.Fingerprint); err != nil || fp != Fingerprint(ca) {
			return false
		}
	}
	if len(p.CACert) > 0 {
		certs, err := ParseCerts(p.CACert)
		return err == nil && slices.ContainsFunc(certs, func(c *x509.Certificate) bool { return c.Equal(ca) })
	}
	return true
}

// ClientConfig is the TLS configuration of a client that trusts only
// servers whose certificate chains to the pinned CA and names the host
// dialled. It sends no client certificate. With only a fingerprint
// pinned, the name checked is the one sent in SNI, which TLS never sends
// for an IP address: such a connection is refused. Use ClientConfigFor
// or DialTLSContext to dial IP addresses with a fingerprint pin.
func (p Pin) ClientConfig() (*tls.Config, error) { return p.clientConfig("", false) }

// ClientConfigFor is ClientConfig for connections to serverName (a DNS
// name or an IP address), which the server's certificate must name.
func (p Pin) ClientConfigFor(serverName string) (*tls.Config, error) {
	return p.clientConfig(serverName, true)
}

// DialTLSContext returns an http.Transport DialTLSContext that dials with
// d and completes a handshake verified against the pin and the host of
// the address dialled.
func (p Pin) DialTLSContext(d *net.Dialer) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	if _, err := p.ClientConfig(); err != nil {
		return nil, err
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		cfg, err := p.ClientConfigFor(host)
		if err != nil {
			return nil, err
		}
		td := tls.Dialer{NetDialer: d, Config: cfg}
		return td.DialContext(ctx, network, addr)
	}, nil
}

func (p Pin) clientConfig(serverName string, bound bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	var fp string
	if p.Fingerprint != "" {
		var err error
		if fp, err = NormalizeFingerprint(p.Fingerprint); err != nil {
			return nil, err
		}
	}
	if len(p.CACert) > 0 {
		certs, err := ParseCerts(p.CACert)
		if err != nil {
			return nil, fmt.Errorf("cannot read pinned CA: %w", err)
		}
		if fp != "" && !slices.ContainsFunc(certs, func(c *x509.Certificate) bool { return Fingerprint(c) == fp }) {
			return nil, fmt.Errorf("the pinned CA certificate does not have the pinned fingerprint %s", fp)
		}
		cfg.RootCAs = x509.NewCertPool()
		for _, c := range certs {
			cfg.RootCAs.AddCert(c)
		}
		return cfg, nil
	}
	if fp == "" {
		return nil, errors.New("no CA pinned")
	}
	// Only the fingerprint: the chain is verified by hand against the
	// certificate the server sent that has it (crypto/x509 does the
	// verification; InsecureSkipVerify only skips the default one).
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		name := serverName
		if !bound {
			name = cs.ServerName
		}
		return verifyByFingerprint(cs, fp, name)
	}
	return cfg, nil
}

// verifyByFingerprint verifies the server's leaf, for name, against the
// CA in its chain whose fingerprint is fp.
func verifyByFingerprint(cs tls.ConnectionState, fp, name string) error {
	if name == "" {
		return errors.New("no server name to verify the certificate against")
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the server sent no certificate")
	}
	roots := x509.NewCertPool()
	found := false
	for _, c := range cs.PeerCertificates {
		if c.IsCA && Fingerprint(c) == fp {
			roots.AddCert(c)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("the server's certificate chain has no CA with the pinned fingerprint %s", fp)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// Keypair holds the certificate a TLS endpoint presents, which Set may
// replace while connections are open: handshakes after it present the new
// one, connections already up are not touched. Safe for concurrent use.
type Keypair struct {
	cur atomic.Pointer[tls.Certificate]
}

// Set parses certPEM and keyPEM and presents them from now on; chain is
// sent after the certificate (the CA's, so that clients pinning its
// fingerprint can find it).
func (k *Keypair) Set(certPEM, keyPEM []byte, chain ...*x509.Certificate) error {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("cannot load certificate: %w", err)
	}
	for _, ca := range chain {
		c.Certificate = append(c.Certificate, ca.Raw)
	}
	k.cur.Store(&c)
	return nil
}

// Leaf is the certificate presented now (nil before Set).
func (k *Keypair) Leaf() *x509.Certificate {
	c := k.cur.Load()
	if c == nil {
		return nil
	}
	return c.Leaf
}

func (k *Keypair) current() (*tls.Certificate, error) {
	c := k.cur.Load()
	if c == nil {
		return nil, errors.New("no certificate loaded")
	}
	return c, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (k *Keypair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) { return k.current() }

// GetClientCertificate is tls.Config.GetClientCertificate.
func (k *Keypair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.current()
}

// ServerConfig is the TLS configuration of a server presenting k's
// certificate to clients that need none (they authenticate otherwise).
func (k *Keypair) ServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: k.GetCertificate}
}

// MutualConfig is the TLS configuration of a peer of a mutual-TLS mesh:
// as a server it presents k's certificate and requires a client
// certificate issued by ca; as a client it presents k's certificate and
// verifies the server's against ca (the caller sets ServerName per dial).
func (k *Keypair) MutualConfig(ca *x509.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetCertificate:       k.GetCertificate,
		GetClientCertificate: k.GetClientCertificate,
		ClientAuth:           tls.RequireAndVerifyClientCert,
		ClientCAs:            pool,
		RootCAs:              pool,
	}
}
