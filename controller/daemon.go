package controller

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/lease/raftnode"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/osutil"
	"github.com/uniter-dev/uniter/internal/version"
	"github.com/uniter-dev/uniter/internal/worker"
	"github.com/uniter-dev/uniter/lease"
)

// Files in a controller's data directory (beside the raft node's own).
const (
	// AdminTokenFile holds the hex SHA-256 of the admin token (0600); the
	// token itself is only in the admin client.yaml.
	AdminTokenFile = "admin-token.sha256"
	// ClientFile is the admin client.yaml a bootstrapping node writes.
	ClientFile = "client.yaml"
)

// NodeConfig configures Start.
type NodeConfig struct {
	// DataDir holds the raft state, AdminTokenFile and (on the node that
	// bootstrapped) ClientFile.
	DataDir string
	// ID is the raft server ID; empty: the one stored by an earlier start,
	// or a new random "node-xxxxxx".
	ID string
	// APIAddr is where the HTTP API listens, HOST:PORT (port 0 picks one);
	// it is also the address other nodes forward writes to, so the host
	// must not be unspecified (0.0.0.0).
	APIAddr string
	// RaftAddr is where raft listens (see raftnode.Config.RaftAddr).
	RaftAddr string
	// Join, if set, is the API address of a node of the cluster to join;
	// the node asks it (with AdminToken) to add this node as a voter.
	// Empty: bootstrap a new single-node cluster on the first start.
	Join string
	// AdminToken authenticates the join; its hash becomes this node's
	// admin token hash. Not needed to bootstrap or restart.
	AdminToken string
	// JoinCACert and JoinCAFingerprint pin the CA of the cluster to join
	// (from the admin client.yaml; one is needed with Join). The join
	// brings this node its certificate and the CA (see docs/controller.md,
	// "TLS").
	JoinCACert        []byte
	JoinCAFingerprint string
	// LostAfter is the server's Config.LostAfter.
	LostAfter time.Duration
	// MaxBlocking is the server's Config.MaxBlocking (0: the default).
	MaxBlocking int
	// MetricsTokenHash is the server's Config.MetricsTokenHash.
	MetricsTokenHash string
	Clock            clock.Clock
	Logger           zerolog.Logger
	// Tune, if set, adjusts the raft node's configuration (tests use it to
	// shorten timeouts).
	Tune func(*raftnode.Config)
	// ProtoMin and ProtoMax are the controller protocol versions the node
	// speaks; zero: the binary's (package internal/version).
	ProtoMin, ProtoMax uint64
	// NoBatching proposes every write in a raft log entry of its own (see
	// raftnode.Config.NoBatching); the default groups concurrent ones.
	NoBatching bool
	// NoLeaderRenew makes every lease renewal a raft log entry (see
	// raftnode.Config.NoLeaderRenew); the default lets the raft leader
	// answer a holder's renewal from memory.
	NoLeaderRenew bool
	// HTTP2 offers HTTP/2 (ALPN "h2") on the API besides HTTP/1.1, for
	// clients that ask for it. Off by default: the typed client speaks
	// HTTP/1.1, and B5 measured HTTP/2 dearer per claim (BENCHMARKS.md,
	// "B5"); the benchmark's profile turns it on to compare the two.
	HTTP2 bool
}

// Controller is a running controller node: a raft node and the workers
// that serve it (the HTTPS API, the failure watch, the announcer).
type Controller struct {
	node       *raftnode.Node
	tls        *nodeTLS
	apiAddr    string
	clientFile string
	created    bool
	workers    *worker.Group
}

// Run runs a controller node until ctx ends (nil) or the node fails (why:
// the API server could not serve, or its cluster moved to a protocol it
// does not speak). started, if set, is called once the node serves its
// API; its error stops the node and is returned. Every goroutine Run
// started has ended when it returns.
func Run(ctx context.Context, cfg NodeConfig, started func(*Controller) error) error {
	c, err := start(ctx, ctx, cfg)
	if err != nil {
		return err
	}
	if started != nil {
		if err := started(c); err != nil {
			c.Close()
			return err
		}
	}
	return c.wait()
}

// Start opens (bootstrapping or joining if new) a controller node and
// serves its API until Close. On the first start of a bootstrapping node
// it generates the admin token and writes ClientFile (0600). ctx bounds
// the start only.
func Start(ctx context.Context, cfg NodeConfig) (*Controller, error) {
	return start(ctx, context.WithoutCancel(ctx), cfg)
}

// start starts a node whose workers run until life ends or Close.
func start(ctx, life context.Context, cfg NodeConfig) (_ *Controller, err error) {
	if cfg.DataDir == "" || cfg.Clock == nil {
		return nil, errors.New("cannot start controller: need a data directory and a clock")
	}
	if err := checkAdvertised(cfg.APIAddr); err != nil {
		return nil, fmt.Errorf("cannot start controller: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot start controller: %w", err)
	}
	if cfg.ID == "" && !exists(filepath.Join(cfg.DataDir, "node.json")) {
		cfg.ID = "node-" + randomHex(3)
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("cannot start controller: cannot listen for the API: %w", err)
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	c := &Controller{apiAddr: ln.Addr().String()}
	if err := protocolRange(&cfg); err != nil {
		return nil, fmt.Errorf("cannot start controller: %w", err)
	}
	if c.tls, err = c.setUpTLS(ctx, cfg); err != nil {
		return nil, err
	}
	hash, err := c.adminTokenHash(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot start controller: %w", err)
	}
	nc := raftnode.Config{ID: cfg.ID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr, APIAddr: c.apiAddr, TLS: c.tls.raftConfig(),
		Bootstrap: cfg.Join == "", Clock: cfg.Clock, Logger: cfg.Logger, ProtoMin: cfg.ProtoMin, ProtoMax: cfg.ProtoMax,
		NoBatching: cfg.NoBatching, NoLeaderRenew: cfg.NoLeaderRenew}
	if cfg.Tune != nil {
		cfg.Tune(&nc)
	}
	if c.node, err = raftnode.Open(ctx, nc); err != nil {
		return nil, fmt.Errorf("cannot start controller: %w", err)
	}
	// The raft address may be the one stored by an earlier start.
	if err := c.tls.setHosts(nodeHosts(c.node.RaftAddr())); err != nil {
		c.node.Close()
		return nil, fmt.Errorf("cannot start controller: %w", err)
	}
	srv, err := NewServer(Config{Node: c.node, AdminTokenHash: hash, Clock: cfg.Clock, Logger: cfg.Logger,
		LostAfter: cfg.LostAfter, MaxBlocking: cfg.MaxBlocking, MetricsTokenHash: cfg.MetricsTokenHash,
		TLS: c.tls.clientConfig(), CA: c.tls.ca, RotateCertificate: c.tls.rotate})
	if err != nil {
		c.node.Close()
		return nil, fmt.Errorf("cannot start controller: %w", err)
	}
	// HTTPS only: a plain HTTP request gets Go's 400 "Client sent an
	// HTTP request to an HTTPS server" and is never routed.
	tlsLn := tls.NewListener(ln, c.tls.apiConfig(cfg.HTTP2))
	// The raft node outlives the workers, which all use it: the API
	// stops first, then the failure watch, then the node is closed.
	c.workers = worker.NewGroup(life)
	c.workers.Go("raft node", c.watchFailure)
	c.workers.Go("certificate renewal", func(ctx context.Context) error {
		c.tls.renew(ctx, cfg.Logger.With().Str("component", "tls").Logger())
		return nil
	})
	c.workers.Go("API server", func(ctx context.Context) error { return srv.Serve(ctx, tlsLn) })
	// Started after the API, so it stops before it: a leader that stops
	// hands raft leadership over while it still forwards writes.
	c.workers.Go("raft hand-off", func(ctx context.Context) error {
		<-ctx.Done()
		c.handOff(cfg.Logger)
		return nil
	})
	if cfg.Join != "" && !c.isVoter(ctx) {
		// The join records this node's range and addresses.
		if err := c.join(ctx, cfg); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	// Asynchronous: a node whose cluster has no quorum yet (the others are
	// starting too) must not wait for it to start.
	c.workers.Go("announcer", func(ctx context.Context) error {
		c.announce(ctx, hash, cfg.Clock, cfg.Logger)
		return nil
	})
	return c, nil
}

// protocolRange fills in the binary's protocol range if cfg has none.
func protocolRange(cfg *NodeConfig) error {
	if cfg.ProtoMin != 0 || cfg.ProtoMax != 0 {
		return nil
	}
	var err error
	cfg.ProtoMin, cfg.ProtoMax, err = version.Protocol()
	return err
}

// watchFailure fails when the node does (its cluster moved to a
// protocol it does not speak), which stops the API: Close returns why.
func (c *Controller) watchFailure(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-c.node.Failed():
		return c.node.Err()
	}
}

// handOffTimeout bounds the hand-off of raft leadership at stop; raft's
// own transfer gives up after an election timeout.
const handOffTimeout = 3 * time.Second

// handOff transfers raft leadership to another voter if this node leads:
// a graceful stop (SIGTERM, a rolling upgrade) then costs the cluster a
// round trip of writes, not an election, and agents' lease extends do not
// wait out a heartbeat timeout.
func (c *Controller) handOff(log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), handOffTimeout)
	defer cancel()
	handed, err := c.node.HandOff(ctx)
	switch {
	case err != nil:
		log.Warn().Err(err).Msg("cannot hand off raft leadership before stopping; the others elect a leader after a heartbeat timeout")
	case handed:
		log.Info().Msg("handed off raft leadership before stopping")
	}
}

// isVoter reports whether this node's raft configuration already has it
// as a voter (a restart of a node that joined earlier need not ask again,
// nor wait for the node it joined through).
func (c *Controller) isVoter(ctx context.Context) bool {
	servers, err := c.node.Servers(ctx)
	return err == nil && slices.ContainsFunc(servers, func(s raftnode.Server) bool {
		return s.ID == c.node.ID() && s.Suffrage == "voter"
	})
}

// adminTokenHash reads the admin token hash, or makes it: from the join
// token, or (bootstrapping) from a new token written to ClientFile.
func (c *Controller) adminTokenHash(cfg NodeConfig) (string, error) {
	path := filepath.Join(cfg.DataDir, AdminTokenFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		hash := strings.TrimSpace(string(data))
		if len(hash) != 64 {
			return "", fmt.Errorf("cannot read admin token hash %s: not a SHA-256", path)
		}
		return hash, c.refreshClientFile(cfg.DataDir)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("cannot read admin token hash: %w", err)
	}
	token := cfg.AdminToken
	if cfg.Join == "" {
		token = randomHex(32)
		c.clientFile, c.created = filepath.Join(cfg.DataDir, ClientFile), true
		f := client.File{Controller: c.fileController([]string{c.apiAddr}), Token: token}
		if err := client.WriteFile(c.clientFile, f); err != nil {
			return "", err
		}
	} else if token == "" {
		return "", errors.New("cannot join a controller without the admin token (give a client config)")
	}
	hash := lease.HashToken(token)
	if err := osutil.WriteFileAtomic(path, []byte(hash+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("cannot write admin token hash: %w", err)
	}
	return hash, nil
}

// fileController is the controller section of a client.yaml naming
// addrs: they and the cluster CA, by certificate and fingerprint.
func (c *Controller) fileController(addrs []string) client.FileController {
	return client.FileController{Addresses: addrs, CACert: string(c.tls.caPEM()), CAFingerprint: c.tls.fingerprint()}
}

// refreshClientFile puts this node's current API address first in the
// data directory's client.yaml, if there is one (the API port may change
// across restarts), and pins the cluster CA in it.
func (c *Controller) refreshClientFile(dataDir string) error {
	path := filepath.Join(dataDir, ClientFile)
	if !exists(path) {
		return nil
	}
	c.clientFile = path
	f, err := client.ReadFile(path)
	if err != nil {
		return err
	}
	want := c.fileController(nil)
	if len(f.Controller.Addresses) > 0 && f.Controller.Addresses[0] == c.apiAddr &&
		f.Controller.CACert == want.CACert && f.Controller.CAFingerprint == want.CAFingerprint {
		return nil
	}
	addrs := slices.DeleteFunc(f.Controller.Addresses, func(a string) bool { return a == c.apiAddr })
	f.Controller = c.fileController(append([]string{c.apiAddr}, addrs...))
	return client.WriteFile(path, f)
}

// joinPatience is how long a joining node keeps asking while the cluster
// it joins is unreachable or has no raft leader (it may be starting too).
const joinPatience = time.Minute

// join asks the node at cfg.Join to add this node as a voter. It is safe
// on every start: adding a voter that is already one changes nothing.
func (c *Controller) join(ctx context.Context, cfg NodeConfig) error {
	return retryJoin(ctx, cfg, func() error { return c.joinOnce(ctx, cfg) })
}

// retryJoin calls once until it succeeds, fails other than by an
// unreachable or unavailable cluster, or joinPatience has passed.
func retryJoin(ctx context.Context, cfg NodeConfig, once func() error) error {
	deadline := cfg.Clock.Now().Add(joinPatience)
	for {
		err := once()
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, client.ErrUnavailable) && !errors.Is(err, client.ErrUnreachable),
			!cfg.Clock.Now().Before(deadline):
			return fmt.Errorf("cannot join controller at %s: %w", cfg.Join, err)
		}
		cfg.Logger.Warn().Err(err).Str("join", cfg.Join).Msg("cannot join controller yet; retrying")
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot join controller at %s: %w", cfg.Join, context.Cause(ctx))
		case <-cfg.Clock.After(time.Second):
		}
	}
}

// joinOnce asks the node at cfg.Join once (with the client's retries) to
// add this node as a voter and record its addresses and protocol range.
// A node too old for the cluster is refused before it is added.
func (c *Controller) joinOnce(ctx context.Context, cfg NodeConfig) error {
	cl, err := joinClient(cfg)
	if err != nil {
		return fmt.Errorf("cannot join controller at %s: %w", cfg.Join, err)
	}
	defer cl.Close()
	lo, hi := c.node.ProtocolRange()
	return cl.Join(ctx, api.JoinRequest{ID: c.node.ID(), RaftAddr: c.node.RaftAddr(), APIAddr: c.apiAddr,
		ProtoMin: lo, ProtoMax: hi})
}

// NodeToken is the node credential, derived from the admin token hash
// that every node of a cluster keeps in AdminTokenFile (nodes never hold
// the admin token itself). It may only announce a member's protocol
// range and addresses (POST /v1/cluster/announce), which a node does on
// every start. Whoever can read AdminTokenFile (0600) or holds the admin
// token can derive it.
func NodeToken(adminTokenHash string) string {
	return lease.HashToken("uniter node credential:" + adminTokenHash)
}

// announce records this node's protocol range and addresses through the
// raft log: it asks its own API, which forwards to the raft leader. It
// retries on the next change of the state (or after a second) until it
// succeeds or is refused; a node refused for its range fails by itself
// once its state shows the cluster's version (see raftnode.Node.Failed).
func (c *Controller) announce(ctx context.Context, adminHash string, clk clock.Clock, log zerolog.Logger) {
	cl, err := client.New(client.Config{Addresses: []string{c.apiAddr}, Token: NodeToken(adminHash), CACert: c.tls.caPEM()})
	if err != nil {
		log.Error().Err(err).Msg("cannot announce this node")
		return
	}
	defer cl.Close()
	lo, hi := c.node.ProtocolRange()
	req := api.AnnounceRequest{ID: c.node.ID(), RaftAddr: c.node.RaftAddr(), APIAddr: c.apiAddr, ProtoMin: lo, ProtoMax: hi}
	for {
		changed := c.node.FSM().Watch()
		err := cl.Announce(ctx, req)
		switch {
		case err == nil:
			log.Info().Uint64("proto_min", lo).Uint64("proto_max", hi).Msg("announced this node")
			return
		case ctx.Err() != nil:
			return
		case client.StatusCode(err)/100 == 4:
			log.Error().Err(err).Msg("cannot announce this node")
			return
		}
		log.Debug().Err(err).Msg("cannot announce this node yet; retrying")
		t := clk.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-changed:
		case <-t.Chan():
		}
		t.Stop()
	}
}

// CACert is the cluster CA's certificate (PEM): what clients pin.
func (c *Controller) CACert() []byte { return c.tls.caPEM() }

// Certificate describes the certificate the node presents now.
func (c *Controller) Certificate() api.NodeCertificate { return c.tls.describe() }

// Node is the controller's raft node.
func (c *Controller) Node() *raftnode.Node { return c.node }

// APIAddr is the address the API listens on.
func (c *Controller) APIAddr() string { return c.apiAddr }

// ClientFile is the path of the data directory's admin client.yaml ("" if
// there is none), and whether this start created it.
func (c *Controller) ClientFile() (path string, created bool) { return c.clientFile, c.created }

// Close stops the API (ending blocking queries at once) and closes the
// raft node. It returns why the node failed, if it did ("cannot run API
// server: ...").
func (c *Controller) Close() error {
	c.workers.Stop()
	return c.wait()
}

// wait waits for the workers to stop, then closes the raft node.
func (c *Controller) wait() error {
	return errors.Join(c.workers.Wait(), c.node.Close())
}

// checkAdvertised refuses an API address other nodes could not dial.
func checkAdvertised(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad API address %q: want HOST:PORT", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return fmt.Errorf("bad API address %q: the host must be one other nodes and clients can reach, not unspecified", addr)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// randomHex returns n random bytes in hex (crypto/rand never fails).
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// HashToken is how the controller keeps a token: its SHA-256, hex.
func HashToken(token string) string { return lease.HashToken(token) }
