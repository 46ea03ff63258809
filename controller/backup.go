package controller

import (
	"bytes"
	"context"
	"io"
	"net/http"
)

// backup streams a consistent copy of the replicated state (the snapshot
// format of package lease), taken on the raft leader after a barrier. It
// is admin only; followers forward it.
func (s *Server) backup(rq *request) error {
	if err := requireAdmin(rq, "back up the controller"); err != nil {
		return err
	}
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	if !s.node.IsLeader() {
		return errForward
	}
	var buf bytes.Buffer // whole, so a failure is an error answer, not a torn file
	if err := s.node.Backup(rq.ctx, &buf); err != nil {
		return err
	}
	rq.w.Header().Set("Content-Type", "application/json")
	rq.w.WriteHeader(http.StatusOK)
	_, err := rq.w.Write(buf.Bytes())
	return err
}

// Restore replaces the cluster's replicated state with a backup written by
// Backup. It must run on the raft leader; the cluster's own membership is
// kept. Use it on a freshly bootstrapped node, then add the other nodes.
func (c *Controller) Restore(ctx context.Context, r io.Reader) error {
	return c.node.Restore(ctx, r)
}
