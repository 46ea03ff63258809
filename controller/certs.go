package controller

import (
	"net/http"
	"strings"

	"github.com/uniter-dev/uniter/controller/api"
)

// signCertificate answers POST /v1/cluster/certificates (admin): it signs
// a joining node's certificate request with the cluster CA and answers
// the certificate with the CA's certificate and key, which the node keeps
// (0600) so that it can sign later requests and its own renewals. Any
// node that holds the CA answers; nothing is replicated.
func (s *Server) signCertificate(rq *request) error {
	if err := requireAdmin(rq, "sign node certificates"); err != nil {
		return err
	}
	var body api.CertificateRequest
	if err := rq.decode(&body); err != nil {
		return err
	}
	if body.ID == "" || strings.ContainsAny(body.ID, " \t\r\n/") {
		return badRequest("invalid node id %q", body.ID)
	}
	ca := s.cfg.CA
	if ca == nil {
		return unavailable("", "controller node %s holds no cluster CA", s.node.ID())
	}
	cert, err := ca.SignCSR([]byte(body.CSR), body.ID, s.cfg.Clock.Now())
	if err != nil {
		return badRequest("%v", err)
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	s.log.Info().Str("node_id", body.ID).Msg("signed a node certificate")
	writeJSON(rq.w, http.StatusOK, api.CertificateResponse{Certificate: string(cert), CACert: string(ca.CertPEM()), CAKey: string(key)})
	return nil
}

// rotateCertificate answers POST /v1/node/certificate/rotate (admin): the
// node answering issues itself a new certificate, presented from its next
// handshake on (API and raft); connections already open go on with the
// old one. It is never forwarded: rotate-certs asks each node in turn.
func (s *Server) rotateCertificate(rq *request) error {
	if err := requireAdmin(rq, "rotate node certificates"); err != nil {
		return err
	}
	if err := rq.decodeOptional(&struct{}{}); err != nil {
		return err
	}
	if s.cfg.RotateCertificate == nil {
		return unavailable("", "controller node %s cannot issue certificates", s.node.ID())
	}
	cert, err := s.cfg.RotateCertificate()
	if err != nil {
		return err
	}
	s.log.Info().Str("serial", cert.Serial).Time("not_after", cert.NotAfter).Msg("rotated this node's certificate")
	writeJSON(rq.w, http.StatusOK, cert)
	return nil
}
