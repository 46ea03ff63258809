package controller_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/lease/raftnode"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease"
)

// fastRaft shortens the raft node's tick for tests; raft's own timeouts
// keep their defaults, so that a busy test machine does not make the
// leadership move (the cluster tests pick the leader once).
func fastRaft(c *raftnode.Config) {
	c.Tick = 100 * time.Millisecond
}

type nodeOpts struct {
	dataDir    string // default: a new temporary directory
	join       string
	adminToken string
	lostAfter  time.Duration
	protoMax   uint64    // 0: the binary's range
	metricsTok string    // a metrics token, if any
	logTo      io.Writer // also receives the node's log lines, if set
	http2      bool      // NodeConfig.HTTP2
}

// startNode starts a real controller node (raft over BoltDB and TCP on
// 127.0.0.1) in a temporary directory; it is closed at cleanup.
func startNode(t *testing.T, o nodeOpts) *controller.Controller {
	t.Helper()
	c, err := controller.Start(t.Context(), nodeConfig(t, o))
	if err != nil {
		t.Fatal(err)
	}
	registerCA(c)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { closeNode(t, c) }) })
	return c
}

// nodeConfig is the configuration of a test node.
func nodeConfig(t *testing.T, o nodeOpts) controller.NodeConfig {
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	return controller.NodeConfig{
		DataDir:    o.dataDir,
		APIAddr:    "127.0.0.1:0",
		RaftAddr:   "127.0.0.1:0",
		Join:       o.join,
		AdminToken: o.adminToken,
		JoinCACert: caBundle(),
		LostAfter:  o.lostAfter,
		ProtoMin:   min(1, o.protoMax),
		ProtoMax:   o.protoMax,
		Clock:      clock.Real,
		Logger:     zerolog.New(logWriter(t, o.logTo)).Level(zerolog.InfoLevel),
		Tune:       fastRaft,
		// A metrics token, when the test names one.
		MetricsTokenHash: metricsHash(o.metricsTok),
		HTTP2:            o.http2,
	}
}

// logWriter is the test log, and also extra if set.
func logWriter(t *testing.T, extra io.Writer) io.Writer {
	if extra == nil {
		return zerolog.NewTestWriter(t)
	}
	return io.MultiWriter(zerolog.NewTestWriter(t), extra)
}

func closeNode(t *testing.T, c *controller.Controller) {
	if err := c.Close(); err != nil {
		t.Errorf("cannot close controller: %v", err)
	}
}

// bootstrap starts a single-node controller, waits until it accepts
// writes and returns it with its admin token.
func bootstrap(t *testing.T, o nodeOpts) (*controller.Controller, string) {
	t.Helper()
	c := startNode(t, o)
	path, created := c.ClientFile()
	if !created || filepath.Base(path) != controller.ClientFile {
		t.Fatalf("client file %q created=%v", path, created)
	}
	f, err := client.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	waitWritable(t, c)
	return c, f.Token
}

// waitWritable waits until the node leads and its cluster time started.
func waitWritable(t *testing.T, c *controller.Controller) {
	t.Helper()
	testutil.WaitUntil(t, 10*time.Second, "controller to accept writes", func() bool {
		return c.Node().IsLeader() && !c.Node().FSM().GlobalTime().IsZero()
	})
}

// testCAs are the cluster CAs of the nodes this test binary started
// (each bootstrap makes one; joined nodes share it), PEM: test clients
// trust them all.
var testCAs struct {
	mu  sync.Mutex
	pem []byte
}

// registerCA adds c's cluster CA to testCAs.
func registerCA(c *controller.Controller) {
	testCAs.mu.Lock()
	defer testCAs.mu.Unlock()
	if ca := c.CACert(); !bytes.Contains(testCAs.pem, ca) {
		testCAs.pem = append(testCAs.pem, ca...)
	}
}

// caBundle is testCAs' PEM (nil before any node started).
func caBundle() []byte {
	testCAs.mu.Lock()
	defer testCAs.mu.Unlock()
	return bytes.Clone(testCAs.pem)
}

// testTLS is a TLS client configuration trusting testCAs.
func testTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caBundle())
	return &tls.Config{RootCAs: pool}
}

func newClient(t *testing.T, token string, addrs ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Addresses: addrs, Token: token, Timeout: 5 * time.Second, CACert: caBundle()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// rawHTTP sends raw requests and closes its idle connections at cleanup.
type rawHTTP struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newRaw(t *testing.T, addr string) *rawHTTP {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: testTLS()}, Timeout: 30 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	return &rawHTTP{t: t, base: "https://" + addr, hc: hc}
}

type rawResp struct {
	status int
	header http.Header
	body   []byte
}

func (r *rawHTTP) do(method, path, token string, body io.Reader, hdr ...string) rawResp {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.t.Context(), method, r.base+path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return rawResp{status: resp.StatusCode, header: resp.Header, body: data}
}

func (r *rawHTTP) json(method, path, token, body string, hdr ...string) rawResp {
	r.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	return r.do(method, path, token, rd, hdr...)
}

func mustJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("cannot decode %q: %v", data, err)
	}
}

// comparable state: everything but the global time and the state index,
// which the time advancer moves every tick.
func stableState(c *controller.Controller) *lease.State {
	s := c.Node().FSM().State()
	s.GlobalTime, s.Index = time.Time{}, 0
	return s
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func metricsHash(tok string) string {
	if tok == "" {
		return ""
	}
	return controller.HashToken(tok)
}
