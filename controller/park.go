package controller

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/lease"
)

// Parked unit watches.
//
// An agent keeps one blocking query open at all times, its unit's watch,
// and a node may hold tens of thousands of them (B6). On net/http's
// HTTP/1.1 server each waiting query holds two goroutines (the
// connection's, running the handler, and its background reader), the
// connection's buffers and the request: ~44 KB live. A unit watch that
// has to wait is parked instead: the handler hijacks the connection and
// hands it to the parker with a small record of what it waits for, and
// returns, so the connection's goroutines end and its buffers go. While
// parked, nothing reads the connection: an HTTP/1.1 client sends nothing
// more on it before the answer. One goroutine, the parker's, owns every
// parked watch: the FSM calls a function per watch at its unit's or
// application's next change (lease.FSM.AfterUnitChange), which only puts
// a message in the parker's inbox, and one timer fires the earliest
// wait's end. A watch whose index moved, or whose wait ended, is answered
// by a short-lived goroutine that writes the response itself and gives
// the connection back to the HTTP server through a listener
// (handbackListener), where the agent's next request is read as on any
// connection.
//
// The semantics are the blocking query's (Server.block): answer as soon
// as the unit's or its application's modify index exceeds ?index, or at
// the wait's end with the index as it stands; the functions are
// registered before the index is first read, so a change in between is
// not missed. A watch parks only when it has to wait, on HTTP/1.1 with
// keep-alive, and only on a server started by Serve; every other case
// (and every other blocking query) waits in its handler as before.

// errParked is a handler's answer for a request whose connection it
// handed to the parker: the parker answers, logs and measures it.
var errParked = errors.New("blocking query parked")

// parkedWatch is one parked unit watch. The parker's goroutine owns its
// mutable fields (slot, unitFn and appFn after parking).
type parkedWatch struct {
	app, unit string
	after     uint64
	deadline  time.Time // the wait's end, on the server's clock
	start     time.Time // when the request arrived, for the log
	pattern   string    // the route, for the metrics
	path      string
	principal string
	members   string // X-Uniter-Members, as dispatch set it
	conn      net.Conn
	unitFn    *lease.AfterFunc
	appFn     *lease.AfterFunc
	slot      int // index in the parker's deadline heap; -1 when not in it
}

// parkMsg is a message to the parker's goroutine.
type parkMsg struct {
	w    *parkedWatch
	park bool // true: w is new; false: one of its resources changed
}

// parker owns the parked unit watches of one Serve.
type parker struct {
	s     *Server
	fsm   *lease.FSM
	clock clock.Clock
	back  *handbackListener

	mu     sync.Mutex
	inbox  []parkMsg
	closed bool // the parker has stopped: park answers at once
	signal chan struct{}

	count   atomic.Int64   // parked watches, for the metrics
	answers sync.WaitGroup // answering goroutines
	done    chan struct{}  // closed when run returns

	// Owned by run's goroutine.
	parked   map[*parkedWatch]struct{}
	byExpiry watchHeap
}

func newParker(s *Server, back *handbackListener) *parker {
	return &parker{
		s: s, fsm: s.node.FSM(), clock: s.cfg.Clock, back: back,
		signal: make(chan struct{}, 1), done: make(chan struct{}),
		parked: map[*parkedWatch]struct{}{},
	}
}

// tryPark parks the unit watch of rq if it has to wait and the connection
// allows it, and then returns errParked. It returns nil, having taken
// nothing, when the caller should answer the query itself (no ?index,
// the index already moved, not HTTP/1.1 keep-alive, no hijacking), and a
// bad query or a full node's 503 as errors.
func (p *parker) tryPark(rq *request, app, unit string) error {
	after, wait, err := p.s.blockingQuery(rq)
	if err != nil || after == 0 || rq.r.ProtoMajor != 1 || rq.r.ProtoMinor != 1 || rq.r.Close {
		return err
	}
	w := &parkedWatch{
		app: app, unit: unit, after: after,
		start:   p.clock.Now(),
		pattern: rq.r.Pattern, path: rq.r.URL.Path, principal: rq.who.String(),
		members: rq.w.Header().Get(api.HeaderMembers),
		slot:    -1,
	}
	w.deadline = w.start.Add(wait)
	p.arm(w)
	if p.index(w) > after {
		w.unitFn.Stop()
		w.appFn.Stop()
		return nil
	}
	if err := p.s.acquireWaiter(); err != nil {
		w.unitFn.Stop()
		w.appFn.Stop()
		return err
	}
	conn, rw, err := http.NewResponseController(rq.w).Hijack()
	if err != nil {
		p.s.releaseWaiter()
		w.unitFn.Stop()
		w.appFn.Stop()
		return nil
	}
	if n := rw.Reader.Buffered(); n > 0 {
		// A pipelining client sent its next request already: keep the
		// bytes read ahead for the HTTP server to read first.
		ahead, _ := rw.Reader.Peek(n)
		conn = &readAheadConn{Conn: conn, r: io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), conn)}
	}
	w.conn = conn
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.answer(w, true)
		return errParked
	}
	p.inbox = append(p.inbox, parkMsg{w: w, park: true})
	p.mu.Unlock()
	p.poke()
	return errParked
}

// arm registers w's functions on its unit and its application.
func (p *parker) arm(w *parkedWatch) {
	w.unitFn = p.fsm.AfterUnitChange(w.unit, func() { p.wake(w) })
	w.appFn = p.fsm.AfterApplicationChange(w.app, func() { p.wake(w) })
}

// index is w's resources' modify index as the FSM stands.
func (p *parker) index(w *parkedWatch) uint64 {
	return max(p.fsm.UnitIndex(w.unit), p.fsm.ApplicationIndex(w.app))
}

// wake is called by the FSM (never blocking it) when one of w's
// resources changed.
func (p *parker) wake(w *parkedWatch) {
	p.mu.Lock()
	if !p.closed {
		p.inbox = append(p.inbox, parkMsg{w: w})
	}
	p.mu.Unlock()
	p.poke()
}

func (p *parker) poke() {
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// run owns the parked watches until ctx ends, then answers every one of
// them with the index as it stands and closes their connections (the
// server is going away), and returns.
func (p *parker) run(ctx context.Context) {
	defer close(p.done)
	timer := p.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-p.signal:
		case <-timer.Chan():
		case <-ctx.Done():
			p.stop()
			return
		}
		p.mu.Lock()
		inbox := p.inbox
		p.inbox = nil
		p.mu.Unlock()
		for _, m := range inbox {
			p.handle(m)
		}
		now := p.clock.Now()
		for len(p.byExpiry) > 0 && !p.byExpiry[0].deadline.After(now) {
			p.finish(p.byExpiry[0])
		}
		timer.Stop()
		if len(p.byExpiry) > 0 {
			timer.Reset(p.byExpiry[0].deadline.Sub(now))
		}
	}
}

// handle takes one message: a new watch is parked unless it is ready; a
// woken one is answered if its index moved past ?index (a client may
// have asked for an index ahead of this node's, so a change need not
// answer it), else its functions are armed again.
func (p *parker) handle(m parkMsg) {
	w := m.w
	if _, ok := p.parked[w]; !ok && !m.park {
		return // answered already, or not parked yet: parking reads the index
	}
	for p.index(w) <= w.after {
		if w.unitFn.Pending() && w.appFn.Pending() {
			if m.park {
				p.parked[w] = struct{}{}
				heap.Push(&p.byExpiry, w)
				p.count.Store(int64(len(p.parked)))
			}
			return
		}
		w.unitFn.Stop()
		w.appFn.Stop()
		p.arm(w)
	}
	p.finish(w)
}

// finish takes w out of the parker and answers it.
func (p *parker) finish(w *parkedWatch) {
	delete(p.parked, w)
	p.count.Store(int64(len(p.parked)))
	if w.slot >= 0 {
		heap.Remove(&p.byExpiry, w.slot)
	}
	w.unitFn.Stop()
	w.appFn.Stop()
	p.answers.Add(1)
	go func() {
		defer p.answers.Done()
		p.answer(w, false)
	}()
}

// stop refuses new watches and answers every parked one, closing its
// connection after the answer.
func (p *parker) stop() {
	p.mu.Lock()
	p.closed = true
	inbox := p.inbox
	p.inbox = nil
	p.mu.Unlock()
	for _, m := range inbox {
		if m.park {
			p.parked[m.w] = struct{}{}
		}
	}
	for w := range p.parked {
		delete(p.parked, w)
		w.unitFn.Stop()
		w.appFn.Stop()
		p.answers.Add(1)
		go func() {
			defer p.answers.Done()
			p.answer(w, true)
		}()
	}
	p.byExpiry = nil
	p.count.Store(0)
}

// wait returns once run has returned and every answer is written.
func (p *parker) wait() {
	<-p.done
	p.answers.Wait()
}

// answerWriteTimeout bounds writing one parked watch's answer: a client
// that does not read it loses the connection, not the parker's time.
const answerWriteTimeout = 10 * time.Second

// answer writes w's answer to its connection as net/http would have
// (status, Content-Type, Content-Length, X-Uniter-Index and
// X-Uniter-Members; on close, Connection: close), releases its place
// among the node's blocking queries, logs and measures it as any request,
// and gives the connection back to the HTTP server (or closes it if
// closing or if the server has stopped).
func (p *parker) answer(w *parkedWatch, closing bool) {
	defer p.s.releaseWaiter()
	idx := p.index(w)
	status, body := http.StatusOK, []byte(nil)
	view, err := p.s.unitWatchView(w.app, w.unit)
	if err != nil {
		var e api.Error
		status, e = errorResponse(err)
		status, body = jsonBody(status, e)
	} else {
		status, body = jsonBody(status, view)
	}
	var b bytes.Buffer
	b.Grow(256 + len(body))
	b.WriteString("HTTP/1.1 ")
	b.WriteString(strconv.Itoa(status))
	b.WriteByte(' ')
	b.WriteString(http.StatusText(status))
	b.WriteString("\r\nContent-Type: application/json\r\nDate: ")
	b.WriteString(p.clock.Now().UTC().Format(http.TimeFormat))
	b.WriteString("\r\n" + api.HeaderIndex + ": ")
	b.WriteString(strconv.FormatUint(idx, 10))
	if w.members != "" {
		b.WriteString("\r\n" + api.HeaderMembers + ": ")
		b.WriteString(w.members)
	}
	b.WriteString("\r\nContent-Length: ")
	b.WriteString(strconv.Itoa(len(body)))
	if closing {
		b.WriteString("\r\nConnection: close")
	}
	b.WriteString("\r\n\r\n")
	b.Write(body)

	_ = w.conn.SetWriteDeadline(time.Now().Add(answerWriteTimeout))
	_, werr := w.conn.Write(b.Bytes())
	took := p.clock.Now().Sub(w.start)
	p.s.metrics.observe(w.pattern, status, took)
	ev := p.s.log.Debug()
	if err != nil {
		ev = ev.Err(err)
	}
	if werr != nil {
		ev = ev.AnErr("write_error", werr)
	}
	ev.Str("method", http.MethodGet).Str("path", w.path).Int("status", status).
		Str("principal", w.principal).Dur("duration", took).Bool("parked", true).Msg("api request")
	if closing || werr != nil {
		w.conn.Close()
		return
	}
	_ = w.conn.SetDeadline(time.Time{})
	p.back.give(w.conn)
}

// watchHeap orders parked watches by the end of their wait.
type watchHeap []*parkedWatch

func (h watchHeap) Len() int           { return len(h) }
func (h watchHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h watchHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].slot, h[j].slot = i, j
}

func (h *watchHeap) Push(x any) {
	w := x.(*parkedWatch)
	w.slot = len(*h)
	*h = append(*h, w)
}

func (h *watchHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.slot = -1
	*h = old[:len(old)-1]
	return w
}

// readAheadConn is a connection whose first bytes were read ahead.
type readAheadConn struct {
	net.Conn
	r io.Reader
}

func (c *readAheadConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// handbackListener is the listener through which answered parked
// connections return to the HTTP server, which reads their next request
// as on any accepted connection.
type handbackListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newHandbackListener(addr net.Addr) *handbackListener {
	return &handbackListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept returns the next connection given back.
func (l *handbackListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; connections given back after it are closed.
func (l *handbackListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the API listener's address.
func (l *handbackListener) Addr() net.Addr { return l.addr }

// give hands c to the HTTP server, or closes it if the server stopped.
func (l *handbackListener) give(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}
