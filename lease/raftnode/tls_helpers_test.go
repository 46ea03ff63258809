package raftnode_test

import (
	"crypto/tls"
	"sync"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/pki"
)

// testCA is the CA of every node of this test binary (and of the node
// processes it starts, which get it in their spec).
var testCA = sync.OnceValues(func() (*pki.CA, error) { return pki.NewCA("raftnode test CA", time.Now()) })

// mustCA returns testCA.
func mustCA(t testing.TB) *pki.CA {
	t.Helper()
	ca, err := testCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// nodeTLS is the mutual TLS configuration of a node whose certificate ca
// issued for 127.0.0.1.
func nodeTLS(t testing.TB, ca *pki.CA) *tls.Config {
	t.Helper()
	cfg, err := issueTLS(ca, "node")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func issueTLS(ca *pki.CA, name string) (*tls.Config, error) {
	certPEM, keyPEM, err := ca.Issue(name, []string{"127.0.0.1", "localhost"}, time.Now())
	if err != nil {
		return nil, err
	}
	var kp pki.Keypair
	if err := kp.Set(certPEM, keyPEM, ca.Cert); err != nil {
		return nil, err
	}
	return kp.MutualConfig(ca.Cert), nil
}
