package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/osutil"
	"github.com/uniter-dev/uniter/internal/pki"
)

// Files of a controller's TLS material, in DataDir/TLSDir (0700). The
// keys are 0600. Every node holds the CA key (see docs/controller.md,
// "TLS"): any node can answer a join or issue itself a new certificate.
const (
	TLSDir       = "tls"
	CACertFile   = "ca.crt"
	CAKeyFile    = "ca.key"
	NodeCertFile = "node.crt"
	NodeKeyFile  = "node.key"
)

// nodeTLS is a node's TLS material: the cluster CA and the certificate
// the node presents on its API and raft listeners and when it dials
// peers. The certificate can be replaced while the node runs (rotate):
// handshakes after it use the new one, connections already up go on.
type nodeTLS struct {
	dir   string
	id    string
	hosts []string // what the node certificate must name
	clk   clock.Clock
	ca    *pki.CA
	kp    pki.Keypair

	mu sync.Mutex // serialises rotate
}

// Renewal: a node issues itself a new certificate when less than
// renewBefore of the old one is left, checked at start and every
// renewEvery, so that a node running for longer than a certificate's
// validity never presents an expired one.
const (
	renewBefore = 30 * 24 * time.Hour
	renewEvery  = 12 * time.Hour
)

// nodeHosts is what a node's certificate names: the hosts of its API and
// raft addresses, and loopback (clients on the node's own machine).
func nodeHosts(addrs ...string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// hasTLS reports whether dataDir holds a node's TLS material.
func hasTLS(dataDir string) bool {
	return exists(filepath.Join(dataDir, TLSDir, NodeCertFile))
}

// bootstrapTLS makes a new cluster CA and this node's certificate.
func bootstrapTLS(dataDir, id string, hosts []string, clk clock.Clock) (*nodeTLS, error) {
	ca, err := pki.NewCA("uniter controller CA", clk.Now())
	if err != nil {
		return nil, fmt.Errorf("cannot make the cluster CA: %w", err)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	t := &nodeTLS{dir: filepath.Join(dataDir, TLSDir), id: id, hosts: hosts, clk: clk, ca: ca}
	if err := t.writeCA(ca.CertPEM(), keyPEM); err != nil {
		return nil, err
	}
	if _, err := t.rotate(); err != nil {
		return nil, err
	}
	return t, nil
}

// installTLS writes what a join brought (the CA and this node's
// certificate and key) and loads it.
func installTLS(dataDir, id string, hosts []string, clk clock.Clock, caCert, caKey, cert, key []byte) (*nodeTLS, error) {
	ca, err := pki.LoadCA(caCert, caKey)
	if err != nil {
		return nil, err
	}
	t := &nodeTLS{dir: filepath.Join(dataDir, TLSDir), id: id, hosts: hosts, clk: clk, ca: ca}
	if err := t.kp.Set(cert, key, ca.Cert); err != nil {
		return nil, err
	}
	if err := t.writeCA(caCert, caKey); err != nil {
		return nil, err
	}
	if err := t.writeNode(cert, key); err != nil {
		return nil, err
	}
	return t, nil
}

// loadTLS reads a node's TLS material. A certificate that does not name
// every one of hosts (the node's address moved) is reissued.
func loadTLS(dataDir, id string, hosts []string, clk clock.Clock) (*nodeTLS, error) {
	dir := filepath.Join(dataDir, TLSDir)
	read := func(name string) ([]byte, error) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("cannot read TLS material: %w", err)
		}
		return data, nil
	}
	var files [4][]byte
	for i, name := range []string{CACertFile, CAKeyFile, NodeCertFile, NodeKeyFile} {
		var err error
		if files[i], err = read(name); err != nil {
			return nil, err
		}
	}
	ca, err := pki.LoadCA(files[0], files[1])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CACertFile), err)
	}
	t := &nodeTLS{dir: dir, id: id, hosts: hosts, clk: clk, ca: ca}
	// A pair that does not load (a crash between writing the key and the
	// certificate), another CA's, one naming other hosts (the node's
	// address moved) or one expired: the node issues itself a new one.
	err = t.kp.Set(files[2], files[3], ca.Cert)
	if leaf := t.kp.Leaf(); err != nil || leaf.CheckSignatureFrom(ca.Cert) != nil || !pki.Covers(leaf, hosts) || t.expiring() {
		if _, err := t.rotate(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// rotate issues this node a new certificate for its hosts, writes it and
// presents it from the next handshake on.
func (t *nodeTLS) rotate() (api.NodeCertificate, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cert, key, err := t.ca.Issue(t.id, t.hosts, t.clk.Now())
	if err != nil {
		return api.NodeCertificate{}, err
	}
	if err := t.writeNode(cert, key); err != nil {
		return api.NodeCertificate{}, err
	}
	if err := t.kp.Set(cert, key, t.ca.Cert); err != nil {
		return api.NodeCertificate{}, err
	}
	return t.describe(), nil
}

// expiring reports whether the certificate presented has less than
// renewBefore left.
func (t *nodeTLS) expiring() bool {
	leaf := t.kp.Leaf()
	return leaf == nil || !t.clk.Now().Add(renewBefore).Before(leaf.NotAfter)
}

// renew reissues the node's certificate whenever it is expiring, checking
// every renewEvery until ctx ends.
func (t *nodeTLS) renew(ctx context.Context, log zerolog.Logger) {
	for {
		if t.expiring() {
			if cert, err := t.rotate(); err != nil {
				log.Error().Err(err).Msg("cannot renew this node's certificate")
			} else {
				log.Info().Str("serial", cert.Serial).Time("not_after", cert.NotAfter).Msg("renewed this node's certificate")
			}
		}
		timer := t.clk.NewTimer(renewEvery)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.Chan():
		}
	}
}

// setHosts makes sure the certificate names hosts too (the raft address
// stored from an earlier start), reissuing it if not.
func (t *nodeTLS) setHosts(hosts []string) error {
	t.mu.Lock()
	for _, h := range hosts {
		if !slices.Contains(t.hosts, h) {
			t.hosts = append(t.hosts, h)
		}
	}
	covered := pki.Covers(t.kp.Leaf(), t.hosts)
	t.mu.Unlock()
	if covered {
		return nil
	}
	_, err := t.rotate()
	return err
}

// describe is the certificate presented now.
func (t *nodeTLS) describe() api.NodeCertificate {
	leaf := t.kp.Leaf()
	hosts := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	return api.NodeCertificate{ID: t.id, Serial: leaf.SerialNumber.Text(16), NotAfter: leaf.NotAfter.UTC(), Hosts: hosts}
}

func (t *nodeTLS) writeCA(cert, key []byte) error {
	return t.write(map[string][]byte{CACertFile: cert, CAKeyFile: key})
}

func (t *nodeTLS) writeNode(cert, key []byte) error {
	// The key first: a crash in between leaves a pair that does not
	// load, and the next start issues a new one (loadTLS).
	return t.write(map[string][]byte{NodeKeyFile: key, NodeCertFile: cert})
}

// write writes files into the TLS directory atomically, 0600 each.
func (t *nodeTLS) write(files map[string][]byte) error {
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return fmt.Errorf("cannot write TLS material: %w", err)
	}
	for _, name := range []string{NodeKeyFile, NodeCertFile, CAKeyFile, CACertFile} {
		data, ok := files[name]
		if !ok {
			continue
		}
		if err := osutil.WriteFileAtomic(filepath.Join(t.dir, name), data, 0o600); err != nil {
			return fmt.Errorf("cannot write TLS material: %w", err)
		}
	}
	return nil
}

// apiConfig is the API listener's TLS: the node certificate, no client
// certificates (clients authenticate with bearer tokens), HTTP/1.1, and
// HTTP/2 too if h2 (NodeConfig.HTTP2): net/http's server speaks HTTP/2 on
// a TLS connection whose ALPN chose "h2".
func (t *nodeTLS) apiConfig(h2 bool) *tls.Config {
	c := t.kp.ServerConfig()
	c.NextProtos = []string{"http/1.1"}
	if h2 {
		c.NextProtos = []string{"h2", "http/1.1"}
	}
	return c
}

// raftConfig is raft's mutual TLS.
func (t *nodeTLS) raftConfig() *tls.Config { return t.kp.MutualConfig(t.ca.Cert) }

// clientConfig trusts the cluster CA only: for forwarding to the leader
// and for this node's own API calls.
func (t *nodeTLS) clientConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(t.ca.Cert)
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
}

// caPEM is the cluster CA's certificate.
func (t *nodeTLS) caPEM() []byte { return t.ca.CertPEM() }

// fingerprint is the cluster CA's.
func (t *nodeTLS) fingerprint() string { return t.ca.Fingerprint() }

// setUpTLS loads the node's TLS material, or makes it: a new cluster CA
// when bootstrapping, else a certificate the cluster signs through the
// join (before raft opens: raft's transport needs it).
// A join's failure is "cannot join controller at ...", like the join's.
func (c *Controller) setUpTLS(ctx context.Context, cfg NodeConfig) (*nodeTLS, error) {
	id, err := nodeID(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot start controller: %w", err)
	}
	// The configured API host too: the listener's address is resolved
	// (a DNS name in --api-addr becomes an IP address).
	hosts := nodeHosts(c.apiAddr, cfg.APIAddr, cfg.RaftAddr)
	var t *nodeTLS
	switch {
	case hasTLS(cfg.DataDir):
		t, err = loadTLS(cfg.DataDir, id, hosts, cfg.Clock)
	case exists(filepath.Join(cfg.DataDir, "raft.db")):
		// A node of a cluster from before TLS: a CA made here would be
		// this node's alone, and its peers' raft would refuse it.
		err = fmt.Errorf("data directory %s holds raft state but no TLS material (%s/): it comes from a uniter before TLS, "+
			"which cannot be upgraded in place; back it up with that uniter and restore it into a new data directory (docs/upgrades.md)",
			cfg.DataDir, filepath.Join(cfg.DataDir, TLSDir))
	case cfg.Join == "":
		t, err = bootstrapTLS(cfg.DataDir, id, hosts, cfg.Clock)
	case cfg.AdminToken == "":
		err = errors.New("cannot join a controller without the admin token (give a client config)")
	default:
		return joinTLS(ctx, cfg, id, hosts)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot start controller: %w", err)
	}
	return t, nil
}

// nodeID is the node's ID: cfg's, or the one node.json stores.
func nodeID(cfg NodeConfig) (string, error) {
	if cfg.ID != "" {
		return cfg.ID, nil
	}
	data, err := os.ReadFile(filepath.Join(cfg.DataDir, "node.json"))
	if err != nil {
		return "", fmt.Errorf("cannot read node identity: %w", err)
	}
	var stored struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &stored); err != nil || stored.ID == "" {
		return "", fmt.Errorf("cannot read node identity %s: no id", filepath.Join(cfg.DataDir, "node.json"))
	}
	return stored.ID, nil
}

// joinTLS has the cluster at cfg.Join sign this node's certificate
// request (authenticated with the admin token, over TLS to the pinned
// CA) and installs the answer: the certificate and the cluster CA.
func joinTLS(ctx context.Context, cfg NodeConfig, id string, hosts []string) (*nodeTLS, error) {
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(key, id, hosts)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	var ans api.CertificateResponse
	err = retryJoin(ctx, cfg, func() error {
		cl, err := joinClient(cfg)
		if err != nil {
			return err
		}
		defer cl.Close()
		ans, err = cl.SignCertificate(ctx, api.CertificateRequest{ID: id, CSR: string(csr)})
		if err != nil {
			return fmt.Errorf("cannot get a node certificate: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ca, err := pki.ParseCert([]byte(ans.CACert))
	if err != nil {
		return nil, fmt.Errorf("cannot join controller at %s: %w", cfg.Join, err)
	}
	if !(pki.Pin{CACert: cfg.JoinCACert, Fingerprint: cfg.JoinCAFingerprint}).Trusts(ca) {
		return nil, fmt.Errorf("cannot join controller at %s: it sent a CA other than the one pinned", cfg.Join)
	}
	return installTLS(cfg.DataDir, id, hosts, cfg.Clock, []byte(ans.CACert), []byte(ans.CAKey), []byte(ans.Certificate), keyPEM)
}

// joinClient is an admin client of the node at cfg.Join, trusting the
// pinned CA.
func joinClient(cfg NodeConfig) (*client.Client, error) {
	return client.New(client.Config{Addresses: []string{cfg.Join}, Token: cfg.AdminToken,
		CACert: cfg.JoinCACert, CAFingerprint: cfg.JoinCAFingerprint})
}
