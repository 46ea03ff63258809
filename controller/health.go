package controller

import (
	"net/http"
)

// health answers GET /v1/health: 200 while the process serves HTTP
// (liveness). It reads no state and needs no token.
func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": s.node.ID()})
}

// ready answers GET /v1/ready: 200 when this node knows a raft leader and
// is caught up, else 503 saying why (readiness). It needs no token and
// answers nothing secret.
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	if err := s.node.Ready(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "node": s.node.ID(), "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "node": s.node.ID()})
}
