package controller

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/uniter-dev/uniter/controller/api"
)

// errForward tells the request wrapper to forward the request to the raft
// leader: this node cannot apply it.
var errForward = errors.New("not the raft leader: forward")

// maxForwardedResponse bounds what a forwarded answer may copy back.
const maxForwardedResponse = 4 << 20

// forward sends the request, with the caller's token and body, to the raft
// leader's API address and copies the answer back. A request that was
// already forwarded once is never forwarded again (a leadership change in
// flight): it gets 503 and the client retries.
func (s *Server) forward(rq *request) error {
	addr := s.leaderAPIAddr()
	if rq.r.Header.Get(api.HeaderForwarded) != "" {
		return unavailable(addr, "controller node %s is not the raft leader", s.node.ID())
	}
	if addr == "" {
		return unavailable("", "controller node %s is not the raft leader and no leader is known", s.node.ID())
	}
	req, err := http.NewRequestWithContext(rq.ctx, rq.r.Method, "https://"+addr+rq.r.URL.RequestURI(), bytes.NewReader(rq.body))
	if err != nil {
		return unavailable(addr, "cannot forward request to the raft leader at %s: %v", addr, err)
	}
	for _, h := range []string{"Authorization", "Content-Type"} {
		if v := rq.r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(api.HeaderForwarded, s.node.ID())
	resp, err := s.cfg.Forward.Do(req)
	if err != nil {
		return unavailable(addr, "cannot forward request to the raft leader at %s: %v", addr, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", api.HeaderIndex} {
		if v := resp.Header.Get(h); v != "" {
			rq.w.Header().Set(h, v)
		}
	}
	rq.w.WriteHeader(resp.StatusCode)
	io.Copy(rq.w, io.LimitReader(resp.Body, maxForwardedResponse))
	return nil
}

// leaderHint is the raft leader's API address, this node's own when it
// leads ("" if unknown).
func (s *Server) leaderHint() string {
	id, _ := s.node.Leader()
	return s.nodeAPIAddr(id)
}

// leaderAPIAddr is the raft leader's API address when another node leads
// ("" if unknown or this node leads).
func (s *Server) leaderAPIAddr() string {
	id, _ := s.node.Leader()
	if id == s.node.ID() {
		return ""
	}
	return s.nodeAPIAddr(id)
}

// nodeAPIAddr is node id's API address from the member records the
// replicated state keeps ("" if unknown).
func (s *Server) nodeAPIAddr(id string) string {
	if id == "" {
		return ""
	}
	m, _ := s.node.FSM().Member(id)
	return memberAPIAddr(m)
}

// memberAddrs is the HeaderMembers value: the API addresses of the
// members this node's state records, sorted and comma-separated ("" while
// it records none).
func (s *Server) memberAddrs() string {
	fsm := s.node.FSM()
	index := fsm.Index() // read first: members applied after it only make the cache newer
	if m := s.members.Load(); m != nil && m.index == index {
		return m.value // every answer carries it: no copy and sort per request
	}
	var addrs []string
	for _, m := range fsm.Members() {
		if m.APIAddr != "" && !slices.Contains(addrs, m.APIAddr) {
			addrs = append(addrs, m.APIAddr)
		}
	}
	slices.Sort(addrs)
	v := strings.Join(addrs, ",")
	s.members.Store(&membersHeader{index: index, value: v})
	return v
}

// membersHeader is memberAddrs' value as of a state index.
type membersHeader struct {
	index uint64
	value string
}
