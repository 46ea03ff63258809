// Package client is the typed Go client of the controller's HTTP API, used
// by unit agents and the operator CLI.
//
// Errors: a lease refusal matches its lease sentinel with errors.Is
// (api.ErrClaimDenied, api.ErrNotLeader, api.ErrUnknownUnit, ...); a
// missing or wrong token is ErrUnauthorized ("unauthorized"); a token that
// may not do what it asked matches ErrForbidden; when no address answers,
// the error matches ErrUnreachable and names the addresses tried
// ("cannot reach controller at 127.0.0.1:17070: connection refused").
//
// TLS: the controller's API is HTTPS only. The client trusts only the
// controller's cluster CA, pinned in Config (its certificate, or its
// SHA-256 fingerprint); a server whose certificate does not chain to it,
// or does not name the address dialled, is unreachable. There is no way
// to skip the check.
//
// Retries: on a connection failure, a timeout or a 503 (no raft leader, a
// leadership change, a busy node) the client tries the next address, with
// a short doubling backoff (jittered: each pause is half to all of it)
// between rounds over the addresses, for at most 5 s (enough to ride out
// a raft election), honouring ctx. When no address answers at all for
// three rounds (about 100–150 ms) it gives up sooner. Every
// write of the API is safe to repeat (conditional or idempotent). Refusals
// and other 4xx answers are never retried.
//
// Addresses: reads start at the address that last answered. Writes start
// at the raft leader's API address when an earlier write's answer named
// it (api.HeaderLeader) and it is one of the client's own addresses, which
// saves the follower's forwarding hop; any node still accepts any write. A
// hinted address that this client could not reach is not followed again
// for 30 s, so a leader the client cannot reach costs one slow write, not
// every write.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/pki"
)

// Sentinel errors of the client.
var (
	// ErrUnauthorized: the controller does not know the token.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the token may not do that (a unit acting for another
	// unit, or an admin-only action).
	ErrForbidden = errors.New("forbidden")
	// ErrUnreachable: no controller address answered.
	ErrUnreachable = errors.New("controller unreachable")
	// ErrUnavailable: the controller answered 503 on every attempt (no
	// raft leader, or too busy).
	ErrUnavailable = errors.New("controller unavailable")
)

// DefaultTimeout bounds a request that does not block by design.
const DefaultTimeout = 10 * time.Second

// Retry policy: rounds over all addresses, with a doubling pause between
// rounds, for at most retryBudget (long enough to ride out a raft
// election, which takes about a second).
const (
	retryBudget    = 5 * time.Second
	initialBackoff = 50 * time.Millisecond
	maxBackoff     = time.Second
	// maxDeadRounds ends the retries sooner when no address answers at
	// all: a refused connection is not going to turn into a leader.
	maxDeadRounds = 3
	// defaultWait is the server's cap on a blocking query's wait, used to
	// time a query that asks for no particular wait.
	defaultWait = 5 * time.Minute
)

// Config configures New.
type Config struct {
	// Addresses of controller nodes' APIs: "host:port" or
	// "https://host:port".
	Addresses []string
	// Token is the admin or unit bearer token.
	Token string
	// CACert (PEM, one or more certificates) and CAFingerprint (the
	// SHA-256 of the CA certificate, "sha256:" and hex) pin the
	// controller's cluster CA; one of them is required unless HTTPClient
	// is set. With only the fingerprint, the server's chain must carry
	// the CA certificate (the controller's does).
	CACert        []byte
	CAFingerprint string
	// Timeout bounds each non-blocking request (DefaultTimeout if 0);
	// blocking queries get their wait plus Timeout.
	Timeout time.Duration
	// HTTPClient, if set, is used for every request (its Timeout should be
	// 0: blocking queries are timed per request); its transport's TLS
	// configuration then decides whom the client trusts.
	HTTPClient *http.Client
	// FollowMembers makes the client take the controller's member list
	// from every answer (api.HeaderMembers) as its addresses whenever it
	// differs, and call OnMembers (if set) with the new list, one call at
	// a time. Agents use it to ride out the loss or removal of any node.
	FollowMembers bool
	OnMembers     func(addrs []string)
}

// Client calls the controller API. It is safe for concurrent use.
type Client struct {
	token   string
	timeout time.Duration
	hc      *http.Client
	// own: hc was made here. Close closes its idle connections, and calls
	// go to its transport directly, past http.Client's redirect and
	// cookie handling, which the API never uses.
	own bool

	follow    bool
	onMembers func([]string)
	followMu  sync.Mutex // serialises member-list changes and OnMembers
	// lastMembers is the last HeaderMembers value handled: every answer
	// carries one, and it almost never changes.
	lastMembers atomic.Pointer[string]

	mu sync.Mutex
	// addrs is replaced whole by SetAddresses, never changed in place: a
	// call works on the slice it read when it started.
	addrs     []endpoint
	next      string // reads start at the address that last answered
	writeNext string // writes start at the raft leader's, when known
	// unreachable records when each address last failed to answer, so a
	// leader hint naming an address this client cannot reach is not
	// followed again for hintCooldown.
	unreachable map[string]time.Time
}

// endpoint is one controller address.
type endpoint struct {
	base string // "https://host:port"
	name string // "host:port", for messages and leader hints
}

// hintCooldown is how long a leader hint naming an address that just
// failed to answer this client is ignored: the writes keep going through
// a follower that answers, which forwards them.
const hintCooldown = 30 * time.Second

// New checks cfg and returns a client; it connects to nothing yet.
func New(cfg Config) (*Client, error) {
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("cannot create controller client: no controller addresses")
	}
	if cfg.Token == "" {
		return nil, errors.New("cannot create controller client: no token")
	}
	c := &Client{token: cfg.Token, timeout: cfg.Timeout, hc: cfg.HTTPClient, follow: cfg.FollowMembers, onMembers: cfg.OnMembers}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.hc == nil {
		tr, err := newTransport(pki.Pin{CACert: cfg.CACert, Fingerprint: cfg.CAFingerprint})
		if err != nil {
			return nil, fmt.Errorf("cannot create controller client: %w", err)
		}
		c.hc, c.own = &http.Client{Transport: tr}, true
	}
	addrs, err := parseAddresses(cfg.Addresses)
	if err != nil {
		return nil, fmt.Errorf("cannot create controller client: %w", err)
	}
	c.addrs = addrs
	return c, nil
}

func parseAddresses(as []string) ([]endpoint, error) {
	var out []endpoint
	seen := map[string]bool{}
	for _, a := range as {
		base, name, err := parseAddress(a)
		if err != nil {
			return nil, err
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, endpoint{base: base, name: name})
		}
	}
	return out, nil
}

// Addresses returns the controller addresses the client tries, as
// "host:port".
func (c *Client) Addresses() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.addrs))
	for i, e := range c.addrs {
		out[i] = e.name
	}
	return out
}

// SetAddresses replaces the addresses the client tries (the controller's
// members, as an agent learns them). Calls under way finish on the
// addresses they started with. An empty list is refused: the client would
// have nowhere to go.
func (c *Client) SetAddresses(as []string) error {
	addrs, err := parseAddresses(as)
	if err != nil {
		return fmt.Errorf("cannot set controller addresses: %w", err)
	}
	if len(addrs) == 0 {
		return errors.New("cannot set controller addresses: no addresses")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addrs = addrs
	return nil
}

// Close releases idle connections of the client's own transport.
func (c *Client) Close() {
	if c.own {
		c.hc.CloseIdleConnections()
	}
}

// ErrNoCA is returned by New for a configuration that pins no CA.
var ErrNoCA = errors.New("no controller CA pinned (ca-cert or ca-fingerprint: the controller's <data-dir>/tls/ca.crt)")

// newTransport is an HTTPS transport trusting only pin's CA.
func newTransport(pin pki.Pin) (*http.Transport, error) {
	if pin.Empty() {
		return nil, ErrNoCA
	}
	// The handshake is verified against the pin and the host dialled (an
	// IP address too, which TLS does not send in SNI).
	dialTLS, err := pin.DialTLSContext(&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	return &http.Transport{
		DialTLSContext:        dialTLS, // HTTP/1.1: one connection per blocking query, as before TLS
		Proxy:                 nil,     // the controller is never reached through a proxy
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // blocking queries: timed per request
		ExpectContinueTimeout: time.Second,
	}, nil
}

// parseAddress turns "host:port" or "https://host:port" into a base URL.
// Plain HTTP is refused: the controller serves HTTPS only.
func parseAddress(a string) (base, name string, err error) {
	if !strings.Contains(a, "://") {
		a = "https://" + a
	}
	u, err := url.Parse(a)
	if err == nil && u.Scheme == "http" {
		return "", "", fmt.Errorf("bad controller address %q: the controller serves HTTPS only; give HOST:PORT", a)
	}
	if err != nil || u.Host == "" || u.Scheme != "https" || (u.Path != "" && u.Path != "/") {
		return "", "", fmt.Errorf("bad controller address %q: want HOST:PORT", a)
	}
	return "https://" + u.Host, u.Host, nil
}

// call is one API call.
type call struct {
	method  string
	path    string
	query   url.Values
	body    any // JSON-encoded when not nil
	out     any // decoded from a 2xx answer when not nil; a *[]byte gets it raw
	timeout time.Duration
}

// write reports whether the call changes state (every method but GET):
// the raft leader applies it, so it is sent to the leader when known.
func (cl call) write() bool { return cl.method != http.MethodGet }

// callError is an API answer other than 2xx.
type callError struct {
	status int
	body   api.Error
	index  uint64 // the answer's HeaderIndex, 0 if none
	err    error
}

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// retryable reports whether another address might answer better.
func (e *callError) retryable() bool {
	return e.status == http.StatusServiceUnavailable || e.status == http.StatusBadGateway ||
		e.status == http.StatusGatewayTimeout
}

// reachError is a failure to get any answer from an address.
type reachError struct{ addr, cause string }

func (e *reachError) Error() string {
	return fmt.Sprintf("cannot reach controller at %s: %s", e.addr, e.cause)
}

func (e *reachError) Is(target error) bool { return target == ErrUnreachable }

// unreachable joins the reach errors of every address tried.
type unreachable struct{ errs []*reachError }

func (e *unreachable) Error() string {
	msgs := make([]string, len(e.errs))
	for i, r := range e.errs {
		msgs[i] = r.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e *unreachable) Is(target error) bool { return target == ErrUnreachable }

// do runs c with retries across the addresses; out is decoded from a 2xx
// answer. It returns the answer's headers.
func (c *Client) do(ctx context.Context, cl call) (http.Header, error) {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return nil, fmt.Errorf("cannot encode request: %w", err)
		}
	}
	if cl.timeout == 0 {
		cl.timeout = c.timeout
	}
	var reach map[string]*reachError // made at the first unreachable address
	var order []string
	var last error
	// The retry budget bounds the pauses between rounds; a call answered
	// in its first round (nearly all) never reads it.
	budgetEnd := clock.Real.Now().Add(retryBudget)
	backoff := initialBackoff
	for round, dead := 0, 0; ; round++ {
		if round > 0 {
			if dead >= maxDeadRounds {
				return nil, failure(last, reach, order)
			}
			left := budgetEnd.Sub(clock.Real.Now())
			d := jitter(backoff)
			if err := pause(ctx, min(d, left)); err != nil || d >= left {
				return nil, failure(last, reach, order)
			}
			backoff = min(2*backoff, maxBackoff)
		}
		dead++ // until an address answers in this round
		addrs, start := c.start(cl.write())
		for i := range addrs {
			at := addrs[(start+i)%len(addrs)]
			h, err := c.once(ctx, at, cl, payload)
			if err == nil {
				c.setStart(cl.write(), at)
				return h, nil
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("cannot call controller: %w", context.Cause(ctx))
			}
			var re *reachError
			var ce *callError
			switch {
			case errors.As(err, &re):
				c.noteUnreachable(at)
				if reach == nil {
					reach = map[string]*reachError{}
				}
				if reach[re.addr] == nil {
					order = append(order, re.addr)
				}
				reach[re.addr] = re
			case errors.As(err, &ce) && ce.retryable():
				dead = 0
			default:
				c.setStart(cl.write(), at)
				return nil, err
			}
			last = err
		}
	}
}

// failure is the error after every attempt failed: the last answer if the
// last attempt got one, else every address's reach error.
func failure(last error, reach map[string]*reachError, order []string) error {
	var re *reachError
	if last == nil || !errors.As(last, &re) {
		var ce *callError
		if errors.As(last, &ce) {
			return &callError{status: ce.status, body: ce.body, err: fmt.Errorf("%w: %w", ErrUnavailable, ce.err)}
		}
		return last
	}
	if len(order) == 1 {
		return reach[order[0]]
	}
	u := &unreachable{}
	for _, a := range order {
		u.errs = append(u.errs, reach[a])
	}
	return u
}

// start returns the addresses and the index of the one a read or a write
// tries first.
func (c *Client) start(write bool) ([]endpoint, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := c.next
	if write {
		first = c.writeNext
	}
	for i, e := range c.addrs {
		if e.name == first {
			return c.addrs, i
		}
	}
	return c.addrs, 0
}

// setStart records that address e answered a read; writes follow the
// leader hint instead (noteLeader).
func (c *Client) setStart(write bool, e endpoint) {
	if write {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = e.name
}

// noteLeader records where the next write goes after address e answered
// one: the raft leader the answer named (api.HeaderLeader) if it is one
// of the client's own addresses, else e if it answered at all. An
// address the client was not given is never followed, nor, for
// hintCooldown, one that just failed to answer this client.
func (c *Client) noteLeader(e endpoint, hint string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.addrs {
		if hint != "" && a.name == hint {
			if failed, ok := c.unreachable[a.name]; ok && clock.Real.Now().Sub(failed) < hintCooldown {
				break // the leader does not answer this client: stay where writes are answered
			}
			c.writeNext = a.name
			return
		}
	}
	if status != http.StatusServiceUnavailable {
		c.writeNext = e.name
	}
}

// noteMembers takes the member list an answer carried as the client's
// addresses when it differs from them, and reports the change.
func (c *Client) noteMembers(header string) {
	if last := c.lastMembers.Load(); header == "" || (last != nil && *last == header) {
		return // the hot path: one string comparison per answer
	}
	c.followMu.Lock()
	defer c.followMu.Unlock()
	c.lastMembers.Store(&header)
	members := strings.Split(header, ",")
	if SameAddresses(members, c.Addresses()) || c.SetAddresses(members) != nil {
		return
	}
	if c.onMembers != nil {
		c.onMembers(c.Addresses())
	}
}

// noteUnreachable records that address e gave no answer.
func (c *Client) noteUnreachable(e endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unreachable == nil {
		c.unreachable = map[string]time.Time{}
	}
	c.unreachable[e.name] = clock.Real.Now()
}

// jitter spreads a pause over [d/2, d], so that many clients refused at
// once (a busy node, an election) do not all come back at once.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := clock.Real.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.Chan():
		return nil
	}
}

// once makes one attempt at address e.
func (c *Client) once(ctx context.Context, e endpoint, cl call, payload []byte) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, cl.timeout)
	defer cancel()
	u := e.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("cannot build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	var resp *http.Response
	if c.own {
		resp, err = c.hc.Transport.RoundTrip(req)
	} else {
		resp, err = c.hc.Do(req)
	}
	if err != nil {
		return nil, &reachError{addr: e.name, cause: reachCause(err, cl.timeout)}
	}
	defer resp.Body.Close()
	if cl.write() {
		c.noteLeader(e, resp.Header.Get(api.HeaderLeader), resp.StatusCode)
	}
	if c.follow {
		c.noteMembers(resp.Header.Get(api.HeaderMembers))
	}
	data, err := readAnswer(resp)
	if err != nil {
		return nil, &reachError{addr: e.name, cause: reachCause(err, cl.timeout)}
	}
	if resp.StatusCode/100 != 2 {
		return nil, answerError(resp.StatusCode, data, headerIndex(resp.Header))
	}
	switch out := cl.out.(type) {
	case nil:
	case *[]byte:
		*out = data // not JSON: the answer as it is (Metrics)
	case interface{ DecodeJSON([]byte) error }:
		err = out.DecodeJSON(data) // every claim and extend (api.LeaseResponse): no reflection
	default:
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot decode answer of controller at %s: %w", e.name, err)
	}
	return resp.Header, nil
}

// maxAnswerBytes bounds what the client reads of one answer.
const maxAnswerBytes = 8 << 20

// readAnswer reads an answer's body, at most maxAnswerBytes, into a buffer
// of the announced length when there is one.
func readAnswer(resp *http.Response) ([]byte, error) {
	body := io.LimitReader(resp.Body, maxAnswerBytes)
	if n := resp.ContentLength; n >= 0 && n <= maxAnswerBytes {
		data := make([]byte, n)
		_, err := io.ReadFull(body, data)
		return data, err
	}
	return io.ReadAll(body)
}

// reachCause is the short reason a request got no answer.
func reachCause(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %v", timeout)
	}
	var se interface{ Timeout() bool }
	if errors.As(err, &se) && se.Timeout() {
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		inner := oe.Err
		if u := errors.Unwrap(inner); u != nil {
			inner = u // *os.SyscallError: "connect: connection refused" → "connection refused"
		}
		return inner.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// answerError maps a non-2xx answer to an error: 401 is ErrUnauthorized,
// 403 matches ErrForbidden, refusal codes match their api sentinels. index
// is the answer's modify index (a lease denial's), 0 if none.
func answerError(status int, data []byte, index uint64) error {
	var body api.Error
	if err := json.Unmarshal(data, &body); err != nil || body.Error == "" {
		body = api.Error{Error: fmt.Sprintf("controller answered %d %s", status, http.StatusText(status))}
	}
	var err error
	switch {
	case status == http.StatusUnauthorized:
		err = ErrUnauthorized
	case status == http.StatusForbidden:
		err = &sentinelError{msg: body.Error, sentinel: ErrForbidden}
	case api.Sentinel(body.Code) != nil:
		err = &api.CodeError{Code: body.Code, Message: body.Error}
	default:
		err = errors.New(body.Error)
	}
	return &callError{status: status, body: body, index: index, err: err}
}

type sentinelError struct {
	msg      string
	sentinel error
}

func (e *sentinelError) Error() string        { return e.msg }
func (e *sentinelError) Is(target error) bool { return target == e.sentinel }

// StatusCode returns the HTTP status of the controller's answer that err
// came from, or 0 if err is not such an answer.
func StatusCode(err error) int {
	var ce *callError
	if errors.As(err, &ce) {
		return ce.status
	}
	return 0
}

// deniedLease is the lease a refusal carried, if any.
func deniedLease(err error) api.Lease {
	var ce *callError
	if errors.As(err, &ce) && ce.body.Lease != nil {
		return *ce.body.Lease
	}
	return api.Lease{}
}

// deniedIndex is the modify index a refusal carried, if any.
func deniedIndex(err error) uint64 {
	var ce *callError
	if errors.As(err, &ce) {
		return ce.index
	}
	return 0
}

// blockingQuery is the query and timeout of a blocking read.
func (c *Client) blockingQuery(index uint64, wait time.Duration) (url.Values, time.Duration) {
	q := url.Values{}
	if index > 0 {
		q.Set("index", strconv.FormatUint(index, 10))
	}
	timeout := c.timeout
	if index > 0 {
		if wait > 0 {
			q.Set("wait", wait.String())
		} else {
			wait = defaultWait
		}
		timeout += wait + wait/16
	}
	return q, timeout
}

func headerIndex(h http.Header) uint64 {
	n, _ := strconv.ParseUint(h.Get(api.HeaderIndex), 10, 64)
	return n
}
