package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/uniter-dev/uniter/controller/api"
)

func appPath(app, rest string) string {
	return "/v1/applications/" + url.PathEscape(app) + rest
}

func leasePath(app, rest string) string {
	return "/v1/leases/" + url.PathEscape(app) + rest
}

// unitPath is /v1/units/APP/N + rest, for a well-formed unit name.
func unitPath(unit, rest string) (string, error) {
	app, n, err := api.SplitUnit(unit)
	if err != nil {
		return "", err
	}
	return "/v1/units/" + url.PathEscape(app) + "/" + strconv.FormatUint(n, 10) + rest, nil
}

// Claim claims app's lease for unit for d (an extend if unit holds it). A
// denial matches api.ErrClaimDenied and the returned lease shows the
// holder.
func (c *Client) Claim(ctx context.Context, app, unit string, d time.Duration) (api.Lease, error) {
	l, _, err := c.ClaimWithIndex(ctx, app, unit, d)
	return l, err
}

// ClaimWithIndex is Claim that also returns the controller's modify index
// of the answer: the raft index at which the lease was written or, on a
// denial, read. It is 0 when the controller sent none (an older
// controller's denial).
func (c *Client) ClaimWithIndex(ctx context.Context, app, unit string, d time.Duration) (api.Lease, uint64, error) {
	return c.leaseCall(ctx, leasePath(app, "/claim"), api.ClaimRequest{Unit: unit, Duration: d.String()})
}

// Extend extends unit's lease of app by d; term 0 means any term.
func (c *Client) Extend(ctx context.Context, app, unit string, d time.Duration, term uint64) (api.Lease, error) {
	l, _, err := c.ExtendWithIndex(ctx, app, unit, d, term)
	return l, err
}

// ExtendWithIndex is Extend that also returns the answer's modify index,
// as ClaimWithIndex does.
func (c *Client) ExtendWithIndex(ctx context.Context, app, unit string, d time.Duration, term uint64) (api.Lease, uint64, error) {
	return c.leaseCall(ctx, leasePath(app, "/extend"), api.ExtendRequest{Unit: unit, Duration: d.String(), Term: term})
}

// Revoke releases unit's lease of app at once; term 0 means any term.
func (c *Client) Revoke(ctx context.Context, app, unit string, term uint64) error {
	_, _, err := c.leaseCall(ctx, leasePath(app, "/revoke"), api.RevokeRequest{Unit: unit, Term: term})
	return err
}

// leaseCall makes a lease write; it returns the lease (the one a denial
// carried, if any) and the answer's modify index (0 if none was sent).
func (c *Client) leaseCall(ctx context.Context, path string, body any) (api.Lease, uint64, error) {
	var out api.LeaseResponse
	h, err := c.do(ctx, call{method: http.MethodPost, path: path, body: body, out: &out})
	if err != nil {
		return deniedLease(err), deniedIndex(err), err
	}
	return out.Lease, headerIndex(h), nil
}

// WatchLease returns app's lease and its modify index once the index
// exceeds index, or after wait (the server's cap, 5m, if 0); index 0
// answers at once.
func (c *Client) WatchLease(ctx context.Context, app string, index uint64, wait time.Duration) (api.Lease, uint64, error) {
	q, timeout := c.blockingQuery(index, wait)
	var out api.LeaseResponse
	h, err := c.do(ctx, call{method: http.MethodGet, path: leasePath(app, ""), query: q, out: &out, timeout: timeout})
	if err != nil {
		return api.Lease{}, 0, err
	}
	return out.Lease, headerIndex(h), nil
}

// WatchUnit is WatchLease for the unit's remote view; its index is the
// larger of the unit's and its application's modify indexes.
func (c *Client) WatchUnit(ctx context.Context, unit string, index uint64, wait time.Duration) (api.UnitView, uint64, error) {
	w, err := c.WatchUnitStream(ctx, unit, index, wait)
	return w.View, w.Index, err
}

// UnitWatch is one answer of the unit's watch.
type UnitWatch struct {
	View api.UnitView
	// LeaseSent: the answer carried the application's lease (View.Lease).
	// An agent that finds it false reads the lease with WatchLease.
	LeaseSent bool
	// Index is the answer's index (HeaderIndex).
	Index uint64
}

// WatchUnitStream is WatchUnit for an agent's one watch: the view, the
// application's lease it carries, and whether the controller sent one.
func (c *Client) WatchUnitStream(ctx context.Context, unit string, index uint64, wait time.Duration) (UnitWatch, error) {
	path, err := unitPath(unit, "/watch")
	if err != nil {
		return UnitWatch{}, err
	}
	q, timeout := c.blockingQuery(index, wait)
	// The outer Lease shadows the view's, so that an answer without one
	// is told from a vacant lease.
	var out struct {
		api.UnitView
		Lease *api.Lease `json:"lease"`
	}
	h, err := c.do(ctx, call{method: http.MethodGet, path: path, query: q, out: &out, timeout: timeout})
	if err != nil {
		return UnitWatch{}, err
	}
	w := UnitWatch{View: out.UnitView, LeaseSent: out.Lease != nil, Index: headerIndex(h)}
	if out.Lease != nil {
		w.View.Lease = *out.Lease
	}
	return w, nil
}

// Metrics returns the node's Prometheus metrics (GET /metrics, in the text
// exposition format) as they are, from the first address that answers:
// give the client one node's address to read that node's. It needs the
// admin token or the metrics token.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	var out []byte
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/metrics", out: &out})
	return out, err
}

// Config returns app's config values, version and schema.
func (c *Client) Config(ctx context.Context, app string) (api.Config, error) {
	var out api.Config
	_, err := c.do(ctx, call{method: http.MethodGet, path: appPath(app, "/config"), out: &out})
	return out, err
}

// SetConfig changes app's config (admin); "" deletes a key. A value the
// schema refuses matches api.ErrInvalidConfig.
func (c *Client) SetConfig(ctx context.Context, app string, changes map[string]string) error {
	return c.write(ctx, http.MethodPatch, appPath(app, "/config"), api.ConfigChanges{Changes: changes})
}

// LeaderSettings returns app's leader settings.
func (c *Client) LeaderSettings(ctx context.Context, app string) (api.Settings, error) {
	var out api.Settings
	_, err := c.do(ctx, call{method: http.MethodGet, path: appPath(app, "/leader-settings"), out: &out})
	return out, err
}

// SetLeaderSettings changes app's leader settings if unit holds the lease
// for term, else the error matches api.ErrNotLeader.
func (c *Client) SetLeaderSettings(ctx context.Context, app, unit string, term uint64, changes map[string]string) error {
	return c.write(ctx, http.MethodPatch, appPath(app, "/leader-settings"),
		api.LeaderSettingsChanges{Unit: unit, Term: term, Changes: changes})
}

// SetUnitStatus sets the unit's "workload" or "agent" status; it also
// tells the controller the agent is alive.
func (c *Client) SetUnitStatus(ctx context.Context, unit, kind, status, message string) error {
	path, err := unitPath(unit, "/status")
	if err != nil {
		return err
	}
	return c.write(ctx, http.MethodPost, path, api.UnitStatusRequest{Kind: kind, Status: status, Message: message})
}

// SetApplicationStatus sets app's status if unit holds the lease for term
// (else api.ErrNotLeader).
func (c *Client) SetApplicationStatus(ctx context.Context, app, unit string, term uint64, status, message string) error {
	return c.write(ctx, http.MethodPost, appPath(app, "/status"),
		api.ApplicationStatusRequest{Unit: unit, Term: term, Status: status, Message: message})
}

// SetApplicationVersion sets the unit's application version.
func (c *Client) SetApplicationVersion(ctx context.Context, unit, version string) error {
	path, err := unitPath(unit, "/application-version")
	if err != nil {
		return err
	}
	return c.write(ctx, http.MethodPost, path, api.ApplicationVersionRequest{Version: version})
}

// Status returns the status of every application and controller node
// (admin).
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var out api.Status
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/status", out: &out})
	return out, err
}

// RegisterUnit registers unit with its token (admin). A non-nil schema
// (the charm's config.yaml options) replaces the application's.
// Registering again with the same token succeeds; with another it matches
// api.ErrUnitExists.
func (c *Client) RegisterUnit(ctx context.Context, unit, token string, schema map[string]api.Option) error {
	return c.write(ctx, http.MethodPost, "/v1/units", api.RegisterUnitRequest{Unit: unit, Token: token, ConfigSchema: schema})
}

// RemoveUnit marks the unit dying (admin): its agent steps down, runs its
// teardown and deregisters.
func (c *Client) RemoveUnit(ctx context.Context, unit string) error {
	path, err := unitPath(unit, "/remove")
	if err != nil {
		return err
	}
	return c.write(ctx, http.MethodPost, path, nil)
}

// DeregisterUnit removes the unit's registration (admin, or the unit
// itself), releasing its lease unless pinned (api.ErrPinned).
func (c *Client) DeregisterUnit(ctx context.Context, unit string) error {
	path, err := unitPath(unit, "")
	if err != nil {
		return err
	}
	return c.write(ctx, http.MethodDelete, path, nil)
}

// Resolved asks the unit's agent to leave its error state (admin): retry
// the failed hook, or skip it if noRetry.
func (c *Client) Resolved(ctx context.Context, unit string, noRetry bool) error {
	path, err := unitPath(unit, "/resolved")
	if err != nil {
		return err
	}
	return c.write(ctx, http.MethodPost, path, api.ResolvedRequest{NoRetry: noRetry})
}

// RequestStepDown asks app's leader to step down (admin); refused while
// pinned (api.ErrPinned) or vacant (api.ErrNoLeader).
func (c *Client) RequestStepDown(ctx context.Context, app string) error {
	_, _, err := c.StepDown(ctx, app)
	return err
}

// StepDown is RequestStepDown that also returns the lease as the request
// left it (its holder is the leader asked to step down) and the request's
// index, from which WatchLease sees what happens next.
func (c *Client) StepDown(ctx context.Context, app string) (api.Lease, uint64, error) {
	var out api.LeaseResponse
	h, err := c.do(ctx, call{method: http.MethodPost, path: leasePath(app, "/step-down"), body: api.StepDownRequest{}, out: &out})
	if err != nil {
		return api.Lease{}, 0, err
	}
	return out.Lease, headerIndex(h), nil
}

// Pin pins app's lease for entity (admin); dur > 0 makes the pin expire by
// itself after that long. A vacant lease matches api.ErrNoLeader.
func (c *Client) Pin(ctx context.Context, app, entity, reason string, dur time.Duration) error {
	req := api.PinRequest{Entity: entity, Reason: reason}
	if dur > 0 {
		req.For = dur.String()
	}
	return c.write(ctx, http.MethodPost, leasePath(app, "/pin"), req)
}

// Unpin removes entity's pin on app's lease (admin).
func (c *Client) Unpin(ctx context.Context, app, entity string) error {
	return c.write(ctx, http.MethodPost, leasePath(app, "/unpin"), api.UnpinRequest{Entity: entity})
}

// SetConfigIf changes app's config (admin) only if its version is still
// version: a compare-and-set, which needs controller protocol 2. A config
// changed since matches api.ErrStaleConfig; a cluster still on protocol
// 1 refuses it with an error matching api.ErrNeedsProtocol.
func (c *Client) SetConfigIf(ctx context.Context, app string, changes map[string]string, version uint64) error {
	return c.write(ctx, http.MethodPatch, appPath(app, "/config"), api.ConfigChanges{Changes: changes, IfVersion: &version})
}

// Nodes lists the controller's raft servers.
func (c *Client) Nodes(ctx context.Context) ([]api.Node, error) {
	out, _, err := c.Cluster(ctx, 0, 0)
	return out.Nodes, err
}

// Cluster returns the controller's raft servers with their protocol
// ranges and the effective cluster version, once the answering node's
// state index exceeds index, or after wait; index 0 answers at once.
func (c *Client) Cluster(ctx context.Context, index uint64, wait time.Duration) (api.NodesResponse, uint64, error) {
	q, timeout := c.blockingQuery(index, wait)
	var out api.NodesResponse
	h, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/cluster/nodes", query: q, out: &out, timeout: timeout})
	return out, headerIndex(h), err
}

// Join adds a controller node as a raft voter (admin). A node whose
// protocol range does not include the cluster's effective version is
// refused (api.ErrVersionUnsupported) before it is added.
func (c *Client) Join(ctx context.Context, req api.JoinRequest) error {
	return c.write(ctx, http.MethodPost, "/v1/cluster/join", req)
}

// Announce records a member node's protocol range and addresses (the
// node credential, or admin).
func (c *Client) Announce(ctx context.Context, req api.AnnounceRequest) error {
	return c.write(ctx, http.MethodPost, "/v1/cluster/announce", req)
}

// SignCertificate asks the controller to sign a joining node's
// certificate request; the answer carries the cluster CA's certificate
// and key (admin only).
func (c *Client) SignCertificate(ctx context.Context, req api.CertificateRequest) (api.CertificateResponse, error) {
	var out api.CertificateResponse
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/cluster/certificates", body: req, out: &out})
	return out, err
}

// RotateNodeCertificate makes the node that answers (give the client one
// address) issue itself a new certificate, presented from its next
// handshake on (admin only).
func (c *Client) RotateNodeCertificate(ctx context.Context) (api.NodeCertificate, error) {
	var out api.NodeCertificate
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/node/certificate/rotate", out: &out})
	return out, err
}

// RemoveNode removes a controller node from the raft cluster (admin).
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	return c.write(ctx, http.MethodDelete, "/v1/cluster/nodes/"+url.PathEscape(id), nil)
}

func (c *Client) write(ctx context.Context, method, path string, body any) error {
	_, err := c.do(ctx, call{method: method, path: path, body: body})
	return err
}
