// Package pki makes and reads the X.509 material of a private cluster: a
// certificate authority, certificates it issues (directly or from a
// certificate signing request), PEM encoding, the SHA-256 fingerprint a
// client pins, and the TLS configurations built from them. Keys are ECDSA
// P-256; everything is crypto/x509 and crypto/tls.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"
)

// Validity periods of what this package issues.
const (
	// CAValidity is how long a new CA is valid: rotating a CA means
	// re-pinning every client, so it is made to outlive the cluster.
	CAValidity = 20 * 365 * 24 * time.Hour
	// CertValidity is how long an issued certificate is valid; rotating
	// one is cheap (see the controller's rotate-certs).
	CertValidity = 2 * 365 * 24 * time.Hour
	// backdate covers clocks a little behind the issuer's.
	backdate = time.Hour
)

// PEM block types.
const (
	blockCert = "CERTIFICATE"
	blockKey  = "PRIVATE KEY"
	blockCSR  = "CERTIFICATE REQUEST"
)

// CA is a certificate authority: its certificate and signing key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewKey returns a new ECDSA P-256 private key.
func NewKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cannot generate key: %w", err)
	}
	return k, nil
}

// NewCA makes a self-signed CA named commonName, valid from now for
// CAValidity.
func NewCA(commonName string, now time.Time) (*CA, error) {
	key, err := NewKey()
	if err != nil {
		return nil, fmt.Errorf("cannot make CA: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("cannot make CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("cannot make CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cannot make CA: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA reads a CA from its PEM certificate and PEM (PKCS #8) key, and
// checks that they belong together and that the certificate is a CA's.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA: %w", err)
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("cannot read CA: the certificate is not a CA's")
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("cannot read CA: the key does not match the certificate")
	}
	return &CA{Cert: cert, Key: key}, nil
}

// CertPEM is the CA's certificate, PEM-encoded.
func (ca *CA) CertPEM() []byte { return EncodeCert(ca.Cert) }

// KeyPEM is the CA's key, PEM-encoded (PKCS #8). It is a secret.
func (ca *CA) KeyPEM() ([]byte, error) { return EncodeKey(ca.Key) }

// Fingerprint is the SHA-256 fingerprint of the CA's certificate.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.Cert) }

// Issue makes a new key and a certificate for it, named commonName, valid
// for the hosts (DNS names or IP addresses) as a TLS server and client.
// It returns both PEM-encoded.
func (ca *CA) Issue(commonName string, hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := NewKey()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot issue certificate: %w", err)
	}
	der, err := ca.sign(commonName, hosts, key.Public(), now)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = EncodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot issue certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: blockCert, Bytes: der}), keyPEM, nil
}

// SignCSR issues a certificate for a PEM certificate signing request
// whose common name is commonName, after checking its signature: the
// request's SANs (DNS names and IP addresses) become the certificate's.
// The caller decides whether the requester may have them. It returns the
// certificate in PEM.
func (ca *CA) SignCSR(csrPEM []byte, commonName string, now time.Time) ([]byte, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != blockCSR {
		return nil, errors.New("cannot sign certificate request: not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cannot sign certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("cannot sign certificate request: %w", err)
	}
	if csr.Subject.CommonName != commonName {
		return nil, fmt.Errorf("cannot sign certificate request: it names %q, want %q", csr.Subject.CommonName, commonName)
	}
	hosts := slices.Clone(csr.DNSNames)
	for _, ip := range csr.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	der, err := ca.sign(csr.Subject.CommonName, hosts, csr.PublicKey, now)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: blockCert, Bytes: der}), nil
}

// sign issues the DER certificate of pub.
func (ca *CA) sign(commonName string, hosts []string, pub any, now time.Time) ([]byte, error) {
	if len(hosts) == 0 {
		return nil, errors.New("cannot issue certificate: no hosts")
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("cannot issue certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(CertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	addHosts(tmpl, hosts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("cannot issue certificate: %w", err)
	}
	return der, nil
}

// NewCSR makes a PEM certificate signing request for key, named
// commonName, for the hosts (DNS names or IP addresses).
func NewCSR(key crypto.Signer, commonName string, hosts []string) ([]byte, error) {
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: commonName}}
	for _, h := range dedupe(hosts) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("cannot make certificate request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: blockCSR, Bytes: der}), nil
}

// addHosts puts hosts into tmpl's SANs, IP addresses as such.
func addHosts(tmpl *x509.Certificate, hosts []string) {
	for _, h := range dedupe(hosts) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
}

// Covers reports whether cert is valid for every one of hosts.
func Covers(cert *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func dedupe(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// newSerial is a random 128-bit serial number.
func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

// EncodeCert is cert in PEM.
func EncodeCert(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockCert, Bytes: cert.Raw})
}

// EncodeKey is key in PEM (PKCS #8).
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("cannot encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: blockKey, Bytes: der}), nil
}

// ParseCert reads the first certificate of a PEM bundle.
func ParseCert(data []byte) (*x509.Certificate, error) {
	certs, err := ParseCerts(data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// ParseCerts reads every certificate of a PEM bundle (at least one);
// other blocks are an error.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := bytes.TrimSpace(data); len(rest) > 0; rest = bytes.TrimSpace(rest) {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("cannot read certificate: not PEM")
		}
		if block.Type != blockCert {
			return nil, fmt.Errorf("cannot read certificate: a PEM %q block, want %q", block.Type, blockCert)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("cannot read certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("cannot read certificate: no PEM certificate")
	}
	return certs, nil
}

// ParseKey reads a PEM (PKCS #8) private key.
func ParseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != blockKey {
		return nil, fmt.Errorf("cannot read key: not a PEM %q block", blockKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cannot read key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("cannot read key: a %T cannot sign", k)
	}
	return s, nil
}

// Fingerprint is the SHA-256 of cert's DER encoding, as "sha256:" and 64
// lowercase hex digits.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// NormalizeFingerprint checks a fingerprint given by a user and returns it
// as Fingerprint writes it. The "sha256:" prefix is optional; colons and
// upper case are accepted.
func NormalizeFingerprint(fp string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(fp))
	s = strings.TrimPrefix(s, "sha256:")
	s = strings.ReplaceAll(s, ":", "")
	if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("bad CA fingerprint %q: want sha256: and 64 hex digits", fp)
	}
	return "sha256:" + s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}
