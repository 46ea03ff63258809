package bench

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/pki"
)

// The transports profile-claims compares (-protos).
const (
	protoH1       = "h1"       // the typed client's own: HTTP/1.1, one transport per agent
	protoH2       = "h2"       // HTTP/2 over TLS, one transport (one connection) per agent
	protoH2Shared = "h2shared" // HTTP/2 over TLS, one transport and connection for all
)

// parseProtos reads -protos: a comma-separated list of transports, h1
// alone if empty.
func parseProtos(list string) ([]string, error) {
	if list == "" {
		return []string{protoH1}, nil
	}
	var out []string
	for _, p := range strings.Split(list, ",") {
		if !slices.Contains([]string{protoH1, protoH2, protoH2Shared}, p) {
			return nil, fmt.Errorf("unknown transport %q in -protos (want h1, h2 or h2shared)", p)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// protoClients makes the units' typed clients of addr for transport
// proto: the typed client's own for h1, else HTTP/2 transports trusting
// the CA that f pins.
func protoClients(proto string, f client.File, units []loadUnit, addr string) ([]*client.Client, error) {
	addrs := []string{addr}
	switch proto {
	case protoH1:
		return unitClients(f, units, addrs, nil)
	case protoH2Shared:
		hc, err := h2Client(f, addr)
		if err != nil {
			return nil, err
		}
		return unitClients(f, units, addrs, hc)
	}
	out := make([]*client.Client, len(units))
	for i := range units {
		hc, err := h2Client(f, addr)
		if err != nil {
			return nil, err
		}
		cs, err := unitClients(f, units[i:i+1], addrs, hc)
		if err != nil {
			return nil, err
		}
		out[i] = cs[0]
	}
	return out, nil
}

// h2Client is an HTTP client speaking only HTTP/2 over TLS to addr,
// trusting the CA that f pins, with the typed client's own transport's
// settings otherwise.
func h2Client(f client.File, addr string) (*http.Client, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	cfg := f.Config()
	tlsCfg, err := pki.Pin{CACert: cfg.CACert, Fingerprint: cfg.CAFingerprint}.ClientConfigFor(host)
	if err != nil {
		return nil, err
	}
	var protos http.Protocols
	protos.SetHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     tlsCfg,
		Protocols:           &protos,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		Proxy:               nil,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
	}}, nil
}
