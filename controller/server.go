package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/uniter-dev/uniter/lease/raftnode"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/pki"
	"github.com/uniter-dev/uniter/lease"
)

// Defaults of Config.
const (
	DefaultLostAfter         = time.Minute
	DefaultMaxWait           = 5 * time.Minute
	DefaultMaxBlocking       = 8192
	DefaultRequestTimeout    = 15 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultForwardTimeout    = 15 * time.Second
	defaultIdleTimeout       = 2 * time.Minute
	defaultMaxHeaderBytes    = 64 << 10
	defaultShutdownTimeout   = 5 * time.Second
)

// Config configures NewServer. Node, Clock and AdminTokenHash are
// required; zero limits take the defaults above.
type Config struct {
	// Node is the raft node whose state the API serves.
	Node Node
	// AdminTokenHash is lease.HashToken of the admin token.
	AdminTokenHash string
	// Clock times requests (for logs); the API's notion of "now" for
	// leases and lost agents is the replicated global time, never a clock.
	Clock  clock.Clock
	Logger zerolog.Logger
	// LostAfter: a unit whose agent has not reported for this long (in
	// global time) shows agent status "lost".
	LostAfter time.Duration
	// MaxWait caps a blocking query's wait (also its default).
	MaxWait time.Duration
	// MaxBlocking caps concurrent blocking queries on this node; more get
	// 503 "busy".
	MaxBlocking int
	// RequestTimeout bounds every handler that does not block by design.
	RequestTimeout time.Duration
	// Forward is the HTTP client used to forward writes to the raft
	// leader; nil for one with DefaultForwardTimeout over TLS.
	Forward *http.Client
	// TLS is the client side of TLS to other nodes' APIs (trusting the
	// cluster CA), for the default Forward.
	TLS *tls.Config
	// CA, if set, signs joining nodes' certificates (POST
	// /v1/cluster/certificates); without it that endpoint answers 503.
	CA *pki.CA
	// RotateCertificate, if set, makes the node issue itself a new
	// certificate (POST /v1/node/certificate/rotate).
	RotateCertificate func() (api.NodeCertificate, error)
	// MetricsTokenHash, if set, is lease.HashToken of a token that may
	// read GET /metrics and nothing else (the admin token always may).
	MetricsTokenHash string
}

// Server is the controller's HTTP API over one raft node. Reads are
// answered from the local FSM (blocking queries too); writes are applied
// on the raft leader: here if this node leads, else the request is
// forwarded, with the caller's token, to the leader's API address.
type Server struct {
	cfg     Config
	node    Node
	log     zerolog.Logger
	mux     *http.ServeMux
	waiters chan struct{} // semaphore of blocking queries
	metrics *metrics
	members atomic.Pointer[membersHeader] // memberAddrs' cache
	// parker holds the unit watches that wait without a goroutine
	// (park.go); nil unless Serve runs.
	parker atomic.Pointer[parker]
	// busyWarned is when (unix ns) the node last warned that it refused
	// a blocking query at the MaxBlocking cap.
	busyWarned atomic.Int64

	// nodeHash is the hash of NodeToken(cfg.AdminTokenHash): the node
	// credential, which may only announce a member's range.
	nodeHash string
}

// NewServer checks cfg and returns a server; it starts nothing.
func NewServer(cfg Config) (*Server, error) {
	switch {
	case cfg.Node == nil:
		return nil, errors.New("cannot create API server: no node")
	case cfg.Clock == nil:
		return nil, errors.New("cannot create API server: no clock")
	case len(cfg.AdminTokenHash) != 64:
		return nil, errors.New("cannot create API server: admin token hash is not a SHA-256")
	}
	setDefault(&cfg.LostAfter, DefaultLostAfter)
	setDefault(&cfg.MaxWait, DefaultMaxWait)
	setDefault(&cfg.RequestTimeout, DefaultRequestTimeout)
	setDefault(&cfg.MaxBlocking, DefaultMaxBlocking)
	if cfg.Forward == nil {
		cfg.Forward = &http.Client{Timeout: DefaultForwardTimeout, Transport: &http.Transport{
			Proxy:               nil,
			TLSClientConfig:     cfg.TLS,
			TLSHandshakeTimeout: 5 * time.Second,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			// Every forwarded write goes to one host, the leader: keep
			// enough idle connections for a busy follower's writes in
			// flight (64 clients kept ~40 in flight; with 16, the rest
			// were new connections and ~1,000 sockets sat in TIME_WAIT).
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     defaultIdleTimeout,
		}}
	}
	s := &Server{
		cfg:     cfg,
		node:    cfg.Node,
		log:     cfg.Logger.With().Str("component", "api").Logger(),
		mux:     http.NewServeMux(),
		waiters: make(chan struct{}, cfg.MaxBlocking),
	}
	s.nodeHash = lease.HashToken(NodeToken(cfg.AdminTokenHash))
	s.metrics = newMetrics(s)
	raftMetrics() // before raft measures anything worth seeing
	s.routes()
	return s, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Handler returns the API as an http.Handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve answers API requests on ln until ctx ends, then shuts down: it
// stops accepting, ends blocking queries at once (parked unit watches are
// answered and their connections closed) and waits a few seconds for
// other requests. It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       s.cfg.RequestTimeout,
		WriteTimeout:      s.cfg.MaxWait + s.cfg.RequestTimeout,
		IdleTimeout:       defaultIdleTimeout,
		MaxHeaderBytes:    defaultMaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          log.New(httpErrorLog{s.log}, "", 0),
	}
	back := newHandbackListener(ln.Addr())
	p := newParker(s, back)
	go p.run(base)
	s.parker.Store(p)
	defer s.parker.CompareAndSwap(p, nil)
	errc, backc := make(chan error, 1), make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go func() { backc <- srv.Serve(back) }()
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	cancel() // wakes blocking queries and answers the parked ones
	p.wait()
	sctx, stop := context.WithTimeout(context.Background(), defaultShutdownTimeout)
	defer stop()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	back.Close()
	<-backc
	s.cfg.Forward.CloseIdleConnections()
	if serveErr != nil { // the listener failed before ctx ended
		return fmt.Errorf("cannot serve API: %w", serveErr)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("cannot serve API: %w", err)
	}
	return nil
}

// httpErrorLog takes the HTTP server's own error lines into the node's
// log: failed TLS handshakes (a plain HTTP request, a client that does
// not trust the cluster CA, a port scan) at debug, since anyone who can
// reach the port can cause them; anything else at warn.
type httpErrorLog struct{ log zerolog.Logger }

func (l httpErrorLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	ev := l.log.Warn()
	if strings.HasPrefix(line, "http: TLS handshake error") {
		ev = l.log.Debug()
	}
	ev.Str("error", line).Msg("http server error")
	return len(p), nil
}

// handlerFunc serves one authenticated request; an error is answered by
// the wrapper (errForward: the request is forwarded to the raft leader).
type handlerFunc func(rq *request) error

// route kinds.
const (
	local    = iota // answered from the local FSM, bounded by RequestTimeout
	blocking        // a blocking query: bounded by its wait
	write           // applied on the raft leader, forwarded by followers
)

func (s *Server) handle(pattern string, kind int, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, pattern, kind, h)
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, pattern string, kind int, h handlerFunc) {
	start := s.cfg.Clock.Now()
	rec := &statusRecorder{ResponseWriter: w}
	who, err := s.dispatch(rec, r, kind, h)
	if errors.Is(err, errParked) {
		return // the parker answers, logs and measures it
	}
	if err != nil {
		status, body := errorResponse(err)
		writeJSON(rec, status, body)
	}
	ev := s.log.Debug()
	// Server faults at warn; a busy or leaderless node's 503 is expected
	// under load and during elections, and at warn it would flood the log.
	if rec.status >= 500 && rec.status != http.StatusServiceUnavailable {
		ev = s.log.Warn().Err(err)
	} else if err != nil {
		ev = ev.Err(err)
	}
	took := s.since(start)
	s.metrics.observe(pattern, rec.status, took)
	ev.Str("method", r.Method).Str("path", r.URL.Path).Int("status", rec.status).
		Str("principal", who.String()).Dur("duration", took).Msg("api request")
}

// dispatch authenticates the request, reads its body and runs h, or
// forwards the request to the raft leader if h asks to. A token this node
// does not know is also forwarded if it is a follower: its copy of the
// state may lag a registration the leader has applied.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, kind int, h handlerFunc) (principal, error) {
	who, authErr := s.authenticate(r)
	if authErr != nil && !hasBearer(r) {
		return who, authErr
	}
	body, err := readBody(w, r, api.MaxBodyBytes)
	if err != nil {
		return who, err
	}
	ctx, cancel := r.Context(), context.CancelFunc(func() {})
	if kind != blocking {
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
	}
	defer cancel()
	rq := &request{ctx: ctx, w: w, r: r, who: who, body: body}
	if authErr != nil {
		return who, s.unknownToken(rq, authErr)
	}
	if s.node.Removed() {
		// Its state no longer changes: answering from it would hand
		// agents a frozen view. Clients try their other addresses.
		return who, unavailable("", "controller node %s was removed from the cluster", s.node.ID())
	}
	if m := s.memberAddrs(); m != "" { // only for a caller this node knows
		w.Header().Set(api.HeaderMembers, m)
	}
	if kind == write {
		if addr := s.leaderHint(); addr != "" {
			w.Header().Set(api.HeaderLeader, addr)
		}
	}
	if err := h(rq); !errors.Is(err, errForward) {
		return who, err
	}
	return who, s.forward(rq)
}

// unknownToken answers a request whose bearer token this node does not
// know. Only a caught-up raft leader that a quorum still follows may say
// 401: any other node's copy of the state may lag a registration (a
// follower, a node just restarted, a leader still applying its
// predecessor's entries, a leader cut off from a new one), so a follower
// forwards the request to the leader and a node that cannot answers 503,
// which the client retries. An agent takes 401 as final and stops.
func (s *Server) unknownToken(rq *request, authErr error) error {
	switch addr := s.leaderAPIAddr(); {
	case s.node.LeaderReady():
		if err := s.node.VerifyLeader(rq.ctx); err != nil {
			return unavailable("", "controller node %s cannot confirm it is still the raft leader: %v", s.node.ID(), err)
		}
		return authErr
	case s.node.IsLeader():
		return unavailable("", "controller node %s has just become the raft leader and cannot check the token yet", s.node.ID())
	case rq.r.Header.Get(api.HeaderForwarded) != "":
		return unavailable(addr, "controller node %s is not the raft leader", s.node.ID())
	case addr == "":
		return unavailable("", "controller node %s knows no raft leader and cannot check the token", s.node.ID())
	default:
		return s.forward(rq)
	}
}

// routes registers every endpoint; doc.go has the table.
func (s *Server) routes() {
	s.handle("POST /v1/leases/{app}/claim", write, s.claim)
	s.handle("POST /v1/leases/{app}/extend", write, s.extend)
	s.handle("POST /v1/leases/{app}/revoke", write, s.revoke)
	s.handle("POST /v1/leases/{app}/step-down", write, s.stepDown)
	s.handle("POST /v1/leases/{app}/pin", write, s.pin)
	s.handle("POST /v1/leases/{app}/unpin", write, s.unpin)
	s.handle("GET /v1/leases/{app}", blocking, s.getLease)

	s.handle("POST /v1/units", write, s.registerUnit)
	s.handle("GET /v1/units/{app}/{n}/watch", blocking, s.watchUnit)
	s.handle("POST /v1/units/{app}/{n}/status", write, s.setUnitStatus)
	s.handle("POST /v1/units/{app}/{n}/application-version", write, s.setApplicationVersion)
	s.handle("POST /v1/units/{app}/{n}/remove", write, s.removeUnit)
	s.handle("POST /v1/units/{app}/{n}/resolved", write, s.resolved)
	s.handle("DELETE /v1/units/{app}/{n}", write, s.deregisterUnit)
	s.handle("POST /v1/units/{app}/{n}/relation-data", write, s.commitRelationData)
	s.handle("GET /v1/units/{app}/{n}/ports", local, s.getUnitPorts)
	s.handle("POST /v1/units/{app}/{n}/ports", write, s.setUnitPorts)

	s.handle("POST /v1/relations", write, s.addRelation)
	s.handle("GET /v1/relations", local, s.listRelations)
	s.handle("GET /v1/relations/{id}", blocking, s.getRelation)
	s.handle("DELETE /v1/relations/{id}", write, s.removeRelation)
	s.handle("POST /v1/relations/{id}/enter-scope", write, s.enterScope)
	s.handle("POST /v1/relations/{id}/leave-scope", write, s.leaveScope)
	s.handle("PATCH /v1/relations/{id}/unit-data", write, s.setUnitData)
	s.handle("PATCH /v1/relations/{id}/app-data", write, s.setAppData)

	s.handle("GET /v1/applications/{app}/config", local, s.getConfig)
	s.handle("PATCH /v1/applications/{app}/config", write, s.setConfig)
	s.handle("GET /v1/applications/{app}/leader-settings", local, s.getLeaderSettings)
	s.handle("PATCH /v1/applications/{app}/leader-settings", write, s.setLeaderSettings)
	s.handle("POST /v1/applications/{app}/status", write, s.setApplicationStatus)
	s.handle("GET /v1/applications/{app}/status", local, s.applicationStatusRead)
	s.operationRoutes() // operations.go: actions and exec
	s.handle("GET /v1/applications/{app}/relations", local, s.applicationRelations)

	s.handle("GET /v1/status", local, s.status)
	s.handle("GET /v1/cluster/nodes", blocking, s.nodes)
	s.handle("POST /v1/cluster/join", write, s.join)
	s.handle("POST /v1/cluster/announce", write, s.announce)
	s.handle("DELETE /v1/cluster/nodes/{id}", write, s.removeNode)
	s.handle("GET /v1/cluster/backup", write, s.backup)
	s.handle("POST /v1/cluster/certificates", local, s.signCertificate)
	s.handle("POST /v1/node/certificate/rotate", local, s.rotateCertificate)

	// Unauthenticated probes for process supervisors and load balancers;
	// they answer nothing secret.
	s.mux.HandleFunc("GET /v1/health", s.health)
	s.mux.HandleFunc("GET /v1/ready", s.ready)
	s.mux.HandleFunc("GET /metrics", s.serveMetrics)

	s.mux.HandleFunc("/", s.notFound)
}

// notFound answers requests no route matches: 405 if the path exists for
// another method, else 404; both as one-line JSON errors.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, api.Error{Error: "method " + r.Method + " not allowed on " + r.URL.Path,
			Code: api.CodeMethodNotAllowed})
		return
	}
	writeJSON(w, http.StatusNotFound, api.Error{Error: "no such endpoint: " + r.Method + " " + r.URL.Path, Code: api.CodeNotFound})
}

// apply replicates op if this node is the raft leader. On a follower (or a
// leader that just lost the role) it returns errForward. A refused command
// comes back as a *denial carrying the lease as it stands.
func (s *Server) apply(rq *request, op lease.Op) (lease.Result, error) {
	if !s.node.IsLeader() {
		return lease.Result{}, errForward
	}
	res, err := s.node.Apply(rq.ctx, op)
	switch {
	case errors.Is(err, raftnode.ErrNotRaftLeader):
		return res, errForward
	case err != nil:
		return res, err // the node's error names the command
	case res.Err != nil:
		return res, &denial{err: res.Err, lease: res.Lease}
	}
	return res, nil
}

// ok answers a write that has nothing else to say.
func ok(rq *request, res lease.Result) error {
	writeJSON(rq.w, http.StatusOK, api.WriteResult{Index: res.Index})
	return nil
}
